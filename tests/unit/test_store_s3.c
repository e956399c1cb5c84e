/*
 * test_store_s3.c - the s3:// backend against a real moto_server in signature-checking mode
 * (tests/tools/moto-s3 --auth), with tests/tools/faultproxy.py in front of it for faults,
 * and its pure parts (URL building, settings, part sizes, XML) without a server.
 *
 * main() starts moto and the proxy before the suite and stops them after it, in the
 * parent, so they are cleaned up whatever the forked tests do. Each test sets its own
 * environment (keys, endpoint, part size) before opening a store: fork mode keeps that
 * private. Objects are checked from outside with boto3 (tests/tools/s3util.py).
 */
#include <check.h>
#include <libgen.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <zlib.h>

#include "net/http.h"
#include "store/s3/s3_config.h"
#include "store/cloud.h"
#include "store/digest.h"
#include "store/s3_xml.h"
#include "store/store.h"
#include "store/uri.h"
#include "store_testutil.h"
#include "util/buf.h"

#define BUCKET "ckb"
#define MiB    (1024 * 1024)

/* Set once by main() before the suite forks its tests; read-only afterwards. */
static struct {
    char dir[256];
    char tools[512];
    struct tu_server moto;
    int moto_port;
    int proxy_port;
    pid_t proxy_pid;
    char akid[128], secret[128];               /* the IAM user allowed everything */
    char denied_akid[128], denied_secret[128]; /* a user without any policy */
} T;

/* ---- helpers ------------------------------------------------------------------------ */

/* Credentials and endpoint for the stores a test opens (via the proxy or straight). */
static void use_moto(bool via_proxy, const char *akid, const char *secret)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", via_proxy ? T.proxy_port : T.moto_port);
    setenv("AWS_ENDPOINT_URL", url, 1);
    setenv("AWS_ACCESS_KEY_ID", akid, 1);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    setenv("AWS_REGION", "us-east-1", 1);
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static struct ck_store *open_key(const struct ck_store_env *env, const char *key)
{
    char uri[256];
    snprintf(uri, sizeof(uri), "s3://" BUCKET "/%s", key);
    struct ck_store *s;
    struct ck_err err;
    ck_assert_msg(ck_store_open(uri, env, &s, &err) == CK_OK, "%s", err.msg);
    ck_assert_str_eq(s->ops->name, "s3");
    return s;
}

static ck_rc put_bytes(struct ck_store *s, const void *data, size_t len, struct ck_err *err)
{
    return tu_put_pass(s, NULL, data, len, err);
}

/* Runs tests/tools/s3util.py against moto directly; its first output line into out. */
static int s3util(char *out, size_t outsz, const char *fmt, ...)
{
    char args[1024], cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd),
             "S3UTIL_ENDPOINT=http://127.0.0.1:%d AWS_ACCESS_KEY_ID='%s' "
             "AWS_SECRET_ACCESS_KEY='%s' python3 '%s/s3util.py' %s",
             T.moto_port, T.akid, T.secret, T.tools, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    if (out && (!fgets(out, (int)outsz, p)))
        out[0] = '\0';
    if (out)
        out[strcspn(out, "\n")] = '\0';
    return pclose(p);
}

/* "SIZE SHA256" of data, as s3util.py sha256 prints it. */
static void expect_object(const char *key, const void *data, size_t len)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    char want[128], got[256];
    SHA256(data, len, d);
    int n = snprintf(want, sizeof(want), "%zu ", len);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, "%02x", d[i]);
    ck_assert_int_eq(s3util(got, sizeof(got), "sha256 " BUCKET " '%s'", key), 0);
    ck_assert_msg(strcmp(got, want) == 0, "%s: boto3 sees '%s', expected '%s'", key, got, want);
}

static int open_uploads(void)
{
    char out[64];
    ck_assert_int_eq(s3util(out, sizeof(out), "uploads " BUCKET), 0);
    return atoi(out);
}

/* Waits (at most 10 s) until at least n multipart uploads are open in the bucket. */
static void wait_for_open_uploads(int n)
{
    for (int i = 0; i < 100 && open_uploads() < n; i++)
        usleep(100000);
    ck_assert_int_ge(open_uploads(), n);
}

/* A request to the proxy's control endpoint; the reply body goes to out if not NULL. */
/* The most part uploads (PUT ...?partNumber) the proxy saw running at the same time. */
static int max_parts_in_flight(void)
{
    struct ck_buf log;
    ck_assert_int_eq(tu_http_call(CK_HTTP_GET, T.proxy_port, "/__fault/log", NULL, NULL, &log),
                     200);
    double t0[256], t1[256];
    int n = 0, best = 0;
    for (char *line = log.data; line && *line && n < 256;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        char *a = strstr(line, "\"t0\": "), *b = strstr(line, "\"t1\": ");
        if (strstr(line, "\"PUT\"") && a && b && strstr(line, "\"bytes_in\": 5")) {
            t0[n] = atof(a + 6);
            t1[n] = atof(b + 6);
            n++;
        }
        line = end ? end + 1 : NULL;
    }
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int j = 0; j < n; j++)
            k += t0[j] <= t0[i] && t1[j] > t0[i];
        best = k > best ? k : best;
    }
    ck_buf_free(&log);
    return best;
}

/* ---- pure: URLs, settings, part sizes, XML --------------------------------------------- */

static char *fake_env[16][2];

static char *fake_getenv(const char *name)
{
    for (int i = 0; i < 16 && fake_env[i][0]; i++) {
        if (strcmp(fake_env[i][0], name) == 0)
            return fake_env[i][1];
    }
    return NULL;
}

static void build(const char *endpoint, enum ck_s3_style style, const char *bucket, const char *key,
                  const char *query, const char *want_url, const char *want_host,
                  const char *want_path)
{
    struct ck_s3_settings set = {.style = style};
    snprintf(set.endpoint_url, sizeof(set.endpoint_url), "%s", endpoint);
    struct ck_s3_endpoint ep;
    struct ck_s3_target t;
    struct ck_err err;
    bool vh;
    ck_assert_msg(ck_s3_endpoint_resolve(&set, "eu-west-1", &ep, &err) == CK_OK, "%s", err.msg);
    ck_assert_msg(ck_s3_use_virtual(style, &ep, bucket, &vh, &err) == CK_OK, "%s", err.msg);
    ck_assert_msg(ck_s3_target_build(&ep, vh, bucket, key, query, &t, &err) == CK_OK, "%s",
                  err.msg);
    ck_assert_str_eq(t.url, want_url);
    ck_assert_str_eq(t.host, want_host);
    ck_assert_str_eq(t.path, want_path);
}

