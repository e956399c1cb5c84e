/*
 * test_sigv4.c - SigV4 against AWS's published worked examples.
 *
 * Sources of the expected values (none invented here):
 *  - the Signature Version 4 test suite (AWS General Reference, now kept in
 *    awslabs/aws-c-auth tests/aws-signing-test-suite/v4/<case>/header-signed-request.txt):
 *    get-vanilla, get-vanilla-query-order-key-case, post-sts-header-before (session token),
 *    get-header-value-trim, get-utf8, get-vanilla-utf8-query, get-unreserved; credentials
 *    AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20150830T123600Z, us-east-1,
 *    service "service";
 *  - the Amazon S3 API Reference, "Signature Calculations for the Authorization Header:
 *    Transferring Payload in a Single Chunk": GET Object (Range bytes=0-9), PUT Object,
 *    GET Bucket Lifecycle, Get Bucket (List Objects); AKIAIOSFODNN7EXAMPLE /
 *    wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z, us-east-1, s3.
 * One value (test_query_edge_cases) is not documented anywhere; it was computed with
 * Python's hashlib/hmac, step by step, as shown in that test's comment.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "auth/sigv4.h"
#include "testutil.h"
#include "util/uri_encode.h"

#define EMPTY_SHA  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SUITE_DATE "20150830T123600Z"
#define S3_DATE    "20130524T000000Z"
#define S3_HOST    "examplebucket.s3.amazonaws.com"
#define SUITE_TOKEN                                                                                \
    "AQoDYXdzEPT//////////"                                                                        \
    "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUu"    \
    "wthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75"    \
    "YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"                       \
    "scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

static void suite_creds(struct ck_aws_creds *c, const char *token)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->access_key, sizeof(c->access_key), "AKIDEXAMPLE");
    snprintf(c->secret_key, sizeof(c->secret_key), "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    snprintf(c->session_token, sizeof(c->session_token), "%s", token ? token : "");
}

static void s3_creds(struct ck_aws_creds *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->access_key, sizeof(c->access_key), "AKIAIOSFODNN7EXAMPLE");
    snprintf(c->secret_key, sizeof(c->secret_key), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
}

/* Signs a test-suite request (host example.amazonaws.com + x-amz-date + extra). */
static ck_rc suite_sign(const char *method, const char *path, const char *query,
                        const struct ck_sigv4_header *extra, size_t nextra, const char *token,
                        char *out, size_t outlen, struct ck_err *err)
{
    struct ck_sigv4_header h[CK_SIGV4_MAX_HEADERS] = {
        {"Host", "example.amazonaws.com"},
        {"X-Amz-Date", SUITE_DATE},
    };
    for (size_t i = 0; i < nextra; i++)
        h[2 + i] = extra[i];
    struct ck_sigv4_request req = {
        .method = method,
        .path = path,
        .query = query,
        .headers = h,
        .nheaders = 2 + nextra,
        .payload_hash = EMPTY_SHA,
        .amz_date = SUITE_DATE,
        .region = "us-east-1",
        .service = "service",
    };
    struct ck_aws_creds c;
    suite_creds(&c, token);
    return ck_sigv4_sign(&req, &c, out, outlen, err);
}

#define SUITE_PREFIX                                                                               \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

static void assert_suite(const char *method, const char *path, const char *query,
                         const struct ck_sigv4_header *extra, size_t nextra, const char *token,
                         const char *want_tail)
{
    char out[1024];
    struct ck_err err;
    ck_assert_msg(suite_sign(method, path, query, extra, nextra, token, out, sizeof(out), &err) ==
                      CK_OK,
                  "%s", err.msg);
    char want[1024];
    snprintf(want, sizeof(want), "%s%s", SUITE_PREFIX, want_tail);
    ck_assert_str_eq(out, want);
}

/* ---- the SigV4 test suite ---------------------------------------------------------- */

