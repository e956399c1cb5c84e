/* saver.c - the save queue and the saver thread; see saver.h. */
#include "save/saver.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "save/pipeline.h"
#include "save/snapshot.h"
#include "util/clock.h"
#include "util/log.h"

struct waiter {
    ck_save_notify on_snapshot;
    ck_save_notify on_done;
    void *ctx;
};

/* One save: the queued one collects waiters until the thread takes it. */
struct job {
    bool active;
    uint64_t generation;
    enum ck_save_trigger trigger;
    struct waiter *waiters;
    size_t nwaiters;
    size_t cap;
};

struct ck_saver {
    struct ck_saver_cfg cfg; /* read-only */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* protected by lock: */
    bool stopping;
    uint64_t next_generation;
    struct job queued;
    bool running;
    bool in_job; /* a job is taken and its waiters not all answered yet */
    struct ck_save_report current;
    bool has_last;
    struct ck_save_report last;
    uint64_t saves_ok;
    uint64_t saves_failed;
    double last_start; /* ck_now() when the last save started */
    /* written by the saver thread, read by status: */
    struct ck_save_progress progress;
    /* the saver thread's own: a save of this saver put a tar at dest, whose members the
     * next save may copy (pipeline.h ck_save_extra.reuse_from) */
    bool saved_tar;
    struct ck_known *known; /* the large files of that tar, and its snapshot point (known.h) */
};

const char *ck_save_trigger_name(enum ck_save_trigger t)
{
    static const char *const names[] = {"control", "fsync", "unmount", "autosave"};
    return names[t];
}

const char *ck_save_phase_name(enum ck_save_phase p)
{
    static const char *const names[] = {"queued", "waiting_writers", "archiving", "committing",
                                        "done",   "failed"};
    return names[p];
}

static bool job_add_waiter(struct job *j, ck_save_notify snap, ck_save_notify done, void *ctx)
{
    if (!snap && !done)
        return true;
    if (j->nwaiters == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 4;
        struct waiter *w = realloc(j->waiters, cap * sizeof(*w));
        if (!w)
            return false;
        j->waiters = w;
        j->cap = cap;
    }
    j->waiters[j->nwaiters++] = (struct waiter){snap, done, ctx};
    return true;
}

uint64_t ck_saver_request(struct ck_saver *s, enum ck_save_trigger trigger,
                          ck_save_notify on_snapshot, ck_save_notify on_done, void *ctx)
{
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        if (on_snapshot)
            on_snapshot(ctx, CK_ECANCELED, "the filesystem is shutting down");
        if (on_done)
            on_done(ctx, CK_ECANCELED, "the filesystem is shutting down");
        return 0;
    }
    if (!s->queued.active) {
        s->queued.active = true;
        s->queued.generation = s->next_generation++;
        s->queued.nwaiters = 0;
    }
    s->queued.trigger = trigger; /* the newest request names the save */
    bool ok = job_add_waiter(&s->queued, on_snapshot, on_done, ctx);
    uint64_t gen = s->queued.generation;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (!ok) {
        if (on_snapshot)
            on_snapshot(ctx, CK_ENOMEM, "queueing a save: out of memory");
        if (on_done)
            on_done(ctx, CK_ENOMEM, "queueing a save: out of memory");
    }
    return gen;
}

/* Context of the running save for the pipeline's read_done callback. */
struct run {
    struct ck_saver *saver;
    bool thawed;
};

static void set_phase(struct ck_saver *s, enum ck_save_phase p)
{
    pthread_mutex_lock(&s->lock);
    s->current.phase = p;
    pthread_mutex_unlock(&s->lock);
}

static void on_read_done(void *ctx)
{
    struct run *r = ctx;
    if (!r->thawed) /* no snapshot: the gate stayed closed while save/ was read */
        ck_area_thaw(r->saver->cfg.area);
    r->thawed = true;
    set_phase(r->saver, CK_PHASE_COMMITTING);
}

static void notify_all(const struct job *j, bool snapshot, ck_rc rc, const char *msg)
{
    for (size_t i = 0; i < j->nwaiters; i++) {
        ck_save_notify fn = snapshot ? j->waiters[i].on_snapshot : j->waiters[i].on_done;
        if (fn)
            fn(j->waiters[i].ctx, rc, msg);
    }
}

