/*
 * gzip_writer.c - the parallel block gzip writer; see gzip_writer.h.
 *
 * Slots: a ring of 2 x threads slots, each holding one block's input and output. The
 * caller fills the slot at `fill`, marks it READY and moves on; a worker takes READY slots,
 * compresses them and marks them DONE. Before the caller reuses a slot it waits for the
 * slot to be DONE and writes its member to the sink; since slots are reused in order,
 * members leave in input order. finish does the same for every slot still in flight.
 *
 * Lock: gz->lock protects every slot's state and gz->stop; buffers of a slot belong to
 * whoever owns the slot's state (FILLING: the caller, BUSY: one worker, DONE: the caller).
 */
#include "archive/gzip_writer.h"

#include <isa-l/crc.h>
#include <isa-l/crc64.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/deflate_block.h"

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_BUSY, SLOT_DONE };

struct slot {
    enum slot_state state; /* protected by gz->lock */
    unsigned char *in;
    size_t in_len;
    unsigned char *out;
    size_t out_len;
    uint64_t in_off;
    uint64_t crc64; /* of in, by the worker */
    uint32_t crc32; /* of in, by the worker */
    bool claimed;   /* the claim hook took it: not compressed (out_len 0) */
};

struct ck_gzw {
    struct ck_gzw_opts opts;
    struct ck_sink out; /* not owned */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop; /* protected by lock */
    struct slot *slots;
    size_t nslots;
    size_t fill; /* the slot the caller fills next (caller only) */
    size_t out_cap;
    pthread_t *workers;
    unsigned nworkers;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t cut_at;               /* a member ends at this input offset (ck_gzw_cut_at); 0: none */
    struct ck_gzw_member *members; /* owned */
    size_t nmembers, capmembers;
    bool failed;
    bool finished;
};

struct worker_arg {
    struct ck_gzw *gz;
    struct ck_block_state *st;
};

static struct slot *take_ready(struct ck_gzw *gz)
{
    for (size_t i = 0; i < gz->nslots; i++)
        if (gz->slots[i].state == SLOT_READY)
            return &gz->slots[i];
    return NULL;
}

/* A worker's job: the block's CRC-32 and CRC-64 (its identity in the seek index; the
 * CRC-32 is also the member's trailer), then its member, unless the claim hook takes it. */
static void compress_slot(struct ck_gzw *gz, struct ck_block_state *st, struct slot *s)
{
    s->crc64 = crc64_ecma_refl(0, s->in, s->in_len);
    s->crc32 = crc32_gzip_refl(0, s->in, (uint64_t)s->in_len);
    s->claimed = gz->opts.claim && s->in_len > 0 &&
                 gz->opts.claim(gz->opts.claim_ctx, (uint32_t)s->in_len, s->crc32, s->crc64);
    s->out_len = s->claimed ? 0
                            : ck_block_compress(st, &gz->opts.codec, s->in, s->in_len, s->crc32,
                                                s->out, gz->out_cap);
}

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    struct ck_gzw *gz = wa->gz;
    pthread_mutex_lock(&gz->lock);
    for (;;) {
        struct slot *s;
        while (!gz->stop && (s = take_ready(gz)) == NULL)
            pthread_cond_wait(&gz->cond, &gz->lock);
        if (gz->stop)
            break;
        s->state = SLOT_BUSY;
        pthread_mutex_unlock(&gz->lock);
        compress_slot(gz, wa->st, s);
        pthread_mutex_lock(&gz->lock);
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&gz->cond);
    }
    pthread_mutex_unlock(&gz->lock);
    ck_block_state_free(wa->st);
    free(wa);
    return NULL;
}

/* One worker per core, at most 16: with two slots of ~2 MiB each, that bounds the
 * writer's memory to ~70 MiB on any machine. */
static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 16 ? 16 : (unsigned)n;
}

