/*
 * part_upload.c - an upload in parts with a pool of workers; see part_upload.h.
 *
 * Design: the writer and the workers share a small FIFO of full parts
 * and a free list of buffers under u->lock. A worker takes a part, sends it without the
 * lock, records its result and puts the buffer back. The first failure stops everything:
 * queued parts are dropped, parts in flight are not retried again (send sees `cancel`) and
 * the writer's next call returns that failure.
 */
#include "store/part_upload.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/size.h"

#define MAX_BUFS (CK_PART_MAX_PAR + 1)

/* A source of copied parts (ck_part_upload_copy): checked again before the commit. */
struct copy_source {
    struct ck_store *store; /* not owned; open until the upload ends (store.h) */
    char version[128];
    struct copy_source *next;
};

/* A part: bytes in buf (memory or a spool file, part_body.h), or (src set) buf.len bytes
 * at src_off of src's object, copied by the service. */
struct part_buf {
    struct ck_part_buf buf;
    unsigned number;
    const struct copy_source *src;
    uint64_t src_off;
};

struct part_upload {
    struct ck_store_upload hdr; /* first: the generic header */
    const struct ck_part_ops *ops;
    void *ctx; /* owned; ops->free_ctx */
    struct ck_part_cfg cfg;
    const char *disp;
    /* writer side (one thread) */
    struct part_buf cur;  /* the part being filled */
    struct part_buf pend; /* a full part held back once copies began (see hold_part) */
    size_t want;          /* its size */
    bool started;         /* begin succeeded: abort is owed on failure */
    bool oversize;        /* single_only, and more bytes came than one request holds */
    pthread_t workers[CK_PART_MAX_PAR];
    unsigned nworkers;
    atomic_bool cancel;

    pthread_mutex_t lock;
    pthread_cond_t cond; /* any change below */
    struct part_buf queue[MAX_BUFS];
    unsigned qhead, qlen;
    struct part_buf freebufs[MAX_BUFS];
    unsigned nfree;
    unsigned nbufs;     /* writer's + queued + in flight + free */
    unsigned submitted; /* parts handed over */
    char *results;      /* [submitted] * result_size */
    uint64_t *sizes;    /* [submitted]; 0 until done (a part is never empty) */
    unsigned results_cap;
    bool closing, failed;
    struct ck_err fail;
    struct copy_source *sources; /* writer side; read-only once a part names them */
};

uint64_t ck_part_size(uint64_t first, uint64_t max_part, unsigned growth, unsigned n)
{
    unsigned doublings = n > 0 ? (n - 1) / (growth ? growth : CK_PART_GROWTH) : 0;
    uint64_t size = first;
    for (unsigned i = 0; i < doublings && size < max_part; i++)
        size *= 2;
    return size < max_part ? size : max_part;
}

static uint64_t part_memory(const struct ck_part_cfg *c)
{
    return c->memory ? c->memory : CK_PART_MEMORY;
}

/* Whether a part of this size goes to a spool file: over half the part memory (two
 * buffers, one filling and one uploading, must fit), when the upload has a spool dir. */
static bool spooled(const struct ck_part_cfg *c, uint64_t part)
{
    return c->spool_dir && part > part_memory(c) / 2;
}

/* How many buffers of part bytes may exist: parallel + 1, fewer once parts are so big that
 * they would exceed the part memory, never fewer than two (one filling, one uploading);
 * spooled ones at most CK_PART_SPOOLED (they take cache disk). */
static unsigned buffers_for(const struct ck_part_cfg *c, size_t part)
{
    unsigned n = c->parallel + 1;
    if (spooled(c, part))
        return n < CK_PART_SPOOLED ? n : CK_PART_SPOOLED;
    uint64_t fit = part_memory(c) / (part ? part : 1);
    if (fit < n)
        n = (unsigned)fit;
    return n < 2 ? 2 : n;
}

static uint64_t part_size(const struct ck_part_cfg *c, unsigned n)
{
    return ck_part_size(c->part_size, c->max_part, c->growth, n);
}

/* The first part's size: at most half the part memory when parts may be spooled. */
static uint64_t first_part(const struct ck_part_cfg *c)
{
    if (!spooled(c, c->part_size))
        return c->part_size;
    uint64_t half = part_memory(c) / 2;
    return half > c->min_part ? half : c->min_part;
}

