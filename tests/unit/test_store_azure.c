/*
 * test_store_azure.c - what the Azure backend shows of a failed reply: the <Error> code
 * and the first line of its message, or the x-ms-error-code header when the body has
 * none (HEAD); create-only puts (store.h: Put Blob with If-None-Match: *, signed),
 * conditional replaces and ambiguous commits settled by the upload's mark (settle.h),
 * against Azurite (tests/tools/azurite, which checks Shared Key signatures) with
 * tests/tools/faultproxy.py in front of it for lost replies. The rest of the requests
 * run against Azurite in tests/integration/test_azure.py.
 *
 * main() starts Azurite and the proxy before the suite and stops them after it, in the
 * parent. Blobs are checked from outside with tests/tools/azblob.py.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/azure_sharedkey.h"
#include "store/azure/azure.h"
#include "store/store.h"
#include "store_testutil.h"

#define CONTAINER "ckb"
#define ACCOUNT   "devstoreaccount1"
#define AZ_KEY                                                                                     \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

/* Set once by main() before the suite forks its tests; read-only afterwards. */
static struct {
    char dir[256];
    char tools[512];
    struct tu_server azurite;
    int azurite_port, proxy_port;
    pid_t proxy_pid;
} T;

/* Found by tests/fuzz/fuzz_azure_xml: the RequestId and Time lines of Azure's Message
 * were shown (their line breaks as '?'), and an empty <Code> hid the header's code. */
START_TEST(test_error_code_and_first_line)
{
    char code[64], msg[200];
    const char *body = "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?><Error>"
                       "<Code>BlobNotFound</Code><Message>The specified blob does not exist.\n"
                       "RequestId:4b5ae8e1-701e-0056-6b2d-9b5a07000000\n"
                       "Time:2024-05-01T12:00:00.1234567Z</Message></Error>";
    ck_assert(ck_azure_error_code(body, strlen(body), "BlobNotFound", code, sizeof(code), msg,
                                  sizeof(msg)));
    ck_assert_str_eq(code, "BlobNotFound");
    ck_assert_str_eq(msg, "The specified blob does not exist.");
    const char *empty = "<Error><Code></Code><Message>x</Message></Error>";
    ck_assert(ck_azure_error_code(empty, strlen(empty), "ServerBusy", code, sizeof(code), msg,
                                  sizeof(msg)));
    ck_assert_str_eq(code, "ServerBusy");
    ck_assert_str_eq(msg, "");
}
END_TEST

