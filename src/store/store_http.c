/*
 * store_http.c - the http:// and https:// backend: GET with Range, PUT to a URL (e.g. a
 * presigned one).
 *
 * head is a HEAD; servers that refuse HEAD (presigned GET URLs are signed for GET only,
 * so they answer 403 or 405) are asked for "Range: bytes=0-0" instead and the size is
 * read from Content-Range (416 on an empty object means size 0). The server makes a PUT
 * atomic (nginx WebDAV writes a temp file and renames it; S3 and friends publish whole
 * objects), so a failed or cut PUT leaves the old object as it was.
 *
 * Uploads keep a bounded window of their bytes in memory, never a copy of the whole
 * object: a PUT cannot resume, so the writer must be able to write the same bytes again
 * (ck_put_opts.replayable, store.h "Replays"). The window is a ring of
 * CKPTFS_HTTP_WINDOW bytes (default 32 MiB). Byte p lives at win[p % cap]; the window
 * holds [max(0, head - cap), head) where head is the count written so far, so it holds
 * byte 0 (and the whole object) while head <= cap.
 *
 *   - While the object fits in the window nothing is sent; commit sends it with
 *     Content-Length from memory under the store's retry policy (any object up to the
 *     window: no chunked body, no second pass, fit for presigned URLs).
 *   - When a write would overflow the window, a streamer thread starts ONE PUT that pulls
 *     the bytes from the window as they come (ck_http_request.body_read): with
 *     Content-Length when the size is known (a replay: opts->size), else chunked. The
 *     writer blocks while the window is full of bytes not yet handed to curl
 *     (back-pressure); bytes handed over are overwritten. A sized body's last byte is held
 *     back until commit, so a PUT can only complete after the count was checked.
 *   - The store remembers (needs_length) a server that refused a chunked body (411, 501,
 *     505), answered 2xx before reading it, or stored it wrong (HEAD after a chunked PUT
 *     shows another size). Then an upload of unknown size that overflows the window is a
 *     counting pass: it sends nothing and commit answers CK_EREPLAY, so the next pass
 *     knows the size.
 *   - The streamer's outcome: success (200, 201, 204; a chunked one is confirmed by a
 *     HEAD); a permanent refusal (401/403 CK_EAUTH, 404 CK_ENOTFOUND, other 4xx) fails
 *     the upload; a chunked body refused as above sets needs_length and the rest of the
 *     pass only counts (its commit answers CK_EREPLAY, the size now known); anything else
 *     (5xx, 408, 429, reset, stall, refused) is transient: the next put_write answers it,
 *     or commit at the end, with CK_EREPLAY after a jittered wait, while opts->pass + 1 <
 *     retry.max_attempts; then the failure itself.
 *   - A replay whose byte count differs from opts->size is CK_ECORRUPT.
 *   - put_abort cancels the streamer: its request is cut, the server drops it.
 *
 * Create-only puts (ck_put_opts.if_absent) and conditional replaces (.if_match) are
 * CK_EUNSUPPORTED at put_begin: a URL may
 * point at any server (a presigned URL's store may not honour If-None-Match, or only on
 * some paths), so nothing here can promise that the check and the write are one step.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "store/backend.h"
#include "store/part_upload.h"
#include "util/clock.h"
#include "util/log.h"

#define WINDOW_DEFAULT (32ull << 20)
#define WINDOW_MIN     (64ull << 10)
#define WINDOW_MAX     (1ull << 30)

struct http_store {
    char *url;                /* full URL, may hold secrets; never logged */
    uint64_t window;          /* bytes an upload keeps in memory */
    atomic_bool needs_length; /* a chunked PUT was refused or stored wrong here */
};

struct http_upload {
    struct ck_store_upload hdr; /* first: the generic header */
    struct ck_put_opts opts;
    char *win;          /* the ring window */
    uint64_t cap;       /* its size */
    bool counting;      /* this pass sends nothing past the window (owner thread) */
    bool started;       /* the streamer thread was started (owner thread) */
    bool joined;        /* ... and has been joined (owner thread) */
    atomic_bool cancel; /* put_abort: the streamer's request stops */
    pthread_t streamer;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* Under lock: */
    uint64_t head; /* bytes written so far (only the owner writes it, and reads it freely) */
    uint64_t rpos; /* where the streamer reads: bytes below were handed to curl */
    bool complete; /* put_commit was called: no more bytes */
    bool sent_all; /* the PUT read the body to its end after commit */
    bool done;     /* the streamer's PUT ended; its outcome: */
    ck_rc s_rc;
    long s_status;
    struct ck_err s_err;
};