static void finish_report(struct ck_saver *s, ck_rc rc, const struct ck_err *err,
                          const struct ck_save_result *res, double t0)
{
    pthread_mutex_lock(&s->lock);
    struct ck_save_report *c = &s->current;
    c->seconds = ck_now() - t0;
    c->kind = res->kind;
    c->entries = res->entries;
    c->bytes = res->bytes;
    c->compressed = res->compressed;
    c->reused = res->reuse.reused_bytes;
    snprintf(c->reuse_note, sizeof(c->reuse_note), "%s", res->reuse_note);
    c->files_known = res->reuse_note[0] == '\0' && res->kind == CK_KIND_TAR;
    c->files_reused = res->reuse.files_reused;
    c->files_not_read = res->reuse.placed_files;
    c->files_short = res->reuse.files_short;
    c->files_changed = res->reuse.files_changed;
    c->skipped = res->skipped;
    c->excluded = res->excluded;
    snprintf(c->warnings, sizeof(c->warnings), "%s", res->skipped_names);
    c->phase = rc ? CK_PHASE_FAILED : CK_PHASE_DONE;
    snprintf(c->error, sizeof(c->error), "%s", rc ? err->msg : "");
    if (rc)
        s->saves_failed++;
    else
        s->saves_ok++;
    s->last = *c;
    s->has_last = true;
    s->running = false;
    pthread_mutex_unlock(&s->lock);
}

/* Closes the gate, takes the snapshot and (if it could be taken) opens the gate again.
 * Returns the change_seq at the snapshot point; *snap is NULL when the save must read
 * save/ itself with the gate closed (the snapshot could not be made). */
static uint64_t take_snapshot(struct ck_saver *s, const struct job *j, const char *names,
                              struct ck_snap **snap, int *dirfd)
{
    struct ck_area *a = s->cfg.area;
    unsigned left = 0;
    double w0 = ck_now();
    pthread_mutex_lock(&s->lock); /* .status names the files while the save waits for them */
    snprintf(s->current.waited_for, sizeof(s->current.waited_for), "%s", names);
    pthread_mutex_unlock(&s->lock);
    uint64_t seq = ck_area_freeze(a, s->cfg.save_wait_s, &left);
    double waited = ck_now() - w0;
    if (waited >= 0.1)
        ck_log_info("save %llu: waited %.1f s for files open for writing (%s)",
                    (unsigned long long)j->generation, waited, names[0] ? names : "unnamed");
    if (left)
        ck_log_warn("save %llu: %u file(s) still open for writing after %.0f s; saving them "
                    "as they are now",
                    (unsigned long long)j->generation, left, s->cfg.save_wait_s);
    double t0 = ck_now();
    struct ck_err err;
    *snap = NULL;
    *dirfd = a->dirfd;
    if (a->plain) {
        /* nothing passes a plain area's gate: the save reads the files as they are */
    } else if (ck_snap_take(a->dirfd, a->cache_dirfd, snap, dirfd, &err) == CK_OK) {
        ck_area_set_snap(a, *snap);
        ck_area_thaw(a);
        ck_log_debug("save %llu: snapshot in %.1f ms", (unsigned long long)j->generation,
                     (ck_now() - t0) * 1e3);
    } else {
        ck_log_warn("save %llu: %s; writers wait until the save has read save/",
                    (unsigned long long)j->generation, err.msg);
    }
    pthread_mutex_lock(&s->lock);
    s->current.writers_left = left;
    s->current.waited_s = waited;
    s->current.snapshot_ms = (ck_now() - t0) * 1e3;
    s->current.phase = CK_PHASE_ARCHIVING;
    pthread_mutex_unlock(&s->lock);
    return seq;
}

static void log_result(const struct job *j, ck_rc rc, const struct ck_err *err,
                       const struct ck_save_result *res, double secs)
{
    if (rc)
        ck_log_error("save %llu failed after %.2f s: %s", (unsigned long long)j->generation, secs,
                     err->msg);
    else
        ck_log_info("save %llu done: %s, %llu bytes -> %llu bytes (%llu of them reused; files: "
                    "%llu reused (%llu of them not read), %llu unchanged but sent, %llu "
                    "changed; %llu blocks not compressed) in %.2f s (%.1f MB/s)",
                    (unsigned long long)j->generation, ck_object_kind_name(res->kind),
                    (unsigned long long)res->bytes, (unsigned long long)res->compressed,
                    (unsigned long long)res->reuse.reused_bytes,
                    (unsigned long long)res->reuse.files_reused,
                    (unsigned long long)res->reuse.placed_files,
                    (unsigned long long)res->reuse.files_short,
                    (unsigned long long)res->reuse.files_changed,
                    (unsigned long long)(res->reuse.claimed - res->reuse.claimed_compressed), secs,
                    secs > 0 ? (double)res->bytes / 1e6 / secs : 0.0);
}

/* The plan's superseded hook: a request queued after this save began. */
static bool newer_queued(void *ctx)
{
    struct ck_saver *s = ctx;
    pthread_mutex_lock(&s->lock);
    bool q = s->queued.active;
    pthread_mutex_unlock(&s->lock);
    return q;
}

/* The object whose members a plain save may copy (pipeline.h ck_save_extra.reuse_from):
 * this saver's last object at dest, else the one cfg.previous opens (*owned, closed by the
 * caller after the save; opening makes no request), else none. Whether dest can copy from
 * it at all is the pipeline's to decide (and to say in .status). */