START_TEST(test_url_building)
{
    /* AWS, auto: virtual-host for DNS-compatible names. */
    build("", CK_S3_STYLE_AUTO, "my-bucket", "runs/1/ck", "",
          "https://my-bucket.s3.eu-west-1.amazonaws.com/runs/1/ck",
          "my-bucket.s3.eu-west-1.amazonaws.com", "/runs/1/ck");
    /* A dotted name over https cannot be virtual (TLS wildcard): path-style. */
    build("", CK_S3_STYLE_AUTO, "my.bucket", "k", "",
          "https://s3.eu-west-1.amazonaws.com/my.bucket/k", "s3.eu-west-1.amazonaws.com",
          "/my.bucket/k");
    /* Legacy upper-case names: path-style. */
    build("", CK_S3_STYLE_AUTO, "MyBucket", "k", "",
          "https://s3.eu-west-1.amazonaws.com/MyBucket/k", "s3.eu-west-1.amazonaws.com",
          "/MyBucket/k");
    /* Custom endpoint (MinIO, moto), auto: path-style; keys are encoded, '/' kept. */
    build("http://127.0.0.1:9000", CK_S3_STYLE_AUTO, "b", "a b/c+d/é",
          "uploads=", "http://127.0.0.1:9000/b/a%20b/c%2Bd/%C3%A9?uploads=", "127.0.0.1:9000",
          "/b/a%20b/c%2Bd/%C3%A9");
    build("https://minio.example:9000/", CK_S3_STYLE_AUTO, "bkt", "k", "",
          "https://minio.example:9000/bkt/k", "minio.example:9000", "/bkt/k");
    /* Forced virtual on a custom host name; forced path on AWS. */
    build("https://minio.example:9000", CK_S3_STYLE_VIRTUAL, "bkt", "k", "partNumber=1&uploadId=x",
          "https://bkt.minio.example:9000/k?partNumber=1&uploadId=x", "bkt.minio.example:9000",
          "/k");
    build("", CK_S3_STYLE_PATH, "bkt", "k", "", "https://s3.eu-west-1.amazonaws.com/bkt/k",
          "s3.eu-west-1.amazonaws.com", "/bkt/k");
    /* An endpoint with a path prefix, and an override that names AWS. */
    build("http://gw.local/s3", CK_S3_STYLE_AUTO, "bkt", "k", "", "http://gw.local/s3/bkt/k",
          "gw.local", "/s3/bkt/k");
    build("https://s3.us-west-2.amazonaws.com", CK_S3_STYLE_AUTO, "bkt", "k", "",
          "https://bkt.s3.us-west-2.amazonaws.com/k", "bkt.s3.us-west-2.amazonaws.com", "/k");
    /* Dot segments stay as they are (the engine sends the path as is). */
    build("http://127.0.0.1:1", CK_S3_STYLE_AUTO, "b", "x/../y/./z", "",
          "http://127.0.0.1:1/b/x/../y/./z", "127.0.0.1:1", "/b/x/../y/./z");

    /* Forcing virtual where it cannot work is an error naming the bucket. */
    struct ck_s3_endpoint ep;
    struct ck_s3_settings set = {.style = CK_S3_STYLE_VIRTUAL};
    struct ck_err err;
    bool vh;
    strcpy(set.endpoint_url, "http://10.0.0.1:9000");
    ck_assert_int_eq(ck_s3_endpoint_resolve(&set, "us-east-1", &ep, &err), CK_OK);
    ck_assert_int_eq(ck_s3_use_virtual(CK_S3_STYLE_VIRTUAL, &ep, "bkt", &vh, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "bkt"));
    strcpy(set.endpoint_url, "ftp://x");
    ck_assert_int_eq(ck_s3_endpoint_resolve(&set, "us-east-1", &ep, &err), CK_EINVAL);
    strcpy(set.endpoint_url, "http://user:pw@host");
    ck_assert_int_eq(ck_s3_endpoint_resolve(&set, "us-east-1", &ep, &err), CK_EINVAL);
    ck_assert_ptr_null(strstr(err.msg, "pw"));
}
END_TEST

START_TEST(test_settings_from_env)
{
    struct ck_s3_settings set;
    struct ck_err err;
    memset(fake_env, 0, sizeof(fake_env));
    ck_assert_int_eq(ck_s3_settings_from_env(fake_getenv, &set, &err), CK_OK);
    ck_assert_str_eq(set.endpoint_url, "");
    ck_assert_int_eq(set.style, CK_S3_STYLE_AUTO);
    ck_assert_uint_eq(set.part_size, 8 * MiB);
    ck_assert_uint_eq(set.parallel, 4);

    char *vars[][2] = {{"FLYTE_AWS_ENDPOINT", "http://flyte:1"},
                       {"AWS_ENDPOINT_URL", "http://generic:2"},
                       {"AWS_ENDPOINT_URL_S3", "http://s3only:3"},
                       {"FLYTE_AWS_S3_ADDRESSING_STYLE", "virtual"},
                       {"AWS_S3_ADDRESSING_STYLE", "path"},
                       {"CKPTFS_S3_PART_SIZE", "5M"},
                       {"CKPTFS_S3_CONCURRENCY", "7"}};
    for (int i = 0; i < 7; i++) {
        fake_env[i][0] = vars[i][0];
        fake_env[i][1] = vars[i][1];
    }
    ck_assert_int_eq(ck_s3_settings_from_env(fake_getenv, &set, &err), CK_OK);
    ck_assert_str_eq(set.endpoint_url, "http://s3only:3");
    ck_assert_int_eq(set.style, CK_S3_STYLE_VIRTUAL); /* Flyte's variable first */
    ck_assert_uint_eq(set.part_size, 5 * MiB);
    ck_assert_uint_eq(set.parallel, 7);
    fake_env[2][0] = "unused";
    ck_assert_int_eq(ck_s3_settings_from_env(fake_getenv, &set, &err), CK_OK);
    ck_assert_str_eq(set.endpoint_url, "http://generic:2");
    fake_env[1][0] = "unused";
    ck_assert_int_eq(ck_s3_settings_from_env(fake_getenv, &set, &err), CK_OK);
    ck_assert_str_eq(set.endpoint_url, "http://flyte:1");

    fake_env[5][1] = "1M"; /* below S3's 5 MiB minimum */
    ck_assert_int_eq(ck_s3_settings_from_env(fake_getenv, &set, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "CKPTFS_S3_PART_SIZE"));
    fake_env[5][1] = "8M";
    fake_env[3][1] = "sideways";
    ck_assert_int_eq(ck_s3_settings_from_env(fake_getenv, &set, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "FLYTE_AWS_S3_ADDRESSING_STYLE"));
}
END_TEST

START_TEST(test_part_sizes)
{
    ck_assert_uint_eq(ck_s3_part_size(8 * MiB, 1), 8 * MiB);
    ck_assert_uint_eq(ck_s3_part_size(8 * MiB, 1000), 8 * MiB);
    ck_assert_uint_eq(ck_s3_part_size(8 * MiB, 1001), 16 * MiB);
    ck_assert_uint_eq(ck_s3_part_size(8 * MiB, 10000), 4096ull * MiB);
    ck_assert_uint_eq(ck_s3_part_size(4096ull * MiB, 10000), CK_S3_MAX_PART);
    uint64_t total = 0;
    for (unsigned n = 1; n <= CK_S3_MAX_PARTS; n++) {
        uint64_t p = ck_s3_part_size(CK_S3_DEFAULT_PART, n);
        ck_assert(p >= CK_S3_MIN_PART && p <= CK_S3_MAX_PART);
        total += p;
    }
    ck_assert(total >= (5ull << 40)); /* S3's largest object fits in 10,000 parts */
}
END_TEST