void ck_part_plan(const struct ck_part_cfg *c, unsigned n, struct ck_part_plan *out)
{
    struct ck_part_cfg eff = *c;
    eff.part_size = first_part(c);
    out->size = part_size(&eff, n);
    out->spooled = spooled(&eff, out->size);
    out->buffers = buffers_for(&eff, (size_t)out->size);
}

static void fail_locked(struct part_upload *u, const struct ck_err *err)
{
    if (!u->failed) {
        u->failed = true;
        u->fail = *err;
        atomic_store(&u->cancel, true);
    }
    pthread_cond_broadcast(&u->cond);
}

static ck_rc send_one(struct part_upload *u, const struct part_buf *b, void *result,
                      struct ck_err *err)
{
    if (!b->src) {
        struct ck_part_body body = ck_part_buf_body(&b->buf);
        return u->ops->send(u->ctx, b->number, &body, result, &u->cancel, err);
    }
    struct ck_copy_src src = {b->src->store, b->src->version, b->src_off, b->buf.len};
    return u->ops->copy(u->ctx, b->number, &src, result, &u->cancel, err);
}

static void *worker_main(void *arg)
{
    struct part_upload *u = arg;
    char *result = malloc(u->cfg.result_size ? u->cfg.result_size : 1);
    pthread_mutex_lock(&u->lock);
    for (;;) {
        while (u->qlen == 0 && !u->closing && !u->failed)
            pthread_cond_wait(&u->cond, &u->lock);
        if (u->failed || u->qlen == 0)
            break;
        struct part_buf b = u->queue[u->qhead];
        u->qhead = (u->qhead + 1) % MAX_BUFS;
        u->qlen--;
        pthread_mutex_unlock(&u->lock);
        struct ck_err err;
        ck_rc rc = result ? CK_OK : ck_fail(&err, CK_ENOMEM, "%s: out of memory", u->disp);
        if (!rc) {
            memset(result, 0, u->cfg.result_size);
            rc = send_one(u, &b, result, &err);
        }
        pthread_mutex_lock(&u->lock);
        if (rc) {
            fail_locked(u, &err);
        } else {
            memcpy(u->results + (size_t)(b.number - 1) * u->cfg.result_size, result,
                   u->cfg.result_size);
            u->sizes[b.number - 1] = b.buf.len;
        }
        if (!b.src) {
            ck_part_buf_sent(&b.buf);
            u->freebufs[u->nfree++] = b;
        }
        pthread_cond_broadcast(&u->cond);
    }
    pthread_mutex_unlock(&u->lock);
    free(result);
    return NULL;
}

static void stop_workers(struct part_upload *u, bool cancel)
{
    pthread_mutex_lock(&u->lock);
    u->closing = true;
    if (cancel) {
        u->failed = true;
        atomic_store(&u->cancel, true);
    }
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
    for (unsigned i = 0; i < u->nworkers; i++)
        pthread_join(u->workers[i], NULL);
    u->nworkers = 0;
}

static void free_upload(struct part_upload *u)
{
    for (unsigned i = 0; i < u->qlen; i++)
        ck_part_buf_release(&u->queue[(u->qhead + i) % MAX_BUFS].buf);
    for (unsigned i = 0; i < u->nfree; i++)
        ck_part_buf_release(&u->freebufs[i].buf);
    ck_part_buf_release(&u->cur.buf);
    ck_part_buf_release(&u->pend.buf);
    if (u->ops->free_ctx)
        u->ops->free_ctx(u->ctx);
    pthread_cond_destroy(&u->cond);
    pthread_mutex_destroy(&u->lock);
    free(u->results);
    free(u->sizes);
    while (u->sources) {
        struct copy_source *next = u->sources->next;
        free(u->sources);
        u->sources = next;
    }
    free(u);
}

ck_rc ck_part_upload_new(struct ck_store *s, const struct ck_part_ops *ops, void *ctx,
                         const struct ck_part_cfg *cfg, struct ck_store_upload **out,
                         struct ck_err *err)
{
    struct part_upload *u = calloc(1, sizeof(*u));
    if (!u) {
        if (ops->free_ctx)
            ops->free_ctx(ctx);
        return ck_fail(err, CK_ENOMEM, "PUT %s: out of memory", s->display_uri);
    }
    u->hdr.store = s;
    u->ops = ops;
    u->ctx = ctx;
    u->cfg = *cfg;
    if (u->cfg.parallel < 1)
        u->cfg.parallel = 1;
    if (u->cfg.parallel > CK_PART_MAX_PAR)
        u->cfg.parallel = CK_PART_MAX_PAR;
    u->disp = s->display_uri;
    u->cfg.part_size = first_part(&u->cfg); /* in memory: it is the object if it fits */
    u->want = part_size(&u->cfg, 1);
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cond, NULL);
    *out = &u->hdr;
    return CK_OK;
}

