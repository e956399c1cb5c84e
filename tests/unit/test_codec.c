/* test_codec.c - parsing and naming of the --compress policy. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "archive/codec.h"

START_TEST(test_parse_valid)
{
    struct ck_codec c;
    ck_assert(ck_codec_parse("auto", &c));
    ck_assert_int_eq(c.kind, CK_CODEC_AUTO);
    ck_assert(ck_codec_parse("store", &c));
    ck_assert_int_eq(c.kind, CK_CODEC_STORE);
    for (int level = 1; level <= 9; level++) {
        char s[16];
        snprintf(s, sizeof(s), "gzip-%d", level);
        ck_assert(ck_codec_parse(s, &c));
        ck_assert_int_eq(c.kind, CK_CODEC_GZIP);
        ck_assert_int_eq(c.level, level);
    }
}
END_TEST

START_TEST(test_parse_invalid)
{
    static const char *const bad[] = {"",        "gzip",    "gzip-",  "gzip-0", "gzip-10",
                                      "gzip-01", "gzip-1 ", "AUTO",   "Store",  "auto ",
                                      "gzip-a",  "zstd",    " store", "gzip--1"};
    struct ck_codec c = {.kind = CK_CODEC_STORE, .level = 0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!ck_codec_parse(bad[i], &c), "accepted '%s'", bad[i]);
    ck_assert(!ck_codec_parse(NULL, &c));
    ck_assert_int_eq(c.kind, CK_CODEC_STORE); /* untouched on failure */
}
END_TEST

START_TEST(test_name_round_trip)
{
    static const char *const names[] = {"auto", "store", "gzip-1", "gzip-6", "gzip-9"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct ck_codec c;
        char buf[32];
        ck_assert(ck_codec_parse(names[i], &c));
        ck_assert_str_eq(ck_codec_name(&c, buf, sizeof(buf)), names[i]);
    }
}
END_TEST

START_TEST(test_name_truncates)
{
    struct ck_codec c = {.kind = CK_CODEC_GZIP, .level = 7};
    char buf[4];
    ck_assert_str_eq(ck_codec_name(&c, buf, sizeof(buf)), "gzi");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, test_parse_valid);
    tcase_add_test(tc, test_parse_invalid);
    tcase_add_test(tc, test_name_round_trip);
    tcase_add_test(tc, test_name_truncates);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