START_TEST(test_xml_replies)
{
    char code[64], msg[200], id[CK_S3_UPLOAD_ID_MAX + 1];
    struct ck_err err;
    const char *e = "<?xml version=\"1.0\"?>\n<Error><Code>AccessDenied</Code>"
                    "<Message>Access Denied</Message><RequestId>1</RequestId></Error>";
    ck_assert(ck_cloud_error_doc(e, strlen(e), code, sizeof(code), msg, sizeof(msg)));
    ck_assert_str_eq(code, "AccessDenied");
    ck_assert_str_eq(msg, "Access Denied");
    /* Truncated: the code and message still come through. */
    ck_assert(ck_cloud_error_doc(e, strlen(e) - 30, code, sizeof(code), msg, sizeof(msg)));
    ck_assert_str_eq(code, "AccessDenied");
    /* A document with a DTD is refused (util/xml.h); external entities never loaded. */
    const char *xxe =
        "<?xml version=\"1.0\"?><!DOCTYPE e [<!ENTITY x SYSTEM "
        "\"file:///etc/passwd\">]><Error><Code>X</Code><Message>&x;</Message></Error>";
    ck_assert(!ck_cloud_error_doc(xxe, strlen(xxe), code, sizeof(code), msg, sizeof(msg)));
    ck_assert_ptr_null(strstr(msg, "root:"));
    /* Odd codes and non-errors are refused. */
    const char *bad = "<Error><Code>a b</Code></Error>";
    ck_assert(!ck_cloud_error_doc(bad, strlen(bad), code, sizeof(code), msg, sizeof(msg)));
    ck_assert(!ck_cloud_error_doc("garbage", 7, code, sizeof(code), msg, sizeof(msg)));
    const char *ok = "<InitiateMultipartUploadResult><Bucket>b</Bucket><UploadId>abc.DEF-1"
                     "</UploadId></InitiateMultipartUploadResult>";
    ck_assert_int_eq(ck_s3_xml_upload_id(ok, strlen(ok), id, sizeof(id), "t", &err), CK_OK);
    ck_assert_str_eq(id, "abc.DEF-1");
    const char *noid = "<InitiateMultipartUploadResult></InitiateMultipartUploadResult>";
    ck_assert_int_eq(ck_s3_xml_upload_id(noid, strlen(noid), id, sizeof(id), "t", &err),
                     CK_ECORRUPT);
    struct ck_s3_part_ref parts[2] = {{1, "\"e1\"", "c1=="}, {2, "\"e<2\"", "c2=="}};
    struct ck_buf b;
    ck_buf_init(&b, 4096);
    ck_assert_int_eq(ck_s3_xml_complete_body(parts, 2, "ChecksumCRC32", &b, &err), CK_OK);
    ck_assert_ptr_nonnull(strstr(b.data, "<Part><PartNumber>2</PartNumber><ETag>&quot;e&lt;2"
                                         "&quot;</ETag><ChecksumCRC32>c2==</ChecksumCRC32>"));
    ck_buf_free(&b);
    ck_buf_init(&b, 4096); /* GCS: no checksum element */
    ck_assert_int_eq(ck_s3_xml_complete_body(parts, 2, NULL, &b, &err), CK_OK);
    ck_assert_ptr_nonnull(strstr(b.data, "<ETag>&quot;e1&quot;</ETag></Part>"));
    ck_buf_free(&b);
    /* a CRC-32 as x-amz-checksum-crc32 carries it, and two parts' joined */
    char b64[CK_CRC32_B64_LEN];
    uint32_t crc = 0;
    ck_crc32_b64(0xcbf43926u, b64); /* CRC-32 of "123456789" */
    ck_assert_str_eq(b64, "y/Q5Jg==");
    ck_assert(ck_crc32_of_b64(b64, &crc));
    ck_assert_uint_eq(crc, 0xcbf43926u);
    ck_assert(!ck_crc32_of_b64("y/Q5Jg", &crc));
    ck_assert(!ck_crc32_of_b64("y/Q5JgAA", &crc));
    uint32_t a = (uint32_t)crc32(0, (const Bytef *)"1234", 4);
    uint32_t z = (uint32_t)crc32(0, (const Bytef *)"56789", 5);
    ck_assert_uint_eq(ck_crc32_join(a, z, 5), 0xcbf43926u);
}
END_TEST

/* Found by tests/fuzz/fuzz_gcs_xml: an empty <Code> was taken as an error document
 * ("HTTP 403 : ..."); a Message's further lines (Azure's RequestId and Time) were shown
 * with '?' for the line breaks. */
START_TEST(test_xml_error_needs_code_and_shows_one_line)
{
    char code[64], msg[200];
    const char *empty = "<Error><Code></Code><Message>m</Message></Error>";
    ck_assert(!ck_cloud_error_doc(empty, strlen(empty), code, sizeof(code), msg, sizeof(msg)));
    ck_assert_str_eq(code, "");
    ck_assert_str_eq(msg, "");
    const char *blank = "<Error><Code> \n </Code></Error>";
    ck_assert(!ck_cloud_error_doc(blank, strlen(blank), code, sizeof(code), msg, sizeof(msg)));
    const char *lines = "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?><Error>"
                        "<Code>BlobNotFound</Code><Message>The specified blob does not exist.\r\n"
                        "RequestId:4b5ae8e1-701e\r\nTime:2024-05-01T12:00:00Z</Message></Error>";
    ck_assert(ck_cloud_error_doc(lines, strlen(lines), code, sizeof(code), msg, sizeof(msg)));
    ck_assert_str_eq(code, "BlobNotFound");
    ck_assert_str_eq(msg, "The specified blob does not exist.");
    const char *tab = "<Error><Code>X</Code><Message>\n a\tb \nc</Message></Error>";
    ck_assert(ck_cloud_error_doc(tab, strlen(tab), code, sizeof(code), msg, sizeof(msg)));
    ck_assert_str_eq(msg, "a?b");
}
END_TEST

START_TEST(test_uri_forms)
{
    struct ck_uri u;
    struct ck_err err;
    ck_assert_int_eq(ck_uri_parse("s3://bkt/a/b c", &u, &err), CK_OK);
    ck_assert_int_eq(u.kind, CK_URI_S3);
    ck_assert_str_eq(u.bucket, "bkt");
    ck_assert_str_eq(u.key, "a/b c");
    ck_uri_free(&u);
    ck_assert_int_eq(ck_uri_parse("s3://bkt", &u, &err), CK_EINVAL);
    ck_assert_int_eq(ck_uri_parse("s3://bkt/", &u, &err), CK_EINVAL);
    ck_assert_int_eq(ck_uri_parse("s3:///k", &u, &err), CK_EINVAL);
    ck_assert_int_eq(ck_uri_parse("s3://b*d/k", &u, &err), CK_EINVAL);
    ck_assert_int_eq(ck_uri_parse("ftp://b/k", &u, &err), CK_EUNSUPPORTED);
}
END_TEST

/* ---- against moto -------------------------------------------------------------------- */

