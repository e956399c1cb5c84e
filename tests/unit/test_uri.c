/* test_uri.c - URI classification, display forms and refusals. */
#include <check.h>
#include <string.h>

#include "store/uri.h"

static void expect_file(const char *uri, const char *path, const char *display)
{
    struct ck_uri u;
    struct ck_err err;
    ck_assert_int_eq(ck_uri_parse(uri, &u, &err), CK_OK);
    ck_assert_int_eq(u.kind, CK_URI_FILE);
    ck_assert_str_eq(u.path, path);
    ck_assert_ptr_null(u.url);
    ck_assert_str_eq(u.display, display);
    ck_uri_free(&u);
}

static void expect_http(const char *uri, const char *display)
{
    struct ck_uri u;
    struct ck_err err;
    ck_assert_int_eq(ck_uri_parse(uri, &u, &err), CK_OK);
    ck_assert_int_eq(u.kind, CK_URI_HTTP);
    ck_assert_str_eq(u.url, uri);
    ck_assert_ptr_null(u.path);
    ck_assert_str_eq(u.display, display);
    ck_uri_free(&u);
}

/* Fails with rc; the message contains want (if not NULL) and never secret. */
static void expect_fail(const char *uri, ck_rc rc, const char *want, const char *secret)
{
    struct ck_uri u;
    struct ck_err err;
    ck_assert_int_eq(ck_uri_parse(uri, &u, &err), rc);
    ck_assert_int_eq(err.rc, rc);
    ck_assert_ptr_null(u.path);
    ck_assert_ptr_null(u.url);
    ck_assert_ptr_null(u.display);
    if (want)
        ck_assert_msg(strstr(err.msg, want), "'%s' not in '%s'", want, err.msg);
    if (secret)
        ck_assert_msg(!strstr(err.msg, secret), "secret leaked: '%s'", err.msg);
}

START_TEST(test_file_uris)
{
    expect_file("file:///var/ck/obj.tar.gz", "/var/ck/obj.tar.gz", "file:///var/ck/obj.tar.gz");
    expect_file("file://localhost/p/q", "/p/q", "file://localhost/p/q");
    expect_file("FILE://LocalHost/p", "/p", "FILE://LocalHost/p");
    expect_file("file:///a%20b/c%2Fd", "/a b/c/d", "file:///a%20b/c%2Fd");
}
END_TEST

START_TEST(test_plain_paths)
{
    expect_file("/abs/path", "/abs/path", "/abs/path");
    expect_file("rel/path.tgz", "rel/path.tgz", "rel/path.tgz");
    expect_file("name", "name", "name");
    expect_file("c:odd", "c:odd", "c:odd"); /* no "://": a path */
    expect_file("/with space/and?query", "/with space/and?query", "/with space/and?query");
}
END_TEST

START_TEST(test_http_urls)
{
    expect_http("http://127.0.0.1:8080/ck/obj", "http://127.0.0.1:8080/ck/obj");
    expect_http("https://bucket.example.com/k?X-Amz-Signature=SECRET&X-Amz-Credential=AKIA",
                "https://bucket.example.com/k");
    expect_http("https://user:pa55@host/k#frag", "https://host/k");
    expect_http("http://[::1]:9000/k", "http://[::1]:9000/k");
    expect_http("HTTPS://h", "HTTPS://h");
}
END_TEST

START_TEST(test_unsupported_schemes)
{
    expect_fail("ftp://h/k", CK_EUNSUPPORTED, "not supported yet", NULL);
    expect_fail("ftp://h/k", CK_EUNSUPPORTED, "'ftp'", NULL);
    expect_fail("wasb://c@acct.blob.core.windows.net/k", CK_EUNSUPPORTED, "wasb", NULL);
}
END_TEST

static void expect_cloud(const char *uri, enum ck_uri_kind kind, const char *account,
                         const char *bucket, const char *key, const char *display)
{
    struct ck_uri u;
    struct ck_err err;
    ck_assert_msg(ck_uri_parse(uri, &u, &err) == CK_OK, "%s: %s", uri, err.msg);
    ck_assert_int_eq(u.kind, kind);
    if (account)
        ck_assert_str_eq(u.account, account);
    else
        ck_assert_ptr_null(u.account);
    ck_assert_str_eq(u.bucket, bucket);
    ck_assert_str_eq(u.key, key);
    ck_assert_str_eq(u.display, display);
    ck_uri_free(&u);
}

START_TEST(test_mistyped_scheme_is_not_a_path)
{
    static const char *const bad[] = {"https'://h/k?X-Amz-Signature=SECRET", "1http://h/k",
                                      "s 3://b/k", "ht_tp://h/k"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ck_uri u;
        struct ck_err err;
        ck_err_clear(&err);
        ck_assert_int_eq(ck_uri_parse(bad[i], &u, &err), CK_EINVAL);
        ck_assert_msg(!strstr(err.msg, "SECRET"), "secret in '%s'", err.msg);
    }
    /* a "://" inside a path after a slash is still a path */
    struct ck_uri u;
    struct ck_err err;
    ck_assert_int_eq(ck_uri_parse("dir/odd://name", &u, &err), CK_OK);
    ck_assert_int_eq(u.kind, CK_URI_FILE);
    ck_uri_free(&u);
}
END_TEST

