/*
 * store_http.c - the http:// and https:// backend: GET with Range, PUT to a URL (e.g. a
 * presigned one).
 *
 * head is a HEAD; servers that refuse HEAD (presigned GET URLs are signed for GET only,
 * so they answer 403 or 405) are asked for "Range: bytes=0-0" instead and the size is
 * read from Content-Range (416 on an empty object means size 0). An upload is spooled to
 * an unlinked temp file in env->scratch_dir and sent as one PUT with Content-Length at
 * commit, replayed from the spool on transient failures. The server makes the PUT atomic
 * (nginx WebDAV writes a temp file and renames it; S3 and friends publish whole objects),
 * so a failed commit leaves the old object as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/http.h"
#include "store/backend.h"
#include "store/fileio.h"
#include "util/log.h"

struct http_store {
    char *url; /* full URL, may hold secrets; never logged */
};

/* The archive is spooled (a plain PUT must be replayable) and, at the same time, sent
 * by a streaming PUT with chunked encoding that reads the spool as it grows, so archive
 * and upload overlap. If that PUT fails (a server that wants a Content-Length, or any
 * fault), commit sends the complete spool with Content-Length and retries. */
struct http_upload {
    struct ck_store_upload hdr; /* first: the generic header */
    int fd;                     /* the unlinked spool file */
    pthread_t streamer;
    bool streaming; /* the streamer thread runs */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t have;   /* bytes in the spool (lock) */
    bool complete;   /* put_commit was called (lock) */
    bool abandoned;  /* put_abort was called (lock) */
    ck_rc stream_rc; /* the streaming PUT's result, after the join */
    long stream_status;
    struct ck_err stream_err;
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

/* Opens an unlinked spool file in dir (O_TMPFILE, or mkstemp + unlink where unsupported). */
static int open_spool(const char *dir, struct ck_err *err)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    char tmpl[PATH_MAX];
    int n = snprintf(tmpl, sizeof(tmpl), "%s/.ckptfs-spool-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof(tmpl)) {
        ck_fail(err, CK_EINVAL, "spool directory '%.64s...' name too long", dir);
        return -1;
    }
    fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd < 0) {
        ck_fail_errno(err, errno, "creating a spool file in '%s'", dir);
        return -1;
    }
    unlink(tmpl);
    return fd;
}

static const char *spool_dir(const struct ck_store_env *env)
{
    if (env->scratch_dir)
        return env->scratch_dir;
    const char *t = getenv("TMPDIR");
    return t && t[0] ? t : "/var/tmp";
}

static ck_rc stream_wait(void *ctx, uint64_t pos, uint64_t *end)
{
    struct http_upload *u = ctx;
    pthread_mutex_lock(&u->lock);
    while (!u->complete && !u->abandoned && u->have <= pos)
        pthread_cond_wait(&u->cond, &u->lock);
    *end = u->have;
    ck_rc rc = u->abandoned ? CK_ECANCELED : CK_OK;
    pthread_mutex_unlock(&u->lock);
    return rc;
}

static void *stream_main(void *arg)
{
    struct http_upload *u = arg;
    struct ck_http_request req;
    struct ck_http_response resp;
    init_request(u->hdr.store, CK_HTTP_PUT, &req);
    req.body_fd = u->fd;
    req.body_wait = stream_wait;
    req.body_wait_ctx = u;
    req.retry.max_attempts = 1; /* a failure falls back to the replayable PUT */
    ck_err_clear(&u->stream_err);
    u->stream_rc = ck_http_perform(&req, &resp, &u->stream_err);
    u->stream_status = resp.status;
    return NULL;
}

static ck_rc http_put_begin(struct ck_store *s, struct ck_store_upload **out, struct ck_err *err)
{
    struct http_upload *u = calloc(1, sizeof(*u));
    if (!u)
        return ck_fail(err, CK_ENOMEM, "PUT %s: out of memory", s->display_uri);
    u->fd = open_spool(spool_dir(s->env), err);
    if (u->fd < 0) {
        free(u);
        ck_err_prefix(err, "PUT %s", s->display_uri);
        return err ? err->rc : CK_EIO;
    }
    u->hdr.store = s;
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cond, NULL);
    u->streaming = pthread_create(&u->streamer, NULL, stream_main, u) == 0;
    *out = &u->hdr;
    return CK_OK;
}