START_TEST(test_put_get_small)
{
    use_moto(false, T.akid, T.secret);
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *s = open_key(&env, "small/obj");
    struct ck_err err;
    char *data = tu_pattern(100000, 1);
    ck_assert_msg(put_bytes(s, data, 100000, &err) == CK_OK, "%s", err.msg);
    struct ck_store_info info;
    ck_assert_msg(ck_store_head(s, &info, &err) == CK_OK, "%s", err.msg);
    ck_assert(info.exists);
    ck_assert_uint_eq(info.size, 100000);
    ck_assert(info.etag[0]);
    struct ck_buf b;
    ck_assert_msg(tu_get(s, 0, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(b.len, 100000);
    ck_assert(memcmp(b.data, data, 100000) == 0);
    ck_buf_free(&b);
    ck_assert_msg(tu_get(s, 777, 4321, &b, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(b.len, 4321);
    ck_assert(memcmp(b.data, data + 777, 4321) == 0);
    ck_buf_free(&b);
    ck_assert_msg(tu_get(s, 100000, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(b.len, 0);
    ck_buf_free(&b);
    ck_assert_int_eq(tu_get(s, 99990, 100, &b, &err), CK_ECORRUPT);
    ck_buf_free(&b);
    expect_object("small/obj", data, 100000);
    /* An empty object is one PUT too. */
    ck_assert_msg(put_bytes(s, "", 0, &err) == CK_OK, "%s", err.msg);
    ck_assert_msg(ck_store_head(s, &info, &err) == CK_OK, "%s", err.msg);
    ck_assert(info.exists && info.size == 0);
    ck_store_close(s);
    free(data);
}
END_TEST

START_TEST(test_missing_key)
{
    use_moto(false, T.akid, T.secret);
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *s = open_key(&env, "no/such/key");
    struct ck_err err;
    struct ck_store_info info;
    ck_assert_msg(ck_store_head(s, &info, &err) == CK_OK, "%s", err.msg);
    ck_assert(!info.exists);
    struct ck_buf b;
    ck_assert_int_eq(tu_get(s, 0, CK_STORE_TO_END, &b, &err), CK_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "NoSuchKey"), "%s", err.msg);
    ck_buf_free(&b);
    ck_store_close(s);
}
END_TEST

START_TEST(test_wrong_secret_is_refused)
{
    char wrong[128];
    snprintf(wrong, sizeof(wrong), "%s", T.secret);
    wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
    use_moto(false, T.akid, wrong);
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *s = open_key(&env, "small/denied");
    struct ck_err err;
    ck_assert_int_eq(put_bytes(s, "hello", 5, &err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "PUT s3://ckb/small/denied: HTTP 403 SignatureDoesNotMatch"),
                  "%s", err.msg);
    ck_assert_msg(!strstr(err.msg, wrong) && !strstr(err.msg, T.secret), "%s", err.msg);
    ck_store_close(s);
    ck_assert_str_eq(getenv("AWS_SECRET_ACCESS_KEY"), wrong);
    /* The right key passes: the signature, not the server, made the difference. */
    use_moto(false, T.akid, T.secret);
    s = open_key(&env, "small/denied");
    ck_assert_msg(put_bytes(s, "hello", 5, &err) == CK_OK, "%s", err.msg);
    ck_store_close(s);
}
END_TEST

START_TEST(test_access_denied_names_code_and_message)
{
    use_moto(false, T.denied_akid, T.denied_secret);
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *s = open_key(&env, "small/obj");
    struct ck_err err;
    struct ck_buf b;
    ck_assert_int_eq(tu_get(s, 0, CK_STORE_TO_END, &b, &err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "GET s3://ckb/small/obj: HTTP 403 AccessDenied: Access Denied"),
                  "%s", err.msg);
    ck_buf_free(&b);
    ck_store_close(s);
}
END_TEST

/* Uploads an object in 5 MiB parts with 4 in flight through the proxy, each request
 * allowed `attempts` tries. */
static char *multipart(const char *key, const char *plan, size_t size, int attempts, ck_rc want_rc,
                       struct ck_err *err)
{
    use_moto(true, T.akid, T.secret);
    setenv("CKPTFS_S3_PART_SIZE", "5M", 1);
    setenv("CKPTFS_S3_CONCURRENCY", "4", 1);
    tu_fault_plan(T.proxy_port, plan);
    struct ck_store_env env;
    tu_store_env(&env);
    env.retry.max_attempts = attempts;
    struct ck_store *s = open_key(&env, key);
    char *data = tu_pattern(size, (uint64_t)size ^ (uint64_t)strlen(plan));
    ck_rc rc = put_bytes(s, data, size, err);
    ck_assert_msg(rc == want_rc, "rc %d: %s", rc, err->msg);
    ck_store_close(s);
    return data;
}

START_TEST(test_multipart_round_trip)
{
    struct ck_err err;
    size_t size = 30 * MiB + 12345;
    char *data = multipart("big/obj", "", size, 4, CK_OK, &err);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"query\": \"uploads=\""),
                     1); /* CreateMultipartUpload... */
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"POST\""), 2); /* ...and Complete */
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""),
                     7); /* 6 full parts and the rest */
    int inflight = max_parts_in_flight();
    ck_assert_msg(inflight >= 2, "at most %d parts in flight", inflight);
    expect_object("big/obj", data, size);
    /* Read it back through the store: whole, and a range across a part boundary. */
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *s = open_key(&env, "big/obj");
    struct ck_buf b;
    ck_assert_msg(tu_get(s, 0, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(b.len, size);
    ck_assert(memcmp(b.data, data, size) == 0);
    ck_buf_free(&b);
    ck_assert_msg(tu_get(s, 5 * MiB - 10, 20, &b, &err) == CK_OK, "%s", err.msg);
    ck_assert(memcmp(b.data, data + 5 * MiB - 10, 20) == 0);
    ck_buf_free(&b);
    ck_store_close(s);
    ck_assert_int_eq(open_uploads(), 0);
    free(data);
}
END_TEST

START_TEST(test_multipart_survives_transient_faults)
{
    struct ck_err err;
    size_t size = 16 * MiB + 3;
    /* Create passes; the parts meet a 503, a SlowDown with its XML body, a 500, a
     * RequestTimeout 400 and a reset; Complete first gets a "200 with <Error>". With 4
     * parts in flight the order varies, but every fault hits some request once. On a
     * loaded machine one part can be retried before the others start and meet all four
     * faults, so each request gets five tries. */
    setenv("CKPTFS_S3_CONCURRENCY", "4", 1);
    char *data =
        multipart("big/faults", "pass,status=503,slowdown,status=500,reqtimeout,pass*4,error200",
                  size, 5, CK_OK, &err);
    expect_object("big/faults", data, size);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"action\": \"error200\""), 1);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""),
                     8); /* 4 parts + 4 retried alone, no restart */
    ck_assert_int_eq(open_uploads(), 0);
    /* GETs through faults: reset and truncation mid-body, a 503 and a SlowDown. */
    tu_fault_plan(T.proxy_port, "reset@100000,status=503,truncate@2000000,slowdown");
    struct ck_store_env env;
    tu_store_env(&env);
    env.retry.max_attempts = 6;
    struct ck_store *s = open_key(&env, "big/faults");
    struct ck_buf b;
    ck_assert_msg(tu_get(s, 0, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(b.len, size);
    ck_assert(memcmp(b.data, data, size) == 0);
    ck_buf_free(&b);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"GET\""), 5);
    ck_store_close(s);
    free(data);
}
END_TEST

START_TEST(test_failed_multipart_keeps_old_object)
{
    struct ck_err err;
    use_moto(false, T.akid, T.secret);
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *s = open_key(&env, "big/keep");
    ck_assert_msg(put_bytes(s, "old object", 10, &err) == CK_OK, "%s", err.msg);
    ck_store_close(s);
    /* One part in flight: Create and part 1 pass, part 2 fails past the retry budget
     * (4 attempts), then the plan is spent and the abort passes. */
    setenv("CKPTFS_S3_CONCURRENCY", "1", 1);
    use_moto(true, T.akid, T.secret);
    setenv("CKPTFS_S3_PART_SIZE", "5M", 1);
    tu_fault_plan(T.proxy_port, "pass*2,status=500*4");
    s = open_key(&env, "big/keep");
    char *data = tu_pattern(12 * MiB, 5);
    ck_assert_int_eq(put_bytes(s, data, 12 * MiB, &err), CK_ENET);
    ck_assert_msg(strstr(err.msg, "part 2") && strstr(err.msg, "gave up after 4 attempts"), "%s",
                  err.msg);
    ck_store_close(s);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"DELETE\""), 1);
    expect_object("big/keep", "old object", 10);
    ck_assert_int_eq(open_uploads(), 0);
    free(data);
}
END_TEST

