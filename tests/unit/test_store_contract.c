/*
 * test_store_contract.c - one store conformance suite (store.h "Semantics every backend
 * keeps") run against every backend on a real server: `unit_store_contract BACKEND`, with
 * BACKEND one of file, http (nginx WebDAV), s3 (moto with signatures checked), rgw (Ceph's
 * radosgw), gcs (tests/tools/fake_gcs.py), azure (Azurite). CTest runs each as its own
 * test (unit_store_contract_<backend>).
 *
 * What a backend cannot do is part of the contract too: http answers CK_EUNSUPPORTED for
 * create-only puts, conditional replaces and deletes. radosgw refuses If-Match on a PUT
 * even when the ETag is current (tests/tools/README.md); the S3 backend sees that the
 * object holds the expected version and puts without the condition (docs/s3.md), so the
 * contract's outcomes hold there too, without the fencing of two racing writers. The
 * backends' own paths (fault plans, signatures, part and block engines) stay in
 * test_store_<backend>.c.
 *
 * main() starts the server before the suite and stops it after, in the parent; the
 * forked tests read B, set once before the suite runs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_testutil.h"

#define BUCKET "ckc"
#define MiB    (1024 * 1024)

struct backend {
    const char *name;
    bool create_only; /* ck_put_opts .if_absent */
    bool conditional; /* ck_put_opts .if_match */
    bool del;         /* ck_store_delete */
    bool put_copy;    /* copies ranges of at least 5 MiB without reading them here */
};

static const struct backend BACKENDS[] = {
    {"file", true, true, true, true}, {"http", false, false, false, false},
    {"s3", true, true, true, true},   {"rgw", true, true, true, true},
    {"gcs", true, true, true, false}, {"azure", true, true, true, false},
};

/* Set once by main() before the suite forks its tests; read-only afterwards. */
static struct {
    const struct backend *b;
    char dir[256];  /* scratch: file:// objects, the servers' state */
    char base[512]; /* URI prefix of the objects: file:///dir/obj/, s3://ckc/, ... */
    struct tu_server server;
    pid_t pid; /* fake_gcs.py */
} B;

/* ---- helpers ------------------------------------------------------------------------ */

static struct ck_store *open_obj(struct ck_store_env *env, const char *name)
{
    char uri[700];
    snprintf(uri, sizeof(uri), "%s%s/%s", B.base, B.b->name, name);
    tu_store_env(env);
    struct ck_store *s;
    struct ck_err err;
    ck_assert_msg(ck_store_open(uri, env, &s, &err) == CK_OK, "%s", err.msg);
    return s;
}

static void put_ok(struct ck_store *s, const struct ck_put_opts *o, const char *data, size_t n)
{
    struct ck_err err;
    ck_assert_msg(tu_put(s, o, data, n, &err) == CK_OK, "%s: %s", ck_store_uri(s), err.msg);
}