static struct ck_store *reuse_source(struct ck_saver *s, bool plain, struct ck_store **owned)
{
    *owned = NULL;
    if (!plain)
        return NULL;
    if (s->saved_tar)
        return s->cfg.dest;
    if (!s->cfg.previous)
        return NULL;
    struct ck_err err;
    ck_err_clear(&err);
    if (s->cfg.previous(s->cfg.previous_ctx, owned, &err) != CK_OK) {
        ck_log_warn("save: not reusing the previous checkpoint's members: %s", err.msg);
        *owned = NULL;
    }
    return *owned;
}

static bool area_unchanged(void *ctx, dev_t dev, ino_t ino, uint64_t seq)
{
    return ck_area_unchanged_since(ctx, dev, ino, seq);
}

/* The files a save that copies from reuse_from need not read: those of this saver's last
 * object whose inodes have not changed since (known.h), or NULL. The pipeline uses them
 * only if reuse_from's object is that one (its member table's digest). Called once the
 * snapshot is taken, so a change before it is seen. */
static const struct ck_known *known_files(struct ck_saver *s, const struct ck_store *reuse_from)
{
    if (!s->known || !reuse_from)
        return NULL;
    ck_known_keep(s->known, area_unchanged, s->cfg.area);
    return s->known;
}

/* After a save: a good one replaces the record with its own (or none), since the object
 * at dest is new and the area forgot the changes before seq; a failed one leaves dest as
 * it was, and so the record. */
static void remember_known(struct ck_saver *s, ck_rc rc, struct ck_save_result *res, uint64_t seq)
{
    if (rc) {
        ck_known_free(res->known);
    } else {
        ck_known_free(s->known);
        s->known = res->known;
        if (s->known)
            s->known->seq = seq;
    }
    res->known = NULL;
}

/* Ends the snapshot (or the closed gate) of a save. */
static void release_tree(struct ck_saver *s, const struct run *r, struct ck_snap *snap)
{
    if (!r->thawed)
        ck_area_thaw(s->cfg.area);
    if (snap) {
        ck_area_set_snap(s->cfg.area, NULL);
        ck_snap_free(snap);
    }
}

static void run_job(struct ck_saver *s, const struct job *j)
{
    double t0 = ck_now();
    struct ck_err err;
    ck_err_clear(&err);
    ck_log_info("save %llu (%s) started", (unsigned long long)j->generation,
                ck_save_trigger_name(j->trigger));
    struct ck_snap *snap;
    int dirfd;
    /* An async request returns at the snapshot, or at once when the save must first wait
     * for files open for writing: the caller never waits for other writers. */
    char names[CK_ERR_MSG_MAX]; /* the files open for writing now: the save waits for them */
    ck_area_writer_names(s->cfg.area, names, sizeof(names));
    bool early = ck_area_writers(s->cfg.area) > 0;
    if (early)
        notify_all(j, true, CK_OK, NULL);
    uint64_t seq = take_snapshot(s, j, names, &snap, &dirfd);
    if (!early)
        notify_all(j, true, CK_OK, NULL);

    struct run r = {s, snap != NULL};
    struct ck_save_result res = {0};
    const struct ck_save_target *t = s->cfg.target;
    struct ck_save_plan plan = {
        .store = s->cfg.dest, .superseded = newer_queued, .superseded_ctx = s};
    struct ck_store *prev;
    plan.extra.reuse_from = reuse_source(s, !t, &prev);
    ck_rc rc = t ? t->begin(t->ctx, &plan, &err) : CK_OK; /* a target sets its reuse_from */
    bool began = t && !rc;
    plan.extra.known = known_files(s, plan.extra.reuse_from);
    plan.extra.note_known = !s->cfg.area->plain;
    if (!rc)
        rc = ck_save_pipeline_run(dirfd, snap, plan.store, &s->cfg.codec, &s->cfg.excludes,
                                  &plan.extra, on_read_done, &r, &s->progress, &res, &err);
    if (began)
        t->end(t->ctx, &plan, rc);
    ck_store_close(prev);
    release_tree(s, &r, snap);
    if (!rc)
        ck_area_mark_saved(s->cfg.area, seq);
    remember_known(s, rc, &res, seq);
    if (!t && !rc)
        s->saved_tar = res.kind == CK_KIND_TAR;
    log_result(j, rc, &err, &res, ck_now() - t0);
    finish_report(s, rc, &err, &res, t0);
    notify_all(j, false, rc, rc ? err.msg : NULL);
}

