/* test_saver.c - the save area gate and the save queue, against a real file:// store. */
#include <check.h>
#include <pthread.h>

#include "save/saver.h"
#include "testutil.h"
#include "util/clock.h"

struct fixture {
    char dir[64];
    char dest[128];
    struct ck_store_env env;
    struct ck_store *store;
    struct ck_area area;
    struct ck_saver *saver;
};

static void setup_fixture(struct fixture *f, double save_wait)
{
    struct ck_err err;
    tu_mkdtemp(f->dir, sizeof(f->dir));
    snprintf(f->dest, sizeof(f->dest), "%s/out/ck.tgz", f->dir);
    ck_store_env_default(&f->env);
    ck_assert_int_eq(ck_store_open(f->dest, &f->env, &f->store, &err), CK_OK);
    ck_assert_int_eq(ck_area_open(&f->area, f->dir, &err), CK_OK);
    struct ck_saver_cfg cfg = {.area = &f->area, .dest = f->store, .save_wait_s = save_wait};
    cfg.codec.kind = CK_CODEC_AUTO;
    ck_assert_int_eq(ck_saver_start(&cfg, &f->saver, &err), CK_OK);
}

static void teardown_fixture(struct fixture *f)
{
    if (f->saver)
        ck_saver_stop(f->saver);
    ck_area_close(&f->area);
    ck_store_close(f->store);
    tu_rmdir(f->dir);
}

static void write_save_file(struct fixture *f, const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/save/%s", f->dir, name);
    ck_area_mutate_begin(&f->area);
    tu_write(p, text);
    ck_area_mutate_end(&f->area);
}

START_TEST(test_fresh_area_is_clean_and_changes_make_it_dirty)
{
    struct fixture f;
    setup_fixture(&f, 1);
    ck_assert(!ck_area_dirty(&f.area));
    write_save_file(&f, "a", "1");
    ck_assert(ck_area_dirty(&f.area));
    struct ck_err err;
    ck_assert_int_eq(ck_saver_save_sync(f.saver, CK_TRIGGER_CONTROL, &err), CK_OK);
    ck_assert(!ck_area_dirty(&f.area));
    ck_assert_int_eq(tu_sh("tar -xOzf %s a | grep -qx 1", f.dest), 0);
    teardown_fixture(&f);
}
END_TEST

START_TEST(test_dirty_survives_a_restart)
{
    struct fixture f;
    setup_fixture(&f, 1);
    write_save_file(&f, "a", "1");
    ck_saver_stop(f.saver);
    f.saver = NULL;
    ck_area_close(&f.area);
    struct ck_err err;
    ck_assert_int_eq(ck_area_open(&f.area, f.dir, &err), CK_OK);
    ck_assert(ck_area_dirty(&f.area)); /* the clean marker went with the first change */
    teardown_fixture(&f);
}
END_TEST

struct counter {
    pthread_mutex_t lock;
    int done;
    ck_rc last_rc;
};

static void count_done(void *ctx, ck_rc rc, const char *msg)
{
    struct counter *c = ctx;
    pthread_mutex_lock(&c->lock);
    c->done++;
    c->last_rc = rc;
    pthread_mutex_unlock(&c->lock);
}

static int done_count(struct counter *c)
{
    pthread_mutex_lock(&c->lock);
    int n = c->done;
    pthread_mutex_unlock(&c->lock);
    return n;
}

START_TEST(test_queued_requests_collapse_into_one_save)
{
    struct fixture f;
    setup_fixture(&f, 10);
    write_save_file(&f, "a", "1");
    struct counter c = {PTHREAD_MUTEX_INITIALIZER, 0, CK_OK};
    ck_area_writer_open(&f.area); /* save 1 waits for this writer */
    ck_assert_uint_eq(ck_saver_request(f.saver, CK_TRIGGER_CONTROL, NULL, count_done, &c), 1);
    ck_sleep(0.2);
    ck_assert_uint_eq(ck_saver_request(f.saver, CK_TRIGGER_CONTROL, NULL, count_done, &c), 2);
    ck_assert_uint_eq(ck_saver_request(f.saver, CK_TRIGGER_FSYNC, NULL, count_done, &c), 2);
    ck_assert_uint_eq(ck_saver_request(f.saver, CK_TRIGGER_AUTOSAVE, NULL, count_done, &c), 2);
    struct ck_saver_status st;
    ck_saver_status(f.saver, &st);
    ck_assert(st.running && st.queued);
    ck_assert_int_eq(st.current.phase, CK_PHASE_WAITING_WRITERS);
    ck_area_writer_close(&f.area);
    for (int i = 0; i < 500 && done_count(&c) < 4; i++)
        ck_sleep(0.01);
    ck_assert_int_eq(done_count(&c), 4);
    ck_saver_status(f.saver, &st);
    ck_assert_uint_eq(st.saves_ok, 2); /* four requests, two saves */
    ck_assert_uint_eq(st.last.generation, 2);
    ck_assert_int_eq(st.last.trigger, CK_TRIGGER_AUTOSAVE); /* the newest names it */
    teardown_fixture(&f);
}
END_TEST

