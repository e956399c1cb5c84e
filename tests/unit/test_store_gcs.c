/*
 * test_store_gcs.c - the gs:// backend's create-only puts (store.h): one XML API PUT with
 * x-goog-if-generation-match: 0, conditional replaces, and ambiguous commits settled by
 * the upload's mark (store/settle.h), against tests/tools/fake_gcs.py (anonymous, a --public
 * bucket reached through STORAGE_EMULATOR_HOST) with tests/tools/faultproxy.py in front
 * of it for lost replies. The rest of the backend runs in tests/integration/test_gcs.py.
 *
 * main() starts the fake and the proxy before the suite and stops them after it, in the
 * parent; both die with it (PR_SET_PDEATHSIG). Objects are checked from outside through
 * the fake's GET /__fake/object/BUCKET/KEY.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store_testutil.h"

#define BUCKET "ckb"
#define MiB    (1024 * 1024)

/* Set once by main() before the suite forks its tests; read-only afterwards. */
static struct {
    int gcs_port, proxy_port;
    pid_t gcs_pid, proxy_pid;
} T;

/* ---- helpers ------------------------------------------------------------------------ */

/* A store of gs://ckb/key through the proxy, with plan set. */
static struct ck_store *open_key(struct ck_store_env *env, const char *key, const char *plan)
{
    char host[64], uri[256];
    snprintf(host, sizeof(host), "127.0.0.1:%d", T.proxy_port);
    setenv("STORAGE_EMULATOR_HOST", host, 1); /* this endpoint, anonymous */
    unsetenv("CKPTFS_GCS_ENDPOINT");
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    setenv("CKPTFS_GCS_PART_SIZE", "5M", 1);
    tu_fault_plan(T.proxy_port, plan);
    tu_store_env(env);
    snprintf(uri, sizeof(uri), "gs://" BUCKET "/%s", key);
    struct ck_store *s;
    struct ck_err err;
    ck_assert_msg(ck_store_open(uri, env, &s, &err) == CK_OK, "%s", err.msg);
    ck_assert_str_eq(s->ops->name, "gcs");
    return s;
}

static ck_rc put_opts(struct ck_store *s, bool if_absent, const void *data, size_t len,
                      struct ck_err *err)
{
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN, .if_absent = if_absent};
    return tu_put(s, &o, data, len, err);
}

/* The object as the fake holds it (checked from outside the store). */
static void expect_object(const char *key, const char *want)
{
    char path[256];
    snprintf(path, sizeof(path), "/__fake/object/" BUCKET "/%s", key);
    struct ck_buf b;
    ck_assert_int_eq(tu_http_call(CK_HTTP_GET, T.gcs_port, path, NULL, NULL, &b), 200);
    ck_assert_msg(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0,
                  "%s: the fake holds %zu bytes, expected '%s'", key, b.len, want);
    ck_buf_free(&b);
}

static void expect_no_object(const char *key)
{
    char path[256];
    snprintf(path, sizeof(path), "/__fake/object/" BUCKET "/%s", key);
    ck_assert_int_eq(tu_http_call(CK_HTTP_GET, T.gcs_port, path, NULL, NULL, NULL), 404);
}

/* ---- create-only puts --------------------------------------------------------------- */