/* Ends the streaming PUT: waits for its thread (after marking the body complete or
 * abandoned). Returns whether it stored the whole object. */
static bool finish_stream(struct http_upload *u, bool abandon)
{
    if (!u->streaming)
        return false;
    pthread_mutex_lock(&u->lock);
    if (abandon)
        u->abandoned = true;
    else
        u->complete = true;
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
    pthread_join(u->streamer, NULL);
    u->streaming = false;
    long st = u->stream_status;
    return !abandon && u->stream_rc == CK_OK && (st == 200 || st == 201 || st == 204);
}

static ck_rc http_put_write(struct ck_store_upload *up, const void *buf, size_t len,
                            struct ck_err *err)
{
    struct http_upload *u = (struct http_upload *)up;
    char what[256];
    snprintf(what, sizeof(what), "the spool file of %s", up->store->display_uri);
    ck_rc rc = ck_fd_write_all(u->fd, buf, len, what, err);
    if (!rc) {
        pthread_mutex_lock(&u->lock);
        u->have += len;
        pthread_cond_broadcast(&u->cond);
        pthread_mutex_unlock(&u->lock);
    }
    return rc;
}

static void free_upload(struct http_upload *u)
{
    close(u->fd);
    pthread_mutex_destroy(&u->lock);
    pthread_cond_destroy(&u->cond);
    free(u);
}

static void http_put_abort(struct ck_store_upload *up)
{
    struct http_upload *u = (struct http_upload *)up;
    finish_stream(u, true); /* the server drops a PUT cut short: the old object stays */
    free_upload(u);
}

/* Whether the server holds an object of exactly size bytes: a chunked PUT that passed
 * through something that does not understand chunked bodies can be stored empty or cut. */
static bool stored_whole(struct ck_store *s, uint64_t size)
{
    struct ck_store_info info;
    struct ck_err err;
    ck_err_clear(&err);
    if (http_head(s, &info, &err) == CK_OK && info.exists && info.size == size)
        return true;
    ck_log_warn("PUT %s: the streamed object could not be confirmed (%s); sending it again "
                "with its length",
                s->display_uri, err.rc ? err.msg : "size differs");
    return false;
}

static ck_rc http_put_commit(struct ck_store_upload *up, struct ck_err *err)
{
    struct ck_store *s = up->store;
    struct http_upload *u = (struct http_upload *)up;
    bool streamed = u->streaming;
    if (finish_stream(u, false) && stored_whole(s, up->bytes)) {
        free_upload(u);
        return CK_OK;
    }
    if (streamed && (u->stream_rc == CK_EAUTH || u->stream_rc == CK_ENOTFOUND)) {
        /* Refused for good (401, 403, 404): the same PUT with a length would be too. */
        ck_rc rc = ck_fail(err, u->stream_rc, "%s", u->stream_err.msg);
        free_upload(u);
        return rc;
    }
    if (streamed)
        ck_log_info("PUT %s: the streaming upload did not complete (%s); sending the whole "
                    "object with its length",
                    s->display_uri, u->stream_rc ? u->stream_err.msg : "unexpected status");
    struct ck_http_request req;
    struct ck_http_response resp;
    init_request(s, CK_HTTP_PUT, &req);
    if (streamed && req.retry.max_attempts > 1)
        req.retry.max_attempts--; /* the streaming PUT was the first attempt */
    req.body_fd = ((struct http_upload *)up)->fd;
    req.body_off = 0;
    req.body_len = up->bytes;
    ck_rc rc = ck_http_perform(&req, &resp, err);
    if (rc == CK_OK && resp.status != 200 && resp.status != 201 && resp.status != 204)
        rc = ck_fail(err, CK_EREMOTE, "PUT %s: unexpected HTTP %ld", s->display_uri, resp.status);
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
    if (hs)
        hs->url = strdup(uri->url);
    if (!s || !hs || !s->display_uri || !hs->url) {
        if (s) {
            http_destroy(s);
        } else if (hs) {
            free(hs->url);
            free(hs);
        }
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    *out = s;
    return CK_OK;
}
