/* test_loader.c - lazy load of prev/ from file:// sources: tar, payload, none, failures. */
#include <check.h>
#include <pthread.h>

#include "restore/loader.h"
#include "testutil.h"
#include "util/clock.h"

struct waitbox {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
    ck_rc rc;
};

static void on_ready(void *ctx, ck_rc rc)
{
    struct waitbox *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->calls++;
    w->rc = rc;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static ck_rc load(const char *dir, const char *const *srcs, size_t n, struct ck_load_status *st)
{
    struct ck_store_env env;
    ck_store_env_default(&env);
    env.retry.max_attempts = 1;
    struct ck_loader_cfg cfg = {srcs, n, &env, dir, 0};
    struct ck_loader *l;
    struct ck_err err;
    ck_assert_int_eq(ck_loader_new(&cfg, &l, &err), CK_OK);
    ck_assert_int_eq(ck_loader_state(l), CK_LOAD_IDLE); /* nothing before the first access */
    struct waitbox w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, CK_OK};
    ck_loader_when_ready(l, on_ready, &w);
    ck_loader_when_ready(l, on_ready, &w); /* a second waiter joins the same load */
    pthread_mutex_lock(&w.lock);
    while (w.calls < 2)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    ck_loader_status(l, st);
    ck_loader_when_ready(l, on_ready, &w); /* after the end: called at once */
    ck_assert_int_eq(w.calls, 3);
    ck_loader_free(l);
    return w.rc;
}

START_TEST(test_tar_source_is_extracted)
{
    char dir[64], src[128];
    tu_mkdtemp(dir, sizeof(dir));
    ck_assert_int_eq(tu_sh("mkdir -p %s/in/sub && echo hi > %s/in/sub/f && "
                           "tar -czf %s/ck.tgz -C %s/in sub",
                           dir, dir, dir, dir),
                     0);
    snprintf(src, sizeof(src), "%s/ck.tgz", dir);
    const char *srcs[] = {src};
    struct ck_load_status st;
    ck_assert_int_eq(load(dir, srcs, 1, &st), CK_OK);
    ck_assert_int_eq(st.state, CK_LOAD_READY);
    ck_assert_int_eq(st.kind, CK_KIND_TAR);
    ck_assert_uint_eq(st.entries, 2);
    ck_assert_str_eq(st.source, src);
    ck_assert_uint_gt(st.bytes_done, 0);
    char p[160];
    snprintf(p, sizeof(p), "%s/prev/sub/f", dir);
    ck_assert_str_eq(tu_read(p), "hi\n");
    tu_rmdir(dir);
}
END_TEST

START_TEST(test_raw_source_is_payload)
{
    char dir[64], src[128], p[160];
    tu_mkdtemp(dir, sizeof(dir));
    snprintf(src, sizeof(src), "%s/raw", dir);
    tu_write(src, "not a tar at all");
    const char *srcs[] = {src};
    struct ck_load_status st;
    ck_assert_int_eq(load(dir, srcs, 1, &st), CK_OK);
    ck_assert_int_eq(st.kind, CK_KIND_PAYLOAD);
    snprintf(p, sizeof(p), "%s/prev/payload", dir);
    ck_assert_str_eq(tu_read(p), "not a tar at all");
    tu_rmdir(dir);
}
END_TEST

START_TEST(test_missing_and_empty_sources_are_none)
{
    char dir[64], missing[128], empty[128];
    tu_mkdtemp(dir, sizeof(dir));
    snprintf(missing, sizeof(missing), "%s/missing", dir);
    snprintf(empty, sizeof(empty), "%s/empty", dir);
    tu_write(empty, "");
    const char *srcs[] = {missing, empty};
    struct ck_load_status st;
    ck_assert_int_eq(load(dir, srcs, 2, &st), CK_OK);
    ck_assert_int_eq(st.state, CK_LOAD_READY);
    ck_assert_int_eq(st.kind, CK_KIND_NONE);
    ck_assert_str_eq(st.source, "");
    ck_assert_int_eq(load(dir, NULL, 0, &st), CK_OK);
    ck_assert_int_eq(st.kind, CK_KIND_NONE);
    tu_rmdir(dir);
}
END_TEST

START_TEST(test_corrupt_source_fails_and_prev_is_left_empty)
{
    char dir[64], src[128];
    tu_mkdtemp(dir, sizeof(dir));
    ck_assert_int_eq(tu_sh("mkdir -p %s/in && head -c 300000 /dev/urandom > %s/in/f && "
                           "tar -czf %s/full.tgz -C %s/in f && "
                           "head -c 200000 %s/full.tgz > %s/cut.tgz",
                           dir, dir, dir, dir, dir, dir),
                     0);
    snprintf(src, sizeof(src), "%s/cut.tgz", dir);
    const char *srcs[] = {src};
    struct ck_load_status st;
    ck_assert_int_ne(load(dir, srcs, 1, &st), CK_OK);
    ck_assert_int_eq(st.state, CK_LOAD_FAILED);
    ck_assert_msg(strstr(st.error, "cut.tgz"), "error names the source: %s", st.error);
    ck_assert_int_eq(tu_sh("test -z \"$(ls -A %s/prev)\"", dir), 0);
    tu_rmdir(dir);
}
END_TEST

START_TEST(test_unreadable_source_is_an_error_not_none)
{
    char dir[64];
    tu_mkdtemp(dir, sizeof(dir));
    const char *srcs[] = {dir}; /* a directory is not an object */
    struct ck_load_status st;
    ck_assert_int_ne(load(dir, srcs, 1, &st), CK_OK);
    ck_assert_int_eq(st.state, CK_LOAD_FAILED);
    const char *bad[] = {"gopher://x/y"};
    ck_assert_int_eq(load(dir, bad, 1, &st), CK_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(st.error, "gopher"));
    tu_rmdir(dir);
}
END_TEST

START_TEST(test_stale_prev_is_cleared_at_start)
{
    char dir[64], p[160];
    tu_mkdtemp(dir, sizeof(dir));
    ck_assert_int_eq(tu_sh("mkdir -p %s/prev/old && touch %s/prev/old/x", dir, dir), 0);
    struct ck_load_status st;
    ck_assert_int_eq(load(dir, NULL, 0, &st), CK_OK);
    snprintf(p, sizeof(p), "%s/prev/old", dir);
    ck_assert_int_ne(access(p, F_OK), 0);
    tu_rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_add_test(tc, test_tar_source_is_extracted);
    tcase_add_test(tc, test_raw_source_is_payload);
    tcase_add_test(tc, test_missing_and_empty_sources_are_none);
    tcase_add_test(tc, test_corrupt_source_fails_and_prev_is_left_empty);
    tcase_add_test(tc, test_unreadable_source_is_an_error_not_none);
    tcase_add_test(tc, test_stale_prev_is_cleared_at_start);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
