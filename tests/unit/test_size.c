/* test_size.c - byte sizes as options and settings spell them (util/size.h). */
#include <check.h>
#include <stdint.h>

#include "testutil.h"
#include "util/size.h"

START_TEST(test_sizes)
{
    uint64_t v = 0;
    ck_assert(ck_parse_size("8388608", &v) && v == 8388608);
    ck_assert(ck_parse_size("512K", &v) && v == 512u << 10);
    ck_assert(ck_parse_size("8m", &v) && v == 8u << 20);
    ck_assert(ck_parse_size("8MiB", &v) && v == 8u << 20);
    ck_assert(ck_parse_size("1G", &v) && v == 1ull << 30);
    ck_assert(ck_parse_size("5T", &v) && v == 5ull << 40);
    ck_assert(ck_parse_size("0", &v) && v == 0);
    const char *bad[] = {"",
                         "M",
                         "-1",
                         "+1",
                         " 1",
                         "1 ",
                         "1.5G",
                         "1X",
                         "1Mi",
                         "1MB",
                         "1GiBs",
                         "16777216T",
                         "18446744073709551616",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        v = 7;
        ck_assert_msg(!ck_parse_size(bad[i], &v), "accepted '%s'", bad[i]);
        ck_assert_uint_eq(v, 7);
    }
    ck_assert(!ck_parse_size(NULL, &v));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("size");
    TCase *tc = tcase_create("size");
    tcase_add_test(tc, test_sizes);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
