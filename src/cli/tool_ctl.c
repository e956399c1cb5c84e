/*
 * tool_ctl.c - `ckptfs save|status|wait MOUNTPOINT`: a running mount driven through its
 * control files, so these work from any process (and any language) the same way.
 *
 * save: on a FUSE mount the close of .save returns when the save is durable (SPEC 2); a
 * thread blocks in it while this one shows progress from .status. On a no-FUSE mount
 * .save is a plain file watched with inotify: we read .status first, touch .save, and wait
 * for a save that started after the touch (daemon/nofuse.c writes .status before it looks at
 * the event that starts a save, so the generation we wait for is exact).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/ctl.h"
#include "cli/progress.h"
#include "cli/tools.h"
#include "util/clock.h"

/* The write and close of .save that make a save, on a thread: the write of anything but
 * "async" is answered when the save is durable, the close after "async" at the snapshot. */
struct closer {
    int fd;
    const char *word;
    int err; /* errno of the write or the close, or 0 */
    atomic_bool done;
};

static void *close_thread(void *arg)
{
    struct closer *c = arg;
    size_t n = strlen(c->word);
    c->err = write(c->fd, c->word, n) == (ssize_t)n ? 0 : errno ? errno : EIO;
    if (close(c->fd) != 0 && !c->err)
        c->err = errno;
    atomic_store(&c->done, true);
    return NULL;
}

static bool is_nofuse(const char *doc)
{
    char mode[32];
    ck_ctl_str(doc, "mode", mode, sizeof(mode));
    return strcmp(mode, "no-fuse") == 0;
}

static void show_progress(const char *mnt, struct ck_progress *p)
{
    char doc[CK_STATUS_MAX];
    struct ck_err e;
    if (ck_ctl_read(mnt, doc, sizeof(doc), &e) == CK_OK)
        ck_progress_update(p, (uint64_t)ck_ctl_num(doc, "save.current.bytes", 0), 0);
}

static int save_fuse(const char *mnt, bool async)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/.save", mnt);
    struct closer c = {.fd = open(p, O_WRONLY | O_CLOEXEC), .word = async ? "async" : "sync\n"};
    if (c.fd < 0) {
        fprintf(stderr, "ckptfs save: opening %s: %s\n", p, strerror(errno));
        return 1;
    }
    pthread_t t;
    struct ck_progress pr;
    ck_progress_init(&pr, "save");
    if (pthread_create(&t, NULL, close_thread, &c) != 0)
        close_thread(&c);
    else {
        while (!atomic_load(&c.done)) {
            usleep(100 * 1000);
            show_progress(mnt, &pr);
        }
        pthread_join(t, NULL);
    }
    ck_progress_end(&pr);
    if (c.err) {
        fprintf(stderr, "ckptfs save: the save failed: %s (see ckptfs status %s)\n",
                strerror(c.err), mnt);
        return 1;
    }
    return 0;
}

static int touch(const char *mnt)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/.save", mnt);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || close(fd) != 0) { /* the close of a writable handle is the event */
        fprintf(stderr, "ckptfs save: touching %s: %s\n", p, strerror(errno));
        return 1;
    }
    return 0;
}

static int save_nofuse(const char *mnt, const char *before)
{
    double running = ck_ctl_num(before, "save.current.generation", 0);
    double last = ck_ctl_num(before, "save.last.generation", 0);
    double want = (running > 0 ? running : last) + 1;
    char doc[CK_STATUS_MAX], result[32], msg[CK_ERR_MSG_MAX];
    struct ck_err err;
    struct ck_progress pr;
    if (touch(mnt))
        return 1;
    ck_progress_init(&pr, "save");
    for (;;) {
        usleep(50 * 1000);
        if (ck_ctl_read(mnt, doc, sizeof(doc), &err)) {
            fprintf(stderr, "ckptfs save: %s\n", err.msg);
            return 1;
        }
        if (ck_ctl_num(doc, "save.last.generation", 0) >= want)
            break;
        ck_progress_update(&pr, (uint64_t)ck_ctl_num(doc, "save.current.bytes", 0), 0);
    }
    ck_progress_end(&pr);
    ck_ctl_str(doc, "save.last.result", result, sizeof(result));
    if (strcmp(result, "ok") == 0)
        return 0;
    ck_ctl_str(doc, "save.last.error", msg, sizeof(msg));
    fprintf(stderr, "ckptfs save: the save failed: %s\n", msg);
    return 1;
}

static void print_last(const char *mnt)
{
    char doc[CK_STATUS_MAX], b[32], c[32];
    struct ck_err err;
    if (ck_ctl_read(mnt, doc, sizeof(doc), &err))
        return;
    ck_fmt_bytes((uint64_t)ck_ctl_num(doc, "save.last.bytes", 0), b, sizeof(b));
    ck_fmt_bytes((uint64_t)ck_ctl_num(doc, "save.last.compressed_bytes", 0), c, sizeof(c));
    fprintf(stderr, "saved: generation %.0f, %s -> %s in %.2f s\n",
            ck_ctl_num(doc, "save.last.generation", 0), b, c,
            ck_ctl_num(doc, "save.last.seconds", 0));
}

