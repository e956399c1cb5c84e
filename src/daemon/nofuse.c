/* nofuse.c - the no-FUSE server: the daemon's parts around a plain save area, prev/
 * restored eagerly, .save watched with inotify; see nofuse.h. */
#include "daemon/nofuse.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "restore/fetch.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/signals.h"

struct nofuse {
    struct ck_daemon d;
    char mnt[PATH_MAX];
    int mntfd;
    pthread_mutex_t status_lock; /* one writer of .status at a time (main and saver thread) */
    uint64_t world_committed;    /* what .status last showed of the world's commits */
};

/* Rewrites MOUNTPOINT/.status atomically (a temp file renamed over it). */
static void write_status(struct nofuse *n)
{
    struct ck_buf b;
    ck_buf_init(&b, 64 * 1024);
    pthread_mutex_lock(&n->status_lock);
    if (ck_daemon_status_json(&n->d, &b) == CK_OK) {
        int fd = openat(n->mntfd, ".status.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, b.data, b.len);
            close(fd);
            if (w == (ssize_t)b.len)
                renameat(n->mntfd, ".status.tmp", n->mntfd, ".status");
        }
    }
    pthread_mutex_unlock(&n->status_lock);
    ck_buf_free(&b);
}

/* The saver's callbacks (saver.h): .status follows each save's start and end. */
static void on_save_event(void *ctx, ck_rc rc, const char *msg)
{
    (void)rc;
    (void)msg;
    write_status(ctx);
}

static ck_rc make_dir(int at, const char *name, struct ck_err *err)
{
    if (mkdirat(at, name, 0755) != 0 && errno != EEXIST)
        return ck_fail_errno(err, errno, "creating %s", name);
    return CK_OK;
}

