/*
 * s3_multipart.c - a multipart upload with a pool of part workers; see s3_multipart.h.
 *
 * Design: the writer and the workers share a small queue of full parts and a free list
 * of buffers under mpu->lock. Workers take a part, upload it without the lock (one
 * ck_http_perform, hence one curl easy handle, each), record its ETag and checksum and
 * put the buffer back on the free list. The first failure stops everything: queued parts
 * are dropped, parts in flight are not retried again (the attempt hook sees `cancel`),
 * and the writer's next call returns that failure.
 */
#include "store/s3_multipart.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sigv4.h"
#include "store/s3_xml.h"
#include "util/buf.h"
#include "util/log.h"

#define MAX_BUFS  (CK_S3_MAX_PAR + 1)
#define REPLY_MAX (64 * 1024)

struct part_buf {
    char *data;
    size_t cap;
    size_t len;
    unsigned number;
};

struct part_result {
    uint64_t size;
    bool done;
    char etag[128];
    char sent_b64[48];
    char got_b64[48]; /* the server's x-amz-checksum-sha256, "" if it sent none */
};

struct ck_s3_mpu {
    struct ck_s3 *s3;
    unsigned parallel;
    char upload_id[CK_S3_UPLOAD_ID_MAX + 1];
    char id_query[3 * CK_S3_UPLOAD_ID_MAX + 16]; /* "uploadId=<encoded>" */
    pthread_t workers[CK_S3_MAX_PAR];
    unsigned nworkers;
    atomic_bool cancel; /* parts in flight stop retrying */

    pthread_mutex_t lock;
    pthread_cond_t cond;             /* any change below; protected by lock */
    struct part_buf queue[MAX_BUFS]; /* full parts waiting for a worker, FIFO */
    unsigned qhead, qlen;
    struct part_buf freebufs[MAX_BUFS];
    unsigned nfree;
    unsigned nbufs;              /* buffers alive: writer's + queued + in flight + free */
    unsigned submitted;          /* parts handed over */
    struct part_result *results; /* [0, submitted) */
    unsigned results_cap;
    bool closing; /* no more parts: workers exit when the queue is empty */
    bool failed;
    struct ck_err fail; /* the first failure */
};

static const char *disp(const struct ck_s3_mpu *m)
{
    return m->s3->display;
}

/* Records the first failure and wakes everybody. Called with the lock held. */
static void fail_locked(struct ck_s3_mpu *m, const struct ck_err *err)
{
    if (!m->failed) {
        m->failed = true;
        m->fail = *err;
        atomic_store(&m->cancel, true);
    }
    pthread_cond_broadcast(&m->cond);
}

static void release_buffer_locked(struct ck_s3_mpu *m, struct part_buf *b)
{
    m->freebufs[m->nfree++] = *b;
    pthread_cond_broadcast(&m->cond);
}

/* Uploads one part; fills r (a private copy) on success. */
static ck_rc upload_part(struct ck_s3_mpu *m, const struct part_buf *b, struct part_result *r,
                         struct ck_err *err)
{
    char hex[CK_SHA256_HEX_LEN + 1], query[sizeof(m->id_query) + 32], label[32];
    ck_s3_sha256(b->data, b->len, hex, r->sent_b64);
    snprintf(query, sizeof(query), "partNumber=%u&%s", b->number, m->id_query);
    snprintf(label, sizeof(label), "part %u", b->number);
    struct ck_s3_call c = {
        .method = CK_HTTP_PUT,
        .query = query,
        .label = label,
        .body = b->data,
        .body_len = b->len,
        .payload_hash = hex,
        .checksum_b64 = r->sent_b64,
        .capture_header = "x-amz-checksum-sha256",
        .cancel = &m->cancel,
    };
    struct ck_http_response resp;
    ck_rc rc = ck_s3_perform(m->s3, &c, &resp, err);
    if (rc)
        return rc;
    if (!resp.etag[0])
        return ck_fail(err, CK_ECORRUPT, "PUT %s (%s): reply has no ETag", disp(m), label);
    if (strlen(resp.captured) < sizeof(r->got_b64))
        memcpy(r->got_b64, resp.captured, strlen(resp.captured) + 1);
    if (resp.captured[0] && strcmp(resp.captured, r->sent_b64) != 0)
        return ck_fail(err, CK_ECORRUPT, "PUT %s (%s): server's SHA-256 differs from the one sent",
                       disp(m), label);
    memcpy(r->etag, resp.etag, sizeof(r->etag));
    r->size = b->len;
    r->done = true;
    return CK_OK;
}