/* Whether an autosave is due now; called with s->lock not held. */
static bool autosave_due(struct ck_saver *s)
{
    const struct ck_saver_cfg *c = &s->cfg;
    if (c->autosave_quiet_s <= 0 && c->autosave_every_s <= 0)
        return false;
    double now = ck_now(), quiet;
    bool dirty;
    ck_area_quiet(c->area, now, &quiet, &dirty);
    if (!dirty)
        return false;
    if (c->autosave_quiet_s > 0 && quiet >= c->autosave_quiet_s)
        return true;
    pthread_mutex_lock(&s->lock);
    double since = now - s->last_start;
    pthread_mutex_unlock(&s->lock);
    return c->autosave_every_s > 0 && since >= c->autosave_every_s;
}

static void wait_for_work(struct ck_saver *s)
{
    bool autosave = s->cfg.autosave_quiet_s > 0 || s->cfg.autosave_every_s > 0;
    while (!s->queued.active && !s->stopping) {
        if (!autosave) {
            pthread_cond_wait(&s->cond, &s->lock);
            continue;
        }
        struct timespec ts = ck_deadline_after(1);
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        if (s->queued.active || s->stopping)
            break;
        pthread_mutex_unlock(&s->lock);
        bool due = autosave_due(s);
        pthread_mutex_lock(&s->lock);
        if (due && !s->queued.active) {
            s->queued.active = true;
            s->queued.generation = s->next_generation++;
            s->queued.nwaiters = 0;
            s->queued.trigger = CK_TRIGGER_AUTOSAVE;
        }
    }
}

static void *saver_main(void *arg)
{
    struct ck_saver *s = arg;
    struct job j = {0};
    pthread_mutex_lock(&s->lock);
    for (;;) {
        wait_for_work(s);
        if (!s->queued.active)
            break; /* stopping, nothing queued */
        /* Take the queued job; its waiter array moves to j. */
        struct waiter *spare = j.waiters;
        size_t spare_cap = j.cap;
        j = s->queued;
        s->queued = (struct job){.waiters = spare, .cap = spare_cap};
        s->running = true;
        s->in_job = true;
        s->last_start = ck_now();
        memset(&s->current, 0, sizeof(s->current));
        s->current.generation = j.generation;
        s->current.trigger = j.trigger;
        s->current.phase = CK_PHASE_WAITING_WRITERS;
        s->current.started_wall = ck_wall_now();
        atomic_store(&s->progress.bytes_in, 0);
        atomic_store(&s->progress.bytes_out, 0);
        pthread_mutex_unlock(&s->lock);
        run_job(s, &j);
        pthread_mutex_lock(&s->lock);
        s->in_job = false; /* every waiter of that save has been answered */
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    free(j.waiters);
    return NULL;
}

ck_rc ck_saver_start(const struct ck_saver_cfg *cfg, struct ck_saver **out, struct ck_err *err)
{
    struct ck_saver *s = calloc(1, sizeof(*s));
    if (!s)
        return ck_fail(err, CK_ENOMEM, "starting the saver: out of memory");
    s->cfg = *cfg;
    s->next_generation = 1;
    pthread_mutex_init(&s->lock, NULL);
    ck_cond_init_monotonic(&s->cond);
    s->last_start = ck_now();
    int e = pthread_create(&s->thread, NULL, saver_main, s);
    if (e) {
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
        return ck_fail_errno(err, e, "starting the saver thread");
    }
    *out = s;
    return CK_OK;
}

void ck_saver_status(struct ck_saver *s, struct ck_saver_status *out)
{
    pthread_mutex_lock(&s->lock);
    out->running = s->running;
    out->queued = s->queued.active;
    out->current = s->current;
    if (s->running) {
        out->current.seconds = ck_now() - s->last_start;
        out->current.bytes = atomic_load(&s->progress.bytes_in);
        out->current.compressed = atomic_load(&s->progress.bytes_out);
    }
    out->has_last = s->has_last;
    out->last = s->last;
    out->saves_ok = s->saves_ok;
    out->saves_failed = s->saves_failed;
    pthread_mutex_unlock(&s->lock);
}

void ck_saver_wait_idle(struct ck_saver *s)
{
    pthread_mutex_lock(&s->lock);
    while (s->in_job || s->queued.active)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

struct sync_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    ck_rc rc;
    char msg[CK_ERR_MSG_MAX];
};

static void sync_done(void *ctx, ck_rc rc, const char *msg)
{
    struct sync_wait *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    w->rc = rc;
    snprintf(w->msg, sizeof(w->msg), "%s", msg ? msg : "");
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

ck_rc ck_saver_save_sync(struct ck_saver *s, enum ck_save_trigger trigger, struct ck_err *err)
{
    struct sync_wait w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    ck_saver_request(s, trigger, NULL, sync_done, &w);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    return w.rc ? ck_fail(err, w.rc, "%s", w.msg) : CK_OK;
}

void ck_saver_stop(struct ck_saver *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    free(s->queued.waiters);
    ck_known_free(s->known);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}