static ck_rc start_workers(struct ck_gzw *gz, struct ck_err *err)
{
    gz->workers = calloc(gz->opts.threads, sizeof(*gz->workers));
    if (!gz->workers)
        return ck_fail(err, CK_ENOMEM, "gzip writer: out of memory");
    for (unsigned i = 0; i < gz->opts.threads; i++) {
        struct worker_arg *wa = calloc(1, sizeof(*wa));
        ck_rc rc = wa ? ck_block_state_new(&wa->st, err)
                      : ck_fail(err, CK_ENOMEM, "gzip writer: out of memory");
        if (rc) {
            free(wa);
            return rc;
        }
        wa->gz = gz;
        if (pthread_create(&gz->workers[i], NULL, worker_main, wa) != 0) {
            ck_block_state_free(wa->st);
            free(wa);
            return ck_fail(err, CK_ENOMEM, "gzip writer: cannot start a thread");
        }
        gz->nworkers++;
    }
    return CK_OK;
}

static ck_rc alloc_slots(struct ck_gzw *gz, struct ck_err *err)
{
    gz->nslots = 2 * (size_t)gz->opts.threads;
    gz->out_cap = ck_block_bound(gz->opts.block_size);
    gz->slots = calloc(gz->nslots, sizeof(*gz->slots));
    if (!gz->slots)
        return ck_fail(err, CK_ENOMEM, "gzip writer: out of memory");
    for (size_t i = 0; i < gz->nslots; i++) {
        gz->slots[i].in = malloc(gz->opts.block_size);
        gz->slots[i].out = malloc(gz->out_cap);
        if (!gz->slots[i].in || !gz->slots[i].out)
            return ck_fail(err, CK_ENOMEM, "gzip writer: out of memory for block buffers");
    }
    return CK_OK;
}

ck_rc ck_gzw_new_opts(const struct ck_gzw_opts *opts, const struct ck_sink *out,
                      struct ck_gzw **gzp, struct ck_err *err)
{
    struct ck_gzw *gz = calloc(1, sizeof(*gz));
    if (!gz)
        return ck_fail(err, CK_ENOMEM, "gzip writer: out of memory");
    gz->opts = *opts;
    if (opts->claim && !opts->member) {
        free(gz);
        return ck_fail(err, CK_EINVAL, "gzip writer: a claim hook needs a member hook");
    }
    if (gz->opts.threads == 0)
        gz->opts.threads = default_threads();
    if (gz->opts.block_size == 0)
        gz->opts.block_size = CK_GZW_BLOCK;
    gz->out = *out;
    pthread_mutex_init(&gz->lock, NULL);
    pthread_cond_init(&gz->cond, NULL);
    ck_rc rc = alloc_slots(gz, err);
    if (!rc)
        rc = start_workers(gz, err);
    if (rc) {
        ck_gzw_free(gz);
        return rc;
    }
    *gzp = gz;
    return CK_OK;
}

ck_rc ck_gzw_new(const struct ck_codec *codec, const struct ck_sink *out, struct ck_gzw **gz,
                 struct ck_err *err)
{
    struct ck_gzw_opts o = {.codec = *codec};
    return ck_gzw_new_opts(&o, out, gz, err);
}

/* The member slot s makes, at the output's current end (none for a claimed block). */
static struct ck_gzw_member member_of(const struct ck_gzw *gz, const struct slot *s)
{
    return (struct ck_gzw_member){
        s->in_off, gz->bytes_out, (uint32_t)s->in_len, (uint32_t)s->out_len, s->crc32, s->crc64};
}

static ck_rc record_member(struct ck_gzw *gz, const struct ck_gzw_member *m, struct ck_err *err)
{
    if (gz->nmembers == gz->capmembers) {
        size_t cap = gz->capmembers ? gz->capmembers * 2 : 256;
        struct ck_gzw_member *v = realloc(gz->members, cap * sizeof(*v));
        if (!v)
            return ck_fail(err, CK_ENOMEM, "gzip writer: out of memory for the member table");
        gz->members = v;
        gz->capmembers = cap;
    }
    gz->members[gz->nmembers++] = *m;
    return CK_OK;
}

/* Hands slot s's member to the member hook (which keeps its own table), or records it and
 * writes it to the sink. */
static ck_rc emit(struct ck_gzw *gz, const struct slot *s, struct ck_err *err)
{
    struct ck_gzw_member m = member_of(gz, s);
    if (gz->opts.member)
        return gz->opts.member(gz->opts.member_ctx, &m, s->claimed ? NULL : s->out, s->in, err);
    ck_rc rc = record_member(gz, &m, err);
    return rc ? rc : ck_sink_write(&gz->out, s->out, s->out_len, err);
}

