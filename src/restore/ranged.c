/* ranged.c - parallel ranged download into a file, read in order; see ranged.h. */
#include "restore/ranged.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "restore/tuner.h"
#include "store/digest.h"
#include "util/clock.h"

/* One claimed range. Ranges are claimed in offset order into a ring of sequence numbers. */
struct range {
    uint64_t off, len;
    uint64_t got; /* bytes written, from off on (lock) */
    bool done;    /* got == len (lock) */
};

struct ck_ranged {
    const struct ck_ranged_cfg *cfg;
    bool single;   /* one GET for the whole object */
    uint64_t size; /* the object's size; UINT64_MAX until known (single, unsized) */
    pthread_mutex_t lock;
    pthread_cond_t data; /* the reader's: the prefix grew, a failure, the workers' end */
    pthread_cond_t slot; /* the workers': a range may be claimed, or stop */
    struct range ring[CK_RANGED_AHEAD];
    uint64_t head, tail; /* sequence numbers: the first unfinished range, the next to claim */
    uint64_t cursor;     /* the next offset to claim */
    uint64_t total;      /* bytes downloaded */
    unsigned inflight, running, requests;
    struct ck_tuner tuner;
    atomic_bool stop; /* written under lock; read by the GETs' writes without it */
    ck_rc rc;         /* the first failure */
    struct ck_err err;
    unsigned nthreads;
    pthread_t threads[CK_RANGED_MAX];
};

/* What one GET writes: its range of the ring. */
struct get_ctx {
    struct ck_ranged *r;
    struct range *g;
    uint64_t pos;
};

/* The contiguous prefix of the object in the file (lock). */
static uint64_t have_locked(const struct ck_ranged *r)
{
    if (r->head < r->tail) {
        const struct range *g = &r->ring[r->head % CK_RANGED_AHEAD];
        return g->off + g->got;
    }
    return r->cursor < r->size ? r->cursor : r->size;
}

static bool stopped(const struct ck_ranged *r)
{
    return atomic_load(&r->stop) || (r->cfg->cancel && atomic_load(r->cfg->cancel));
}

static ck_rc get_write(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    struct get_ctx *c = ctx;
    struct ck_ranged *r = c->r;
    const char *p = buf;
    if (stopped(r))
        return ck_fail(err, CK_ECANCELED, "download stopped");
    if (!r->single && c->pos + len > c->g->len)
        return ck_fail(err, CK_ECORRUPT, "a range of %" PRIu64 " bytes sent more", c->g->len);
    while (len > 0) {
        ssize_t n = pwrite(r->cfg->fd, p, len, (off_t)(c->g->off + c->pos));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ck_fail_errno(err, errno, "writing the downloaded checkpoint to the cache");
        p += n;
        len -= (size_t)n;
        c->pos += (uint64_t)n;
        pthread_mutex_lock(&r->lock);
        c->g->got = c->pos;
        r->total += (uint64_t)n;
        uint64_t total = r->total;
        if (c->g == &r->ring[r->head % CK_RANGED_AHEAD])
            pthread_cond_signal(&r->data);
        pthread_mutex_unlock(&r->lock);
        if (r->cfg->progress)
            r->cfg->progress(r->cfg->progress_ctx, total);
    }
    return CK_OK;
}

/* Whether a worker may claim the next range now (lock). */
static bool can_claim(const struct ck_ranged *r)
{
    return r->inflight < (r->single ? 1 : r->tuner.limit) && r->tail - r->head < CK_RANGED_AHEAD;
}

static struct range *claim(struct ck_ranged *r)
{
    struct range *g = &r->ring[r->tail++ % CK_RANGED_AHEAD];
    g->off = r->cursor;
    if (r->single)
        g->len = r->size == UINT64_MAX ? CK_STORE_TO_END : r->size;
    else
        g->len = r->size - r->cursor < r->tuner.chunk ? r->size - r->cursor : r->tuner.chunk;
    g->got = 0;
    g->done = false;
    r->cursor = r->single ? UINT64_MAX : r->cursor + g->len;
    r->inflight++;
    r->requests++;
    return g;
}

/* A range ended (lock): the failure is kept, or the prefix and the tuner move on. */
static void range_ended(struct ck_ranged *r, struct range *g, ck_rc rc, const struct ck_err *err,
                        double secs)
{
    struct ck_err short_err;
    r->inflight--;
    if (!rc && !r->single && g->got != g->len) {
        rc = ck_fail(&short_err, CK_ECORRUPT, "GET %s: %" PRIu64 " of a range of %" PRIu64 " bytes",
                     ck_store_uri(r->cfg->store), g->got, g->len);
        err = &short_err;
    }
    if (rc) {
        if (!r->rc) {
            r->rc = rc;
            r->err = *err;
        }
        atomic_store(&r->stop, true);
        return;
    }
    g->done = true;
    if (r->single)
        r->size = g->got;
    while (r->head < r->tail && r->ring[r->head % CK_RANGED_AHEAD].done)
        r->head++;
    if (!r->single)
        ck_tuner_done(&r->tuner, g->len, secs, ck_now());
}