START_TEST(test_gcs_and_azure)
{
    expect_cloud("gs://bkt/runs/1/ck", CK_URI_GCS, NULL, "bkt", "runs/1/ck", "gs://bkt/runs/1/ck");
    expect_cloud("az://ckit/a/b", CK_URI_AZURE, NULL, "ckit", "a/b", "az://ckit/a/b");
    expect_cloud("abfs://ckit@acct1.dfs.core.windows.net/a/b", CK_URI_AZURE, "acct1", "ckit", "a/b",
                 "abfs://ckit@acct1.dfs.core.windows.net/a/b");
    expect_cloud("abfss://ckit@acct1.blob.core.windows.net/a", CK_URI_AZURE, "acct1", "ckit", "a",
                 "abfss://ckit@acct1.blob.core.windows.net/a");
    expect_cloud("https://acct1.blob.core.windows.net/ckit/a/b", CK_URI_AZURE, "acct1", "ckit",
                 "a/b", "https://acct1.blob.core.windows.net/ckit/a/b");
    struct ck_uri u;
    struct ck_err err;
    ck_assert_int_eq(
        ck_uri_parse("https://acct1.blob.core.windows.net/ckit/k?sv=1&sig=SECRET", &u, &err),
        CK_OK);
    ck_assert_str_eq(u.sas, "sv=1&sig=SECRET");
    ck_assert_ptr_null(strstr(u.display, "SECRET"));
    ck_uri_free(&u);
    /* Other https hosts stay plain HTTP. */
    expect_http("https://example.com/blob.core.windows.net/k",
                "https://example.com/blob.core.windows.net/k");
    expect_http("https://x.blob.core.windows.net.evil.com/c/k",
                "https://x.blob.core.windows.net.evil.com/c/k");
    expect_fail("gs://bkt", CK_EINVAL, "no object key", NULL);
    expect_fail("gs://b*d/k", CK_EINVAL, "bucket", NULL);
    expect_fail("az://c/k?sig=SECRET", CK_EINVAL, "az://c/k", "SECRET");
    expect_fail("az://Bad_Container/k", CK_EINVAL, "container", NULL);
    expect_fail("az://ckit/", CK_EINVAL, "no blob name", NULL);
    expect_fail("abfs://ckit@acct1.example.com/k", CK_EINVAL, "host must be", NULL);
    expect_fail("abfs://acct1.dfs.core.windows.net/k", CK_EINVAL, "expected abfs://", NULL);
    expect_fail("abfs://ckit@ACCT.dfs.core.windows.net/k", CK_EINVAL, "account", NULL);
}
END_TEST

START_TEST(test_garbage)
{
    expect_fail("", CK_EINVAL, "empty URI", NULL);
    expect_fail(NULL, CK_EINVAL, NULL, NULL);
    expect_fail("http://", CK_EINVAL, "host", NULL);
    expect_fail("http:///path", CK_EINVAL, "http:///path", NULL);
    expect_fail("http://:80/x", CK_EINVAL, "host", NULL);
    expect_fail("http://h:99999/x", CK_EINVAL, "host", NULL);
    expect_fail("http://h:8x/x", CK_EINVAL, "host", NULL);
    expect_fail("http://h/a b?sig=SECRET", CK_EINVAL, "http://h/a b", "SECRET");
    expect_fail("https://u:SECRET@/k", CK_EINVAL, NULL, "SECRET");
    expect_fail("/tmp/a\nb", CK_EINVAL, "control", NULL);
    expect_fail("file://", CK_EINVAL, "no path", NULL);
    expect_fail("file:///", CK_EINVAL, "no path", NULL);
    expect_fail("file://otherhost/p", CK_EINVAL, "local", NULL);
    expect_fail("file:///p?x=1", CK_EINVAL, "query", NULL);
    expect_fail("file:///p%2", CK_EINVAL, "percent", NULL);
    expect_fail("file:///p%00x", CK_EINVAL, "percent", NULL);
}
END_TEST

START_TEST(test_too_long)
{
    char big[9000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "http://h/", 9);
    expect_fail(big, CK_EINVAL, "longer than", NULL);
    big[0] = '/';
    big[5000] = '\0';
    expect_fail(big, CK_EINVAL, "too long", NULL);
}
END_TEST

START_TEST(test_display_of_anything)
{
    char out[64];
    ck_uri_display("https://a:b@h/p?q=SECRET", out, sizeof(out));
    ck_assert_str_eq(out, "https://h/p");
    ck_uri_display("s3://b/k?versionId=1", out, sizeof(out));
    ck_assert_str_eq(out, "s3://b/k");
    ck_uri_display("x\001y", out, sizeof(out));
    ck_assert_str_eq(out, "x?y");
    ck_uri_display("https://h/aaaaaaaa", out, 10);
    ck_assert_str_eq(out, "https://h");
}
END_TEST

static Suite *uri_suite(void)
{
    Suite *s = suite_create("uri");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_file_uris);
    tcase_add_test(tc, test_mistyped_scheme_is_not_a_path);
    tcase_add_test(tc, test_plain_paths);
    tcase_add_test(tc, test_http_urls);
    tcase_add_test(tc, test_unsupported_schemes);
    tcase_add_test(tc, test_gcs_and_azure);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_too_long);
    tcase_add_test(tc, test_display_of_anything);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(uri_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
