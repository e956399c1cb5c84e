/* test_resident.c - the cache limit's bookkeeping (restore/resident.h): what is evicted,
 * in which order, and what never is. */
#include <check.h>
#include <stdint.h>

#include "restore/resident.h"
#include "testutil.h"

static void arrive(struct ck_resident *r, size_t i, uint64_t bytes)
{
    ck_resident_reserve(r, bytes);
    ck_resident_arrived(r, i, bytes);
}

START_TEST(test_no_limit_evicts_nothing)
{
    struct ck_resident r;
    struct ck_err err;
    ck_assert_int_eq(ck_resident_init(&r, 8, 0, &err), CK_OK);
    for (size_t i = 0; i < 8; i++)
        arrive(&r, i, 100);
    ck_assert_uint_eq(r.used, 800); /* counted all the same, for .status */
    size_t v;
    ck_assert(!ck_resident_victim(&r, &v));
    ck_resident_pin(&r, 0, 7);
    ck_assert(!ck_resident_pinned(&r, 3));
    ck_resident_free(&r);
}
END_TEST

START_TEST(test_least_recently_used_goes_first)
{
    struct ck_resident r;
    struct ck_err err;
    ck_assert_int_eq(ck_resident_init(&r, 6, 300, &err), CK_OK);
    for (size_t i = 0; i < 3; i++)
        arrive(&r, i, 100);
    size_t v;
    ck_assert(!ck_resident_victim(&r, &v)); /* 300 of 300: within the limit */
    /* a fetch of member 3 needs room: all were used once, so the oldest goes */
    ck_resident_reserve(&r, 100);
    ck_assert(ck_resident_victim(&r, &v));
    ck_assert_uint_eq(v, 0);
    ck_assert(!ck_resident_victim(&r, &v));
    ck_resident_arrived(&r, 3, 100);
    /* member 1 is read again since: the next fetch evicts 2, not 1 */
    ck_resident_pin(&r, 1, 1);
    ck_resident_unpin(&r, 1, 1);
    ck_resident_reserve(&r, 100);
    ck_assert(ck_resident_victim(&r, &v));
    ck_assert_uint_eq(v, 2);
    ck_assert_uint_eq(r.used + r.reserved, 300);
    ck_assert_uint_eq(r.evicted, 200);
    ck_resident_free(&r);
}
END_TEST

START_TEST(test_held_members_stay)
{
    struct ck_resident r;
    struct ck_err err;
    ck_assert_int_eq(ck_resident_init(&r, 4, 150, &err), CK_OK);
    arrive(&r, 0, 100);
    ck_resident_pin(&r, 0, 0); /* a read is serving it */
    ck_assert(ck_resident_pinned(&r, 0));
    ck_resident_reserve(&r, 100);
    size_t v;
    ck_assert(!ck_resident_victim(&r, &v)); /* over the limit, but nothing may go */
    ck_resident_arrived(&r, 1, 100);
    ck_assert(ck_resident_victim(&r, &v)); /* member 1 was never read: it goes */
    ck_assert_uint_eq(v, 1);
    ck_resident_unpin(&r, 0, 0);
    ck_assert(!ck_resident_pinned(&r, 0));
    ck_resident_reserve(&r, 100);
    ck_assert(ck_resident_victim(&r, &v)); /* released: now it may */
    ck_assert_uint_eq(v, 0);
    ck_assert_uint_eq(r.used, 0);
    ck_resident_free(&r);
}
END_TEST

START_TEST(test_failed_fetch_gives_back_its_reservation)
{
    struct ck_resident r;
    struct ck_err err;
    ck_assert_int_eq(ck_resident_init(&r, 4, 1000, &err), CK_OK);
    ck_resident_reserve(&r, 400);
    ck_resident_unreserve(&r, 400);
    ck_resident_unreserve(&r, 400); /* never below zero */
    ck_assert_uint_eq(r.reserved, 0);
    arrive(&r, 2, 10);
    arrive(&r, 2, 30); /* fetched again (after a failure): counted once, at its new size */
    ck_assert_uint_eq(r.used, 30);
    ck_resident_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("resident");
    TCase *tc = tcase_create("resident");
    tcase_add_test(tc, test_no_limit_evicts_nothing);
    tcase_add_test(tc, test_least_recently_used_goes_first);
    tcase_add_test(tc, test_held_members_stay);
    tcase_add_test(tc, test_failed_fetch_gives_back_its_reservation);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