struct gate_probe {
    struct ck_area *area;
    double entered;
};

static void *mutator(void *arg)
{
    struct gate_probe *p = arg;
    ck_area_mutate_begin(p->area);
    p->entered = ck_now();
    ck_area_mutate_end(p->area);
    return NULL;
}

START_TEST(test_freeze_holds_mutations_until_thaw)
{
    struct fixture f;
    setup_fixture(&f, 1);
    unsigned left;
    ck_area_freeze(&f.area, 1, &left);
    ck_assert_uint_eq(left, 0);
    struct gate_probe p = {&f.area, 0};
    pthread_t t;
    pthread_create(&t, NULL, mutator, &p);
    ck_sleep(0.2);
    double thawed = ck_now();
    ck_area_thaw(&f.area);
    pthread_join(t, NULL);
    ck_assert(p.entered >= thawed);
    teardown_fixture(&f);
}
END_TEST

START_TEST(test_writer_wait_is_bounded)
{
    struct fixture f;
    setup_fixture(&f, 1);
    ck_area_writer_open(&f.area);
    double t0 = ck_now();
    unsigned left;
    ck_area_freeze(&f.area, 0.3, &left);
    double waited = ck_now() - t0;
    ck_area_thaw(&f.area);
    ck_assert_uint_eq(left, 1);
    ck_assert(waited >= 0.25 && waited < 5);
    ck_area_writer_close(&f.area);
    teardown_fixture(&f);
}
END_TEST

START_TEST(test_failed_save_reports_and_keeps_dirty)
{
    struct fixture f;
    setup_fixture(&f, 1);
    write_save_file(&f, "a", "1");
    char blocker[128];
    snprintf(blocker, sizeof(blocker), "%s/out", f.dir);
    tu_write(blocker, "a file where the destination folder should be");
    struct ck_err err;
    ck_assert_int_ne(ck_saver_save_sync(f.saver, CK_TRIGGER_CONTROL, &err), CK_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "out"));
    ck_assert(ck_area_dirty(&f.area));
    struct ck_saver_status st;
    ck_saver_status(f.saver, &st);
    ck_assert_uint_eq(st.saves_failed, 1);
    ck_assert_int_eq(st.last.phase, CK_PHASE_FAILED);
    ck_assert_str_eq(st.last.error, err.msg);
    teardown_fixture(&f);
}
END_TEST

START_TEST(test_requests_after_stop_are_cancelled)
{
    struct fixture f;
    setup_fixture(&f, 1);
    ck_saver_stop(f.saver);
    f.saver = NULL;
    /* a stopped saver is freed; a new one stops cleanly with nothing queued */
    struct ck_err err;
    struct ck_saver_cfg cfg = {.area = &f.area, .dest = f.store, .save_wait_s = 1};
    ck_assert_int_eq(ck_saver_start(&cfg, &f.saver, &err), CK_OK);
    teardown_fixture(&f);
}
END_TEST

START_TEST(test_autosave_every)
{
    struct fixture f;
    tu_mkdtemp(f.dir, sizeof(f.dir));
    snprintf(f.dest, sizeof(f.dest), "%s/out/ck.tgz", f.dir);
    ck_store_env_default(&f.env);
    struct ck_err err;
    ck_assert_int_eq(ck_store_open(f.dest, &f.env, &f.store, &err), CK_OK);
    ck_assert_int_eq(ck_area_open(&f.area, f.dir, &err), CK_OK);
    struct ck_saver_cfg cfg = {
        .area = &f.area, .dest = f.store, .save_wait_s = 1, .autosave_quiet_s = 0.5};
    ck_assert_int_eq(ck_saver_start(&cfg, &f.saver, &err), CK_OK);
    write_save_file(&f, "a", "auto");
    struct ck_saver_status st = {0};
    for (int i = 0; i < 600 && st.saves_ok == 0; i++) {
        ck_sleep(0.01);
        ck_saver_status(f.saver, &st);
    }
    ck_assert_uint_eq(st.saves_ok, 1);
    ck_assert_int_eq(st.last.trigger, CK_TRIGGER_AUTOSAVE);
    ck_sleep(1.5); /* nothing changed since: no further autosave */
    ck_saver_status(f.saver, &st);
    ck_assert_uint_eq(st.saves_ok, 1);
    teardown_fixture(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("saver");
    TCase *tc = tcase_create("saver");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fresh_area_is_clean_and_changes_make_it_dirty);
    tcase_add_test(tc, test_dirty_survives_a_restart);
    tcase_add_test(tc, test_queued_requests_collapse_into_one_save);
    tcase_add_test(tc, test_freeze_holds_mutations_until_thaw);
    tcase_add_test(tc, test_writer_wait_is_bounded);
    tcase_add_test(tc, test_failed_save_reports_and_keeps_dirty);
    tcase_add_test(tc, test_requests_after_stop_are_cancelled);
    tcase_add_test(tc, test_autosave_every);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