static void init_request(struct ck_store *s, enum ck_http_method m, struct ck_http_request *req)
{
    struct http_store *hs = s->priv;
    ck_http_request_init(req);
    req->method = m;
    req->url = hs->url;
    req->display_url = s->display_uri;
    req->retry = s->env->retry;
    req->connect_timeout_s = s->env->connect_timeout_s;
    req->stall_timeout_s = s->env->stall_timeout_s;
}

/* The size of an object from a "Range: bytes=0-0" probe, for servers that refuse HEAD. */
static ck_rc head_by_range(struct ck_store *s, struct ck_store_info *info, struct ck_err *err)
{
    struct ck_http_request req;
    struct ck_http_response resp;
    init_request(s, CK_HTTP_GET, &req);
    req.has_range = true;
    req.range_off = 0;
    req.range_len = 1;
    ck_rc rc = ck_http_perform(&req, &resp, err);
    if (rc == CK_ENOTFOUND) {
        ck_err_clear(err);
        return CK_OK;
    }
    /* An empty object: S3 and others answer 416 "bytes * /0"; nginx a 200 with no body. */
    bool empty = (resp.status == 416 && resp.total_known && resp.range_total == 0) ||
                 (resp.status == 200 && resp.has_content_length && resp.content_length == 0);
    if (rc && !empty)
        return rc;
    ck_err_clear(err);
    if (resp.status == 206 && !resp.total_known)
        return ck_fail(err, CK_ECORRUPT, "HEAD %s: server did not tell the object's size",
                       s->display_uri);
    if (resp.status == 200 && !resp.has_content_length)
        return ck_fail(err, CK_ECORRUPT, "HEAD %s: no Content-Length in reply", s->display_uri);
    info->exists = true;
    info->size = resp.status == 206 ? resp.range_total : empty ? 0 : resp.content_length;
    memcpy(info->etag, resp.etag, sizeof(info->etag));
    return CK_OK;
}

static ck_rc http_head(struct ck_store *s, struct ck_store_info *info, struct ck_err *err)
{
    struct ck_http_request req;
    struct ck_http_response resp;
    init_request(s, CK_HTTP_HEAD, &req);
    ck_rc rc = ck_http_perform(&req, &resp, err);
    if (rc == CK_ENOTFOUND) {
        ck_err_clear(err);
        return CK_OK;
    }
    if (rc && (resp.status == 403 || resp.status == 405)) {
        ck_err_clear(err);
        return head_by_range(s, info, err);
    }
    if (rc)
        return rc;
    if (!resp.has_content_length)
        return head_by_range(s, info, err);
    info->exists = true;
    info->size = resp.content_length;
    memcpy(info->etag, resp.etag, sizeof(info->etag));
    return CK_OK;
}

static ck_rc http_get(struct ck_store *s, uint64_t off, uint64_t len, const struct ck_sink *sink,
                      struct ck_err *err)
{
    if (len == 0)
        return CK_OK;
    struct ck_http_request req;
    struct ck_http_response resp;
    init_request(s, CK_HTTP_GET, &req);
    req.sink = sink;
    req.has_range = off > 0 || len != CK_STORE_TO_END;
    req.range_off = off;
    req.range_len = len == CK_STORE_TO_END ? CK_HTTP_TO_END : len;
    ck_rc rc = ck_http_perform(&req, &resp, err);
    /* Reading from the very end of an object: nothing to deliver, not an error. */
    if (rc && resp.status == 416 && len == CK_STORE_TO_END && resp.total_known &&
        resp.range_total == off) {
        ck_err_clear(err);
        return CK_OK;
    }
    return rc;
}

/* ---- uploads ------------------------------------------------------------------------ */

static bool sized(const struct http_upload *u)
{
    return u->opts.size != CK_STORE_SIZE_UNKNOWN;
}

