/* nofuse.c - the no-FUSE server: eager restore, inotify on .save, saves; see nofuse.h. */
#include "cli/nofuse.h"

#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/nofuse_state.h"
#include "cli/proc.h"
#include "cli/tools.h"
#include "restore/chain.h"
#include "save/pipeline.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"

/* FNV-1a over names, sizes, mtimes, modes and inodes of everything under save/. */
static uint64_t fingerprint(const char *dir)
{
    char *paths[] = {(char *)dir, NULL};
    FTS *f = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    uint64_t h = 1469598103934665603ull;
    if (!f)
        return 0;
    FTSENT *e;
    while ((e = fts_read(f))) {
        if (e->fts_info == FTS_DP || !e->fts_statp)
            continue;
        const struct stat *st = e->fts_statp;
        uint64_t v[] = {(uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec,
                        (uint64_t)st->st_mtim.tv_nsec, st->st_mode, st->st_ino};
        for (const char *c = e->fts_path; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
            h = (h ^ v[i]) * 1099511628211ull;
    }
    fts_close(f);
    return h ? h : 1;
}

static void save_path(const struct nofuse *n, char *out, size_t len)
{
    snprintf(out, len, "%s/save", n->mnt);
}

static bool is_dirty(const struct nofuse *n)
{
    char p[PATH_MAX + 8];
    save_path(n, p, sizeof(p));
    return fingerprint(p) != n->saved_fp;
}

static ck_rc open_dir(int at, const char *name, int *fd, struct ck_err *err)
{
    if (mkdirat(at, name, 0755) != 0 && errno != EEXIST)
        return ck_fail_errno(err, errno, "creating %s", name);
    *fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    return *fd < 0 ? ck_fail_errno(err, errno, "opening %s", name) : CK_OK;
}

static ck_rc setup_cache(struct nofuse *n, struct ck_err *err)
{
    ck_rc rc;
    if (n->o->cache_dir) {
        rc = ck_mkdir_p(n->o->cache_dir, 0700, err);
        snprintf(n->cache, sizeof(n->cache), "%s", n->o->cache_dir);
    } else {
        rc = ck_scratch_make(n->cache, sizeof(n->cache), err);
        n->cache_created = !rc;
    }
    if (!rc)
        rc = ck_lock_dir(n->cache, &n->lockfd, err); /* one server per cache dir */
    int cfd = rc ? -1 : open(n->cache, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!rc && cfd < 0)
        rc = ck_fail_errno(err, errno, "opening %s", n->cache);
    if (!rc)
        rc = open_dir(cfd, "work", &n->workfd, err);
    if (cfd >= 0)
        close(cfd);
    return rc;
}

static ck_rc setup(struct nofuse *n, struct ck_err *err)
{
    ck_rc rc = ck_mkdir_p(n->o->mountpoint, 0755, err);
    if (!rc && !realpath(n->o->mountpoint, n->mnt))
        rc = ck_fail_errno(err, errno, "mountpoint %s", n->o->mountpoint);
    if (!rc && (n->mntfd = open(n->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = ck_fail_errno(err, errno, "opening %s", n->mnt);
    if (!rc)
        rc = open_dir(n->mntfd, "save", &n->savefd, err);
    if (!rc)
        rc = open_dir(n->mntfd, "prev", &n->prevfd, err);
    if (!rc)
        rc = ck_empty_dir(n->prevfd, "prev/", err);
    if (!rc)
        rc = setup_cache(n, err);
    ck_store_env_default(&n->env);
    n->env.no_sign_request = n->o->no_sign_request;
    if (!rc)
        rc = ck_store_open(n->o->dest, &n->env, &n->dest, err);
    if (!rc && n->o->world > 1) {
        struct ck_world_cfg wc = {n->o->rank, n->o->world, n->o->world_id, n->o->dest,
                                  n->dest,    &n->env,     n->cache,       n->o->world_timeout_s};
        rc = ck_world_new(&wc, &n->world, err);
    }
    unlinkat(n->mntfd, ".save", 0);
    return rc;
}

static ck_rc restore_prev(struct nofuse *n, struct ck_err *err)
{
    struct ck_fetch_cfg c = {n->o->srcs, n->o->nsrc, &n->env, n->workfd, n->prevfd, NULL, NULL};
    ck_rc rc = ck_fetch_to_dir(&c, &n->prev, err);
    if (rc)
        snprintf(n->prev_error, sizeof(n->prev_error), "%s", err->msg);
    else
        ck_log_info("restored %s into %s/prev: %s, %llu entries",
                    n->prev.source[0] ? n->prev.source : "nothing", n->mnt,
                    ck_object_kind_name(n->prev.kind), (unsigned long long)n->prev.stats.entries);
    return rc;
}

static void write_metrics(struct nofuse *n)
{
    struct ck_metrics *m = &n->metrics;
    struct ck_err err;
    if (!n->o->metrics_path)
        return;
    m->saves_ok = n->saves_ok;
    m->saves_failed = n->saves_failed;
    m->load_bytes = n->prev.object_bytes;
    m->load_seconds = n->prev.seconds;
    m->load_state = n->prev_error[0] ? "failed" : "ready";
    m->cache_dir = n->mnt;
    if (ck_metrics_write(n->o->metrics_path, m, &err))
        ck_log_warn("%s", err.msg);
}

static ck_rc save_once(struct nofuse *n, enum ck_save_trigger trig)
{
    char p[PATH_MAX + 8];
    save_path(n, p, sizeof(p));
    struct ck_save_report *r = &n->cur;
    memset(r, 0, sizeof(*r));
    r->generation = n->last.generation + 1;
    r->trigger = trig;
    r->phase = CK_PHASE_ARCHIVING;
    r->started_wall = ck_wall_now();
    n->running = true;
    ck_nofuse_write_status(n, true);
    uint64_t fp = fingerprint(p);
    double t0 = ck_now();
    struct ck_save_progress prog = {0};
    struct ck_save_result res = {0};
    struct ck_err err;
    ck_err_clear(&err);
    const struct ck_save_target *t = n->world ? ck_world_target(n->world) : NULL;
    struct ck_save_plan plan = {.store = n->dest};
    struct ck_save_excludes ex = {n->o->excludes, n->o->nexclude};
    ck_rc rc = t ? t->begin(t->ctx, &plan, &err) : CK_OK;
    if (!rc)
        rc = ck_save_pipeline_run(n->savefd, NULL, plan.store, &n->o->codec, &ex,
                                  t ? &plan.extra : NULL, NULL, NULL, &prog, &res, &err);
    if (t && plan.priv)
        t->end(t->ctx, &plan, rc);
    r->seconds = ck_now() - t0;
    r->kind = res.kind;
    r->entries = res.entries;
    r->bytes = res.bytes;
    r->compressed = res.compressed;
    r->phase = rc ? CK_PHASE_FAILED : CK_PHASE_DONE;
    snprintf(r->error, sizeof(r->error), "%s", rc ? err.msg : "");
    if (rc) {
        n->saves_failed++;
        ck_log_error("save %llu failed: %s", (unsigned long long)r->generation, err.msg);
    } else {
        n->saves_ok++;
        n->saved_fp = fp;
        n->metrics.save_bytes += res.bytes;
        n->metrics.save_compressed += res.compressed;
        n->metrics.last_success_wall = ck_wall_now();
        ck_log_info("save %llu (%s) to %s: %llu bytes in %.2f s", (unsigned long long)r->generation,
                    ck_save_trigger_name(trig), ck_store_uri(n->dest),
                    (unsigned long long)res.compressed, r->seconds);
    }
    n->last = *r;
    n->running = false;
    n->metrics.last_save_seconds = r->seconds;
    write_metrics(n);
    ck_nofuse_write_status(n, is_dirty(n));
    return rc;
}

/* Reads every pending inotify event; true if one was about .save. */
static bool drain_events(int fd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool hit = false;
    ssize_t len;
    while ((len = read(fd, buf, sizeof(buf))) > 0)
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->len && strcmp(ev->name, ".save") == 0)
                hit = true;
            p += sizeof(*ev) + ev->len;
        }
    return hit;
}

static void refresh_world(struct nofuse *n)
{
    if (!n->world)
        return;
    struct ck_world_status ws;
    ck_world_status(n->world, &ws);
    if (ws.committed != n->world_committed) {
        n->world_committed = ws.committed;
        ck_nofuse_write_status(n, is_dirty(n));
    }
}

/* Serves until a terminating signal; returns the exit status. */
static int loop(struct nofuse *n, int sigfd, int infd)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = sigfd, .events = POLLIN}, {.fd = infd, .events = POLLIN}};
        /* A rank of a world rewrites .status when it learns of a commit (world.h). */
        if (poll(p, 2, n->world ? 1000 : -1) < 0 && errno != EINTR)
            return 1;
        refresh_world(n);
        bool k;
        int sig = 0;
        while (p[0].revents && (sig = ck_sig_read(sigfd, &k)) == SIGCHLD)
            ;
        if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT) {
            ck_log_info("signal %d: %s", sig, is_dirty(n) ? "saving" : "nothing to save");
            if (is_dirty(n) && n->world) /* as the FUSE mount: docs/world.md */
                ck_log_warn("unsaved changes are not saved at exit in a multi-rank mount");
            if (!is_dirty(n) || n->world || !ck_options_exit_save(n->o))
                return 0;
            return save_once(n, CK_TRIGGER_UNMOUNT) ? 1 : 0;
        }
        if (p[1].revents && drain_events(infd))
            save_once(n, CK_TRIGGER_CONTROL);
    }
}

