/*
 * test_area_gate.c - the consistency gate of the save area (save/area.h) under races the
 * randomized model test (tests/integration/test_trust_model.py) found: an open that is in
 * flight while a save closes the gate adds a writer, and that file must be waited for like
 * any other open writer, not archived half-written.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "save/area.h"
#include "testutil.h"

struct freezer {
    struct ck_area *a;
    double wait_s;
    unsigned writers_left;
    bool done; /* protected by lock */
    pthread_mutex_t lock;
};

static void *freeze_thread(void *arg)
{
    struct freezer *f = arg;
    ck_area_freeze(f->a, f->wait_s, &f->writers_left);
    pthread_mutex_lock(&f->lock);
    f->done = true;
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

static bool is_done(struct freezer *f)
{
    pthread_mutex_lock(&f->lock);
    bool d = f->done;
    pthread_mutex_unlock(&f->lock);
    return d;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

START_TEST(test_open_in_flight_at_freeze_is_waited_for)
{
    char dir[64];
    tu_mkdtemp(dir, sizeof(dir));
    struct ck_area a;
    struct ck_err err = {0};
    ck_assert_int_eq(ck_area_open(&a, dir, &err), CK_OK);
    struct freezer f = {.a = &a, .wait_s = 30};
    pthread_mutex_init(&f.lock, NULL);

    ck_area_mutate_begin(&a); /* a create is in flight ... */
    pthread_t t;
    pthread_create(&t, NULL, freeze_thread, &f);
    pause_ms(100);           /* ... while the save closes the gate (it waits for it) */
    ck_area_writer_open(&a); /* the create's file is open for writing */
    ck_area_mutate_end(&a);
    pause_ms(100);
    ck_assert_msg(!is_done(&f), "the snapshot was taken while a file was open for writing");
    ck_area_writer_close(&a);
    pthread_join(t, NULL);
    ck_assert_uint_eq(f.writers_left, 0);
    ck_area_thaw(&a);
    ck_area_close(&a);
    pthread_mutex_destroy(&f.lock);
    tu_rmdir(dir);
}
END_TEST

START_TEST(test_writer_wait_stays_bounded)
{
    char dir[64];
    tu_mkdtemp(dir, sizeof(dir));
    struct ck_area a;
    struct ck_err err = {0};
    ck_assert_int_eq(ck_area_open(&a, dir, &err), CK_OK);
    struct freezer f = {.a = &a, .wait_s = 0.2};
    pthread_mutex_init(&f.lock, NULL);
    ck_area_mutate_begin(&a);
    pthread_t t;
    pthread_create(&t, NULL, freeze_thread, &f);
    pause_ms(50);
    ck_area_writer_open(&a); /* never closed before the freeze gives up */
    ck_area_mutate_end(&a);
    pthread_join(t, NULL); /* returns: the wait is bounded, the writer is reported */
    ck_assert_uint_eq(f.writers_left, 1);
    ck_area_thaw(&a);
    ck_area_writer_close(&a);
    ck_area_close(&a);
    pthread_mutex_destroy(&f.lock);
    tu_rmdir(dir);
}
END_TEST

/* Named writers: counted like the others, their names listed for .status. */
START_TEST(test_named_writers)
{
    char dir[64], names[64];
    tu_mkdtemp(dir, sizeof(dir));
    struct ck_area a;
    struct ck_err err = {0};
    ck_assert_int_eq(ck_area_open(&a, dir, &err), CK_OK);
    ck_area_writer_open_named(&a, 7, "ckpt.pt");
    ck_area_writer_open_named(&a, 9, "sub/opt.pt");
    ck_area_writer_open_named(&a, 11, NULL); /* counted, not named */
    ck_area_writer_names(&a, names, sizeof(names));
    ck_assert_str_eq(names, "ckpt.pt, sub/opt.pt");
    ck_assert_uint_eq(a.writers, 3);
    ck_area_writer_close_named(&a, 7);
    ck_area_writer_names(&a, names, sizeof(names));
    ck_assert_str_eq(names, "sub/opt.pt");
    ck_area_writer_close_named(&a, 11);
    ck_area_writer_close_named(&a, 9);
    ck_assert_uint_eq(a.writers, 0);
    ck_area_writer_names(&a, names, sizeof(names));
    ck_assert_str_eq(names, "");
    for (int k = 0; k < 20; k++) /* cut, never overflowed */
        ck_area_writer_open_named(&a, 100 + k, "a-rather-long-file-name.bin");
    ck_area_writer_names(&a, names, 40);
    ck_assert_uint_le(strlen(names), 39);
    ck_assert_ptr_nonnull(strstr(names, "..."));
    ck_area_close(&a); /* frees the names still open */
    tu_rmdir(dir);
}
END_TEST

/* A plain area (the no-FUSE mode's save/): changes are seen by a rescan, a save's seq is
 * the tree it started reading, a change during the save leaves the area dirty. */
START_TEST(test_plain_area_sees_changes_by_rescan)
{
    char dir[64], save[96], file[128];
    tu_mkdtemp(dir, sizeof(dir));
    snprintf(save, sizeof(save), "%s/save", dir);
    snprintf(file, sizeof(file), "%s/a", save);
    struct ck_area a;
    struct ck_err err = {0};
    ck_assert_int_ne(ck_area_open_plain(&a, "relative/save", dir, &err), CK_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "relative/save"));
    ck_assert_int_eq(ck_area_open_plain(&a, save, dir, &err), CK_OK);
    ck_assert(!ck_area_dirty(&a)); /* what is there at the start counts as saved */
    tu_write(file, "one");
    ck_assert(ck_area_dirty(&a));
    unsigned left;
    uint64_t seq = ck_area_freeze(&a, 1, &left);
    ck_assert_uint_eq(left, 0);
    tu_write(file, "two, longer"); /* written while the save reads */
    ck_area_thaw(&a);
    ck_area_mark_saved(&a, seq);
    ck_assert(ck_area_dirty(&a));
    seq = ck_area_freeze(&a, 1, &left);
    ck_area_thaw(&a);
    ck_area_mark_saved(&a, seq);
    ck_assert(!ck_area_dirty(&a));
    ck_assert_int_ne(access(file, F_OK), -1);
    tu_sh("mkdir '%s/sub' && touch '%s/sub/b'", save, save);
    double quiet;
    bool dirty;
    ck_area_quiet(&a, 1e12, &quiet, &dirty);
    ck_assert(dirty);
    ck_area_close(&a);
    tu_rmdir(dir);
}
END_TEST

/* Inodes changed since a save's snapshot point: a change noted before the point does not
 * count, one at or after it does, until a later good save forgets it; a plain area never
 * vouches for a file. Many notes grow the table and pruning keeps the later ones. */
START_TEST(test_changed_inodes_since_a_save)
{
    char dir[64];
    tu_mkdtemp(dir, sizeof(dir));
    struct ck_area a;
    struct ck_err err;
    ck_assert_int_eq(ck_area_open(&a, dir, &err), CK_OK);
    ck_area_mutate_begin_inode(&a, 1, 100); /* before the first save */
    ck_area_mutate_end(&a);
    unsigned left;
    uint64_t s1 = ck_area_freeze(&a, 1, &left);
    ck_area_thaw(&a);
    ck_assert(ck_area_unchanged_since(&a, 1, 100, s1));
    ck_assert(ck_area_unchanged_since(&a, 1, 200, s1));
    for (ino_t i = 1000; i < 1300; i++) { /* written after it */
        ck_area_mutate_begin_inode(&a, 1, i);
        ck_area_mutate_end(&a);
    }
    ck_assert(!ck_area_unchanged_since(&a, 1, 1000, s1));
    ck_assert(!ck_area_unchanged_since(&a, 1, 1299, s1));
    ck_assert(ck_area_unchanged_since(&a, 2, 1000, s1)); /* another device */
    ck_area_mark_saved(&a, s1);
    ck_assert(!ck_area_unchanged_since(&a, 1, 1000, s1)); /* after s1: kept */
    uint64_t s2 = ck_area_freeze(&a, 1, &left);
    ck_area_thaw(&a);
    ck_area_mutate_begin_inode(&a, 1, 100);
    ck_area_mutate_end(&a);
    ck_area_mark_saved(&a, s2);
    ck_assert_uint_eq(a.changed.n, 1); /* 1000..1299 were before s2 */
    ck_assert(ck_area_unchanged_since(&a, 1, 1000, s2));
    ck_assert(!ck_area_unchanged_since(&a, 1, 100, s2));
    ck_area_close(&a);
    char save[96];
    snprintf(save, sizeof(save), "%s/save", dir);
    ck_assert_int_eq(ck_area_open_plain(&a, save, dir, &err), CK_OK);
    ck_assert(!ck_area_unchanged_since(&a, 1, 100, 0)); /* a plain area vouches for nothing */
    ck_area_close(&a);
    tu_rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("area_gate");
    TCase *tc = tcase_create("gate");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_open_in_flight_at_freeze_is_waited_for);
    tcase_add_test(tc, test_writer_wait_stays_bounded);
    tcase_add_test(tc, test_named_writers);
    tcase_add_test(tc, test_plain_area_sees_changes_by_rescan);
    tcase_add_test(tc, test_changed_inodes_since_a_save);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