static ck_rc start(struct part_upload *u, struct ck_err *err)
{
    ck_rc rc = u->ops->begin(u->ctx, err);
    if (rc)
        return rc;
    u->started = true;
    for (unsigned i = 0; i < u->cfg.parallel; i++) {
        if (pthread_create(&u->workers[i], NULL, worker_main, u) != 0)
            return ck_fail(err, CK_ENOMEM, "%s: cannot start an upload thread", u->disp);
        u->nworkers++;
    }
    ck_log_debug("upload of %s in parts started, %u in flight", u->disp, u->cfg.parallel);
    return CK_OK;
}

static ck_rc grow_results_locked(struct part_upload *u, struct ck_err *err)
{
    if (u->submitted < u->results_cap)
        return CK_OK;
    unsigned cap = u->results_cap ? u->results_cap * 2 : 64;
    char *r = realloc(u->results, (size_t)cap * u->cfg.result_size + 1);
    if (r)
        u->results = r;
    uint64_t *sz = r ? realloc(u->sizes, sizeof(*sz) * cap) : NULL;
    if (!sz)
        return ck_fail(err, CK_ENOMEM, "%s: out of memory", u->disp);
    u->sizes = sz;
    memset(u->results + (size_t)u->results_cap * u->cfg.result_size, 0,
           (size_t)(cap - u->results_cap) * u->cfg.result_size);
    memset(sz + u->results_cap, 0, sizeof(*sz) * (cap - u->results_cap));
    u->results_cap = cap;
    return CK_OK;
}

/* Queues part b (its number given here) under u->lock: waits for room in the queue, then
 * checks the part count. */
static ck_rc enqueue_locked(struct part_upload *u, struct part_buf *b, struct ck_err *err)
{
    while (!u->failed && u->qlen == MAX_BUFS)
        pthread_cond_wait(&u->cond, &u->lock);
    if (u->failed) {
        *err = u->fail;
        return err->rc;
    }
    if (u->submitted >= u->cfg.max_parts)
        return ck_fail(err, CK_EINVAL, "%s: object needs more than %u parts", u->disp,
                       u->cfg.max_parts);
    ck_rc rc = grow_results_locked(u, err);
    if (rc)
        return rc;
    b->number = ++u->submitted;
    u->queue[(u->qhead + u->qlen) % MAX_BUFS] = *b;
    u->qlen++;
    pthread_cond_broadcast(&u->cond);
    return CK_OK;
}

/* Queues the writer's buffer b (the one filling, or the one held back) as the next part. */
static ck_rc submit_buf(struct part_upload *u, struct part_buf *b, struct ck_err *err)
{
    pthread_mutex_lock(&u->lock);
    ck_rc rc = enqueue_locked(u, b, err);
    if (rc) {
        u->nbufs--;
        ck_part_buf_release(&b->buf);
    }
    memset(b, 0, sizeof(*b));
    pthread_mutex_unlock(&u->lock);
    return rc;
}

static ck_rc submit(struct part_upload *u, struct ck_err *err)
{
    return submit_buf(u, &u->cur, err);
}

/* Once parts are copied, a written stretch between two copied ranges may end in a part
 * below min_part, which the next copy would top up with bytes of its range, sent again.
 * So the last full part is held back (pend) until the part after it holds min_part; a
 * copy (or the commit) that comes first joins the short part to it (settle_pend). */
static bool holding(const struct part_upload *u)
{
    return u->sources && u->cfg.min_part;
}

static ck_rc hold_part(struct part_upload *u, struct ck_err *err)
{
    ck_rc rc = ck_part_buf_has(&u->pend.buf) ? submit_buf(u, &u->pend, err) : CK_OK;
    if (rc)
        return rc;
    u->pend = u->cur;
    memset(&u->cur, 0, sizeof(u->cur));
    u->want = part_size(&u->cfg, u->submitted + 2);
    return CK_OK;
}