START_TEST(test_error_code_from_header)
{
    char code[64], msg[200];
    ck_assert(
        ck_azure_error_code("", 0, "ContainerNotFound", code, sizeof(code), msg, sizeof(msg)));
    ck_assert_str_eq(code, "ContainerNotFound");
    ck_assert_str_eq(msg, "");
    const char *html = "<html><body>502 Bad Gateway</body></html>";
    ck_assert(!ck_azure_error_code(html, strlen(html), "", code, sizeof(code), msg, sizeof(msg)));
    ck_assert_str_eq(code, "");
    /* a header value that is not a code is not shown */
    ck_assert(!ck_azure_error_code("", 0, "Blob Not:Found", code, sizeof(code), msg, sizeof(msg)));
    char longer[80];
    memset(longer, 'A', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    ck_assert(!ck_azure_error_code("", 0, longer, code, sizeof(code), msg, sizeof(msg)));
    ck_assert_str_eq(code, "");
}
END_TEST

/* If-Match and If-None-Match have their own lines in the Shared Key string to sign, after
 * If-Modified-Since and before If-Unmodified-Since; without them nothing changes. */
START_TEST(test_if_none_match_is_signed)
{
    struct ck_azure_header h[] = {{"x-ms-version", "2021-08-06"}, {"x-ms-date", "D"}};
    struct ck_azure_sign_req r = {
        .method = "PUT",
        .account = ACCOUNT,
        .path = "/" ACCOUNT "/c/b",
        .query = "",
        .content_length = 3,
        .if_none_match = "*",
        .xms = h,
        .nxms = 2,
    };
    char *sts;
    struct ck_err err;
    ck_assert_int_eq(ck_azure_string_to_sign(&r, &sts, &err), CK_OK);
    ck_assert_str_eq(sts, "PUT\n\n\n3\n\n\n\n\n\n*\n\n\n"
                          "x-ms-date:D\nx-ms-version:2021-08-06\n/" ACCOUNT "/" ACCOUNT "/c/b");
    free(sts);
    r.if_none_match = NULL;
    ck_assert_int_eq(ck_azure_string_to_sign(&r, &sts, &err), CK_OK);
    ck_assert_str_eq(sts, "PUT\n\n\n3\n\n\n\n\n\n\n\n\n"
                          "x-ms-date:D\nx-ms-version:2021-08-06\n/" ACCOUNT "/" ACCOUNT "/c/b");
    free(sts);
    r.if_match = "\"0x8D\""; /* a conditional replace: its own line, before If-None-Match */
    ck_assert_int_eq(ck_azure_string_to_sign(&r, &sts, &err), CK_OK);
    ck_assert_str_eq(sts, "PUT\n\n\n3\n\n\n\n\n\"0x8D\"\n\n\n\n"
                          "x-ms-date:D\nx-ms-version:2021-08-06\n/" ACCOUNT "/" ACCOUNT "/c/b");
    free(sts);
}
END_TEST

/* ---- create-only puts against Azurite ----------------------------------------------- */

/* A store of az://ckb/blob (Shared Key) through the proxy, with plan set. */
static struct ck_store *open_blob(struct ck_store_env *env, const char *blob, const char *plan)
{
    char cs[512], uri[256];
    snprintf(cs, sizeof(cs),
             "DefaultEndpointsProtocol=http;AccountName=" ACCOUNT ";AccountKey=" AZ_KEY
             ";BlobEndpoint=http://127.0.0.1:%d/" ACCOUNT ";",
             T.proxy_port);
    setenv("AZURE_STORAGE_CONNECTION_STRING", cs, 1);
    setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9", 1); /* never a real IMDS */
    setenv("CKPTFS_AZURE_BLOCK_SIZE", "64K", 1);
    tu_fault_plan(T.proxy_port, plan);
    tu_store_env(env);
    snprintf(uri, sizeof(uri), "az://" CONTAINER "/%s", blob);
    struct ck_store *s;
    struct ck_err err;
    ck_assert_msg(ck_store_open(uri, env, &s, &err) == CK_OK, "%s", err.msg);
    ck_assert_str_eq(s->ops->name, "azure");
    return s;
}

static ck_rc put_opts(struct ck_store *s, bool if_absent, const void *data, size_t len,
                      struct ck_err *err)
{
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN, .if_absent = if_absent};
    return tu_put(s, &o, data, len, err);
}

/* The blob as azblob.py reads it straight from Azurite: its text, or "MISSING". */
static void expect_blob(const char *blob, const char *want)
{
    char cmd[1500], got[256] = "";
    snprintf(cmd, sizeof(cmd),
             "python3 -c \"import sys; sys.path.insert(0, '%s'); import azblob\n"
             "ok = azblob.blob_exists(%d, '" CONTAINER "', '%s')\n"
             "print(azblob.get_blob(%d, '" CONTAINER "', '%s').decode() if ok else 'MISSING')\"",
             T.tools, T.azurite_port, blob, T.azurite_port, blob);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    if (!fgets(got, sizeof(got), p))
        got[0] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    got[strcspn(got, "\n")] = '\0';
    ck_assert_msg(strcmp(got, want) == 0, "%s: Azurite holds '%s', expected '%s'", blob, got, want);
}