/* The streamer's body: bytes from pos on, out of the window (see the top comment). */
static ck_rc window_read(void *ctx, uint64_t pos, void *buf, size_t max, size_t *got)
{
    struct http_upload *u = ctx;
    ck_rc rc = CK_OK;
    *got = 0;
    pthread_mutex_lock(&u->lock);
    for (;;) {
        uint64_t head = u->head;
        if (atomic_load(&u->cancel)) {
            rc = CK_ECANCELED;
            break;
        }
        if (pos > head || (head > u->cap && pos < head - u->cap)) {
            rc = CK_ENET; /* curl went back to a byte the window no longer holds */
            break;
        }
        u->rpos = pos;
        uint64_t end = head;
        if (sized(u) && !u->complete && end == u->opts.size)
            end--; /* the last byte waits for commit, which checks the count */
        if (pos < end) {
            uint64_t at = pos % u->cap, n = end - pos;
            if (n > u->cap - at)
                n = u->cap - at;
            if (n > max)
                n = max;
            memcpy(buf, u->win + at, (size_t)n);
            u->rpos = pos + n;
            *got = (size_t)n;
            break;
        }
        if (u->complete)
            break; /* the end of the body */
        pthread_cond_wait(&u->cond, &u->lock);
    }
    if (rc == CK_OK && u->complete && u->rpos == u->head)
        u->sent_all = true;
    pthread_cond_broadcast(&u->cond); /* room for the writer */
    pthread_mutex_unlock(&u->lock);
    return rc;
}