/* Submits the held-back part, the short part being filled joined to it. */
static ck_rc settle_pend(struct part_upload *u, struct ck_err *err)
{
    if (!ck_part_buf_has(&u->pend.buf))
        return CK_OK;
    if (u->cur.buf.len > 0 && u->cur.buf.len < u->cfg.min_part) {
        ck_rc rc = ck_part_buf_append_buf(&u->pend.buf, &u->cur.buf, u->disp, err);
        if (rc)
            return rc;
        ck_part_buf_sent(&u->cur.buf);
        pthread_mutex_lock(&u->lock);
        u->cur.buf.len = 0;
        u->freebufs[u->nfree++] = u->cur;
        pthread_cond_broadcast(&u->cond);
        pthread_mutex_unlock(&u->lock);
        memset(&u->cur, 0, sizeof(u->cur));
    }
    return submit_buf(u, &u->pend, err);
}

/* Frees free buffers (lock held): those not of the kind a part of want bytes needs (once
 * parts are spooled, the memory of smaller ones is given back), and, once parts grew so
 * that fewer of them fit, those over limit. */
static void trim_free(struct part_upload *u, unsigned limit)
{
    bool spool = spooled(&u->cfg, u->want);
    for (unsigned i = 0; i < u->nfree;) {
        if (u->freebufs[i].buf.spooled == spool && u->nbufs <= limit) {
            i++;
            continue;
        }
        ck_part_buf_release(&u->freebufs[i].buf);
        u->freebufs[i] = u->freebufs[--u->nfree];
        u->nbufs--;
    }
}

/* A buffer of want bytes for the writer; blocks while all allowed buffers are in use. */
static ck_rc take_buffer(struct part_upload *u, struct ck_err *err)
{
    struct part_buf b = {0};
    bool spool = spooled(&u->cfg, u->want);
    pthread_mutex_lock(&u->lock);
    unsigned limit = buffers_for(&u->cfg, u->want);
    trim_free(u, limit);
    while (!u->failed && (u->nbufs > limit || (u->nfree == 0 && u->nbufs == limit))) {
        pthread_cond_wait(&u->cond, &u->lock);
        trim_free(u, limit);
    }
    if (u->failed) {
        *err = u->fail;
        pthread_mutex_unlock(&u->lock);
        return err->rc;
    }
    if (u->nfree > 0)
        b = u->freebufs[--u->nfree];
    else
        u->nbufs++;
    pthread_mutex_unlock(&u->lock);
    if (spool && !b.buf.spooled)
        ck_log_info("PUT %s: parts of %zu bytes go through spool files in %s (over half of "
                    "the %llu bytes of part memory: --memory-limit)",
                    u->disp, u->want, u->cfg.spool_dir, (unsigned long long)part_memory(&u->cfg));
    ck_rc rc = ck_part_buf_ready(&b.buf, u->want, spool ? u->cfg.spool_dir : NULL, u->disp, err);
    if (rc) {
        ck_part_buf_release(&b.buf);
        pthread_mutex_lock(&u->lock);
        u->nbufs--;
        pthread_cond_broadcast(&u->cond);
        pthread_mutex_unlock(&u->lock);
        return rc;
    }
    u->cur = b;
    return CK_OK;
}

/* Hands the writer's buffer to the workers (starting the upload in parts if it has not
 * started); the next part is filled from a buffer taken on the next write. */
static ck_rc flush_part(struct part_upload *u, struct ck_err *err)
{
    ck_rc rc = u->started ? CK_OK : start(u, err);
    if (!rc)
        rc = submit(u, err);
    if (!rc)
        u->want = part_size(&u->cfg, u->submitted + 1);
    return rc;
}

ck_rc ck_part_upload_write(struct ck_store_upload *up, const void *data, size_t len,
                           struct ck_err *err)
{
    struct part_upload *u = (struct part_upload *)up;
    const char *p = data;
    while (len > 0) {
        if (u->cfg.single_only && ck_part_buf_has(&u->cur.buf) && u->cur.buf.len == u->want) {
            u->oversize = true; /* the commit says so; nothing more is kept */
            return CK_OK;
        }
        ck_rc rc = CK_OK;
        if (ck_part_buf_has(&u->cur.buf) && u->cur.buf.len == u->want)
            rc = holding(u) ? hold_part(u, err) : flush_part(u, err);
        if (!rc && !ck_part_buf_has(&u->cur.buf))
            rc = take_buffer(u, err);
        if (rc)
            return rc;
        size_t n = u->want - u->cur.buf.len < len ? u->want - u->cur.buf.len : len;
        rc = ck_part_buf_append(&u->cur.buf, p, n, u->disp, err);
        if (rc)
            return rc;
        p += n;
        len -= n;
        if (ck_part_buf_has(&u->pend.buf) && u->cur.buf.len >= u->cfg.min_part &&
            (rc = submit_buf(u, &u->pend, err)))
            return rc;
    }
    return CK_OK;
}