START_TEST(test_create_only_on_missing_blob)
{
    struct ck_store_env env;
    struct ck_store *s = open_blob(&env, "co/missing", "");
    struct ck_err err;
    ck_assert_msg(put_opts(s, true, "rank 0", 6, &err) == CK_OK, "%s", err.msg);
    expect_blob("co/missing", "rank 0");
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""), 1);
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_on_existing_blob)
{
    struct ck_store_env env;
    struct ck_store *s = open_blob(&env, "co/exists", "");
    struct ck_err err;
    ck_assert_msg(put_opts(s, false, "old object", 10, &err) == CK_OK, "%s", err.msg);
    tu_fault_plan(T.proxy_port, "");
    ck_assert_int_eq(put_opts(s, true, "rank 1", 6, &err), CK_EEXIST);
    ck_assert_str_eq(err.msg, "PUT az://ckb/co/exists: an object is already there "
                              "(If-None-Match: *)");
    expect_blob("co/exists", "old object");
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""),
                     1); /* a first-attempt refusal is final */
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"GET\""), 0);
    ck_store_close(s);
    s = open_blob(&env, "co/exists2", "");
    ck_assert_msg(put_opts(s, true, "first", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(put_opts(s, true, "second", 6, &err), CK_EEXIST);
    expect_blob("co/exists2", "first");
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_reply_lost)
{
    /* Applied, reply lost; the retry's 409 BlobAlreadyExists meets our own blob: ours. */
    struct ck_store_env env;
    struct ck_store *s = open_blob(&env, "co/lost", "lost");
    struct ck_err err;
    ck_assert_msg(put_opts(s, true, "rank 2", 6, &err) == CK_OK, "%s", err.msg);
    expect_blob("co/lost", "rank 2");
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""), 2);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"GET\""), 1);
    ck_store_close(s);
    /* Another blob there, our refusal's reply lost, the retry refused too: CK_EEXIST. */
    s = open_blob(&env, "co/theirs", "");
    ck_assert_msg(put_opts(s, false, "their claim", 11, &err) == CK_OK, "%s", err.msg);
    tu_fault_plan(T.proxy_port, "lost");
    ck_assert_int_eq(put_opts(s, true, "our claim", 9, &err), CK_EEXIST);
    expect_blob("co/theirs", "their claim");
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_too_large_is_unsupported)
{
    struct ck_store_env env;
    struct ck_store *s = open_blob(&env, "co/large", ""); /* 64 KiB blocks */
    struct ck_err err;
    char *data = calloc(1, 100000);
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(put_opts(s, true, data, 100000, &err), CK_EUNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "PUT az://ckb/co/large: a create-only put of 100000 bytes"), "%s",
                  err.msg);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"path\""), 0); /* nothing was sent */
    expect_blob("co/large", "MISSING");
    ck_store_close(s);
    free(data);
}
END_TEST

/* ---- conditional replaces: If-Match / If-None-Match on Put Blob and Put Block List ---- */

static ck_rc put_if_match(struct ck_store *s, const char *version, const void *data, size_t len,
                          struct ck_err *err)
{
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN, .if_match = version};
    return tu_put(s, &o, data, len, err);
}

static void head_info(struct ck_store *s, struct ck_store_info *info)
{
    struct ck_err err;
    ck_assert_msg(ck_store_head(s, info, &err) == CK_OK, "%s", err.msg);
    ck_assert(info->exists);
    ck_assert_str_eq(info->version, info->etag);
}