/* An upload of one part copied by S3 (UploadPartCopy) from key "cp/src" (12 MiB, put first
 * without faults) at offset 1000, through the plan: the source's HEAD, Create, the copy,
 * the source's HEAD again, Complete. Returns the source's bytes. */
static char *copied_upload(const char *key, const char *plan, ck_rc want_rc, struct ck_err *err)
{
    use_moto(true, T.akid, T.secret);
    tu_fault_plan(T.proxy_port, "");
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *src = open_key(&env, "cp/src"), *dst = open_key(&env, key);
    char *data = tu_pattern(12 * MiB, 12);
    ck_assert_msg(put_bytes(src, data, 12 * MiB, err) == CK_OK, "%s", err->msg);
    ck_assert_msg(put_bytes(dst, "old object", 10, err) == CK_OK, "%s", err->msg);
    struct ck_store_info info;
    ck_assert_msg(ck_store_head(src, &info, err) == CK_OK, "%s", err->msg);
    tu_fault_plan(T.proxy_port, plan);
    struct ck_put_opts o = {.replayable = true, .size = CK_STORE_SIZE_UNKNOWN};
    struct ck_store_upload *u;
    ck_assert_msg(ck_store_put_begin(dst, &o, &u, err) == CK_OK, "%s", err->msg);
    struct ck_copy_src r = {src, info.version, 1000, 12 * MiB - 1000};
    bool server_side;
    ck_assert_msg(ck_store_put_copy(u, &r, &server_side, err) == CK_OK, "%s", err->msg);
    ck_assert(server_side);
    ck_rc rc = ck_store_put_commit(u, err);
    ck_assert_msg(rc == want_rc, "rc %d: %s", rc, err->msg);
    ck_store_close(src);
    ck_store_close(dst);
    return data;
}

/* A copied part meets a 500 and a "200 with <Error>": sent again, the object is right. */
START_TEST(test_copied_part_survives_transient_faults)
{
    struct ck_err err;
    char *data = copied_upload("cp/faults", "pass*2,status=500,error200", CK_OK, &err);
    expect_object("cp/faults", data + 1000, 12 * MiB - 1000);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"action\": \"error200\""), 1);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""), 3);
    ck_assert_int_eq(open_uploads(), 0);
    free(data);
}
END_TEST

/* 412 on the copy (the source is not the version named; AWS honours
 * x-amz-copy-source-if-match): the commit fails saying so, the old object stays. */
START_TEST(test_copied_part_refused_source_keeps_old_object)
{
    struct ck_err err;
    char *data = copied_upload("cp/refused", "pass*2,status=412", CK_EEXIST, &err);
    ck_assert_msg(strstr(err.msg, "cp/src") && strstr(err.msg, "the source changed"), "%s",
                  err.msg);
    expect_object("cp/refused", "old object", 10);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"DELETE\""), 1);
    ck_assert_int_eq(open_uploads(), 0);
    free(data);
}
END_TEST

/* Between two copied ranges, a written stretch of 12 MiB in 5 MiB parts ends in a 2 MiB
 * part: it joins the full part before it (one 7 MiB part) instead of being topped up with
 * the next range's first bytes (a GET, and those bytes sent again). */
START_TEST(test_short_written_part_joins_the_one_before)
{
    struct ck_err err;
    use_moto(true, T.akid, T.secret);
    setenv("CKPTFS_S3_PART_SIZE", "5M", 1);
    tu_fault_plan(T.proxy_port, "");
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *src = open_key(&env, "join/src"), *dst = open_key(&env, "join/dst");
    char *data = tu_pattern(12 * MiB, 21), *mid = tu_pattern(12 * MiB, 22);
    ck_assert_msg(put_bytes(src, data, 12 * MiB, &err) == CK_OK, "%s", err.msg);
    struct ck_store_info info;
    ck_assert_msg(ck_store_head(src, &info, &err) == CK_OK, "%s", err.msg);
    struct ck_put_opts o = {.replayable = true, .size = CK_STORE_SIZE_UNKNOWN};
    struct ck_store_upload *u;
    ck_assert_msg(ck_store_put_begin(dst, &o, &u, &err) == CK_OK, "%s", err.msg);
    struct ck_copy_src r = {src, info.version, 0, 6 * MiB};
    bool server_side;
    ck_assert_msg(ck_store_put_copy(u, &r, &server_side, &err) == CK_OK, "%s", err.msg);
    ck_assert(server_side);
    ck_assert_msg(ck_store_put_write(u, mid, 12 * MiB, &err) == CK_OK, "%s", err.msg);
    int gets = tu_fault_log_count(T.proxy_port, "\"GET\"");
    r.off = 6 * MiB;
    ck_assert_msg(ck_store_put_copy(u, &r, &server_side, &err) == CK_OK, "%s", err.msg);
    ck_assert(server_side);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"GET\""), gets); /* no top-up */
    ck_assert_msg(ck_store_put_commit(u, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"bytes_in\": 7340032"), 1);
    char *want = malloc(24 * MiB);
    ck_assert_ptr_nonnull(want);
    memcpy(want, data, 6 * MiB);
    memcpy(want + 6 * MiB, mid, 12 * MiB);
    memcpy(want + 18 * MiB, data + 6 * MiB, 6 * MiB);
    expect_object("join/dst", want, 24 * MiB);
    ck_assert_int_eq(open_uploads(), 0);
    ck_store_close(src);
    ck_store_close(dst);
    free(want);
    free(mid);
    free(data);
}
END_TEST

/* Ambiguous commits (issue 13): the destination decides. Each case starts from an old
 * object; 16 MiB + 3 in 5 MiB parts is Create, 4 parts, Complete. */
static void ambiguous_commit(const char *key, const char *plan, ck_rc want, bool new_object)
{
    struct ck_err err;
    use_moto(false, T.akid, T.secret);
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *s = open_key(&env, key);
    ck_assert_msg(put_bytes(s, "old object", 10, &err) == CK_OK, "%s", err.msg);
    ck_store_close(s);
    size_t size = 16 * MiB + 3;
    char *data = multipart(key, plan, size, 4, want, &err);
    if (new_object)
        expect_object(key, data, size);
    else
        expect_object(key, "old object", 10);
    /* aborted only when the commit did not happen */
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"DELETE\""), new_object ? 0 : 1);
    ck_assert_int_eq(open_uploads(), 0);
    free(data);
}

START_TEST(test_complete_applied_reply_lost)
{
    /* Complete is applied, its reply lost; the retries meet a finished upload (500s). */
    ambiguous_commit("amb/lost", "pass*5,lost,after=500*3", CK_OK, true);
}
END_TEST

START_TEST(test_complete_500_after_success)
{
    ambiguous_commit("amb/500", "pass*5,after=500*4", CK_OK, true);
}
END_TEST