/* Reads the first lead bytes of src into the writer's buffer, which then holds min_part. */
static ck_rc read_lead(struct part_upload *u, const struct ck_copy_src *src, uint64_t lead,
                       struct ck_err *err)
{
    unsigned char *b;
    ck_rc rc = ck_store_get_mem(src->store, src->off, (size_t)lead, &b, err);
    if (rc)
        return rc;
    rc = ck_part_buf_append(&u->cur.buf, b, (size_t)lead, u->disp, err);
    free(b);
    return rc;
}

static ck_rc remember_source(struct part_upload *u, const struct ck_copy_src *src,
                             const struct copy_source **out, struct ck_err *err)
{
    for (const struct copy_source *c = u->sources; c; c = c->next) {
        if (c->store == src->store && strcmp(c->version, src->version) == 0) {
            *out = c;
            return CK_OK;
        }
    }
    struct copy_source *c = calloc(1, sizeof(*c));
    if (!c)
        return ck_fail(err, CK_ENOMEM, "PUT %s: out of memory", u->disp);
    c->store = src->store;
    snprintf(c->version, sizeof(c->version), "%s", src->version);
    c->next = u->sources;
    u->sources = c;
    *out = c;
    return CK_OK;
}

/* Queues len bytes at off of src as copied parts sized alike: about CK_PART_COPY_CHUNK
 * each (the workers copy them side by side), more where a range would need over 1,000
 * parts, never over max_copy. */
static ck_rc queue_copies(struct part_upload *u, const struct copy_source *src, uint64_t off,
                          uint64_t len, struct ck_err *err)
{
    uint64_t chunk = len / 1000 > CK_PART_COPY_CHUNK ? len / 1000 : CK_PART_COPY_CHUNK;
    chunk = chunk < u->cfg.max_copy ? chunk : u->cfg.max_copy;
    uint64_t n = (len + chunk - 1) / chunk;
    ck_rc rc = CK_OK;
    pthread_mutex_lock(&u->lock);
    for (uint64_t i = 0; !rc && i < n; i++) {
        uint64_t size = len / (n - i);
        struct part_buf b = {.buf = {.len = (size_t)size}, .src = src, .src_off = off};
        rc = enqueue_locked(u, &b, err);
        off += size;
        len -= size;
    }
    pthread_mutex_unlock(&u->lock);
    return rc;
}

/* Bytes of src to read into the writer's buffer before parts can be copied: what brings
 * a started part to min_part (a part but the last may not be smaller). */
static uint64_t lead_bytes(const struct part_upload *u)
{
    size_t have = u->cur.buf.len;
    return have > 0 && have < u->cfg.min_part ? u->cfg.min_part - have : 0;
}

ck_rc ck_part_upload_copy(struct ck_store_upload *up, const struct ck_copy_src *src,
                          struct ck_err *err)
{
    struct part_upload *u = (struct part_upload *)up;
    uint64_t least = u->cfg.min_part ? u->cfg.min_part : 1;
    if (!u->ops->copy || !u->cfg.max_copy || u->cfg.single_only || !src->version ||
        !src->version[0] || src->len < least)
        return CK_EUNSUPPORTED; /* read and written (store.c) */
    ck_rc prc = settle_pend(u, err);
    if (prc)
        return prc;
    uint64_t lead = lead_bytes(u);
    if (src->len < lead + least || lead > u->want - u->cur.buf.len)
        return CK_EUNSUPPORTED;
    const struct copy_source *cs = NULL;
    ck_rc rc = ck_store_check_source(src, err);
    if (!rc)
        rc = remember_source(u, src, &cs, err);
    if (!rc && lead)
        rc = read_lead(u, src, lead, err);
    if (!rc && u->cur.buf.len > 0)
        rc = flush_part(u, err);
    else if (!rc && !u->started)
        rc = start(u, err);
    if (!rc)
        rc = queue_copies(u, cs, src->off + lead, src->len - lead, err);
    if (!rc)
        u->want = part_size(&u->cfg, u->submitted + 1);
    return rc;
}