/* The streamer thread: one PUT attempt whose body comes from the window. */
static void *stream_main(void *arg)
{
    struct http_upload *u = arg;
    struct ck_http_request req;
    struct ck_http_response resp;
    struct ck_err e;
    init_request(u->hdr.store, CK_HTTP_PUT, &req);
    req.body_read = window_read;
    req.body_ctx = u;
    req.body_len = sized(u) ? u->opts.size : CK_HTTP_LEN_UNKNOWN;
    req.cancel = &u->cancel;
    req.retry.max_attempts = 1; /* a failure is the writer's to replay */
    ck_err_clear(&e);
    ck_rc rc = ck_http_perform(&req, &resp, &e);
    pthread_mutex_lock(&u->lock);
    u->s_rc = rc;
    u->s_status = resp.status;
    u->s_err = e;
    u->done = true;
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

static ck_rc start_streamer(struct http_upload *u, struct ck_err *err)
{
    if (pthread_create(&u->streamer, NULL, stream_main, u) != 0)
        return ck_fail(err, CK_ENOMEM, "PUT %s: cannot start the upload thread",
                       u->hdr.store->display_uri);
    u->started = true;
    return CK_OK;
}

static void join_streamer(struct http_upload *u)
{
    if (u->started && !u->joined) {
        pthread_join(u->streamer, NULL);
        u->joined = true;
    }
}

enum stream_end {
    END_SENT,         /* 200, 201, 204 after the whole body */
    END_REFUSED,      /* for good: 401, 403, 404, other 4xx, a bad reply */
    END_NEEDS_LENGTH, /* 411, 501, 505 or an early 2xx to a chunked body */
    END_TRANSIENT,    /* 5xx, 408, 429, transport errors, stalls: worth another pass */
};

/* What the streamer's PUT came to, after the join; why is its failure without "PUT
 * <display>: " and without the engine's "(gave up after 1 attempts)". */
static enum stream_end stream_outcome(const struct http_upload *u, ck_rc *rc, char *why,
                                      size_t whysz)
{
    const char *disp = u->hdr.store->display_uri, *msg = u->s_err.msg;
    size_t dl = strlen(disp);
    long st = u->s_status;
    if (strncmp(msg, "PUT ", 4) == 0 && strncmp(msg + 4, disp, dl) == 0 &&
        strncmp(msg + 4 + dl, ": ", 2) == 0)
        msg += 4 + dl + 2;
    snprintf(why, whysz, "%s", msg);
    char *tail = strstr(why, " (gave up after 1 attempt");
    if (tail)
        *tail = '\0';
    *rc = u->s_rc;
    if (u->s_rc == CK_OK) {
        if (st != 200 && st != 201 && st != 204) {
            *rc = CK_EREMOTE;
            snprintf(why, whysz, "unexpected HTTP %ld", st);
            return END_REFUSED;
        }
        if (!u->sent_all && !sized(u)) { /* it took an empty body: chunked is unknown there */
            *rc = CK_EREMOTE;
            snprintf(why, whysz, "HTTP %ld before the chunked body was sent", st);
            return END_NEEDS_LENGTH;
        }
        if (!u->sent_all) {
            *rc = CK_ENET;
            snprintf(why, whysz, "HTTP %ld before the whole body was sent", st);
            return END_TRANSIENT;
        }
        return END_SENT;
    }
    if (!sized(u) && (st == 411 || st == 501 || st == 505))
        return END_NEEDS_LENGTH;
    return u->s_rc == CK_ENET || u->s_rc == CK_ETIMEDOUT ? END_TRANSIENT : END_REFUSED;
}

/* Ends a pass that cannot complete: CK_EREPLAY while the store's retry policy allows one
 * more pass (after a jittered wait if this one failed), else the failure itself. */
static ck_rc replay(struct http_upload *u, bool wait, ck_rc real_rc, const char *why,
                    struct ck_err *err)
{
    const char *disp = u->hdr.store->display_uri;
    const struct ck_retry_policy *p = &u->hdr.store->env->retry;
    unsigned passes = u->opts.pass + 1;
    if (passes >= p->max_attempts)
        return ck_fail(err, real_rc, "PUT %s: %s (gave up after %u attempts)", disp, why, passes);
    if (wait) {
        uint64_t rng = ((uint64_t)(ck_now() * 1e9) ^ (uint64_t)(uintptr_t)u) | 1;
        double delay = ck_retry_delay(p, passes, &rng);
        ck_log_warn("PUT %s: %s; the object is sent again (pass %u of at most %u) in %.2f s", disp,
                    why, passes + 1, p->max_attempts, delay);
        ck_sleep(delay);
    }
    return ck_fail(err, CK_EREPLAY, "PUT %s: %s", disp, why);
}

/* Remembers that this server needs a Content-Length. */
static void note_needs_length(struct http_upload *u, const char *why)
{
    struct http_store *hs = u->hdr.store->priv;
    if (!atomic_exchange(&hs->needs_length, true))
        ck_log_info("PUT %s: %s: uploads here now send their length (an object of unknown "
                    "size beyond the %" PRIu64 "-byte window is counted first)",
                    u->hdr.store->display_uri, why, u->cap);
}

static ck_rc differs(const struct http_upload *u, const char *more, uint64_t bytes,
                     struct ck_err *err)
{
    return ck_fail(err, CK_ECORRUPT,
                   "PUT %s: archive differs between passes (%s%" PRIu64
                   " bytes, the last pass wrote %" PRIu64 ")",
                   u->hdr.store->display_uri, more, bytes, u->opts.size);
}

static ck_rc http_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                            struct ck_store_upload **out, struct ck_err *err)
{
    struct http_store *hs = s->priv;
    if (opts->if_absent)
        return ck_fail(err, CK_EUNSUPPORTED,
                       "PUT %s: a create-only put needs a store that checks and writes in one "
                       "step; a plain http(s) PUT cannot",
                       s->display_uri);
    if (opts->if_match)
        return ck_fail(err, CK_EUNSUPPORTED,
                       "PUT %s: a conditional replace needs a store that checks and writes in "
                       "one step; a plain http(s) PUT cannot",
                       s->display_uri);
    if (!opts->replayable)
        return ck_fail(err, CK_EUNSUPPORTED,
                       "PUT %s: an http PUT cannot resume after a failure, so the writer must "
                       "be able to write the bytes again (a replayable upload)",
                       s->display_uri);
    struct http_upload *u = calloc(1, sizeof(*u));
    if (u)
        u->win = malloc(hs->window);
    if (!u || !u->win) {
        free(u);
        return ck_fail(err, CK_ENOMEM, "PUT %s: out of memory for a %" PRIu64 "-byte window",
                       s->display_uri, hs->window);
    }
    u->hdr.store = s;
    u->hdr.may_replay = true;
    u->opts = *opts;
    u->cap = hs->window;
    u->counting = !sized(u) && atomic_load(&hs->needs_length);
    atomic_init(&u->cancel, false);
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cond, NULL);
    *out = &u->hdr;
    return CK_OK;
}