START_TEST(test_complete_slow_is_not_cut)
{
    /* 3 s of silence before the server even sees Complete, with a 2 s stall timeout. */
    ambiguous_commit("amb/slow", "pass*5,delay=3", CK_OK, true);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"POST\""),
                     2); /* Create and one Complete: no retry */
}
END_TEST

START_TEST(test_complete_failed_is_a_failure)
{
    /* Complete refused every time: the HEAD finds the old object; the save failed. */
    ambiguous_commit("amb/fail", "pass*5,status=500*4", CK_ENET, false);
}
END_TEST

START_TEST(test_single_put_applied_reply_lost)
{
    struct ck_err err;
    use_moto(true, T.akid, T.secret);
    tu_fault_plan(T.proxy_port, "after=500*4");
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *s = open_key(&env, "amb/single");
    ck_assert_msg(put_bytes(s, "small new object", 16, &err) == CK_OK, "%s", err.msg);
    ck_store_close(s);
    expect_object("amb/single", "small new object", 16);
}
END_TEST

START_TEST(test_put_abort_leaves_nothing)
{
    struct ck_err err;
    use_moto(false, T.akid, T.secret);
    setenv("CKPTFS_S3_PART_SIZE", "5M", 1);
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *s = open_key(&env, "big/abort");
    ck_assert_msg(put_bytes(s, "old", 3, &err) == CK_OK, "%s", err.msg);
    struct ck_store_upload *u;
    ck_assert_int_eq(ck_store_put_begin(s, NULL, &u, &err), CK_OK);
    char *data = tu_pattern(12 * MiB, 9);
    ck_assert_msg(ck_store_put_write(u, data, 12 * MiB, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(open_uploads(), 1); /* parts are on their way */
    ck_store_put_abort(u);
    ck_assert_int_eq(open_uploads(), 0);
    expect_object("big/abort", "old", 3);
    ck_store_close(s);
    free(data);
}
END_TEST

START_TEST(test_permanent_403_fails_clearly)
{
    struct ck_err err;
    use_moto(true, T.akid, T.secret);
    setenv("CKPTFS_S3_PART_SIZE", "5M", 1);
    tu_fault_plan(T.proxy_port, "status=403*inf");
    struct ck_store_env env;
    tu_store_env(&env);
    struct ck_store *s = open_key(&env, "big/forbidden");
    char *data = tu_pattern(12 * MiB, 3);
    ck_assert_int_eq(put_bytes(s, data, 12 * MiB, &err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "HTTP 403") && strstr(err.msg, "CreateMultipartUpload"), "%s",
                  err.msg);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"path\""), 1); /* no retries of a 403 */
    ck_assert_int_eq(put_bytes(s, "x", 1, &err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "PUT s3://ckb/big/forbidden: HTTP 403"), "%s", err.msg);
    ck_store_close(s);
    tu_fault_plan(T.proxy_port, "");
    ck_assert_int_eq(open_uploads(), 0);
    free(data);
}
END_TEST

START_TEST(test_anonymous_requests_are_unsigned)
{
    use_moto(true, T.akid, T.secret);
    tu_fault_plan(T.proxy_port, "");
    struct ck_store_env env;
    tu_store_env(&env);
    env.no_sign_request = true;
    struct ck_store *s = open_key(&env, "small/obj");
    struct ck_err err;
    struct ck_store_info info;
    ck_rc rc = ck_store_head(s, &info, &err);
    ck_assert_int_eq(rc, CK_EAUTH); /* moto in auth mode refuses anonymous requests */
    ck_store_close(s);
}
END_TEST

/* ---- create-only puts (store.h): If-None-Match: * on the single PUT -------------------- */

static ck_rc put_if_absent(struct ck_store *s, const void *data, size_t len, struct ck_err *err)
{
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN, .if_absent = true};
    return tu_put_pass(s, &o, data, len, err);
}

/* A store of key through the proxy (plan set), each request allowed 4 tries. */
static struct ck_store *open_via_proxy(struct ck_store_env *env, const char *key, const char *plan)
{
    use_moto(true, T.akid, T.secret);
    tu_fault_plan(T.proxy_port, plan);
    tu_store_env(env);
    return open_key(env, key);
}

START_TEST(test_create_only_on_missing_key)
{
    struct ck_store_env env;
    struct ck_store *s = open_via_proxy(&env, "co/missing", "");
    struct ck_err err;
    ck_assert_msg(put_if_absent(s, "rank 0", 6, &err) == CK_OK, "%s", err.msg);
    expect_object("co/missing", "rank 0", 6);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""), 1);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"GET\""),
                     0); /* no sweep: ListMultipartUploads is a GET */
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_on_existing_key)
{
    struct ck_store_env env;
    struct ck_store *s = open_via_proxy(&env, "co/exists", "");
    struct ck_err err;
    ck_assert_msg(put_bytes(s, "old object", 10, &err) == CK_OK, "%s", err.msg);
    tu_fault_plan(T.proxy_port, "");
    ck_assert_int_eq(put_if_absent(s, "rank 1", 6, &err), CK_EEXIST);
    ck_assert_str_eq(err.msg,
                     "PUT s3://ckb/co/exists: an object is already there (If-None-Match: *)");
    expect_object("co/exists", "old object", 10);
    /* The first reply was a 412: final at once, no retry, nothing read back. */
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""), 1);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"GET\""), 0);
    /* Created create-only, then refused the same way. */
    ck_store_close(s);
    s = open_key(&env, "co/exists2");
    ck_assert_msg(put_if_absent(s, "first", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(put_if_absent(s, "second", 6, &err), CK_EEXIST);
    expect_object("co/exists2", "first", 5);
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_reply_lost_is_ours)
{
    /* Applied, reply lost; the retry meets our own object (412): read back, ours. */
    struct ck_store_env env;
    struct ck_store *s = open_via_proxy(&env, "co/lost", "lost");
    struct ck_err err;
    ck_assert_msg(put_if_absent(s, "rank 2", 6, &err) == CK_OK, "%s", err.msg);
    expect_object("co/lost", "rank 2", 6);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""), 2);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"GET\""), 1);
    /* Applied, then 500s until the retries are spent: read back, ours. */
    ck_store_close(s);
    s = open_via_proxy(&env, "co/500", "after=500*4");
    ck_assert_msg(put_if_absent(s, "rank 3", 6, &err) == CK_OK, "%s", err.msg);
    expect_object("co/500", "rank 3", 6);
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_412_after_retry_is_not_success)
{
    /* Another object is there; our 412's reply is lost and the retry's 412 arrives: not
     * ours, so CK_EEXIST, never success. */
    struct ck_store_env env;
    struct ck_store *s = open_via_proxy(&env, "co/theirs", "");
    struct ck_err err;
    ck_assert_msg(put_bytes(s, "their claim", 11, &err) == CK_OK, "%s", err.msg);
    tu_fault_plan(T.proxy_port, "lost");
    ck_assert_int_eq(put_if_absent(s, "our claim", 9, &err), CK_EEXIST);
    ck_assert_msg(strstr(err.msg, "an object is already there (If-None-Match: *)"), "%s", err.msg);
    expect_object("co/theirs", "their claim", 11);
    /* A lost reply that was a failure (the key stays missing) stays a failure. */
    ck_store_close(s);
    s = open_via_proxy(&env, "co/never", "status=500*4");
    ck_assert_int_eq(put_if_absent(s, "x", 1, &err), CK_ENET);
    struct ck_store_info info;
    ck_assert_msg(ck_store_head(s, &info, &err) == CK_OK, "%s", err.msg);
    ck_assert(!info.exists);
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_too_large_is_unsupported)
{
    struct ck_store_env env;
    setenv("CKPTFS_S3_PART_SIZE", "5M", 1);
    struct ck_store *s = open_via_proxy(&env, "co/large", "");
    struct ck_err err;
    char *data = tu_pattern(6 * MiB, 11);
    ck_assert_int_eq(put_if_absent(s, data, 6 * MiB, &err), CK_EUNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "PUT s3://ckb/co/large: a create-only put of 6291456 bytes"),
                  "%s", err.msg);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"path\""), 0); /* nothing was sent */
    ck_assert_int_eq(open_uploads(), 0);
    ck_store_close(s);
    free(data);
}
END_TEST