/* Waits for slot i to be compressed and writes its member; leaves it FREE. */
static ck_rc drain_slot(struct ck_gzw *gz, size_t i, struct ck_err *err)
{
    struct slot *s = &gz->slots[i];
    pthread_mutex_lock(&gz->lock);
    while (s->state == SLOT_READY || s->state == SLOT_BUSY)
        pthread_cond_wait(&gz->cond, &gz->lock);
    bool done = s->state == SLOT_DONE;
    pthread_mutex_unlock(&gz->lock);
    if (!done)
        return CK_OK;
    ck_rc rc = s->out_len || s->claimed
                   ? emit(gz, s, err)
                   : ck_fail(err, CK_EIO, "gzip writer: a block did not compress");
    if (!rc)
        gz->bytes_out += s->out_len;
    pthread_mutex_lock(&gz->lock);
    s->state = SLOT_FREE;
    pthread_mutex_unlock(&gz->lock);
    return rc;
}

/* Hands the slot being filled to the workers and prepares the next one. */
static ck_rc submit_fill(struct ck_gzw *gz, struct ck_err *err)
{
    struct slot *s = &gz->slots[gz->fill];
    pthread_mutex_lock(&gz->lock);
    s->state = SLOT_READY;
    pthread_cond_broadcast(&gz->cond);
    pthread_mutex_unlock(&gz->lock);
    gz->fill = (gz->fill + 1) % gz->nslots;
    return drain_slot(gz, gz->fill, err);
}

ck_rc ck_gzw_write(struct ck_gzw *gz, const void *buf, size_t len, struct ck_err *err)
{
    if (gz->failed || gz->finished)
        return ck_fail(err, CK_EINVAL, "gzip writer: write after %s",
                       gz->failed ? "an error" : "finish");
    const unsigned char *p = buf;
    while (len > 0) {
        struct slot *s = &gz->slots[gz->fill];
        if (s->state == SLOT_FREE) {
            /* Only the caller makes a slot FREE or FILLING, but workers read every
             * slot's state (take_ready): the change is made under their lock. */
            pthread_mutex_lock(&gz->lock);
            s->state = SLOT_FILLING;
            pthread_mutex_unlock(&gz->lock);
            s->in_len = 0;
            s->in_off = gz->bytes_in;
        }
        size_t n = gz->opts.block_size - s->in_len;
        n = n < len ? n : len;
        if (gz->cut_at > gz->bytes_in && gz->cut_at - gz->bytes_in < n)
            n = (size_t)(gz->cut_at - gz->bytes_in);
        memcpy(s->in + s->in_len, p, n);
        s->in_len += n;
        gz->bytes_in += n;
        p += n;
        len -= n;
        bool cut = gz->bytes_in == gz->cut_at;
        if (cut)
            gz->cut_at = 0;
        if (s->in_len == gz->opts.block_size || cut) {
            ck_rc rc = submit_fill(gz, err);
            if (rc) {
                gz->failed = true;
                return rc;
            }
        }
    }
    return CK_OK;
}

ck_rc ck_gzw_cut_at(struct ck_gzw *gz, uint64_t in_off, struct ck_err *err)
{
    if (gz->failed || gz->finished)
        return ck_fail(err, CK_EINVAL, "gzip writer: cut after %s",
                       gz->failed ? "an error" : "finish");
    if (in_off < gz->bytes_in || (gz->cut_at && gz->cut_at != in_off))
        return ck_fail(err, CK_EINVAL, "gzip writer: a cut at %llu, input at %llu%s",
                       (unsigned long long)in_off, (unsigned long long)gz->bytes_in,
                       gz->cut_at ? ", another cut pending" : "");
    if (in_off > gz->bytes_in) {
        gz->cut_at = in_off;
        return CK_OK;
    }
    struct slot *s = &gz->slots[gz->fill];
    if (s->state != SLOT_FILLING || s->in_len == 0)
        return CK_OK; /* a member starts here anyway */
    ck_rc rc = submit_fill(gz, err);
    gz->failed = rc != CK_OK;
    return rc;
}

