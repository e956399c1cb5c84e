/* metrics.c - the Prometheus textfile; see metrics.h. */
#include "daemon/metrics.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"

static void render(const struct ck_metrics *m, struct ck_buf *b)
{
    ck_buf_printf(b,
                  "# HELP ckptfs_saves_total Saves finished, by result.\n"
                  "# TYPE ckptfs_saves_total counter\n"
                  "ckptfs_saves_total{result=\"ok\"} %llu\n"
                  "ckptfs_saves_total{result=\"failed\"} %llu\n",
                  (unsigned long long)m->saves_ok, (unsigned long long)m->saves_failed);
    ck_buf_printf(b, "# TYPE ckptfs_save_bytes_total counter\nckptfs_save_bytes_total %llu\n",
                  (unsigned long long)m->save_bytes);
    ck_buf_printf(b,
                  "# TYPE ckptfs_save_compressed_bytes_total counter\n"
                  "ckptfs_save_compressed_bytes_total %llu\n",
                  (unsigned long long)m->save_compressed);
    uint64_t reused = m->save_reused < m->save_compressed ? m->save_reused : m->save_compressed;
    ck_buf_printf(b,
                  "# HELP ckptfs_save_reused_bytes_total Object bytes copied from the previous "
                  "object, not sent.\n"
                  "# TYPE ckptfs_save_reused_bytes_total counter\n"
                  "ckptfs_save_reused_bytes_total %llu\n"
                  "# TYPE ckptfs_save_uploaded_bytes_total counter\n"
                  "ckptfs_save_uploaded_bytes_total %llu\n",
                  (unsigned long long)reused, (unsigned long long)(m->save_compressed - reused));
    ck_buf_printf(b,
                  "# HELP ckptfs_save_files_total Files with data in saves that matched a "
                  "previous object, by what became of them.\n"
                  "# TYPE ckptfs_save_files_total counter\n"
                  "ckptfs_save_files_total{outcome=\"reused\"} %llu\n"
                  "ckptfs_save_files_total{outcome=\"short_run\"} %llu\n"
                  "ckptfs_save_files_total{outcome=\"changed\"} %llu\n"
                  "# HELP ckptfs_save_files_not_read_total Of the reused files, those not "
                  "read: unchanged since the save that made the previous object.\n"
                  "# TYPE ckptfs_save_files_not_read_total counter\n"
                  "ckptfs_save_files_not_read_total %llu\n",
                  (unsigned long long)m->files_reused, (unsigned long long)m->files_short,
                  (unsigned long long)m->files_changed, (unsigned long long)m->files_not_read);
    ck_buf_printf(b, "# TYPE ckptfs_last_save_seconds gauge\nckptfs_last_save_seconds %.6f\n",
                  m->last_save_seconds);
    ck_buf_printf(b,
                  "# TYPE ckptfs_last_save_success_timestamp_seconds gauge\n"
                  "ckptfs_last_save_success_timestamp_seconds %.3f\n",
                  m->last_success_wall);
    ck_buf_printf(b,
                  "# TYPE ckptfs_load_bytes gauge\nckptfs_load_bytes %llu\n"
                  "# TYPE ckptfs_load_seconds gauge\nckptfs_load_seconds %.6f\n"
                  "# TYPE ckptfs_load_state gauge\nckptfs_load_state{state=\"%s\"} 1\n",
                  (unsigned long long)m->load_bytes, m->load_seconds,
                  m->load_state ? m->load_state : "idle");
    struct statvfs v;
    if (m->cache_dir && statvfs(m->cache_dir, &v) == 0)
        ck_buf_printf(b,
                      "# TYPE ckptfs_cache_used_bytes gauge\nckptfs_cache_used_bytes %llu\n"
                      "# TYPE ckptfs_cache_free_bytes gauge\nckptfs_cache_free_bytes %llu\n",
                      (unsigned long long)(v.f_blocks - v.f_bfree) * v.f_frsize,
                      (unsigned long long)v.f_bavail * v.f_frsize);
}