/* ---- conditional replaces (store.h): If-Match / If-None-Match on the commit ----------- */

static ck_rc put_if_match(struct ck_store *s, const char *version, const void *data, size_t len,
                          struct ck_err *err)
{
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN, .if_match = version};
    return tu_put_pass(s, &o, data, len, err);
}

static void head_version(struct ck_store *s, char out[128])
{
    struct ck_store_info info;
    struct ck_err err;
    ck_assert_msg(ck_store_head(s, &info, &err) == CK_OK, "%s", err.msg);
    ck_assert(info.exists);
    ck_assert_str_eq(info.version, info.etag);
    memcpy(out, info.version, 128);
}

START_TEST(test_conditional_replace)
{
    struct ck_store_env env;
    struct ck_store *s = open_via_proxy(&env, "cm/dest", "");
    struct ck_err err;
    /* "" on a missing key creates it; on an existing one it is refused. */
    ck_assert_msg(put_if_match(s, "", "gen 1", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(put_if_match(s, "", "gen x", 5, &err), CK_EEXIST);
    char v1[128], v2[128];
    head_version(s, v1);
    /* The version read: replaced; the same version again (a stale writer): refused. */
    ck_assert_msg(put_if_match(s, v1, "gen 2", 5, &err) == CK_OK, "%s", err.msg);
    expect_object("cm/dest", "gen 2", 5);
    ck_assert_int_eq(put_if_match(s, v1, "gen 1 again", 11, &err), CK_EEXIST);
    ck_assert_msg(strstr(err.msg, "PUT s3://ckb/cm/dest: the object changed since it was read "
                                  "(If-Match: "),
                  "%s", err.msg);
    expect_object("cm/dest", "gen 2", 5);
    head_version(s, v2);
    ck_assert_str_ne(v1, v2);
    ck_store_close(s);
}
END_TEST

START_TEST(test_conditional_replace_reply_lost_is_ours)
{
    /* Applied, reply lost: the retry gets 412 (the object is ours now); the HEAD knows our
     * ETag, so the commit succeeded. */
    struct ck_store_env env;
    struct ck_store *s = open_via_proxy(&env, "cm/lost", "");
    struct ck_err err;
    ck_assert_msg(put_bytes(s, "gen 1", 5, &err) == CK_OK, "%s", err.msg);
    char v1[128];
    head_version(s, v1);
    tu_fault_plan(T.proxy_port, "lost");
    ck_assert_msg(put_if_match(s, v1, "gen 2", 5, &err) == CK_OK, "%s", err.msg);
    expect_object("cm/lost", "gen 2", 5);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""), 2);
    ck_store_close(s);
}
END_TEST

START_TEST(test_conditional_multipart_if_none_match)
{
    /* The Complete carries If-None-Match: * (moto honours it there; If-Match on Complete
     * only AWS): a key that exists keeps its object, and the upload is aborted. */
    struct ck_store_env env;
    setenv("CKPTFS_S3_PART_SIZE", "5M", 1);
    struct ck_store *s = open_via_proxy(&env, "cm/big", "");
    struct ck_err err;
    ck_assert_msg(put_bytes(s, "old object", 10, &err) == CK_OK, "%s", err.msg);
    char *data = tu_pattern(11 * MiB, 13);
    ck_assert_int_eq(put_if_match(s, "", data, 11 * MiB, &err), CK_EEXIST);
    ck_assert_msg(strstr(err.msg, "(If-None-Match: *)"), "%s", err.msg);
    expect_object("cm/big", "old object", 10);
    ck_assert_int_eq(open_uploads(), 0);
    ck_store_close(s);
    s = open_via_proxy(&env, "cm/big2", "");
    ck_assert_msg(put_if_match(s, "", data, 11 * MiB, &err) == CK_OK, "%s", err.msg);
    expect_object("cm/big2", data, 11 * MiB);
    ck_store_close(s);
    free(data);
}
END_TEST

/* ---- deletes ------------------------------------------------------------------------- */