static void *worker_main(void *arg)
{
    struct ck_ranged *r = arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (!atomic_load(&r->stop) && r->cursor < r->size && !can_claim(r))
            pthread_cond_wait(&r->slot, &r->lock);
        if (atomic_load(&r->stop) || r->cursor >= r->size)
            break;
        struct range *g = claim(r);
        pthread_mutex_unlock(&r->lock);
        struct get_ctx c = {r, g, 0};
        struct ck_sink sink = {get_write, &c};
        struct ck_err err;
        ck_err_clear(&err);
        double t0 = ck_now();
        ck_rc rc = ck_store_get(r->cfg->store, g->off, g->len, &sink, &err);
        pthread_mutex_lock(&r->lock);
        range_ended(r, g, rc, &err, ck_now() - t0);
        pthread_cond_broadcast(&r->slot);
        pthread_cond_signal(&r->data);
    }
    r->running--;
    pthread_cond_signal(&r->data);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* How many GETs at most: one for a local, small or unsized object. */
static unsigned plan_threads(const struct ck_ranged_cfg *cfg)
{
    if (!cfg->info || ck_store_is_local(cfg->store) || cfg->info->size <= CK_TUNER_CHUNK_FIRST)
        return 1;
    unsigned max = cfg->max ? cfg->max : CK_RANGED_MAX;
    uint64_t ranges = (cfg->info->size + CK_TUNER_CHUNK_MIN - 1) / CK_TUNER_CHUNK_MIN;
    return ranges < max ? (unsigned)ranges : max;
}

ck_rc ck_ranged_start(const struct ck_ranged_cfg *cfg, struct ck_ranged **out, struct ck_err *err)
{
    struct ck_ranged *r = calloc(1, sizeof(*r));
    if (!r)
        return ck_fail(err, CK_ENOMEM, "out of memory");
    r->cfg = cfg;
    atomic_init(&r->stop, false);
    unsigned n = plan_threads(cfg);
    r->single = n == 1;
    r->size = cfg->info ? cfg->info->size : UINT64_MAX;
    ck_tuner_init(&r->tuner, n, ck_now());
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->data, NULL);
    pthread_cond_init(&r->slot, NULL);
    pthread_mutex_lock(&r->lock);
    for (; r->nthreads < n; r->nthreads++, r->running++)
        if (pthread_create(&r->threads[r->nthreads], NULL, worker_main, r) != 0)
            break;
    pthread_mutex_unlock(&r->lock);
    if (r->nthreads == 0) {
        ck_ranged_finish(r, true, err);
        return ck_fail(err, CK_ENOMEM, "cannot start a download thread");
    }
    *out = r;
    return CK_OK;
}

ck_rc ck_ranged_wait(struct ck_ranged *r, uint64_t off, uint64_t *have, struct ck_err *err)
{
    pthread_mutex_lock(&r->lock);
    while (!r->rc && r->running > 0 && have_locked(r) <= off)
        pthread_cond_wait(&r->data, &r->lock);
    *have = have_locked(r);
    ck_rc rc = *have > off || !r->rc ? CK_OK : ck_fail(err, r->rc, "%s", r->err.msg);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* After a download of several GETs: the object is still the version the ranges came from. */
static ck_rc check_version(struct ck_ranged *r, struct ck_err *err)
{
    const struct ck_store_info *was = r->cfg->info;
    struct ck_store_info now;
    ck_rc rc = ck_store_head(r->cfg->store, &now, err);
    if (rc)
        return rc;
    if (now.exists && now.size == was->size && ck_etag_equal(now.etag, was->etag))
        return CK_OK;
    return ck_fail(err, CK_ECORRUPT,
                   "%s changed during the download (was %" PRIu64 " bytes, ETag %s; now %s)",
                   ck_store_uri(r->cfg->store), was->size, was->etag[0] ? was->etag : "-",
                   now.exists ? now.etag : "gone");
}

ck_rc ck_ranged_finish(struct ck_ranged *r, bool stop, struct ck_err *err)
{
    pthread_mutex_lock(&r->lock);
    if (stop)
        atomic_store(&r->stop, true);
    pthread_cond_broadcast(&r->slot);
    pthread_mutex_unlock(&r->lock);
    for (unsigned i = 0; i < r->nthreads; i++)
        pthread_join(r->threads[i], NULL);
    ck_rc rc = stop ? CK_OK : r->rc;
    if (rc)
        ck_fail(err, rc, "%s", r->err.msg);
    else if (!stop && r->requests > 1)
        rc = check_version(r, err);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->data);
    pthread_cond_destroy(&r->slot);
    free(r);
    return rc;
}

unsigned ck_ranged_requests(struct ck_ranged *r)
{
    pthread_mutex_lock(&r->lock);
    unsigned n = r->requests;
    pthread_mutex_unlock(&r->lock);
    return n;
}