/* MOUNTPOINT with an empty prev/ (a stale .save from an earlier run removed). */
static ck_rc setup_mountpoint(struct nofuse *n, const char *mountpoint, struct ck_err *err)
{
    ck_rc rc = ck_mkdir_p(mountpoint, 0755, err);
    if (!rc && !realpath(mountpoint, n->mnt))
        rc = ck_fail_errno(err, errno, "mountpoint %s", mountpoint);
    if (!rc && (n->mntfd = open(n->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = ck_fail_errno(err, errno, "opening %s", n->mnt);
    if (!rc) /* save/ is made by the plain save area (ck_daemon_init) */
        rc = make_dir(n->mntfd, "prev", err);
    int prevfd = rc ? -1 : openat(n->mntfd, "prev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!rc && prevfd < 0)
        rc = ck_fail_errno(err, errno, "opening %s/prev", n->mnt);
    if (!rc)
        rc = ck_empty_dir(prevfd, "prev/", err);
    if (prevfd >= 0)
        close(prevfd);
    if (n->mntfd >= 0)
        unlinkat(n->mntfd, ".save", 0);
    return rc;
}

static void eager_status(struct ck_load_status *ls, const struct ck_fetch_result *r, ck_rc rc,
                         const struct ck_err *err)
{
    memset(ls, 0, sizeof(*ls));
    ls->state = rc ? CK_LOAD_FAILED : CK_LOAD_READY;
    ls->kind = r->kind;
    snprintf(ls->source, sizeof(ls->source), "%s", r->source);
    ls->bytes_done = ls->bytes_total = r->object_bytes;
    ls->entries = r->stats.entries;
    ls->seconds = r->seconds;
    snprintf(ls->error, sizeof(ls->error), "%s", rc ? err->msg : "");
}

/* prev/ restored eagerly (restore/fetch.h), the object staged in cache-dir/work. */
static ck_rc restore_prev(struct nofuse *n, struct ck_err *err)
{
    struct ck_daemon *d = &n->d;
    struct ck_fetch_result res = {0};
    int cfd = open(d->cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int workfd = -1, prevfd = openat(n->mntfd, "prev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_rc rc = cfd < 0 ? ck_fail_errno(err, errno, "opening %s", d->cache_dir) : CK_OK;
    if (!rc)
        rc = make_dir(cfd, "work", err);
    if (!rc && (workfd = openat(cfd, "work", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = ck_fail_errno(err, errno, "opening %s/work", d->cache_dir);
    if (!rc && prevfd < 0)
        rc = ck_fail_errno(err, errno, "opening %s/prev", n->mnt);
    struct ck_fetch_cfg c = {
        (const char *const *)d->src_uris, d->nsrc, &d->env, workfd, prevfd, NULL, NULL};
    if (!rc)
        rc = ck_fetch_to_dir(&c, &res, err);
    int fds[] = {cfd, workfd, prevfd};
    for (size_t i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    eager_status(&d->eager, &res, rc, err);
    if (!rc)
        ck_log_info("restored %s into %s/prev: %s, %llu entries",
                    res.source[0] ? res.source : "nothing", n->mnt, ck_object_kind_name(res.kind),
                    (unsigned long long)res.stats.entries);
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

/* A rank of a world rewrites .status when it learns of a commit (world.h). */
static void refresh_world(struct nofuse *n)
{
    if (!n->d.world)
        return;
    struct ck_world_status ws;
    ck_world_status(n->d.world, &ws);
    if (ws.committed != n->world_committed) {
        n->world_committed = ws.committed;
        write_status(n);
    }
}

/* Serves until a terminating signal (then returns 0), or 1 if polling fails. */
static int loop(struct nofuse *n, int sigfd, int infd)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = sigfd, .events = POLLIN}, {.fd = infd, .events = POLLIN}};
        if (poll(p, 2, n->d.world ? 1000 : -1) < 0 && errno != EINTR)
            return 1;
        refresh_world(n);
        bool k;
        int sig = 0;
        while (p[0].revents && (sig = ck_sig_read(sigfd, &k)) == SIGCHLD)
            ;
        if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT) {
            ck_log_info("signal %d: stopping", sig);
            return 0;
        }
        if (p[1].revents && drain_events(infd)) {
            /* .status shows the request before the next event is read: `ckptfs save`
             * waits for the generation after the one it saw (cli/tool_ctl.c) */
            ck_saver_request(n->d.saver, CK_TRIGGER_CONTROL, on_save_event, on_save_event, n);
            write_status(n);
        }
    }
}

static ck_rc start(struct nofuse *n, const struct ck_options *o, int *infd, struct ck_err *err)
{
    ck_rc rc = setup_mountpoint(n, o->mountpoint, err);
    if (!rc)
        rc = ck_daemon_init(&n->d, o, err);
    if (!rc)
        rc = restore_prev(n, err);
    if (!rc)
        rc = ck_daemon_start(&n->d, err);
    if (!rc && (*infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
        rc = ck_fail_errno(err, errno, "inotify");
    if (!rc && inotify_add_watch(*infd, n->mnt, IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
        rc = ck_fail_errno(err, errno, "watching %s", n->mnt);
    return rc;
}

int ck_nofuse_serve(const struct ck_options *o)
{
    struct nofuse n = {.d.lock_fd = -1, .mntfd = -1};
    struct ck_err err;
    sigset_t old;
    int sigfd = -1, infd = -1, status = 1;
    ck_err_clear(&err);
    pthread_mutex_init(&n.status_lock, NULL);
    ck_rc rc = ck_sig_open(&old, &sigfd, &err);
    if (!rc)
        rc = start(&n, o, &infd, &err);
    if (!rc) {
        write_status(&n);
        ck_log_info("no-FUSE mode: %s/prev restored, save into %s/save, touch %s/.save", n.mnt,
                    n.mnt, n.mnt);
        status = loop(&n, sigfd, infd);
        if (ck_daemon_finish(&n.d, &err)) {
            ck_log_error("%s", err.msg);
            status = 1;
        }
        write_status(&n);
    } else {
        fprintf(stderr, "ckptfs: %s\n", err.msg); /* no .status: `ckptfs run` waits for it */
    }
    if (infd >= 0)
        close(infd);
    if (sigfd >= 0)
        close(sigfd);
    ck_daemon_destroy(&n.d);
    if (n.mntfd >= 0)
        close(n.mntfd);
    pthread_mutex_destroy(&n.status_lock);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return status;
}