START_TEST(test_create_only_on_missing_key)
{
    struct ck_store_env env;
    struct ck_store *s = open_key(&env, "co/missing", "");
    struct ck_err err;
    ck_assert_msg(put_opts(s, true, "rank 0", 6, &err) == CK_OK, "%s", err.msg);
    expect_object("co/missing", "rank 0");
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""), 1);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"GET\""),
                     0); /* no sweep of multipart uploads */
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_on_existing_key)
{
    struct ck_store_env env;
    struct ck_store *s = open_key(&env, "co/exists", "");
    struct ck_err err;
    ck_assert_msg(put_opts(s, false, "old object", 10, &err) == CK_OK, "%s", err.msg);
    tu_fault_plan(T.proxy_port, "");
    ck_assert_int_eq(put_opts(s, true, "rank 1", 6, &err), CK_EEXIST);
    ck_assert_str_eq(err.msg, "PUT gs://ckb/co/exists: an object is already there "
                              "(x-goog-if-generation-match: 0)");
    expect_object("co/exists", "old object");
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""),
                     1); /* a first-attempt 412 is final */
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"GET\""), 0);
    ck_store_close(s);
    s = open_key(&env, "co/exists2", "");
    ck_assert_msg(put_opts(s, true, "first", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(put_opts(s, true, "second", 6, &err), CK_EEXIST);
    expect_object("co/exists2", "first");
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_reply_lost)
{
    /* Applied, reply lost; the retry's 412 meets our own object: ours. */
    struct ck_store_env env;
    struct ck_store *s = open_key(&env, "co/lost", "lost");
    struct ck_err err;
    ck_assert_msg(put_opts(s, true, "rank 2", 6, &err) == CK_OK, "%s", err.msg);
    expect_object("co/lost", "rank 2");
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""), 2);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"GET\""), 1);
    ck_store_close(s);
    /* Another object there, our 412's reply lost, the retry's 412: CK_EEXIST. */
    s = open_key(&env, "co/theirs", "");
    ck_assert_msg(put_opts(s, false, "their claim", 11, &err) == CK_OK, "%s", err.msg);
    tu_fault_plan(T.proxy_port, "lost");
    ck_assert_int_eq(put_opts(s, true, "our claim", 9, &err), CK_EEXIST);
    expect_object("co/theirs", "their claim");
    ck_store_close(s);
    /* Refused every time without reaching the fake: the failure stands, no object. */
    s = open_key(&env, "co/never", "status=503*4");
    ck_assert_int_eq(put_opts(s, true, "x", 1, &err), CK_ENET);
    expect_no_object("co/never");
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_too_large_is_unsupported)
{
    struct ck_store_env env;
    struct ck_store *s = open_key(&env, "co/large", "");
    struct ck_err err;
    char *data = calloc(1, 6 * MiB);
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(put_opts(s, true, data, 6 * MiB, &err), CK_EUNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "PUT gs://ckb/co/large: a create-only put of 6291456 bytes"),
                  "%s", err.msg);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"path\""), 0); /* nothing was sent */
    expect_no_object("co/large");
    ck_store_close(s);
    free(data);
}
END_TEST

START_TEST(test_fake_takes_the_header_not_the_json_parameter)
{
    /* The XML API's form is the header; the JSON API's query parameter is refused by the
     * fake (a tripwire: a client sending it would be overwriting on real GCS). */
    ck_assert_int_eq(tu_http_call(CK_HTTP_PUT, T.gcs_port,
                                  "/" BUCKET "/co/json?ifGenerationMatch=0", "x", NULL, NULL),
                     400);
    ck_assert_int_eq(tu_http_call(CK_HTTP_PUT, T.gcs_port, "/" BUCKET "/co/hdr", "a",
                                  "x-goog-if-generation-match: 0", NULL),
                     200);
    ck_assert_int_eq(tu_http_call(CK_HTTP_PUT, T.gcs_port, "/" BUCKET "/co/hdr", "b",
                                  "x-goog-if-generation-match: 0", NULL),
                     412);
    expect_object("co/hdr", "a");
}
END_TEST

/* ---- conditional replaces: x-goog-if-generation-match on the PUT and the complete ---- */

static ck_rc put_if_match(struct ck_store *s, const char *version, const void *data, size_t len,
                          struct ck_err *err)
{
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN, .if_match = version};
    return tu_put(s, &o, data, len, err);
}

/* The object's generation, as HEAD gives it (a number, not the ETag). */
static void generation(struct ck_store *s, char out[128])
{
    struct ck_store_info info;
    struct ck_err err;
    ck_assert_msg(ck_store_head(s, &info, &err) == CK_OK, "%s", err.msg);
    ck_assert(info.exists);
    ck_assert_msg(info.version[0] && strspn(info.version, "0123456789") == strlen(info.version),
                  "version '%s'", info.version);
    memcpy(out, info.version, 128);
}