static ck_rc verify(struct part_upload *u, struct ck_err *err)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < u->submitted; i++) {
        if (u->sizes[i] == 0)
            return ck_fail(err, CK_EIO, "%s: part %u of %u was not uploaded", u->disp, i + 1,
                           u->submitted);
        sum += u->sizes[i];
    }
    if (sum != u->hdr.bytes)
        return ck_fail(err, CK_EIO, "%s: parts hold %llu bytes, %llu were written", u->disp,
                       (unsigned long long)sum, (unsigned long long)u->hdr.bytes);
    return CK_OK;
}

/* The sources of copied parts still hold the versions copied (a service that ignores
 * the copy's source condition, as moto and radosgw do, copied those bytes). */
static ck_rc check_sources(const struct part_upload *u, struct ck_err *err)
{
    for (const struct copy_source *c = u->sources; c; c = c->next) {
        struct ck_copy_src src = {c->store, c->version, 0, 0};
        ck_rc rc = ck_store_check_source(&src, err);
        if (rc)
            return rc;
    }
    return CK_OK;
}

static ck_rc finish_parts(struct part_upload *u, struct ck_err *err)
{
    ck_rc rc = settle_pend(u, err);
    if (!rc && u->cur.buf.len > 0) /* empty after a copied part */
        rc = submit(u, err);
    stop_workers(u, rc != CK_OK);
    if (!rc && u->failed) {
        *err = u->fail;
        rc = err->rc;
    }
    if (!rc)
        rc = verify(u, err);
    if (!rc)
        rc = check_sources(u, err);
    if (!rc)
        rc = u->ops->complete(u->ctx, u->submitted, u->results, err);
    if (rc)
        u->ops->abort(u->ctx);
    else
        ck_log_debug("committed %s: %u parts", u->disp, u->submitted);
    return rc;
}

/* The commit of a single_only upload that outgrew one request. */
static ck_rc refuse_oversize(const struct part_upload *u, struct ck_err *err)
{
    return ck_fail(err, CK_EUNSUPPORTED,
                   "PUT %s: a create-only put of %llu bytes would need an upload in parts "
                   "(more than %zu bytes), which is not done create-only",
                   u->disp, (unsigned long long)u->hdr.bytes, u->want);
}

ck_rc ck_part_upload_commit(struct ck_store_upload *up, struct ck_err *err)
{
    struct part_upload *u = (struct part_upload *)up;
    ck_rc rc;
    if (u->oversize)
        rc = refuse_oversize(u, err);
    else if (u->started)
        rc = finish_parts(u, err);
    else
        rc = u->ops->single(u->ctx, u->cur.buf.data ? u->cur.buf.data : "", u->cur.buf.len, err);
    free_upload(u);
    return rc;
}

void ck_part_upload_abort(struct ck_store_upload *up)
{
    struct part_upload *u = (struct part_upload *)up;
    if (!u)
        return;
    if (u->started) {
        stop_workers(u, true);
        u->ops->abort(u->ctx);
    }
    free_upload(u);
}

ck_rc ck_part_env_size(const char *name, uint64_t lo, uint64_t hi, uint64_t *out,
                       struct ck_err *err)
{
    const char *v = getenv(name);
    uint64_t n;
    if (!v || !v[0])
        return CK_OK;
    if (!ck_parse_size(v, &n) || n < lo || n > hi)
        return ck_fail(err, CK_EINVAL, "%s: not a size between %llu and %llu bytes", name,
                       (unsigned long long)lo, (unsigned long long)hi);
    *out = n;
    return CK_OK;
}

ck_rc ck_part_env_uint(const char *name, unsigned lo, unsigned hi, unsigned *out,
                       struct ck_err *err)
{
    uint64_t n = *out;
    const char *v = getenv(name);
    if (!v || !v[0])
        return CK_OK;
    char *end;
    n = strtoull(v, &end, 10);
    if (end == v || *end || !isdigit((unsigned char)v[0]) || n < lo || n > hi)
        return ck_fail(err, CK_EINVAL, "%s: not a number between %u and %u", name, lo, hi);
    *out = (unsigned)n;
    return CK_OK;
}