int ck_tool_save(int argc, char **argv)
{
    bool async = argc == 3 && strcmp(argv[1], "--async") == 0;
    if (argc != 2 + async) {
        fputs("usage: ckptfs save [--async] MOUNTPOINT\n", stderr);
        return 2;
    }
    const char *mnt = argv[argc - 1];
    char doc[CK_STATUS_MAX];
    struct ck_err err;
    if (ck_ctl_read(mnt, doc, sizeof(doc), &err)) {
        fprintf(stderr, "ckptfs save: %s\n", err.msg);
        return 1;
    }
    int rc = is_nofuse(doc) ? save_nofuse(mnt, doc) : save_fuse(mnt, async);
    if (rc == 0 && !async)
        print_last(mnt);
    return rc;
}

/* Whether the wait is over: no save running or queued; with committed, also the
 * generation of this rank's last durable shard committed by rank 0 (docs/world.md). */
static int wait_done(const char *doc, bool committed)
{
    char cur[16], queued[16], world[8];
    ck_ctl_str(doc, "save.current", cur, sizeof(cur));
    ck_ctl_str(doc, "save.queued", queued, sizeof(queued));
    if (cur[0] || strcmp(queued, "true") == 0)
        return 0;
    if (!committed)
        return 1;
    ck_ctl_str(doc, "world", world, sizeof(world));
    if (!world[0])
        return -1;
    char result[16];
    ck_ctl_str(doc, "save.last.result", result, sizeof(result));
    if (strcmp(result, "failed") == 0)
        return -3; /* this rank's own last save failed */
    double durable = ck_ctl_num(doc, "world.durable", 0);
    if (durable > 0 && ck_ctl_num(doc, "world.committed", 0) >= durable)
        return 1;
    if (durable > 0 && ck_ctl_num(doc, "world.failed", 0) >= durable)
        return -2; /* rank 0 failed it, or moved on without it */
    return 0;
}

/* --committed waits at most this long unless --timeout says otherwise: past rank 0's
 * default --world-timeout (600 s), and not forever. */
#define WAIT_COMMITTED_DEFAULT_S 900

/* Says why a wait ends without success (wait_done's negative answers). */
static void say_failed(const char *doc, const char *mnt, int done)
{
    if (done == -1)
        fprintf(stderr, "ckptfs wait: --committed: %s is not a multi-rank mount\n", mnt);
    if (done == -2)
        fprintf(stderr,
                "ckptfs wait: --committed: generation %.0f failed on rank 0 (a rank did not "
                "save it in time, or rank 0 moved on); the last committed is %.0f\n",
                ck_ctl_num(doc, "world.failed", 0), ck_ctl_num(doc, "world.committed", 0));
    if (done == -3)
        fprintf(stderr,
                "ckptfs wait: --committed: this rank's last save failed (ckptfs status %s); "
                "the last committed generation is %.0f\n",
                mnt, ck_ctl_num(doc, "world.committed", 0));
}

/* [--timeout SECONDS] [--committed] MOUNTPOINT; false on a usage error. */
static bool wait_args(int argc, char **argv, double *timeout, bool *committed)
{
    int i = 1;
    for (; i < argc - 1; i++) {
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc - 1)
            *timeout = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--committed") == 0)
            *committed = true;
        else
            break;
    }
    if (i == argc - 1)
        return true;
    fputs("usage: ckptfs wait [--timeout SECONDS] [--committed] MOUNTPOINT\n", stderr);
    return false;
}

int ck_tool_wait(int argc, char **argv)
{
    double timeout = -1;
    bool committed = false;
    if (!wait_args(argc, argv, &timeout, &committed))
        return 2;
    const char *mnt = argv[argc - 1];
    char doc[CK_STATUS_MAX];
    struct ck_err err;
    if (committed && timeout < 0)
        timeout = WAIT_COMMITTED_DEFAULT_S;
    double end = ck_now() + timeout;
    for (;;) {
        if (ck_ctl_read(mnt, doc, sizeof(doc), &err)) {
            fprintf(stderr, "ckptfs wait: %s\n", err.msg);
            return 1;
        }
        int done = wait_done(doc, committed);
        say_failed(doc, mnt, done);
        if (done)
            return done > 0 ? 0 : 1;
        if (timeout >= 0 && ck_now() >= end) {
            fprintf(stderr, "ckptfs wait: %s after %.0f s\n",
                    committed ? "the generation is not committed" : "a save still runs", timeout);
            return 1;
        }
        usleep(100 * 1000);
    }
}