static void *worker_main(void *arg)
{
    struct ck_s3_mpu *m = arg;
    pthread_mutex_lock(&m->lock);
    for (;;) {
        while (m->qlen == 0 && !m->closing && !m->failed)
            pthread_cond_wait(&m->cond, &m->lock);
        if (m->failed || m->qlen == 0)
            break;
        struct part_buf b = m->queue[m->qhead];
        m->qhead = (m->qhead + 1) % MAX_BUFS;
        m->qlen--;
        pthread_mutex_unlock(&m->lock);
        struct part_result r = {0};
        struct ck_err err;
        ck_rc rc = upload_part(m, &b, &r, &err);
        pthread_mutex_lock(&m->lock);
        if (rc)
            fail_locked(m, &err);
        else
            m->results[b.number - 1] = r;
        release_buffer_locked(m, &b);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* CreateMultipartUpload; fills upload_id and id_query. */
static ck_rc create_upload(struct ck_s3_mpu *m, struct ck_err *err)
{
    struct ck_buf reply;
    ck_buf_init(&reply, REPLY_MAX);
    struct ck_s3_call c = {
        .method = CK_HTTP_POST,
        .query = "uploads=",
        .label = "CreateMultipartUpload",
        .content_type = "application/octet-stream",
        .amz_name = "x-amz-checksum-algorithm",
        .amz_value = "SHA256",
        .reply_body = &reply,
    };
    struct ck_http_response resp;
    char what[300];
    snprintf(what, sizeof(what), "POST %s (CreateMultipartUpload)", disp(m));
    ck_rc rc = ck_s3_perform(m->s3, &c, &resp, err);
    if (!rc)
        rc = ck_s3_xml_upload_id(reply.data, reply.len, m->upload_id, sizeof(m->upload_id), what,
                                 err);
    ck_buf_free(&reply);
    if (rc)
        return rc;
    char enc[3 * CK_S3_UPLOAD_ID_MAX + 1];
    if (ck_sigv4_uri_encode(m->upload_id, 0, enc, sizeof(enc)) != CK_OK)
        return ck_fail(err, CK_ECORRUPT, "%s: UploadId too long", what);
    snprintf(m->id_query, sizeof(m->id_query), "uploadId=%s", enc);
    return CK_OK;
}

/* AbortMultipartUpload, retried by the engine; a vanished upload counts as aborted. */
static void abort_remote(struct ck_s3_mpu *m)
{
    struct ck_s3_call c = {
        .method = CK_HTTP_DELETE,
        .query = m->id_query,
        .label = "AbortMultipartUpload",
    };
    struct ck_http_response resp;
    struct ck_err err;
    ck_rc rc = ck_s3_perform(m->s3, &c, &resp, &err);
    if (rc && rc != CK_ENOTFOUND)
        ck_log_error("%s; the multipart upload stays open until a lifecycle rule removes it",
                     err.msg);
    else
        ck_log_info("aborted the multipart upload of %s", disp(m));
}

static void free_mpu(struct ck_s3_mpu *m)
{
    for (unsigned i = 0; i < m->qlen; i++)
        free(m->queue[(m->qhead + i) % MAX_BUFS].data);
    for (unsigned i = 0; i < m->nfree; i++)
        free(m->freebufs[i].data);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m->results);
    free(m);
}

/* Lets the workers finish (closing) or stop (cancel), and joins them. */
static void stop_workers(struct ck_s3_mpu *m, bool cancel)
{
    pthread_mutex_lock(&m->lock);
    m->closing = true;
    if (cancel) {
        m->failed = true;
        atomic_store(&m->cancel, true);
    }
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    for (unsigned i = 0; i < m->nworkers; i++)
        pthread_join(m->workers[i], NULL);
    m->nworkers = 0;
}

ck_rc ck_s3_mpu_start(struct ck_s3 *s3, unsigned parallel, struct ck_s3_mpu **out,
                      struct ck_err *err)
{
    struct ck_s3_mpu *m = calloc(1, sizeof(*m));
    if (!m)
        return ck_fail(err, CK_ENOMEM, "%s: out of memory", s3->display);
    m->s3 = s3;
    m->parallel = parallel < 1 ? 1 : parallel > CK_S3_MAX_PAR ? CK_S3_MAX_PAR : parallel;
    m->nbufs = 1; /* the writer's */
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    ck_rc rc = create_upload(m, err);
    if (rc) {
        free_mpu(m);
        return rc;
    }
    for (unsigned i = 0; i < m->parallel && !rc; i++) {
        if (pthread_create(&m->workers[i], NULL, worker_main, m) != 0)
            rc = ck_fail(err, CK_ENOMEM, "%s: cannot start an upload thread", s3->display);
        else
            m->nworkers++;
    }
    if (rc) {
        ck_s3_mpu_abort(m);
        return rc;
    }
    ck_log_debug("multipart upload of %s started, %u parts in flight", s3->display, m->parallel);
    *out = m;
    return CK_OK;
}

unsigned ck_s3_mpu_next_part(const struct ck_s3_mpu *m)
{
    return m->submitted + 1; /* written by the writer thread only */
}

static ck_rc grow_results_locked(struct ck_s3_mpu *m, struct ck_err *err)
{
    if (m->submitted < m->results_cap)
        return CK_OK;
    unsigned cap = m->results_cap ? m->results_cap * 2 : 64;
    if (cap > CK_S3_MAX_PARTS)
        cap = CK_S3_MAX_PARTS;
    struct part_result *r = realloc(m->results, sizeof(*r) * cap);
    if (!r)
        return ck_fail(err, CK_ENOMEM, "%s: out of memory", disp(m));
    memset(r + m->results_cap, 0, sizeof(*r) * (cap - m->results_cap));
    m->results = r;
    m->results_cap = cap;
    return CK_OK;
}

ck_rc ck_s3_mpu_submit(struct ck_s3_mpu *m, char *buf, size_t len, size_t cap, struct ck_err *err)
{
    ck_rc rc = CK_OK;
    pthread_mutex_lock(&m->lock);
    if (m->failed) {
        *err = m->fail;
        rc = err->rc;
    } else if (m->submitted >= CK_S3_MAX_PARTS) {
        rc = ck_fail(err, CK_EINVAL, "%s: object needs more than %u parts", disp(m),
                     CK_S3_MAX_PARTS);
    } else {
        rc = grow_results_locked(m, err);
    }
    if (rc) {
        m->nbufs--;
        pthread_mutex_unlock(&m->lock);
        free(buf);
        return rc;
    }
    struct part_buf b = {buf, cap, len, ++m->submitted};
    m->queue[(m->qhead + m->qlen) % MAX_BUFS] = b;
    m->qlen++;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return CK_OK;
}

/* How many part buffers may exist: parallel + 1, fewer when parts grow so that they stay
 * within CK_S3_PART_MEMORY, but never fewer than two (one filling, one uploading). */
static unsigned buffers_for(unsigned parallel, size_t part)
{
    size_t fit = CK_S3_PART_MEMORY / (part ? part : 1);
    unsigned n = parallel + 1;
    if (fit < n)
        n = (unsigned)fit;
    return n < 2 ? 2 : n;
}

ck_rc ck_s3_mpu_take_buffer(struct ck_s3_mpu *m, size_t size, char **buf, size_t *cap,
                            struct ck_err *err)
{
    struct part_buf b = {0};
    pthread_mutex_lock(&m->lock);
    unsigned limit = buffers_for(m->parallel, size);
    while (!m->failed && m->nfree == 0 && m->nbufs >= limit)
        pthread_cond_wait(&m->cond, &m->lock);
    if (m->failed) {
        *err = m->fail;
        pthread_mutex_unlock(&m->lock);
        return err->rc;
    }
    if (m->nfree > 0)
        b = m->freebufs[--m->nfree];
    m->nbufs += b.data ? 0 : 1;
    pthread_mutex_unlock(&m->lock);
    if (b.cap < size) {
        char *p = realloc(b.data, size);
        if (!p) {
            free(b.data);
            pthread_mutex_lock(&m->lock);
            m->nbufs--;
            pthread_mutex_unlock(&m->lock);
            return ck_fail(err, CK_ENOMEM, "%s: no memory for a %zu-byte part", disp(m), size);
        }
        b.data = p;
        b.cap = size;
    }
    *buf = b.data;
    *cap = b.cap;
    return CK_OK;
}

/* Every part done, numbered 1..N, sizes adding up to total, checksums as sent. */
static ck_rc verify_parts(struct ck_s3_mpu *m, uint64_t total, struct ck_err *err)
{
    uint64_t sum = 0;
    if (m->submitted == 0)
        return ck_fail(err, CK_EINVAL, "%s: multipart upload without parts", disp(m));
    for (unsigned i = 0; i < m->submitted; i++) {
        const struct part_result *r = &m->results[i];
        if (!r->done || !r->etag[0])
            return ck_fail(err, CK_EIO, "%s: part %u of %u was not uploaded", disp(m), i + 1,
                           m->submitted);
        if (r->got_b64[0] && strcmp(r->got_b64, r->sent_b64) != 0)
            return ck_fail(err, CK_ECORRUPT, "%s: checksum of part %u differs", disp(m), i + 1);
        sum += r->size;
    }
    if (sum != total)
        return ck_fail(err, CK_EIO, "%s: parts hold %llu bytes, %llu were written", disp(m),
                       (unsigned long long)sum, (unsigned long long)total);
    return CK_OK;
}

/* The part count in a multipart ETag ("...-N"), 0 if it has none. */
static unsigned etag_parts(const char *etag)
{
    const char *dash = strrchr(etag, '-');
    return dash ? (unsigned)strtoul(dash + 1, NULL, 10) : 0;
}

static ck_rc complete_remote(struct ck_s3_mpu *m, struct ck_err *err)
{
    struct ck_buf body, reply;
    ck_buf_init(&body, (size_t)m->submitted * 512 + 256);
    ck_buf_init(&reply, REPLY_MAX);
    struct ck_s3_part_ref *refs = calloc(m->submitted, sizeof(*refs));
    ck_rc rc = refs ? CK_OK : ck_fail(err, CK_ENOMEM, "%s: out of memory", disp(m));
    for (unsigned i = 0; !rc && i < m->submitted; i++)
        refs[i] = (struct ck_s3_part_ref){i + 1, m->results[i].etag, m->results[i].sent_b64};
    if (!rc)
        rc = ck_s3_xml_complete_body(refs, m->submitted, &body, err);
    struct ck_s3_call c = {
        .method = CK_HTTP_POST,
        .query = m->id_query,
        .label = "CompleteMultipartUpload",
        .body = body.data,
        .body_len = body.len,
        .content_type = "application/xml",
        .reply_body = &reply,
        .error_in_2xx = true,
    };
    struct ck_http_response resp;
    char what[300], etag[128];
    snprintf(what, sizeof(what), "POST %s (CompleteMultipartUpload)", disp(m));
    if (!rc)
        rc = ck_s3_perform(m->s3, &c, &resp, err);
    if (!rc)
        rc = ck_s3_xml_complete_etag(reply.data, reply.len, etag, sizeof(etag), what, err);
    if (!rc && etag_parts(etag) && etag_parts(etag) != m->submitted)
        rc = ck_fail(err, CK_ECORRUPT, "%s: object has %u parts, %u were sent", what,
                     etag_parts(etag), m->submitted);
    free(refs);
    ck_buf_free(&body);
    ck_buf_free(&reply);
    return rc;
}

static ck_rc collect_body(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    struct ck_buf *b = ctx;
    return ck_buf_append(b, buf, len) ? ck_fail(err, CK_ECORRUPT, "listing too large") : CK_OK;
}

struct sweep {
    struct ck_s3 *s3;
    const char *keep; /* our own upload id, or "" */
};

/* Aborts one upload of our key that is not ours (see ck_s3_sweep_uploads). */
static void abort_other(void *ctx, const char *upload_id)
{
    struct sweep *sw = ctx;
    if (strcmp(upload_id, sw->keep) == 0)
        return;
    char enc[3 * CK_S3_UPLOAD_ID_MAX + 1], query[sizeof(enc) + 16];
    if (ck_sigv4_uri_encode(upload_id, 0, enc, sizeof(enc)) != CK_OK)
        return;
    snprintf(query, sizeof(query), "uploadId=%s", enc);
    struct ck_s3_call c = {.method = CK_HTTP_DELETE,
                           .query = query,
                           .label = "AbortMultipartUpload of a stale upload"};
    struct ck_http_response resp;
    struct ck_err err;
    if (ck_s3_perform(sw->s3, &c, &resp, &err) == CK_OK)
        ck_log_info("aborted a stale multipart upload of %s (a lost reply, or a daemon killed "
                    "mid-save)",
                    sw->s3->display);
}

void ck_s3_sweep_uploads(struct ck_s3 *s3, const char *keep)
{
    /* The whole bucket's first page (1,000 uploads), filtered by key here: a "prefix"
     * parameter holding "/" is signed differently by some S3-compatible servers (moto). */
    const char *query = "uploads=";
    struct ck_buf body;
    ck_buf_init(&body, REPLY_MAX);
    struct ck_sink sink = {collect_body, &body};
    struct ck_s3_call c = {.method = CK_HTTP_GET,
                           .query = query,
                           .bucket_level = true,
                           .label = "ListMultipartUploads",
                           .sink = &sink};
    struct ck_http_response resp;
    struct ck_err err;
    struct sweep sw = {s3, keep ? keep : ""};
    if (ck_s3_perform(s3, &c, &resp, &err) == CK_OK)
        ck_s3_xml_each_upload(body.data ? body.data : "", body.len, s3->key, abort_other, &sw,
                              &err);
    else
        ck_log_debug("%s", err.msg);
    ck_buf_free(&body);
}

ck_rc ck_s3_mpu_complete(struct ck_s3_mpu *m, uint64_t total, struct ck_err *err)
{
    stop_workers(m, false);
    ck_rc rc;
    if (m->failed) {
        *err = m->fail;
        rc = err->rc;
    } else {
        rc = verify_parts(m, total, err);
    }
    if (!rc)
        rc = complete_remote(m, err);
    if (rc)
        abort_remote(m);
    else
        ck_log_debug("completed the multipart upload of %s: %u parts", disp(m), m->submitted);
    ck_s3_sweep_uploads(m->s3, m->upload_id);
    free_mpu(m);
    return rc;
}

void ck_s3_mpu_abort(struct ck_s3_mpu *m)
{
    if (!m)
        return;
    stop_workers(m, true);
    abort_remote(m);
    ck_s3_sweep_uploads(m->s3, m->upload_id);
    free_mpu(m);
}
