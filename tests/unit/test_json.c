/* test_json.c - the JSON writer behind .status. */
#include <check.h>
#include <math.h>

#include "testutil.h"
#include "util/json.h"

START_TEST(test_document)
{
    struct ck_buf b;
    ck_buf_init(&b, 4096);
    struct ck_json j;
    ck_json_init(&j, &b);
    ck_json_obj_begin(&j);
    ck_json_key(&j, "s");
    ck_json_str(&j, "a\"b\\c\n\x01");
    ck_json_key(&j, "n");
    ck_json_int(&j, -5);
    ck_json_key(&j, "u");
    ck_json_uint(&j, 18446744073709551615ull);
    ck_json_key(&j, "f");
    ck_json_num(&j, 1.5);
    ck_json_key(&j, "nan");
    ck_json_num(&j, NAN);
    ck_json_key(&j, "arr");
    ck_json_arr_begin(&j);
    ck_json_bool(&j, true);
    ck_json_null(&j);
    ck_json_str(&j, NULL);
    ck_json_obj_begin(&j);
    ck_json_obj_end(&j);
    ck_json_arr_end(&j);
    ck_json_obj_end(&j);
    ck_assert_int_eq(ck_json_finish(&j), CK_OK);
    ck_assert_str_eq(b.data, "{\"s\":\"a\\\"b\\\\c\\u000a\\u0001\",\"n\":-5,"
                             "\"u\":18446744073709551615,\"f\":1.5,\"nan\":null,"
                             "\"arr\":[true,null,null,{}]}");
    ck_buf_free(&b);
}
END_TEST

START_TEST(test_invalid_utf8_is_replaced)
{
    struct ck_buf b;
    ck_buf_init(&b, 256);
    struct ck_json j;
    ck_json_init(&j, &b);
    ck_json_str(&j, "ok\xff\xc3\xa9");
    ck_assert_int_eq(ck_json_finish(&j), CK_OK);
    ck_assert_str_eq(b.data, "\"ok\xEF\xBF\xBD\xc3\xa9\"");
    ck_buf_free(&b);
}
END_TEST

START_TEST(test_errors_are_sticky)
{
    struct ck_buf b;
    ck_buf_init(&b, 8); /* too small */
    struct ck_json j;
    ck_json_init(&j, &b);
    ck_json_obj_begin(&j);
    ck_json_key(&j, "a-long-key");
    ck_json_str(&j, "value");
    ck_json_obj_end(&j);
    ck_assert_int_eq(ck_json_finish(&j), CK_ENOMEM);
    ck_buf_free(&b);

    ck_buf_init(&b, 64);
    ck_json_init(&j, &b);
    ck_json_obj_begin(&j); /* never closed */
    ck_assert_int_eq(ck_json_finish(&j), CK_EINVAL);
    ck_buf_free(&b);
}
END_TEST

START_TEST(test_buf_cap)
{
    struct ck_buf b;
    ck_buf_init(&b, 10);
    ck_assert_int_eq(ck_buf_puts(&b, "0123456789"), CK_OK);
    ck_assert_int_eq(ck_buf_puts(&b, "x"), CK_ENOMEM);
    ck_assert_uint_eq(b.len, 10);
    ck_assert_int_eq(ck_buf_printf(&b, "%d", 1), CK_ENOMEM);
    ck_buf_reset(&b);
    ck_assert_int_eq(ck_buf_printf(&b, "%s-%d", "ab", 42), CK_OK);
    ck_assert_str_eq(b.data, "ab-42");
    ck_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, test_document);
    tcase_add_test(tc, test_invalid_utf8_is_replaced);
    tcase_add_test(tc, test_errors_are_sticky);
    tcase_add_test(tc, test_buf_cap);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
