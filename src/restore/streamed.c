/* streamed.c - download and extraction overlapped; see streamed.h. */
#include "restore/streamed.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OBJECT_FILE "prev.object"

/* The download, shared by its thread and the extracting thread. */
struct dl {
    const struct ck_streamed_cfg *cfg;
    int fd;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t have;    /* bytes in the file (lock) */
    bool done;        /* the download has ended (lock) */
    atomic_bool stop; /* the extraction needs no more bytes */
    ck_rc rc;         /* the download's result, valid when done (lock) */
    struct ck_err err;
};

static ck_rc dl_write(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    struct dl *d = ctx;
    if (atomic_load(&d->stop) || (d->cfg->cancel && atomic_load(d->cfg->cancel)))
        return ck_fail(err, CK_ECANCELED, "download stopped");
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(d->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ck_fail_errno(err, errno, "writing the downloaded checkpoint to the cache");
        p += n;
        len -= (size_t)n;
        pthread_mutex_lock(&d->lock);
        d->have += (uint64_t)n;
        uint64_t have = d->have;
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->lock);
        if (d->cfg->progress)
            d->cfg->progress(d->cfg->progress_ctx, have);
    }
    return CK_OK;
}

static void *dl_main(void *arg)
{
    struct dl *d = arg;
    struct ck_sink sink = {dl_write, d};
    struct ck_err err;
    ck_err_clear(&err);
    ck_rc rc = ck_store_get(d->cfg->store, 0, CK_STORE_TO_END, &sink, &err);
    pthread_mutex_lock(&d->lock);
    d->rc = rc;
    d->err = err;
    d->done = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

/* objsrc wait: until byte off is in the file or the download ended. */
static ck_rc dl_wait(void *ctx, uint64_t off, struct ck_err *err)
{
    struct dl *d = ctx;
    pthread_mutex_lock(&d->lock);
    while (!d->done && d->have <= off)
        pthread_cond_wait(&d->cond, &d->lock);
    ck_rc rc = d->have > off || d->rc == CK_OK ? CK_OK : ck_fail(err, d->rc, "%s", d->err.msg);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static ck_rc dl_finish(struct dl *d, bool stop, struct ck_err *err)
{
    if (stop)
        atomic_store(&d->stop, true);
    pthread_join(d->thread, NULL);
    if (stop || d->rc == CK_OK)
        return CK_OK;
    return ck_fail(err, d->rc, "%s", d->err.msg);
}

ck_rc ck_streamed_load(const struct ck_streamed_cfg *cfg, enum ck_object_kind *kind,
                       struct ck_extract_stats *st, struct ck_err *err)
{
    struct dl d = {.cfg = cfg};
    d.fd = openat(cfg->work_dirfd, OBJECT_FILE, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (d.fd < 0)
        return ck_fail_errno(err, errno, "creating %s in the cache", OBJECT_FILE);
    pthread_mutex_init(&d.lock, NULL);
    pthread_cond_init(&d.cond, NULL);
    atomic_init(&d.stop, false);
    ck_rc rc = CK_OK;
    if (pthread_create(&d.thread, NULL, dl_main, &d) != 0) {
        rc = ck_fail(err, CK_ENOMEM, "cannot start the download thread");
    } else {
        struct ck_objsrc src = {d.fd, dl_wait, &d};
        rc = ck_extract_src(&src, cfg->prev_dirfd, cfg->limits, &cfg->hooks, kind, st, err);
        /* A tar needs nothing past its end; a payload needs every byte. */
        ck_rc drc = dl_finish(&d, rc != CK_OK, err);
        if (!rc)
            rc = drc;
    }
    if (!rc && *kind == CK_KIND_PAYLOAD) {
        if (renameat(cfg->work_dirfd, OBJECT_FILE, cfg->prev_dirfd, "payload") < 0)
            rc = ck_fail_errno(err, errno, "moving the payload into prev/");
        else
            fchmod(d.fd, 0444);
    }
    close(d.fd);
    unlinkat(cfg->work_dirfd, OBJECT_FILE, 0);
    pthread_mutex_destroy(&d.lock);
    pthread_cond_destroy(&d.cond);
    return rc;
}