START_TEST(test_get_vanilla)
{
    assert_suite("GET", "/", "", NULL, 0, NULL,
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}
END_TEST

START_TEST(test_get_vanilla_query_order_key_case)
{
    assert_suite("GET", "/", "Param2=value2&Param1=value1", NULL, 0, NULL,
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}
END_TEST

START_TEST(test_post_sts_header_before)
{
    struct ck_sigv4_header tok = {"X-Amz-Security-Token", SUITE_TOKEN};
    assert_suite("POST", "/", "", &tok, 1, SUITE_TOKEN,
                 "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                 "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}
END_TEST

START_TEST(test_get_header_value_trim)
{
    struct ck_sigv4_header h[] = {{"My-Header1", " value1"}, {"My-Header2", "\"a   b   c\""}};
    assert_suite("GET", "/", "", h, 2, NULL,
                 "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
                 "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}
END_TEST

START_TEST(test_get_utf8_path)
{
    /* GET /ሴ: the path is given encoded once, as it is sent. */
    char path[64];
    ck_assert_int_eq(ck_uri_encode("/\xe1\x88\xb4", 1, path, sizeof(path)), CK_OK);
    ck_assert_str_eq(path, "/%E1%88%B4");
    assert_suite("GET", path, "", NULL, 0, NULL,
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}
END_TEST

START_TEST(test_get_utf8_query)
{
    const char *tail = "SignedHeaders=host;x-amz-date, "
                       "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04";
    assert_suite("GET", "/", "%E1%88%B4=bar", NULL, 0, NULL, tail);
    assert_suite("GET", "/", "\xe1\x88\xb4=bar", NULL, 0, NULL, tail); /* raw bytes: same */
}
END_TEST

START_TEST(test_get_unreserved)
{
    assert_suite("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "",
                 NULL, 0, NULL,
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}
END_TEST

/* ---- the S3 documentation examples ------------------------------------------------- */

static void s3_sign(const char *method, const char *path, const char *query,
                    const struct ck_sigv4_header *h, size_t nh, const char *payload_hash,
                    const char *want_signed, const char *want_sig)
{
    struct ck_sigv4_request req = {
        .method = method,
        .path = path,
        .query = query,
        .headers = h,
        .nheaders = nh,
        .payload_hash = payload_hash,
        .amz_date = S3_DATE,
        .region = "us-east-1",
        .service = "s3",
    };
    struct ck_aws_creds c;
    s3_creds(&c);
    char out[1024], want[1024];
    struct ck_err err;
    ck_assert_msg(ck_sigv4_sign(&req, &c, out, sizeof(out), &err) == CK_OK, "%s", err.msg);
    snprintf(want, sizeof(want),
             "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
             "SignedHeaders=%s, Signature=%s",
             want_signed, want_sig);
    ck_assert_str_eq(out, want);
}

START_TEST(test_s3_get_object_range)
{
    struct ck_sigv4_header h[] = {
        {"Host", S3_HOST},
        {"Range", "bytes=0-9"},
        {"x-amz-content-sha256", EMPTY_SHA},
        {"x-amz-date", S3_DATE},
    };
    s3_sign("GET", "/test.txt", "", h, 4, EMPTY_SHA, "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}
END_TEST

START_TEST(test_s3_put_object)
{
    const char *body = "Welcome to Amazon S3.";
    char hash[CK_SHA256_HEX_LEN + 1];
    ck_sha256_hex(body, strlen(body), hash);
    ck_assert_str_eq(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    char path[64];
    ck_assert_int_eq(ck_uri_encode("/test$file.text", 1, path, sizeof(path)), CK_OK);
    ck_assert_str_eq(path, "/test%24file.text");
    struct ck_sigv4_header h[] = {
        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
        {"x-amz-date", S3_DATE},
        {"Host", S3_HOST},
        {"x-amz-content-sha256", hash},
    };
    s3_sign("PUT", path, "", h, 5, hash,
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}
END_TEST

START_TEST(test_s3_get_bucket_lifecycle)
{
    struct ck_sigv4_header h[] = {
        {"Host", S3_HOST}, {"x-amz-content-sha256", EMPTY_SHA}, {"x-amz-date", S3_DATE}};
    s3_sign("GET", "/", "lifecycle", h, 3, EMPTY_SHA, "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    s3_sign("GET", "/", "lifecycle=", h, 3, EMPTY_SHA, "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}
END_TEST

START_TEST(test_s3_list_objects)
{
    struct ck_sigv4_header h[] = {
        {"Host", S3_HOST}, {"x-amz-content-sha256", EMPTY_SHA}, {"x-amz-date", S3_DATE}};
    const char *sig = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7";
    s3_sign("GET", "/", "max-keys=2&prefix=J", h, 3, EMPTY_SHA,
            "host;x-amz-content-sha256;x-amz-date", sig);
    s3_sign("GET", "/", "prefix=J&max-keys=2", h, 3, EMPTY_SHA,
            "host;x-amz-content-sha256;x-amz-date", sig);
}
END_TEST

/* ---- encoding and canonicalization edge cases --------------------------------------- */

START_TEST(test_uri_encode)
{
    char out[128];
    ck_assert_int_eq(ck_uri_encode("a b+c/é~-_.", 0, out, sizeof(out)), CK_OK);
    ck_assert_str_eq(out, "a%20b%2Bc%2F%C3%A9~-_.");
    ck_assert_int_eq(ck_uri_encode("dir/sub dir/k=v&x", 1, out, sizeof(out)), CK_OK);
    ck_assert_str_eq(out, "dir/sub%20dir/k%3Dv%26x");
    ck_assert_int_eq(ck_uri_encode("%", 0, out, sizeof(out)), CK_OK);
    ck_assert_str_eq(out, "%25");
    ck_assert_int_eq(ck_uri_encode("\x01\x7f\xff", 0, out, sizeof(out)), CK_OK);
    ck_assert_str_eq(out, "%01%7F%FF");
    ck_assert_int_eq(ck_uri_encode("", 0, out, sizeof(out)), CK_OK);
    ck_assert_str_eq(out, "");
    /* exact fit: "a%20" needs 5 bytes with the terminator */
    ck_assert_int_eq(ck_uri_encode("a ", 0, out, 5), CK_OK);
    ck_assert_int_eq(ck_uri_encode("a ", 0, out, 4), CK_EINVAL);
    ck_assert_int_eq(ck_uri_encode("ab", 0, out, 2), CK_EINVAL);
    ck_assert_int_eq(ck_uri_encode("", 0, out, 0), CK_EINVAL);
}
END_TEST

static void sig_of(const char *path, const char *query, char *out, size_t outlen)
{
    struct ck_err err;
    ck_assert_msg(suite_sign("GET", path, query, NULL, 0, NULL, out, outlen, &err) == CK_OK,
                  "%s: %s", query, err.msg);
}

START_TEST(test_query_edge_cases)
{
    /* Not a documented example. The expected value was computed with Python 3:
     *   E = hashlib.sha256(b"").hexdigest()
     *   creq = ("GET\n/my%20bucket/a%2Bb\n"
     *           "empty=&marker=x%2By&prefix=a%20b%2Fc&tilde=~\n"
     *           "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     *           "host;x-amz-date\n" + E)
     *   h = hashlib.sha256(creq.encode()).hexdigest()   # 7c5d9d81ff...c63961ca
     *   sts = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" + h
     *   k = b"AWS4" + secret
     *   for m in ("20150830", "us-east-1", "service", "aws4_request"):
     *       k = hmac.new(k, m.encode(), hashlib.sha256).digest()
     *   hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
     * Every spelling below must canonicalize to that same query. */
    const char *want = SUITE_PREFIX "SignedHeaders=host;x-amz-date, "
                                    "Signature=c32ce912af419dabed04a33cfeba12411669c0e3d9105b8b6def"
                                    "2be4f8290d7b";
    const char *spellings[] = {
        "prefix=a%20b%2Fc&marker=x%2By&empty&tilde=~",
        "tilde=%7e&empty=&prefix=a%20b/c&marker=x+y",       /* lower-case escape, raw '/', '+' */
        "&&marker=x%2By&&tilde=%7E&prefix=a%20b%2fc&empty", /* empty items dropped */
    };
    char out[1024];
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        sig_of("/my%20bucket/a%2Bb", spellings[i], out, sizeof(out));
        ck_assert_msg(strcmp(out, want) == 0, "%s: %s", spellings[i], out);
    }
    /* same name: sorted by value; order given does not matter */
    char a[1024], b[1024];
    sig_of("/", "k=b&k=a&k=", a, sizeof(a));
    sig_of("/", "k=&k=a&k=b", b, sizeof(b));
    ck_assert_str_eq(a, b);
    /* a name that is a prefix of another sorts first, whatever the value */
    sig_of("/", "ab=1&a=2", a, sizeof(a));
    sig_of("/", "a=2&ab=1", b, sizeof(b));
    ck_assert_str_eq(a, b);
    /* a different value is a different signature */
    sig_of("/", "a=1", a, sizeof(a));
    sig_of("/", "a=2", b, sizeof(b));
    ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(test_bad_query_refused)
{
    const char *bad[] = {"a=%zz", "a=%4", "a=%", "%=1", "x=1&b=%G0"};
    char out[1024];
    struct ck_err err;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(suite_sign("GET", "/", bad[i], NULL, 0, NULL, out, sizeof(out), &err),
                         CK_EINVAL);
        ck_assert_msg(strstr(err.msg, "sigv4: query"), "%s", err.msg);
    }
    /* too many parameters */
    static char many[8192];
    many[0] = '\0';
    for (int i = 0; i < 300; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "p%d=1&", i);
    ck_assert_int_eq(suite_sign("GET", "/", many, NULL, 0, NULL, out, sizeof(out), &err),
                     CK_EINVAL);
}
END_TEST

START_TEST(test_request_checks)
{
    char out[1024];
    struct ck_err err;
    /* the session token must be among the signed headers */
    ck_assert_int_eq(suite_sign("POST", "/", "", NULL, 0, SUITE_TOKEN, out, sizeof(out), &err),
                     CK_EINVAL);
    ck_assert_msg(strstr(err.msg, "x-amz-security-token"), "%s", err.msg);
    ck_assert_msg(!strstr(err.msg, "AQoDYXdz"), "token leaked: %s", err.msg);
    /* header injection and bad names */
    struct ck_sigv4_header crlf = {"X-Note", "a\r\nX-Evil: 1"};
    ck_assert_int_eq(suite_sign("GET", "/", "", &crlf, 1, NULL, out, sizeof(out), &err), CK_EINVAL);
    struct ck_sigv4_header badname = {"X Note", "a"};
    ck_assert_int_eq(suite_sign("GET", "/", "", &badname, 1, NULL, out, sizeof(out), &err),
                     CK_EINVAL);
    /* path must be encoded and absolute */
    ck_assert_int_eq(suite_sign("GET", "a b", "", NULL, 0, NULL, out, sizeof(out), &err),
                     CK_EINVAL);
    ck_assert_int_eq(suite_sign("GET", "/a b", "", NULL, 0, NULL, out, sizeof(out), &err),
                     CK_EINVAL);
    /* output too small */
    ck_assert_int_eq(suite_sign("GET", "/", "", NULL, 0, NULL, out, 40, &err), CK_EINVAL);
    /* an x-amz-date header that is not the signing date */
    struct ck_sigv4_header h[] = {{"Host", "example.amazonaws.com"},
                                  {"X-Amz-Date", "20150830T123601Z"}};
    struct ck_sigv4_request req = {.method = "GET",
                                   .path = "/",
                                   .query = "",
                                   .headers = h,
                                   .nheaders = 2,
                                   .payload_hash = EMPTY_SHA,
                                   .amz_date = SUITE_DATE,
                                   .region = "us-east-1",
                                   .service = "service"};
    struct ck_aws_creds c;
    suite_creds(&c, NULL);
    ck_assert_int_eq(ck_sigv4_sign(&req, &c, out, sizeof(out), &err), CK_EINVAL);
    /* without x-amz-date among the headers, amz_date is signed as x-amz-date (get-vanilla) */
    req.nheaders = 1;
    ck_assert_int_eq(ck_sigv4_sign(&req, &c, out, sizeof(out), &err), CK_OK);
    ck_assert_msg(strstr(out, "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d7"
                              "63fbf31"),
                  "%s", out);
    /* no host */
    req.headers = &h[1];
    ck_assert_int_eq(ck_sigv4_sign(&req, &c, out, sizeof(out), &err), CK_EINVAL);
    /* a secret never shows in a message */
    ck_assert_msg(!strstr(err.msg, "wJalr"), "%s", err.msg);
    /* region with a slash would change the scope */
    req.headers = h;
    req.nheaders = 1;
    req.region = "us-east-1/x";
    ck_assert_int_eq(ck_sigv4_sign(&req, &c, out, sizeof(out), &err), CK_EINVAL);
    /* empty credentials */
    req.region = "us-east-1";
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(ck_sigv4_sign(&req, &c, out, sizeof(out), &err), CK_EINVAL);
}
END_TEST

START_TEST(test_repeated_header_joined)
{
    /* Repeated names are one canonical line, values joined by ',' in the order given:
     * the same signature as a single header "a,b". */
    struct ck_sigv4_header two[] = {{"X-Multi", "a"}, {"x-multi", " b "}};
    struct ck_sigv4_header one[] = {{"X-Multi", "a,b"}};
    char x[1024], y[1024];
    struct ck_err err;
    ck_assert_int_eq(suite_sign("GET", "/", "", two, 2, NULL, x, sizeof(x), &err), CK_OK);
    ck_assert_int_eq(suite_sign("GET", "/", "", one, 1, NULL, y, sizeof(y), &err), CK_OK);
    ck_assert_str_eq(x, y);
    ck_assert_msg(strstr(x, "SignedHeaders=host;x-amz-date;x-multi,"), "%s", x);
}
END_TEST

START_TEST(test_sha256_and_date)
{
    char hex[CK_SHA256_HEX_LEN + 1];
    ck_sha256_hex("", 0, hex);
    ck_assert_str_eq(hex, EMPTY_SHA);
    char d[17];
    ck_sigv4_amz_date(1440938160.75, d);
    ck_assert_str_eq(d, SUITE_DATE);
    ck_sigv4_amz_date(1369353600, d);
    ck_assert_str_eq(d, S3_DATE);
}
END_TEST

static Suite *sigv4_suite(void)
{
    Suite *s = suite_create("sigv4");
    TCase *tc = tcase_create("sigv4");
    tcase_add_test(tc, test_get_vanilla);
    tcase_add_test(tc, test_get_vanilla_query_order_key_case);
    tcase_add_test(tc, test_post_sts_header_before);
    tcase_add_test(tc, test_get_header_value_trim);
    tcase_add_test(tc, test_get_utf8_path);
    tcase_add_test(tc, test_get_utf8_query);
    tcase_add_test(tc, test_get_unreserved);
    tcase_add_test(tc, test_s3_get_object_range);
    tcase_add_test(tc, test_s3_put_object);
    tcase_add_test(tc, test_s3_get_bucket_lifecycle);
    tcase_add_test(tc, test_s3_list_objects);
    tcase_add_test(tc, test_uri_encode);
    tcase_add_test(tc, test_query_edge_cases);
    tcase_add_test(tc, test_bad_query_refused);
    tcase_add_test(tc, test_request_checks);
    tcase_add_test(tc, test_repeated_header_joined);
    tcase_add_test(tc, test_sha256_and_date);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(sigv4_suite());
}