/* Copies n bytes that follow byte head into the window (lock held). */
static void copy_in(struct http_upload *u, uint64_t head, const char *p, size_t n)
{
    if (head >= u->cap && u->counting)
        return; /* counted only */
    if (u->counting) {
        size_t m = n < u->cap - head ? n : (size_t)(u->cap - head);
        memcpy(u->win + head, p, m);
        return;
    }
    size_t at = (size_t)(head % u->cap), first = n < u->cap - at ? n : (size_t)(u->cap - at);
    memcpy(u->win + at, p, first);
    memcpy(u->win, p + first, n - first);
}

/* The streamer's PUT ended while bytes were still being written: go on counting (the
 * server wants a length), or end the pass. */
static ck_rc failed_while_writing(struct http_upload *u, struct ck_err *err)
{
    char why[CK_ERR_MSG_MAX];
    ck_rc rc;
    join_streamer(u);
    switch (stream_outcome(u, &rc, why, sizeof(why))) {
    case END_NEEDS_LENGTH:
        note_needs_length(u, why);
        u->counting = true; /* this pass now tells the next one the size */
        return CK_OK;
    case END_REFUSED:
        return ck_fail(err, rc, "PUT %s: %s", u->hdr.store->display_uri, why);
    default:
        return replay(u, true, rc, why, err);
    }
}

static ck_rc http_put_write(struct ck_store_upload *up, const void *buf, size_t len,
                            struct ck_err *err)
{
    struct http_upload *u = (struct http_upload *)up;
    const char *p = buf;
    if (sized(u) && len > u->opts.size - u->head)
        return differs(u, "more than ", u->opts.size, err);
    while (len > 0) {
        if (!u->counting && !u->started && u->head == u->cap) {
            ck_rc rc = start_streamer(u, err); /* the window is full: start sending */
            if (rc)
                return rc;
        }
        pthread_mutex_lock(&u->lock);
        uint64_t head = u->head, room = len;
        if (!u->counting && !u->started) {
            room = u->cap - head;
        } else if (!u->counting) {
            while (!u->done && u->rpos + u->cap == head)
                pthread_cond_wait(&u->cond, &u->lock); /* back-pressure */
            if (u->done) {
                pthread_mutex_unlock(&u->lock);
                ck_rc rc = failed_while_writing(u, err);
                if (rc)
                    return rc;
                continue;
            }
            room = u->rpos + u->cap - head;
        }
        size_t n = len < room ? len : (size_t)room;
        copy_in(u, head, p, n);
        u->head = head + n;
        pthread_cond_broadcast(&u->cond);
        pthread_mutex_unlock(&u->lock);
        p += n;
        len -= n;
    }
    return CK_OK;
}

static void free_upload(struct http_upload *u)
{
    pthread_mutex_destroy(&u->lock);
    pthread_cond_destroy(&u->cond);
    free(u->win);
    free(u);
}

static void http_put_abort(struct ck_store_upload *up)
{
    struct http_upload *u = (struct http_upload *)up;
    atomic_store(&u->cancel, true); /* the server drops a PUT cut short: the old object stays */
    pthread_mutex_lock(&u->lock);
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
    join_streamer(u);
    free_upload(u);
}

/* The whole object from the window, with Content-Length, under the store's retry policy. */
static ck_rc put_from_memory(struct http_upload *u, struct ck_err *err)
{
    struct ck_store *s = u->hdr.store;
    struct ck_http_request req;
    struct ck_http_response resp;
    init_request(s, CK_HTTP_PUT, &req);
    req.body_mem = u->win;
    req.body_len = u->head;
    ck_rc rc = ck_http_perform(&req, &resp, err);
    if (rc == CK_OK && resp.status != 200 && resp.status != 201 && resp.status != 204)
        rc = ck_fail(err, CK_EREMOTE, "PUT %s: unexpected HTTP %ld", s->display_uri, resp.status);
    return rc;
}