START_TEST(test_delete_object_and_open_uploads)
{
    struct ck_store_env env;
    setenv("CKPTFS_S3_PART_SIZE", "5M", 1);
    struct ck_store *s = open_via_proxy(&env, "del/shard", "");
    struct ck_err err;
    ck_assert_msg(put_bytes(s, "a failed round's shard", 22, &err) == CK_OK, "%s", err.msg);
    /* An upload of the key left open (a rank killed mid-upload): parts sent, no commit. */
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN};
    struct ck_store_upload *left;
    ck_assert_msg(ck_store_put_begin(s, &o, &left, &err) == CK_OK, "%s", err.msg);
    char *data = tu_pattern(11 * MiB, 17);
    ck_assert_msg(ck_store_put_write(left, data, 11 * MiB, &err) == CK_OK, "%s", err.msg);
    wait_for_open_uploads(1);
    struct ck_store *t = open_key(&env, "del/shard");
    ck_assert_msg(ck_store_delete(t, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(open_uploads(), 0);
    struct ck_store_info info;
    ck_assert_msg(ck_store_head(t, &info, &err) == CK_OK, "%s", err.msg);
    ck_assert(!info.exists);
    ck_assert_msg(ck_store_delete(t, &err) == CK_OK, "%s", err.msg); /* nothing there: fine */
    ck_store_put_abort(left);
    ck_store_close(t);
    ck_store_close(s);
    free(data);
}
END_TEST

/* A stand-in S3 (anonymous) whose first argv[1] PUTs answer 409 ConditionalRequestConflict,
 * then 412 for If-None-Match: * on a key it holds; GET /__stub/puts counts PUTs. */
static const char conflict_stub[] =
    "import http.server, sys\n"
    "N = int(sys.argv[1]); objs = {}; puts = [0]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a): pass\n"
    "    def send(self, st, body=b'', etag=False):\n"
    "        self.send_response(st)\n"
    "        if etag: self.send_header('ETag', '\"e\"')\n"
    "        self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
    "        if self.command != 'HEAD': self.wfile.write(body)\n"
    "    def err(self, st, code):\n"
    "        body = '<Error><Code>%s</Code><Message>stub</Message></Error>' % code\n"
    "        self.send(st, body.encode())\n"
    "    def do_PUT(self):\n"
    "        body = self.rfile.read(int(self.headers.get('Content-Length') or 0)); puts[0] += 1\n"
    "        if puts[0] <= N: return self.err(409, 'ConditionalRequestConflict')\n"
    "        if self.headers.get('If-None-Match') == '*' and self.path in objs:\n"
    "            return self.err(412, 'PreconditionFailed')\n"
    "        objs[self.path] = body; self.send(200, etag=True)\n"
    "    def do_GET(self):\n"
    "        if self.path == '/__stub/puts': return self.send(200, str(puts[0]).encode())\n"
    "        if self.path not in objs: return self.err(404, 'NoSuchKey')\n"
    "        self.send(200, objs[self.path], etag=True)\n"
    "    do_HEAD = do_GET\n"
    "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
    "print(s.server_address[1], flush=True); s.serve_forever()\n";

/* Starts the stub (it dies with the test); its port. */
static int start_conflict_stub(int conflicts, pid_t *pid)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    char n[16];
    snprintf(n, sizeof(n), "%d", conflicts);
    *pid = fork();
    if (*pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fds[1], 1);
        close(fds[0]);
        execlp("python3", "python3", "-c", conflict_stub, n, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = "";
    FILE *f = fdopen(fds[0], "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    fclose(f);
    return atoi(line);
}

static int stub_puts(int port)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/__stub/puts", port);
    struct ck_http_request req;
    struct ck_http_response resp;
    struct ck_err err;
    struct ck_buf b;
    ck_buf_init(&b, 64);
    struct ck_sink sink = {tu_buf_sink_write, &b};
    ck_http_request_init(&req);
    req.url = req.display_url = url;
    req.sink = &sink;
    ck_assert_msg(ck_http_perform(&req, &resp, &err) == CK_OK, "%s", err.msg);
    int n = atoi(b.data);
    ck_buf_free(&b);
    return n;
}

static struct ck_store *open_stub(struct ck_store_env *env, int port, const char *key)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    setenv("AWS_ENDPOINT_URL", url, 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    tu_store_env(env);
    env->no_sign_request = true;
    return open_key(env, key);
}

START_TEST(test_create_only_conflict_is_sent_again)
{
    /* Two 409 ConditionalRequestConflict, then the PUT goes through. */
    pid_t pid;
    int port = start_conflict_stub(2, &pid);
    struct ck_store_env env;
    struct ck_store *s = open_stub(&env, port, "co/conflict");
    struct ck_err err;
    ck_assert_msg(put_if_absent(s, "winner", 6, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(stub_puts(port), 3);
    struct ck_buf b;
    ck_assert_msg(tu_get(s, 0, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(b.len, 6);
    ck_assert(memcmp(b.data, "winner", 6) == 0);
    ck_buf_free(&b);
    ck_assert_int_eq(put_if_absent(s, "loser", 5, &err), CK_EEXIST);
    ck_store_close(s);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    /* Conflicts past the retry budget (4 attempts): the 409 is the failure. */
    port = start_conflict_stub(100, &pid);
    s = open_stub(&env, port, "co/conflict");
    ck_assert_int_eq(put_if_absent(s, "x", 1, &err), CK_EREMOTE);
    ck_assert_msg(strstr(err.msg, "HTTP 409 ConditionalRequestConflict"), "%s", err.msg);
    ck_assert_int_eq(stub_puts(port), 4);
    ck_store_close(s);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}
END_TEST

/* ---- servers ------------------------------------------------------------------------ */

static bool start_servers(void)
{
    tu_tools(T.tools, sizeof(T.tools));
    snprintf(T.dir, sizeof(T.dir), "/tmp/ck-store-s3-XXXXXX");
    if (!mkdtemp(T.dir))
        return false;
    char dir[300], logp[300], keys[300];
    snprintf(dir, sizeof(dir), "%s/moto", T.dir);
    if (!tu_tool_start(&T.moto, "moto-s3", dir, "--auth"))
        return false;
    T.moto_port = T.moto.port;
    snprintf(T.akid, sizeof(T.akid), "%s", T.moto.akid);
    snprintf(T.secret, sizeof(T.secret), "%s", T.moto.secret);
    if (s3util(NULL, 0, "mkbucket " BUCKET) != 0 || s3util(keys, sizeof(keys), "mkuser nobody") ||
        sscanf(keys, "%127s %127s", T.denied_akid, T.denied_secret) != 2) {
        fprintf(stderr, "test_store_s3: setting up the bucket and users with boto3 failed\n");
        return false;
    }
    snprintf(logp, sizeof(logp), "%s/proxy.log", T.dir);
    T.proxy_port = tu_faultproxy(T.moto_port, logp, &T.proxy_pid);
    if (T.proxy_port <= 0)
        fprintf(stderr, "test_store_s3: faultproxy failed\n");
    return T.proxy_port > 0;
}

static void stop_servers(bool keep)
{
    tu_stop_pid(T.proxy_pid);
    tu_tool_stop(&T.moto);
    if (!T.dir[0])
        return;
    if (keep)
        fprintf(stderr, "test_store_s3: failures; logs kept in %s\n", T.dir);
    else
        tu_rmdir(T.dir);
}

static Suite *store_s3_suite(void)
{
    Suite *s = suite_create("store_s3");
    TCase *pure = tcase_create("pure");
    tcase_add_test(pure, test_url_building);
    tcase_add_test(pure, test_settings_from_env);
    tcase_add_test(pure, test_part_sizes);
    tcase_add_test(pure, test_xml_replies);
    tcase_add_test(pure, test_xml_error_needs_code_and_shows_one_line);
    tcase_add_test(pure, test_uri_forms);
    suite_add_tcase(s, pure);
    TCase *tc = tcase_create("moto");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_put_get_small);
    tcase_add_test(tc, test_missing_key);
    tcase_add_test(tc, test_wrong_secret_is_refused);
    tcase_add_test(tc, test_access_denied_names_code_and_message);
    tcase_add_test(tc, test_multipart_round_trip);
    tcase_add_test(tc, test_multipart_survives_transient_faults);
    tcase_add_test(tc, test_failed_multipart_keeps_old_object);
    tcase_add_test(tc, test_copied_part_survives_transient_faults);
    tcase_add_test(tc, test_copied_part_refused_source_keeps_old_object);
    tcase_add_test(tc, test_short_written_part_joins_the_one_before);
    tcase_add_test(tc, test_complete_applied_reply_lost);
    tcase_add_test(tc, test_complete_500_after_success);
    tcase_add_test(tc, test_complete_slow_is_not_cut);
    tcase_add_test(tc, test_complete_failed_is_a_failure);
    tcase_add_test(tc, test_single_put_applied_reply_lost);
    tcase_add_test(tc, test_put_abort_leaves_nothing);
    tcase_add_test(tc, test_permanent_403_fails_clearly);
    tcase_add_test(tc, test_anonymous_requests_are_unsigned);
    tcase_add_test(tc, test_create_only_on_missing_key);
    tcase_add_test(tc, test_create_only_on_existing_key);
    tcase_add_test(tc, test_create_only_reply_lost_is_ours);
    tcase_add_test(tc, test_create_only_412_after_retry_is_not_success);
    tcase_add_test(tc, test_create_only_too_large_is_unsupported);
    tcase_add_test(tc, test_create_only_conflict_is_sent_again);
    tcase_add_test(tc, test_conditional_replace);
    tcase_add_test(tc, test_conditional_replace_reply_lost_is_ours);
    tcase_add_test(tc, test_conditional_multipart_if_none_match);
    tcase_add_test(tc, test_delete_object_and_open_uploads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_store_main(store_s3_suite, start_servers, stop_servers);
}