START_TEST(test_conditional_replace)
{
    struct ck_store_env env;
    struct ck_store *s = open_blob(&env, "cm/dest", "");
    struct ck_err err;
    ck_assert_msg(put_if_match(s, "", "gen 1", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(put_if_match(s, "", "gen x", 5, &err), CK_EEXIST);
    expect_blob("cm/dest", "gen 1");
    struct ck_store_info v1, v2;
    head_info(s, &v1);
    ck_assert_msg(put_if_match(s, v1.version, "gen 2", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(put_if_match(s, v1.version, "gen 1 again", 11, &err), CK_EEXIST);
    ck_assert_msg(strstr(err.msg, "PUT az://ckb/cm/dest: the object changed since it was read "
                                  "(If-Match: "),
                  "%s", err.msg);
    expect_blob("cm/dest", "gen 2");
    /* Put Block List (100000 bytes in 64 KiB blocks) carries the condition too. */
    head_info(s, &v2);
    char *data = calloc(1, 100000);
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(put_if_match(s, v1.version, data, 100000, &err), CK_EEXIST);
    expect_blob("cm/dest", "gen 2");
    ck_assert_msg(put_if_match(s, v2.version, data, 100000, &err) == CK_OK, "%s", err.msg);
    struct ck_store_info v3;
    head_info(s, &v3);
    ck_assert_uint_eq(v3.size, 100000);
    ck_assert_int_eq(put_if_match(s, "", data, 100000, &err), CK_EEXIST);
    ck_store_close(s);
    free(data);
}
END_TEST

/* ---- ambiguous commits: the destination decides ------------------------------------ */

/* From an old blob, a put of 100000 bytes (2 blocks of 64 KiB, then Put Block List)
 * under plan: its result is want, and the blob is the new one or still the old one;
 * puts PUTs were sent (-1: any number). cond: a conditional replace of the old blob. */
static void ambiguous_commit(const char *blob, const char *plan, ck_rc want, bool new_blob,
                             int puts, bool cond)
{
    struct ck_store_env env;
    struct ck_store *s = open_blob(&env, blob, "");
    struct ck_err err;
    ck_assert_msg(put_opts(s, false, "old blob", 8, &err) == CK_OK, "%s", err.msg);
    struct ck_store_info old;
    head_info(s, &old);
    size_t size = 100000;
    char *data = tu_pattern(size, 5);
    tu_fault_plan(T.proxy_port, plan);
    ck_rc rc = cond ? put_if_match(s, old.version, data, size, &err)
                    : put_opts(s, false, data, size, &err);
    ck_assert_msg(rc == want, "%s: %s", plan, err.msg);
    if (puts >= 0)
        ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"PUT\""), puts);
    tu_fault_plan(T.proxy_port, "");
    struct ck_buf b;
    ck_assert_msg(tu_get(s, 0, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    if (new_blob)
        ck_assert_msg(b.len == size && memcmp(b.data, data, size) == 0, "%s: not the new blob",
                      plan);
    else
        ck_assert_msg(b.len == 8 && memcmp(b.data, "old blob", 8) == 0, "%s: not the old blob",
                      plan);
    ck_buf_free(&b);
    ck_store_close(s);
    free(data);
}

START_TEST(test_block_list_applied_reply_lost)
{
    /* Applied, reply lost; the retries (500s) meet a committed list: the HEAD finds the
     * blob with this upload's mark in its metadata. */
    ambiguous_commit("amb/lost", "pass*2,lost,after=500*3", CK_OK, true, -1, false);
}
END_TEST

START_TEST(test_block_list_500_after_success)
{
    ambiguous_commit("amb/500", "pass*2,after=500*4", CK_OK, true, -1, false);
    /* conditional: the retry's If-Match meets our own blob (412); the mark says ours */
    ambiguous_commit("amb/c500", "pass*2,after=500", CK_OK, true, -1, true);
}
END_TEST

START_TEST(test_block_list_slow_is_not_cut)
{
    /* 3 s before Azurite even sees the list, with a 2 s stall timeout: one list. */
    ambiguous_commit("amb/slow", "pass*2,delay=3", CK_OK, true, 3, false);
}
END_TEST

START_TEST(test_block_list_failed_is_a_failure)
{
    ambiguous_commit("amb/fail", "pass*2,status=500*4", CK_ENET, false, -1, false);
    ambiguous_commit("amb/cfail", "pass*2,status=500*4", CK_ENET, false, -1, true);
}
END_TEST

START_TEST(test_put_blob_applied_reply_lost)
{
    struct ck_store_env env;
    struct ck_store *s = open_blob(&env, "amb/single", "");
    struct ck_err err;
    ck_assert_msg(put_opts(s, false, "old", 3, &err) == CK_OK, "%s", err.msg);
    tu_fault_plan(T.proxy_port, "after=500*4");
    ck_assert_msg(put_opts(s, false, "small new blob", 14, &err) == CK_OK, "%s", err.msg);
    expect_blob("amb/single", "small new blob");
    tu_fault_plan(T.proxy_port, "status=500*4"); /* reached nothing: a failure */
    ck_assert_int_eq(put_opts(s, false, "never", 5, &err), CK_ENET);
    expect_blob("amb/single", "small new blob");
    ck_store_close(s);
}
END_TEST

START_TEST(test_delete)
{
    struct ck_store_env env;
    struct ck_store *s = open_blob(&env, "del/shard", "");
    struct ck_err err;
    ck_assert_msg(put_opts(s, false, "shard", 5, &err) == CK_OK, "%s", err.msg);
    ck_assert_msg(ck_store_delete(s, &err) == CK_OK, "%s", err.msg);
    expect_blob("del/shard", "MISSING");
    ck_assert_msg(ck_store_delete(s, &err) == CK_OK, "%s", err.msg); /* nothing there: fine */
    ck_store_close(s);
}
END_TEST

/* ---- servers ------------------------------------------------------------------------ */

static bool start_servers(void)
{
    tu_tools(T.tools, sizeof(T.tools));
    snprintf(T.dir, sizeof(T.dir), "/tmp/ck-store-azure-XXXXXX");
    if (!mkdtemp(T.dir))
        return false;
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/azurite", T.dir);
    if (!tu_tool_start(&T.azurite, "azurite", dir, NULL))
        return false;
    T.azurite_port = T.azurite.port;
    if (tu_sh("python3 -c \"import sys; sys.path.insert(0, '%s'); import azblob; "
              "azblob.create_container(%d, '" CONTAINER "')\"",
              T.tools, T.azurite_port) != 0) {
        fprintf(stderr, "test_store_azure: creating the container with azblob.py failed\n");
        return false;
    }
    T.proxy_port = tu_faultproxy(T.azurite_port, "/dev/null", &T.proxy_pid);
    if (T.proxy_port <= 0)
        fprintf(stderr, "test_store_azure: faultproxy failed\n");
    return T.proxy_port > 0;
}

static void stop_servers(bool keep)
{
    tu_stop_pid(T.proxy_pid);
    tu_tool_stop(&T.azurite);
    if (!T.dir[0])
        return;
    if (keep)
        fprintf(stderr, "test_store_azure: failures; Azurite's data and log kept in %s\n", T.dir);
    else
        tu_rmdir(T.dir);
}

static Suite *store_azure_suite(bool with_azurite)
{
    Suite *s = suite_create("store_azure");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, test_error_code_and_first_line);
    tcase_add_test(tc, test_error_code_from_header);
    tcase_add_test(tc, test_if_none_match_is_signed);
    suite_add_tcase(s, tc);
    if (!with_azurite)
        return s;
    tc = tcase_create("azurite");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_create_only_on_missing_blob);
    tcase_add_test(tc, test_create_only_on_existing_blob);
    tcase_add_test(tc, test_create_only_reply_lost);
    tcase_add_test(tc, test_create_only_too_large_is_unsupported);
    tcase_add_test(tc, test_conditional_replace);
    tcase_add_test(tc, test_block_list_applied_reply_lost);
    tcase_add_test(tc, test_block_list_500_after_success);
    tcase_add_test(tc, test_block_list_slow_is_not_cut);
    tcase_add_test(tc, test_block_list_failed_is_a_failure);
    tcase_add_test(tc, test_put_blob_applied_reply_lost);
    tcase_add_test(tc, test_delete);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    struct ck_err err;
    if (ck_http_global_init(&err) != CK_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    bool up = start_servers(); /* without Azurite the pure tests still run, and fail the suite */
    SRunner *sr = srunner_create(store_azure_suite(up));
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    stop_servers(failed != 0 || !up);
    ck_http_global_cleanup();
    return failed != 0 || !up;
}
