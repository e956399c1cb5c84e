/* test_retry.c - backoff bounds, attempt and time budgets, transient statuses. */
#include <check.h>
#include <stdlib.h>

#include "net/retry.h"

static struct ck_retry_policy policy(unsigned attempts, double base, double max, double deadline)
{
    struct ck_retry_policy p = {attempts, base, max, deadline};
    return p;
}

START_TEST(test_defaults)
{
    struct ck_retry_policy p;
    ck_retry_policy_default(&p);
    ck_assert_uint_eq(p.max_attempts, 8);
    ck_assert_double_eq(p.base_delay_s, 0.2);
    ck_assert_double_eq(p.max_delay_s, 10.0);
    ck_assert_double_eq(p.deadline_s, 120.0);
}
END_TEST

START_TEST(test_delay_within_exponential_ceiling)
{
    struct ck_retry_policy p = policy(20, 0.1, 2.0, 1000);
    uint64_t rng = 42;
    for (unsigned n = 1; n <= 12; n++) {
        double ceiling = 0.1 * (double)(1u << (n - 1));
        if (ceiling > 2.0)
            ceiling = 2.0;
        double max_seen = 0;
        for (int i = 0; i < 2000; i++) {
            double d = ck_retry_delay(&p, n, &rng);
            ck_assert(d >= 0 && d <= ceiling);
            if (d > max_seen)
                max_seen = d;
        }
        /* full jitter spans the whole interval, not a fixed fraction of it */
        ck_assert(max_seen > ceiling * 0.9);
    }
}
END_TEST

START_TEST(test_delay_is_jittered)
{
    struct ck_retry_policy p = policy(5, 1.0, 1.0, 100);
    uint64_t rng = 7;
    double a = ck_retry_delay(&p, 1, &rng), b = ck_retry_delay(&p, 1, &rng);
    ck_assert(a != b);
    double sum = 0;
    for (int i = 0; i < 10000; i++)
        sum += ck_retry_delay(&p, 1, &rng);
    ck_assert(sum / 10000 > 0.45 && sum / 10000 < 0.55); /* uniform on [0, 1] */
}
END_TEST

START_TEST(test_same_seed_same_delays)
{
    struct ck_retry_policy p = policy(5, 0.5, 8, 100);
    uint64_t r1 = 99, r2 = 99;
    for (unsigned n = 1; n < 6; n++)
        ck_assert_double_eq(ck_retry_delay(&p, n, &r1), ck_retry_delay(&p, n, &r2));
}
END_TEST

START_TEST(test_zero_seed_still_random)
{
    struct ck_retry_state st;
    struct ck_retry_policy p = policy(10, 1, 1, 100);
    ck_retry_begin(&st, &p, 0, 0);
    ck_assert(st.rng != 0);
    double a, b;
    ck_assert(ck_retry_next(&st, 0, &a));
    ck_assert(ck_retry_next(&st, 0, &b));
    ck_assert(a != b);
}
END_TEST

START_TEST(test_max_attempts)
{
    struct ck_retry_state st;
    struct ck_retry_policy p = policy(4, 0.01, 0.01, 100);
    ck_retry_begin(&st, &p, 0, 1);
    ck_assert_uint_eq(st.attempts, 1);
    double d;
    ck_assert(ck_retry_next(&st, 0, &d));
    ck_assert(ck_retry_next(&st, 0, &d));
    ck_assert(ck_retry_next(&st, 0, &d));
    ck_assert_uint_eq(st.attempts, 4);
    ck_assert(!ck_retry_next(&st, 0, &d));
}
END_TEST

START_TEST(test_single_attempt_never_retries)
{
    struct ck_retry_state st;
    struct ck_retry_policy p = policy(1, 0.01, 0.01, 100);
    ck_retry_begin(&st, &p, 0, 1);
    double d;
    ck_assert(!ck_retry_next(&st, 0, &d));
}
END_TEST

START_TEST(test_deadline)
{
    struct ck_retry_state st;
    struct ck_retry_policy p = policy(100, 0.5, 0.5, 10);
    ck_retry_begin(&st, &p, 1000, 1);
    double d;
    ck_assert(ck_retry_next(&st, 1005, &d));
    ck_assert(d <= 0.5);
    ck_assert(!ck_retry_next(&st, 1010.0, &d)); /* budget spent */
    ck_assert(!ck_retry_next(&st, 2000.0, &d));
}
END_TEST

START_TEST(test_transient_statuses)
{
    static const long yes[] = {408, 425, 429, 500, 502, 503, 504};
    static const long no[] = {200, 206, 301, 400, 401, 403, 404, 405, 416, 501, 505};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        ck_assert_msg(ck_retry_http_status_transient(yes[i]), "%ld", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!ck_retry_http_status_transient(no[i]), "%ld", no[i]);
}
END_TEST

static Suite *retry_suite(void)
{
    Suite *s = suite_create("retry");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_delay_within_exponential_ceiling);
    tcase_add_test(tc, test_delay_is_jittered);
    tcase_add_test(tc, test_same_seed_same_delays);
    tcase_add_test(tc, test_zero_seed_still_random);
    tcase_add_test(tc, test_max_attempts);
    tcase_add_test(tc, test_single_attempt_never_retries);
    tcase_add_test(tc, test_deadline);
    tcase_add_test(tc, test_transient_statuses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(retry_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