/* The whole object equals data[0..n). */
static void expect_bytes(struct ck_store *s, const char *data, size_t n)
{
    struct ck_buf got;
    struct ck_err err;
    ck_assert_msg(tu_get(s, 0, CK_STORE_TO_END, &got, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(got.len, n);
    ck_assert(n == 0 || memcmp(got.data, data, n) == 0);
    ck_buf_free(&got);
}

static void head_ok(struct ck_store *s, struct ck_store_info *info)
{
    struct ck_err err;
    ck_assert_msg(ck_store_head(s, info, &err) == CK_OK, "%s", err.msg);
}

/* The clouds' objects carry the mark of the upload that made them (settle.h), a new one
 * per upload; the other stores have none. */
static void expect_mark(const struct ck_store_info *info, const char *other)
{
    bool cloud = strcmp(B.b->name, "file") != 0 && strcmp(B.b->name, "http") != 0;
    if (!cloud) {
        ck_assert_str_eq(info->mark, "");
        return;
    }
    ck_assert_uint_eq(strlen(info->mark), CK_UPLOAD_MARK_LEN);
    ck_assert_uint_eq(strspn(info->mark, "0123456789abcdef"), CK_UPLOAD_MARK_LEN);
    if (other)
        ck_assert_str_ne(info->mark, other);
}

/* ---- the contract ------------------------------------------------------------------- */

START_TEST(test_put_head_get_and_ranges)
{
    struct ck_store_env env;
    struct ck_store *s = open_obj(&env, "small");
    put_ok(s, NULL, "hello, world", 12);
    struct ck_store_info info;
    head_ok(s, &info);
    ck_assert(info.exists);
    ck_assert_uint_eq(info.size, 12);
    ck_assert(!B.b->conditional || info.version[0]); /* what .if_match takes */
    expect_mark(&info, NULL);
    expect_bytes(s, "hello, world", 12);
    struct ck_buf got;
    struct ck_err err;
    ck_assert_msg(tu_get(s, 7, 5, &got, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(got.len, 5);
    ck_assert(memcmp(got.data, "world", 5) == 0);
    ck_buf_free(&got);
    ck_assert_msg(tu_get(s, 3, CK_STORE_TO_END, &got, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(got.len, 9);
    ck_buf_free(&got);
    ck_store_close(s);
}
END_TEST

START_TEST(test_empty_object)
{
    struct ck_store_env env;
    struct ck_store *s = open_obj(&env, "empty");
    put_ok(s, NULL, "", 0);
    struct ck_store_info info;
    head_ok(s, &info);
    ck_assert(info.exists);
    ck_assert_uint_eq(info.size, 0);
    expect_bytes(s, "", 0);
    ck_store_close(s);
}
END_TEST

/* Large enough for every cloud's part or block path (S3 8 MiB parts, GCS and Azure set
 * small by main()); a range across a part boundary reads exactly those bytes. */
START_TEST(test_large_object_and_a_range_across_parts)
{
    const size_t n = 12 * MiB;
    char *data = tu_pattern(n, 42);
    struct ck_store_env env;
    struct ck_store *s = open_obj(&env, "large");
    struct ck_store_info info, before;
    put_ok(s, NULL, "x", 1);
    head_ok(s, &before);
    put_ok(s, NULL, data, n);
    head_ok(s, &info);
    ck_assert_uint_eq(info.size, n);
    expect_mark(&info, before.mark); /* a multipart upload's, a new one */
    expect_bytes(s, data, n);
    struct ck_buf got;
    struct ck_err err;
    uint64_t off = 8 * MiB - 1000;
    ck_assert_msg(tu_get(s, off, 3000, &got, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(got.len, 3000);
    ck_assert(memcmp(got.data, data + off, 3000) == 0);
    ck_buf_free(&got);
    ck_store_close(s);
    free(data);
}
END_TEST

START_TEST(test_missing_object)
{
    struct ck_store_env env;
    struct ck_store *s = open_obj(&env, "never/written");
    struct ck_store_info info;
    head_ok(s, &info); /* no object is not an error */
    ck_assert(!info.exists);
    struct ck_buf got;
    struct ck_err err;
    ck_assert_int_eq(tu_get(s, 0, CK_STORE_TO_END, &got, &err), CK_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "never/written")); /* names where */
    ck_buf_free(&got);
    ck_store_close(s);
}
END_TEST

START_TEST(test_overwrite_and_abort_keep_whole_objects)
{
    struct ck_store_env env;
    struct ck_store *s = open_obj(&env, "over");
    struct ck_err err;
    put_ok(s, NULL, "first", 5);
    put_ok(s, NULL, "second", 6);
    expect_bytes(s, "second", 6);
    struct ck_store_upload *u;
    char *big = tu_pattern(9 * MiB, 7); /* past the first part: parts may be in flight */
    struct ck_put_opts o = {.replayable = true, .size = CK_STORE_SIZE_UNKNOWN};
    ck_assert_msg(ck_store_put_begin(s, &o, &u, &err) == CK_OK, "%s", err.msg);
    ck_assert_msg(ck_store_put_write(u, big, 9 * MiB, &err) == CK_OK, "%s", err.msg);
    ck_store_put_abort(u);
    expect_bytes(s, "second", 6); /* nothing partial, the old object as it was */
    free(big);
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only)
{
    struct ck_store_env env;
    struct ck_store *s = open_obj(&env, "claim");
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN, .if_absent = true};
    struct ck_err err;
    ck_rc rc = tu_put(s, &o, "mine", 4, &err);
    if (!B.b->create_only) {
        ck_assert_int_eq(rc, CK_EUNSUPPORTED);
        ck_store_close(s);
        return;
    }
    ck_assert_msg(rc == CK_OK, "%s", err.msg);
    ck_assert_int_eq(tu_put(s, &o, "theirs", 6, &err), CK_EEXIST);
    ck_assert_ptr_nonnull(strstr(err.msg, "claim"));
    expect_bytes(s, "mine", 4);
    put_ok(s, NULL, "plain", 5); /* a plain put still overwrites */
    expect_bytes(s, "plain", 5);
    ck_store_close(s);
}
END_TEST

START_TEST(test_conditional_replace)
{
    struct ck_store_env env;
    struct ck_store *s = open_obj(&env, "cond");
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN, .if_match = ""};
    struct ck_err err;
    ck_rc rc = tu_put(s, &o, "v1", 2, &err); /* "": only if nothing is there */
    if (!B.b->conditional) {
        ck_assert_int_eq(rc, CK_EUNSUPPORTED);
        ck_store_close(s);
        return;
    }
    ck_assert_msg(rc == CK_OK, "%s", err.msg);
    ck_assert_int_eq(tu_put(s, &o, "v1 again", 8, &err), CK_EEXIST);
    struct ck_store_info v1, v2;
    head_ok(s, &v1);
    o.if_match = v1.version;
    rc = tu_put(s, &o, "v2", 2, &err);
    ck_assert_msg(rc == CK_OK, "%s", err.msg);
    ck_assert_int_eq(tu_put(s, &o, "v3 from a stale read", 20, &err), CK_EEXIST);
    expect_bytes(s, "v2", 2);
    head_ok(s, &v2);
    ck_assert_str_ne(v1.version, v2.version);
    ck_store_close(s);
}
END_TEST

START_TEST(test_delete)
{
    struct ck_store_env env;
    struct ck_store *s = open_obj(&env, "del/me");
    struct ck_err err;
    put_ok(s, NULL, "bye", 3);
    ck_rc rc = ck_store_delete(s, &err);
    if (!B.b->del) {
        ck_assert_int_eq(rc, CK_EUNSUPPORTED);
        ck_store_close(s);
        return;
    }
    ck_assert_msg(rc == CK_OK, "%s", err.msg);
    struct ck_store_info info;
    head_ok(s, &info);
    ck_assert(!info.exists);
    ck_assert_msg(ck_store_delete(s, &err) == CK_OK, "%s", err.msg); /* nothing there: fine */
    ck_store_close(s);
}
END_TEST

/* A server-side copy where the backend has one (carry-forward), byte for byte. */
START_TEST(test_copy_from)
{
    struct ck_store_env env;
    struct ck_store *src = open_obj(&env, "copy/src");
    struct ck_store *dst = open_obj(&env, "copy/dst");
    char *data = tu_pattern(3 * MiB, 5);
    put_ok(src, NULL, data, 3 * MiB);
    struct ck_err err;
    if (src->ops->copy_from) {
        ck_assert_msg(src->ops->copy_from(dst, src, 3 * MiB, &err) == CK_OK, "%s", err.msg);
        expect_bytes(dst, data, 3 * MiB);
    }
    free(data);
    ck_store_close(src);
    ck_store_close(dst);
}
END_TEST

/* A range of an existing object as the next bytes of an upload (store.h "Copied ranges"):
 * on the file system where it can (file://), else read and written; a source that changed
 * since its head() fails the copy and the destination keeps its old object. */
START_TEST(test_put_copy_ranges)
{
    const size_t n = 3 * MiB;
    char *data = tu_pattern(n, 9);
    struct ck_store_env env;
    struct ck_store *src = open_obj(&env, "pcopy/src");
    struct ck_store *dst = open_obj(&env, "pcopy/dst");
    put_ok(src, NULL, data, n);
    put_ok(dst, NULL, "old", 3);
    struct ck_store_info info;
    head_ok(src, &info);
    struct ck_put_opts o = {.replayable = true, .size = CK_STORE_SIZE_UNKNOWN};
    struct ck_store_upload *u;
    struct ck_err err;
    bool server_side;
    ck_assert_msg(ck_store_put_begin(dst, &o, &u, &err) == CK_OK, "%s", err.msg);
    ck_assert_msg(ck_store_put_write(u, "head:", 5, &err) == CK_OK, "%s", err.msg);
    struct ck_copy_src r = {src, info.version[0] ? info.version : info.etag, 1000, 2 * MiB};
    ck_assert(r.version[0]); /* every backend here can tell a changed source */
    ck_assert_msg(ck_store_put_copy(u, &r, &server_side, &err) == CK_OK, "%s", err.msg);
    ck_assert(server_side == (strcmp(B.b->name, "file") == 0)); /* too short for parts */
    ck_assert_msg(ck_store_put_write(u, ":tail", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(u->bytes, 10 + 2 * MiB);
    ck_assert_msg(ck_store_put_commit(u, &err) == CK_OK, "%s", err.msg);
    char *want = malloc(10 + 2 * MiB);
    ck_assert_ptr_nonnull(want);
    memcpy(want, "head:", 5);
    memcpy(want + 5, data + 1000, 2 * MiB);
    memcpy(want + 5 + 2 * MiB, ":tail", 5);
    expect_bytes(dst, want, 10 + 2 * MiB);
    /* the source replaced since its head(): the copy fails, the destination stays */
    put_ok(src, NULL, "replaced", 8);
    ck_assert_msg(ck_store_put_begin(dst, &o, &u, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(ck_store_put_copy(u, &r, &server_side, &err), CK_EEXIST);
    ck_assert_msg(strstr(err.msg, "changed") || strstr(err.msg, "gone"), "%s", err.msg);
    ck_store_put_abort(u);
    expect_bytes(dst, want, 10 + 2 * MiB);
    free(want);
    free(data);
    ck_store_close(src);
    ck_store_close(dst);
}
END_TEST

static void put_copy_ok(struct ck_store_upload *u, struct ck_store *src, const char *version,
                        uint64_t off, uint64_t len, bool server_side)
{
    struct ck_copy_src r = {src, version, off, len};
    struct ck_err err;
    bool on_server;
    ck_assert_msg(ck_store_put_copy(u, &r, &on_server, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(on_server, server_side);
}

/* Copied ranges long enough for parts: copied by the service where it can (S3's
 * UploadPartCopy, file://'s copy_file_range), a written part below the service's smallest
 * topped up from the range's head, a range too short after that read and written. */
START_TEST(test_put_copy_parts)
{
    const size_t n = 12 * MiB;
    char *data = tu_pattern(n, 11);
    struct ck_store_env env;
    struct ck_store *src = open_obj(&env, "pparts/src");
    struct ck_store *dst = open_obj(&env, "pparts/dst");
    put_ok(src, NULL, data, n);
    struct ck_store_info info;
    head_ok(src, &info);
    const char *v = info.version[0] ? info.version : info.etag;
    struct ck_put_opts o = {.replayable = true, .size = CK_STORE_SIZE_UNKNOWN};
    struct ck_store_upload *u;
    struct ck_err err;
    ck_assert_msg(ck_store_put_begin(dst, &o, &u, &err) == CK_OK, "%s", err.msg);
    put_copy_ok(u, src, v, 0, 6 * MiB, B.b->put_copy); /* the first part */
    ck_assert_msg(ck_store_put_write(u, "mid:", 4, &err) == CK_OK, "%s", err.msg);
    put_copy_ok(u, src, v, 100, 11 * MiB, B.b->put_copy); /* topped up */
    put_copy_ok(u, src, v, 7, 5 * MiB, B.b->put_copy);    /* the smallest part */
    ck_assert_msg(ck_store_put_write(u, "x:", 2, &err) == CK_OK, "%s", err.msg);
    put_copy_ok(u, src, v, 9, 5 * MiB, strcmp(B.b->name, "file") == 0); /* too short */
    ck_assert_msg(ck_store_put_write(u, ":tail", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_msg(ck_store_put_commit(u, &err) == CK_OK, "%s", err.msg);
    size_t total = 6 * MiB + 4 + 11 * MiB + 5 * MiB + 2 + 5 * MiB + 5;
    char *want = malloc(total), *p = want;
    ck_assert_ptr_nonnull(want);
    memcpy(p, data, 6 * MiB), p += 6 * MiB;
    memcpy(p, "mid:", 4), p += 4;
    memcpy(p, data + 100, 11 * MiB), p += 11 * MiB;
    memcpy(p, data + 7, 5 * MiB), p += 5 * MiB;
    memcpy(p, "x:", 2), p += 2;
    memcpy(p, data + 9, 5 * MiB), p += 5 * MiB;
    memcpy(p, ":tail", 5);
    expect_bytes(dst, want, total);
    /* the source replaced after the copy, before the commit: a copy the service makes on
     * its own time fails the commit (the old object stays); bytes already here are right */
    ck_assert_msg(ck_store_put_begin(dst, &o, &u, &err) == CK_OK, "%s", err.msg);
    put_copy_ok(u, src, v, 0, 6 * MiB, B.b->put_copy);
    put_ok(src, NULL, "replaced", 8);
    bool deferred = B.b->put_copy && strcmp(B.b->name, "file") != 0;
    ck_rc rc = ck_store_put_commit(u, &err);
    if (deferred) {
        ck_assert_int_eq(rc, CK_EEXIST);
        ck_assert_msg(strstr(err.msg, "changed"), "%s", err.msg);
        expect_bytes(dst, want, total);
    } else {
        ck_assert_msg(rc == CK_OK, "%s", err.msg);
        expect_bytes(dst, data, 6 * MiB);
    }
    free(want);
    free(data);
    ck_store_close(src);
    ck_store_close(dst);
}
END_TEST

/* ---- servers ------------------------------------------------------------------------ */

static bool s3_setup(const char *tool, const char *extra)
{
    char dir[300], tools[512];
    snprintf(dir, sizeof(dir), "%s/%s", B.dir, tool);
    if (!tu_tool_start(&B.server, tool, dir, extra))
        return false;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", B.server.port);
    setenv("AWS_ENDPOINT_URL", url, 1);
    setenv("AWS_ACCESS_KEY_ID", B.server.akid, 1);
    setenv("AWS_SECRET_ACCESS_KEY", B.server.secret, 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    snprintf(B.base, sizeof(B.base), "s3://" BUCKET "/");
    tu_tools(tools, sizeof(tools));
    return tu_sh("python3 '%s/s3util.py' mkbucket " BUCKET, tools) == 0;
}

static bool gcs_setup(void)
{
    char tools[512], fake[600], host[64];
    tu_tools(tools, sizeof(tools));
    snprintf(fake, sizeof(fake), "%s/fake_gcs.py", tools);
    char *argv[] = {"python3", fake, "--public", BUCKET, NULL};
    int port = tu_spawn_port(argv, &B.pid);
    snprintf(host, sizeof(host), "127.0.0.1:%d", port);
    setenv("STORAGE_EMULATOR_HOST", host, 1); /* this endpoint, anonymous */
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    setenv("CKPTFS_GCS_PART_SIZE", "5M", 1);
    snprintf(B.base, sizeof(B.base), "gs://" BUCKET "/");
    return port > 0;
}

static bool azure_setup(void)
{
    static const char account[] = "devstoreaccount1"; /* Azurite's well-known account */
    static const char key[] = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1"
                              "SZFPTOtr/KBHBeksoGMGw==";
    char dir[300], tools[512], cs[600];
    snprintf(dir, sizeof(dir), "%s/azurite", B.dir);
    if (!tu_tool_start(&B.server, "azurite", dir, NULL))
        return false;
    snprintf(cs, sizeof(cs),
             "DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
             "BlobEndpoint=http://127.0.0.1:%d/%s;",
             account, key, B.server.port, account);
    setenv("AZURE_STORAGE_CONNECTION_STRING", cs, 1);
    setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9", 1); /* never a real IMDS */
    setenv("CKPTFS_AZURE_BLOCK_SIZE", "1M", 1);
    snprintf(B.base, sizeof(B.base), "az://" BUCKET "/");
    tu_tools(tools, sizeof(tools));
    return tu_sh("python3 -c \"import sys; sys.path.insert(0, '%s'); import azblob; "
                 "azblob.create_container(%d, '" BUCKET "')\"",
                 tools, B.server.port) == 0;
}

static bool start(void)
{
    const char *n = B.b->name;
    snprintf(B.dir, sizeof(B.dir), "/tmp/ck-contract-%s-XXXXXX", n);
    if (!mkdtemp(B.dir))
        return false;
    if (strcmp(n, "file") == 0) {
        snprintf(B.base, sizeof(B.base), "file://%s/obj/", B.dir);
        return true;
    }
    if (strcmp(n, "http") == 0) {
        char dir[300];
        snprintf(dir, sizeof(dir), "%s/nginx", B.dir);
        bool ok = tu_tool_start(&B.server, "nginx-dav", dir, NULL);
        snprintf(B.base, sizeof(B.base), "http://127.0.0.1:%d/", B.server.port);
        return ok;
    }
    if (strcmp(n, "s3") == 0)
        return s3_setup("moto-s3", "--auth");
    if (strcmp(n, "rgw") == 0)
        return s3_setup("rgw-s3", NULL);
    return strcmp(n, "gcs") == 0 ? gcs_setup() : azure_setup();
}

static void stop(bool failed)
{
    tu_stop_pid(B.pid);
    tu_tool_stop(&B.server);
    if (failed)
        fprintf(stderr, "store contract %s: failures; the servers' state is kept in %s\n",
                B.b->name, B.dir);
    else if (B.dir[0])
        tu_rmdir(B.dir);
}

static Suite *contract_suite(void)
{
    Suite *s = suite_create(B.b->name);
    TCase *tc = tcase_create("contract");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_put_head_get_and_ranges);
    tcase_add_test(tc, test_empty_object);
    tcase_add_test(tc, test_large_object_and_a_range_across_parts);
    tcase_add_test(tc, test_missing_object);
    tcase_add_test(tc, test_overwrite_and_abort_keep_whole_objects);
    tcase_add_test(tc, test_create_only);
    tcase_add_test(tc, test_conditional_replace);
    tcase_add_test(tc, test_delete);
    tcase_add_test(tc, test_copy_from);
    tcase_add_test(tc, test_put_copy_ranges);
    tcase_add_test(tc, test_put_copy_parts);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    const char *want = argc > 1 ? argv[1] : "";
    for (size_t i = 0; i < sizeof(BACKENDS) / sizeof(BACKENDS[0]); i++)
        if (strcmp(BACKENDS[i].name, want) == 0)
            B.b = &BACKENDS[i];
    if (!B.b) {
        fprintf(stderr, "usage: unit_store_contract file|http|s3|rgw|gcs|azure\n");
        return 2;
    }
    return tu_store_main(contract_suite, start, stop);
}