ck_rc ck_metrics_write(const char *path, const struct ck_metrics *m, struct ck_err *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return ck_fail(err, CK_EINVAL, "--metrics %s: path too long", path);
    struct ck_buf b;
    ck_buf_init(&b, 64 * 1024);
    render(m, &b);
    FILE *f = fopen(tmp, "w");
    ck_rc rc = CK_OK;
    if (!f || fwrite(b.data, 1, b.len, f) != b.len || fclose(f) != 0) {
        rc = ck_fail_errno(err, errno, "--metrics: writing %s", tmp);
        f = NULL;
    }
    if (!rc && rename(tmp, path) != 0)
        rc = ck_fail_errno(err, errno, "--metrics: renaming %s to %s", tmp, path);
    if (rc)
        unlink(tmp);
    ck_buf_free(&b);
    return rc;
}

struct ck_metrics_thread {
    struct ck_daemon *d;
    const char *path;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;           /* protected by lock */
    struct ck_metrics m; /* owned by the thread */
    uint64_t seen_gen;   /* last finished generation counted */
    int seen_load;       /* load state last written */
};

/* Folds what changed into t->m; true if the file should be rewritten. */
static bool observe(struct ck_metrics_thread *t)
{
    struct ck_saver_status ss = {0};
    struct ck_load_status ls;
    ck_daemon_save_status(t->d, &ss);
    ck_daemon_load_status(t->d, &ls);
    bool changed = (int)ls.state != t->seen_load;
    if (ss.has_last && ss.last.generation != t->seen_gen) {
        t->seen_gen = ss.last.generation;
        t->m.last_save_seconds = ss.last.seconds;
        if (ss.last.phase == CK_PHASE_DONE) {
            t->m.save_bytes += ss.last.bytes;
            t->m.save_compressed += ss.last.compressed;
            t->m.save_reused += ss.last.reused;
            t->m.files_reused += ss.last.files_reused;
            t->m.files_not_read += ss.last.files_not_read;
            t->m.files_short += ss.last.files_short;
            t->m.files_changed += ss.last.files_changed;
            t->m.last_success_wall = ss.last.started_wall + ss.last.seconds;
        }
        changed = true;
    }
    t->m.saves_ok = ss.saves_ok;
    t->m.saves_failed = ss.saves_failed;
    t->seen_load = (int)ls.state;
    t->m.load_bytes = ls.bytes_done;
    t->m.load_seconds = ls.seconds;
    t->m.load_state = ck_load_state_name(ls.state);
    return changed;
}

static void wait_up_to(pthread_cond_t *c, pthread_mutex_t *m, double s)
{
    struct timespec ts = ck_deadline_after(s);
    pthread_cond_timedwait(c, m, &ts);
}

static void *metrics_main(void *arg)
{
    struct ck_metrics_thread *t = arg;
    struct ck_err err;
    bool stop = false, first = true;
    while (!stop) {
        if (observe(t) || first) {
            if (ck_metrics_write(t->path, &t->m, &err))
                ck_log_warn("%s", err.msg);
            first = false;
        }
        pthread_mutex_lock(&t->lock);
        if (!t->stop)
            wait_up_to(&t->cond, &t->lock, 0.5);
        stop = t->stop;
        pthread_mutex_unlock(&t->lock);
    }
    observe(t);
    if (ck_metrics_write(t->path, &t->m, &err))
        ck_log_warn("%s", err.msg);
    return NULL;
}

ck_rc ck_metrics_start(struct ck_daemon *d, const char *path, struct ck_metrics_thread **out,
                       struct ck_err *err)
{
    *out = NULL;
    if (!path)
        return CK_OK;
    struct ck_metrics_thread *t = calloc(1, sizeof(*t));
    if (!t)
        return ck_fail(err, CK_ENOMEM, "metrics: out of memory");
    t->d = d;
    t->path = path;
    t->seen_load = -1;
    t->m.cache_dir = d->area.plain ? d->area.path : d->cache_dir;
    pthread_mutex_init(&t->lock, NULL);
    ck_cond_init_monotonic(&t->cond);
    if (pthread_create(&t->thread, NULL, metrics_main, t) != 0) {
        free(t);
        return ck_fail(err, CK_ENOMEM, "metrics: cannot start a thread");
    }
    *out = t;
    return CK_OK;
}

void ck_metrics_stop(struct ck_metrics_thread *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t);
}