START_TEST(test_conditional_replace)
{
    struct ck_store_env env;
    struct ck_store *s = open_key(&env, "cm/dest", "");
    struct ck_err err;
    ck_assert_msg(put_if_match(s, "", "gen 1", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(put_if_match(s, "", "gen x", 5, &err), CK_EEXIST);
    expect_object("cm/dest", "gen 1");
    char g1[128], g2[128];
    generation(s, g1);
    ck_assert_msg(put_if_match(s, g1, "gen 2", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(put_if_match(s, g1, "gen 1 again", 11, &err), CK_EEXIST);
    ck_assert_msg(strstr(err.msg, "PUT gs://ckb/cm/dest: the object changed since it was read "
                                  "(x-goog-if-generation-match: "),
                  "%s", err.msg);
    expect_object("cm/dest", "gen 2");
    /* The multipart complete (6 MiB in 5 MiB parts) carries it too. */
    generation(s, g2);
    char *data = calloc(1, 6 * MiB);
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(put_if_match(s, g1, data, 6 * MiB, &err), CK_EEXIST);
    expect_object("cm/dest", "gen 2");
    ck_assert_msg(put_if_match(s, g2, data, 6 * MiB, &err) == CK_OK, "%s", err.msg);
    ck_store_close(s);
    /* Applied, reply lost, the retry refused: the HEAD finds our object (its MD5). */
    s = open_key(&env, "cm/lost", "");
    ck_assert_msg(put_if_match(s, "", "gen 1", 5, &err) == CK_OK, "%s", err.msg);
    generation(s, g1);
    tu_fault_plan(T.proxy_port, "lost");
    ck_assert_msg(put_if_match(s, g1, "gen 2", 5, &err) == CK_OK, "%s", err.msg);
    expect_object("cm/lost", "gen 2");
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""), 2);
    ck_store_close(s);
    free(data);
}
END_TEST

/* ---- ambiguous commits: the destination decides ------------------------------------ */

/* Open multipart uploads, as the fake counts them. */
static int open_uploads(void)
{
    struct ck_buf b;
    ck_assert_int_eq(tu_http_call(CK_HTTP_GET, T.gcs_port, "/__fake/state", NULL, NULL, &b), 200);
    const char *p = strstr(b.data, "\"open_uploads\": ");
    ck_assert_ptr_nonnull(p);
    int n = atoi(p + strlen("\"open_uploads\": "));
    ck_buf_free(&b);
    return n;
}

/* From an old object, a put of 6 MiB + 3 (initiate, 2 parts, complete) under plan: its
 * result is want, the key holds the new object or still the old one, the upload was
 * aborted (one DELETE) only when the commit did not happen, and posts POSTs were sent
 * (-1: any number). */
static void ambiguous_commit(const char *key, const char *plan, ck_rc want, bool new_object,
                             int posts)
{
    struct ck_store_env env;
    struct ck_store *s = open_key(&env, key, "");
    struct ck_err err;
    ck_assert_msg(put_opts(s, false, "old object", 10, &err) == CK_OK, "%s", err.msg);
    size_t size = 6 * MiB + 3;
    char *data = tu_pattern(size, 7);
    tu_fault_plan(T.proxy_port, plan);
    ck_rc rc = put_opts(s, false, data, size, &err);
    ck_assert_msg(rc == want, "%s: %s", plan, err.msg);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"DELETE\""), new_object ? 0 : 1);
    if (posts >= 0)
        ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"POST\""), posts);
    struct ck_buf b;
    tu_fault_plan(T.proxy_port, "");
    ck_assert_msg(tu_get(s, 0, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    if (new_object)
        ck_assert_msg(b.len == size && memcmp(b.data, data, size) == 0, "%s: not the new object",
                      plan);
    else
        ck_assert_msg(b.len == 10 && memcmp(b.data, "old object", 10) == 0,
                      "%s: not the old object", plan);
    ck_buf_free(&b);
    ck_assert_int_eq(open_uploads(), 0);
    ck_store_close(s);
    free(data);
}

START_TEST(test_complete_applied_reply_lost)
{
    /* The complete is applied, its reply lost; the retries meet NoSuchUpload (500s here):
     * the HEAD finds the object with this upload's mark in its metadata. */
    ambiguous_commit("amb/lost", "pass*3,lost,after=500*3", CK_OK, true, -1);
}
END_TEST

START_TEST(test_complete_500_after_success)
{
    ambiguous_commit("amb/500", "pass*3,after=500*4", CK_OK, true, -1);
}
END_TEST

START_TEST(test_complete_slow_is_not_cut)
{
    /* 3 s before the fake even sees the complete, with a 2 s stall timeout: one complete. */
    ambiguous_commit("amb/slow", "pass*3,delay=3", CK_OK, true, 2); /* initiate, complete */
}
END_TEST

START_TEST(test_complete_failed_is_a_failure)
{
    /* Refused every time: the HEAD finds the old object; the upload is aborted. */
    ambiguous_commit("amb/fail", "pass*3,status=500*4", CK_ENET, false, -1);
}
END_TEST

START_TEST(test_single_put_applied_reply_lost)
{
    struct ck_store_env env;
    struct ck_store *s = open_key(&env, "amb/single", "");
    struct ck_err err;
    ck_assert_msg(put_opts(s, false, "old", 3, &err) == CK_OK, "%s", err.msg);
    tu_fault_plan(T.proxy_port, "after=500*4");
    ck_assert_msg(put_opts(s, false, "small new object", 16, &err) == CK_OK, "%s", err.msg);
    expect_object("amb/single", "small new object");
    /* a failure that reached nothing stays one */
    tu_fault_plan(T.proxy_port, "status=500*4");
    ck_assert_int_eq(put_opts(s, false, "never", 5, &err), CK_ENET);
    expect_object("amb/single", "small new object");
    ck_store_close(s);
}
END_TEST

START_TEST(test_delete)
{
    struct ck_store_env env;
    struct ck_store *s = open_key(&env, "del/shard", "");
    struct ck_err err;
    ck_assert_msg(put_opts(s, false, "shard", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_msg(ck_store_delete(s, &err) == CK_OK, "%s", err.msg);
    expect_no_object("del/shard");
    ck_assert_msg(ck_store_delete(s, &err) == CK_OK, "%s", err.msg); /* nothing there: fine */
    ck_store_close(s);
}
END_TEST

/* ---- servers ------------------------------------------------------------------------ */

static bool start_servers(void)
{
    char tools[512], fake[600];
    tu_tools(tools, sizeof(tools));
    snprintf(fake, sizeof(fake), "%s/fake_gcs.py", tools);
    char *argv[] = {"python3", fake, "--public", BUCKET, NULL};
    T.gcs_port = tu_spawn_port(argv, &T.gcs_pid);
    if (T.gcs_port > 0)
        T.proxy_port = tu_faultproxy(T.gcs_port, "/dev/null", &T.proxy_pid);
    if (T.proxy_port <= 0)
        fprintf(stderr, "test_store_gcs: fake_gcs.py or faultproxy.py did not start\n");
    return T.proxy_port > 0;
}

static void stop_servers(bool failed)
{
    (void)failed;
    tu_stop_pid(T.proxy_pid);
    tu_stop_pid(T.gcs_pid);
}

static Suite *store_gcs_suite(void)
{
    Suite *s = suite_create("store_gcs");
    TCase *tc = tcase_create("fake_gcs");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_create_only_on_missing_key);
    tcase_add_test(tc, test_create_only_on_existing_key);
    tcase_add_test(tc, test_create_only_reply_lost);
    tcase_add_test(tc, test_create_only_too_large_is_unsupported);
    tcase_add_test(tc, test_fake_takes_the_header_not_the_json_parameter);
    tcase_add_test(tc, test_conditional_replace);
    tcase_add_test(tc, test_complete_applied_reply_lost);
    tcase_add_test(tc, test_complete_500_after_success);
    tcase_add_test(tc, test_complete_slow_is_not_cut);
    tcase_add_test(tc, test_complete_failed_is_a_failure);
    tcase_add_test(tc, test_single_put_applied_reply_lost);
    tcase_add_test(tc, test_delete);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_store_main(store_gcs_suite, start_servers, stop_servers);
}