/* Whether the server holds an object of exactly the size sent: a chunked PUT that passed
 * through something that does not understand chunked bodies can be stored empty or cut. */
static bool stored_whole(struct http_upload *u, char *why, size_t whysz)
{
    struct ck_store_info info;
    struct ck_err e;
    ck_err_clear(&e);
    ck_rc rc = http_head(u->hdr.store, &info, &e);
    if (rc == CK_OK && info.exists && info.size == u->head)
        return true;
    if (rc)
        snprintf(why, whysz, "the chunked upload could not be confirmed (%.300s)", e.msg);
    else if (!info.exists)
        snprintf(why, whysz, "the chunked upload is missing after a success reply");
    else
        snprintf(why, whysz, "the server stored %" PRIu64 " of the %" PRIu64 " bytes sent chunked",
                 info.size, u->head);
    return false;
}

/* Commit of an upload whose streamer sent the object. */
static ck_rc end_stream(struct http_upload *u, struct ck_err *err)
{
    char why[CK_ERR_MSG_MAX];
    ck_rc rc;
    switch (stream_outcome(u, &rc, why, sizeof(why))) {
    case END_SENT:
        if (sized(u) || stored_whole(u, why, sizeof(why)))
            return CK_OK;
        note_needs_length(u, why);
        return replay(u, false, CK_EREMOTE, why, err);
    case END_NEEDS_LENGTH:
        note_needs_length(u, why);
        return replay(u, false, CK_EREMOTE, why, err);
    case END_REFUSED:
        return ck_fail(err, rc, "PUT %s: %s", u->hdr.store->display_uri, why);
    case END_TRANSIENT:
    default:
        return replay(u, true, rc, why, err);
    }
}

static ck_rc http_put_commit(struct ck_store_upload *up, struct ck_err *err)
{
    struct http_upload *u = (struct http_upload *)up;
    ck_rc rc;
    if (sized(u) && u->head != u->opts.size) {
        rc = differs(u, "", u->head, err);
        http_put_abort(up);
        return rc;
    }
    pthread_mutex_lock(&u->lock);
    u->complete = true;
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
    join_streamer(u);
    if (u->head <= u->cap && (!u->started || u->counting)) {
        rc = put_from_memory(u, err); /* the window holds the whole object */
    } else if (u->counting) {
        char why[200];
        snprintf(why, sizeof(why),
                 "the server needs the length of an object larger than the %" PRIu64
                 "-byte window: it was counted (%" PRIu64 " bytes)",
                 u->cap, u->head);
        rc = replay(u, false, CK_EREMOTE, why, err);
    } else {
        rc = end_stream(u, err);
    }
    free_upload(u);
    return rc;
}

static void http_destroy(struct ck_store *s)
{
    struct http_store *hs = s->priv;
    if (hs) {
        free(hs->url);
        free(hs);
    }
    free(s->display_uri);
    free(s);
}

static const struct ck_store_ops http_ops = {
    .name = "http",
    .head = http_head,
    .get = http_get,
    .put_begin = http_put_begin,
    .put_write = http_put_write,
    .put_commit = http_put_commit,
    .put_abort = http_put_abort,
    .destroy = http_destroy,
};

ck_rc ck_store_http_open(const struct ck_uri *uri, const struct ck_store_env *env,
                         struct ck_store **out, struct ck_err *err)
{
    struct ck_store *s = calloc(1, sizeof(*s));
    struct http_store *hs = calloc(1, sizeof(*hs));
    if (s) {
        s->ops = &http_ops;
        s->env = env;
        s->priv = hs;
        s->display_uri = strdup(uri->display);
    }
    if (hs) {
        hs->url = strdup(uri->url);
        hs->window = WINDOW_DEFAULT;
        atomic_init(&hs->needs_length, false);
    }
    if (!s || !hs || !s->display_uri || !hs->url) {
        if (s) {
            http_destroy(s);
        } else if (hs) {
            free(hs->url);
            free(hs);
        }
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    ck_rc rc = ck_part_env_size("CKPTFS_HTTP_WINDOW", WINDOW_MIN, WINDOW_MAX, &hs->window, err);
    if (rc) {
        http_destroy(s);
        return rc;
    }
    *out = s;
    return CK_OK;
}