/* --carry-forward after a run that saved nothing (restore/chain.h); 1 on failure. */
static int carry_forward(struct nofuse *n)
{
    if (!n->o->carry_forward || n->saves_ok > 0)
        return 0;
    struct ck_err err;
    ck_err_clear(&err);
    ck_rc rc = ck_chain_carry_forward(n->o->srcs, n->o->nsrc, n->o->dest, n->dest, &n->env, &err);
    if (rc)
        ck_log_error("%s", err.msg);
    return rc ? 1 : 0;
}

static void teardown(struct nofuse *n)
{
    ck_world_free(n->world);
    if (n->dest)
        ck_store_close(n->dest);
    int fds[] = {n->mntfd, n->savefd, n->prevfd, n->workfd, n->lockfd};
    for (size_t i = 0; i < 5; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (n->cache_created)
        ck_scratch_remove(n->cache);
}

int ck_nofuse_serve(const struct ck_options *o)
{
    struct nofuse n = {.o = o, .mntfd = -1, .savefd = -1, .prevfd = -1, .workfd = -1, .lockfd = -1};
    struct ck_err err;
    sigset_t old;
    int sigfd = -1, infd = -1, status = 1;
    ck_err_clear(&err);
    n.started_wall = ck_wall_now();
    ck_rc rc = ck_sig_open(&old, &sigfd, &err);
    if (!rc)
        rc = setup(&n, &err);
    if (!rc)
        rc = restore_prev(&n, &err);
    if (!rc && (infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
        rc = ck_fail_errno(&err, errno, "inotify");
    if (!rc && inotify_add_watch(infd, n.mnt, IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
        rc = ck_fail_errno(&err, errno, "watching %s", n.mnt);
    if (!rc) {
        char p[PATH_MAX + 8];
        save_path(&n, p, sizeof(p));
        n.saved_fp = fingerprint(p); /* what is there at the start counts as saved */
        ck_nofuse_write_status(&n, false);
        write_metrics(&n);
        ck_log_info("no-FUSE mode: %s/prev restored, save into %s/save, touch %s/.save", n.mnt,
                    n.mnt, n.mnt);
        status = loop(&n, sigfd, infd);
        status |= carry_forward(&n);
    } else {
        fprintf(stderr, "ckptfs: %s\n", err.msg);
    }
    if (infd >= 0)
        close(infd);
    if (sigfd >= 0)
        close(sigfd);
    teardown(&n);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return status;
}
