/* test_http_reply.c - strict parsing of reply headers (hostile input). */
#include <check.h>
#include <string.h>

#include "net/http_reply.h"

static bool feed(struct ck_http_reply *r, const char *line)
{
    return ck_http_reply_line(r, line, strlen(line));
}

START_TEST(test_status_and_fields)
{
    struct ck_http_reply r = {0};
    ck_http_reply_reset(&r);
    ck_assert(feed(&r, "HTTP/1.1 100 Continue\r\n"));
    ck_assert(feed(&r, "\r\n"));
    ck_assert(!r.complete); /* interim reply */
    ck_assert(feed(&r, "HTTP/1.1 206 Partial Content\r\n"));
    ck_assert(feed(&r, "content-length: 10\r\n"));
    ck_assert(feed(&r, "Content-Range: bytes 5-14/100\r\n"));
    ck_assert(feed(&r, "ETag:  \"abc\"  \r\n"));
    ck_assert(feed(&r, "Retry-After: 7\r\n"));
    ck_assert(feed(&r, "\r\n"));
    ck_assert(r.complete);
    ck_assert_int_eq(r.status, 206);
    ck_assert_str_eq(r.reason, "Partial Content");
    ck_assert(r.has_content_length);
    ck_assert_uint_eq(r.content_length, 10);
    ck_assert(r.has_content_range && r.total_known);
    ck_assert_uint_eq(r.range_start, 5);
    ck_assert_uint_eq(r.range_end, 14);
    ck_assert_uint_eq(r.range_total, 100);
    ck_assert_str_eq(r.etag, "\"abc\"");
    ck_assert_double_eq(r.retry_after_s, 7);
}
END_TEST

START_TEST(test_content_range_forms)
{
    struct ck_http_reply r;
    ck_http_reply_reset(&r);
    ck_assert(ck_http_parse_content_range("bytes */0", 9, &r));
    ck_assert(r.range_unsatisfied && r.total_known && r.range_total == 0);
    ck_http_reply_reset(&r);
    ck_assert(ck_http_parse_content_range("bytes 0-0/*", 11, &r));
    ck_assert(!r.total_known);
    static const char *bad[] = {"bytes 5-4/10",
                                "bytes 0-10/10",
                                "bytes -1-3/10",
                                "bits 0-1/2",
                                "bytes 0-1",
                                "bytes */*",
                                "bytes 0-99999999999999999999/1",
                                "bytes 1 -2/3",
                                "bytes 0-1/1x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_http_reply_reset(&r);
        ck_assert_msg(!ck_http_parse_content_range(bad[i], strlen(bad[i]), &r), "%s", bad[i]);
    }
}
END_TEST

START_TEST(test_malformed_numbers_refused)
{
    static const char *bad[] = {"Content-Length: -1\r\n", "Content-Length: 1e3\r\n",
                                "Content-Length: 18446744073709551616\r\n", "Content-Length: \r\n",
                                "Content-Range: bytes x-y/z\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ck_http_reply r;
        ck_http_reply_reset(&r);
        ck_assert(feed(&r, "HTTP/1.1 200 OK\r\n"));
        ck_assert_msg(!feed(&r, bad[i]), "%s", bad[i]);
        ck_assert_ptr_nonnull(r.invalid);
    }
    uint64_t v;
    ck_assert(ck_http_parse_u64("18446744073709551615", 20, &v) && v == UINT64_MAX);
}
END_TEST

START_TEST(test_header_cap)
{
    struct ck_http_reply r;
    ck_http_reply_reset(&r);
    ck_assert(feed(&r, "HTTP/1.1 200 OK\r\n"));
    char line[1024];
    memset(line, 'a', sizeof(line));
    memcpy(line, "X-Junk: ", 8);
    bool ok = true;
    for (int i = 0; i < 100 && ok; i++)
        ok = ck_http_reply_line(&r, line, sizeof(line));
    ck_assert(!ok);
    ck_assert_str_eq(r.invalid, "reply headers too large");
}
END_TEST

START_TEST(test_odd_but_harmless)
{
    struct ck_http_reply r;
    ck_http_reply_reset(&r);
    ck_assert(!feed(&r, "HTTP/1.1 2x0 OK\r\n"));
    ck_http_reply_reset(&r);
    ck_assert(feed(&r, "HTTP/2 404 \r\n"));
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.reason, "");
    char etag[300] = "ETag: \"";
    memset(etag + 7, 'e', 200);
    strcpy(etag + 207, "\"\r\n");
    ck_assert(feed(&r, etag));
    ck_assert_str_eq(r.etag, ""); /* too long: treated as absent */
    ck_assert(feed(&r, "Retry-After: soon\r\n"));
    ck_assert(r.retry_after_s < 0);
    char code[64];
    const char *xml = "<Error><Code>AccessDenied</Code><Message>x</Message></Error>";
    ck_http_error_code(xml, strlen(xml), code, sizeof(code));
    ck_assert_str_eq(code, "AccessDenied");
    ck_http_error_code("<Code>a b</Code>", 16, code, sizeof(code));
    ck_assert_str_eq(code, "");
    ck_http_error_code("<Code>Trunc", 11, code, sizeof(code));
    ck_assert_str_eq(code, "");
}
END_TEST

static Suite *http_reply_suite(void)
{
    Suite *s = suite_create("http_reply");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_status_and_fields);
    tcase_add_test(tc, test_content_range_forms);
    tcase_add_test(tc, test_malformed_numbers_refused);
    tcase_add_test(tc, test_header_cap);
    tcase_add_test(tc, test_odd_but_harmless);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_reply_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