/* Hands every block in flight to the sink or the member hook, oldest first. */
static ck_rc drain_all(struct ck_gzw *gz, struct ck_err *err)
{
    ck_rc rc = CK_OK;
    for (size_t k = 0; !rc && k < gz->nslots; k++)
        rc = drain_slot(gz, (gz->fill + k) % gz->nslots, err);
    return rc;
}

ck_rc ck_gzw_flush(struct ck_gzw *gz, struct ck_err *err)
{
    if (gz->failed || gz->finished)
        return ck_fail(err, CK_EINVAL, "gzip writer: flush after %s",
                       gz->failed ? "an error" : "finish");
    struct slot *s = &gz->slots[gz->fill];
    ck_rc rc = s->state == SLOT_FILLING && s->in_len > 0 ? submit_fill(gz, err) : CK_OK;
    if (!rc)
        rc = drain_all(gz, err);
    gz->failed = rc != CK_OK;
    return rc;
}

ck_rc ck_gzw_skip(struct ck_gzw *gz, uint64_t len, uint64_t *in_off, struct ck_err *err)
{
    if (!gz->opts.member)
        return ck_fail(err, CK_EINVAL, "gzip writer: skip without a member hook");
    uint64_t end = gz->bytes_in + len;
    if (gz->cut_at && gz->cut_at < end)
        return ck_fail(err, CK_EINVAL, "gzip writer: a cut at %llu inside skipped bytes",
                       (unsigned long long)gz->cut_at);
    ck_rc rc = ck_gzw_flush(gz, err);
    if (rc)
        return rc;
    *in_off = gz->bytes_in;
    gz->bytes_in = end;
    if (gz->cut_at == end)
        gz->cut_at = 0; /* a member starts here anyway */
    return CK_OK;
}

ck_rc ck_gzw_finish(struct ck_gzw *gz, struct ck_err *err)
{
    if (gz->failed || gz->finished)
        return ck_fail(err, CK_EINVAL, "gzip writer: finish after %s",
                       gz->failed ? "an error" : "finish");
    ck_rc rc = CK_OK;
    bool empty = gz->bytes_in == 0;
    if (gz->slots[gz->fill].state == SLOT_FILLING || empty) {
        /* The last partial block; an empty stream still gets one (empty) member. */
        struct slot *s = &gz->slots[gz->fill];
        if (empty) {
            s->in_len = 0;
            s->in_off = 0;
        }
        pthread_mutex_lock(&gz->lock);
        s->state = SLOT_READY;
        pthread_cond_broadcast(&gz->cond);
        pthread_mutex_unlock(&gz->lock);
        gz->fill = (gz->fill + 1) % gz->nslots;
    }
    if (!rc)
        rc = drain_all(gz, err);
    gz->finished = true;
    gz->failed = rc != CK_OK;
    return rc;
}

void ck_gzw_free(struct ck_gzw *gz)
{
    if (!gz)
        return;
    pthread_mutex_lock(&gz->lock);
    gz->stop = true;
    pthread_cond_broadcast(&gz->cond);
    pthread_mutex_unlock(&gz->lock);
    for (unsigned i = 0; i < gz->nworkers; i++)
        pthread_join(gz->workers[i], NULL);
    free(gz->workers);
    for (size_t i = 0; gz->slots && i < gz->nslots; i++) {
        free(gz->slots[i].in);
        free(gz->slots[i].out);
    }
    free(gz->slots);
    free(gz->members);
    pthread_mutex_destroy(&gz->lock);
    pthread_cond_destroy(&gz->cond);
    free(gz);
}

uint64_t ck_gzw_bytes_in(const struct ck_gzw *gz)
{
    return gz->bytes_in;
}

uint64_t ck_gzw_bytes_out(const struct ck_gzw *gz)
{
    return gz->bytes_out;
}

const struct ck_gzw_member *ck_gzw_members(const struct ck_gzw *gz, size_t *count)
{
    *count = gz->nmembers;
    return gz->members;
}

static ck_rc sink_write(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    return ck_gzw_write(ctx, buf, len, err);
}

struct ck_sink ck_gzw_sink(struct ck_gzw *gz)
{
    struct ck_sink s = {sink_write, gz};
    return s;
}
