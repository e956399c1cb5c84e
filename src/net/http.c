/*
 * http.c - one HTTP request with retries and resumption; see http.h.
 *
 * Design: ck_http_perform() is a loop of attempts on one curl easy handle. Each attempt
 * asks for the bytes not yet delivered (a Range from the first missing byte), checks the
 * reply's status, Content-Range and ETag once its headers are complete, and streams the
 * body to the caller's sink. The outcome of an attempt is classified as success, retry
 * (transport error, truncated body, transient status) or final failure; retries wait per
 * ck_retry_next(), stretched to a server's Retry-After up to the policy's max delay.
 */
#include "net/http.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctype.h>
#include <strings.h>

#include <curl/curl.h>

#include "net/http_reply.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"

/* State of one request across its attempts. */
struct xfer {
    const struct ck_http_request *req;
    const char *disp;
    CURL *curl;
    struct ck_http_reply reply; /* of the current attempt */
    struct ck_buf errbody;      /* start of a non-2xx body, capped */
    uint64_t start;             /* first byte wanted by the request (absolute) */
    uint64_t end;               /* one past the last byte wanted, or UINT64_MAX */
    uint64_t delivered;         /* bytes given to the sink over all attempts */
    uint64_t skip;              /* leading bytes of this attempt's body to drop */
    uint64_t put_pos;           /* bytes of the PUT body sent in this attempt */
    char first_etag[128];       /* ETag of the first 2xx reply, to detect a changed object */
    bool have_all;              /* stopped reading: everything wanted was delivered */
    bool stalled;               /* this attempt was cut for making no progress */
    bool timed_out;             /* this attempt ended in a timeout (stall or curl's own) */
    curl_off_t last_now;        /* dlnow + ulnow at the last progress seen */
    double last_progress;       /* ck_now() then */
    ck_rc cb_rc;                /* failure found inside a curl callback; final */
    struct ck_err cb_err;
    char curl_msg[CURL_ERROR_SIZE];
    char captured[CK_HTTP_CAPTURES][256]; /* req->capture_headers of this attempt */
};

/* The headers of one attempt: the request's own plus what the hook adds. */
struct ck_http_attempt {
    unsigned number;
    struct curl_slist *list; /* owned by the attempt loop */
    char range[64];          /* "START-END" or "START-" this attempt asks for, or "" */
};

enum outcome { OUT_DONE, OUT_RETRY, OUT_FAIL };

const char *ck_http_method_name(enum ck_http_method m)
{
    switch (m) {
    case CK_HTTP_GET:
        return "GET";
    case CK_HTTP_HEAD:
        return "HEAD";
    case CK_HTTP_PUT:
        return "PUT";
    case CK_HTTP_POST:
        return "POST";
    case CK_HTTP_DELETE:
        return "DELETE";
    }
    return "?";
}

void ck_http_request_init(struct ck_http_request *req)
{
    memset(req, 0, sizeof(*req));
    req->method = CK_HTTP_GET;
    ck_retry_policy_default(&req->retry);
    req->connect_timeout_s = 10;
    req->stall_timeout_s = 30;
}

ck_rc ck_http_global_init(struct ck_err *err)
{
    CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (c != CURLE_OK)
        return ck_fail(err, CK_EIO, "libcurl initialisation: %s", curl_easy_strerror(c));
    return CK_OK;
}

void ck_http_global_cleanup(void)
{
    curl_global_cleanup();
}

/* Records a final failure found in a callback (the first one wins). */
static void cb_fail(struct xfer *x, ck_rc rc, const char *what)
{
    if (x->cb_rc == CK_OK)
        x->cb_rc = ck_fail(&x->cb_err, rc, "%s %s: %s", ck_http_method_name(x->req->method),
                           x->disp, what);
}

static bool is_get(const struct xfer *x)
{
    return x->req->method == CK_HTTP_GET;
}

static bool has_body(const struct ck_http_request *req)
{
    return req->method == CK_HTTP_PUT || req->method == CK_HTTP_POST;
}

unsigned ck_http_attempt_number(const struct ck_http_attempt *a)
{
    return a->number;
}

const char *ck_http_attempt_range(const struct ck_http_attempt *a)
{
    return a->range;
}

ck_rc ck_http_attempt_header(struct ck_http_attempt *a, const char *name, const char *value,
                             struct ck_err *err)
{
    char line[CK_HTTP_HEADER_MAX];
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return ck_fail(err, CK_EINVAL, "header '%.40s': CR, LF or ':' not allowed", name);
    int n = snprintf(line, sizeof(line), "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof(line))
        return ck_fail(err, CK_EINVAL, "header '%.40s': longer than %d bytes", name,
                       CK_HTTP_HEADER_MAX);
    struct curl_slist *next = curl_slist_append(a->list, line);
    if (!next)
        return ck_fail(err, CK_ENOMEM, "header '%.40s': out of memory", name);
    a->list = next;
    return CK_OK;
}

/* Keeps the value of header name in out (printable ASCII, trimmed, capped). */
static void capture(const char *name, const char *line, size_t len, char out[256])
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return;
    const char *p = line + nl + 1, *end = line + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    size_t n = 0;
    for (; p < end && n + 1 < 256; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            n = 0; /* anything odd: keep nothing */
            break;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
}

/* Where this attempt's body must start, given what was delivered. */
static uint64_t next_byte(const struct xfer *x)
{
    return x->start + x->delivered;
}

/* Checks a complete 2xx GET reply against what was asked; false refuses it. */
static bool check_get_reply(struct xfer *x)
{
    const struct ck_http_reply *r = &x->reply;
    char msg[160];
    if (r->status == 206) {
        if (!r->has_content_range || r->range_unsatisfied) {
            cb_fail(x, CK_ECORRUPT, "206 reply without a usable Content-Range");
            return false;
        }
        if (r->range_start != next_byte(x)) {
            snprintf(msg, sizeof(msg),
                     "wrong range: asked from byte %" PRIu64 ", reply starts at %" PRIu64,
                     next_byte(x), r->range_start);
            cb_fail(x, CK_ECORRUPT, msg);
            return false;
        }
    } else {
        x->skip = next_byte(x); /* a 200 carries the object from byte 0 */
    }
    if (x->first_etag[0] && r->etag[0] && strcmp(x->first_etag, r->etag) != 0) {
        cb_fail(x, CK_ECORRUPT, "object changed during download (ETag differs)");
        return false;
    }
    if (!x->first_etag[0])
        memcpy(x->first_etag, r->etag, sizeof(x->first_etag));
    return true;
}

static size_t on_header(char *line, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    for (int i = 0; i < CK_HTTP_CAPTURES; i++)
        if (x->req->capture_headers[i])
            capture(x->req->capture_headers[i], line, len, x->captured[i]);
    if (!ck_http_reply_line(&x->reply, line, len)) {
        cb_fail(x, CK_ECORRUPT, x->reply.invalid);
        return 0;
    }
    bool ok2xx = x->reply.status >= 200 && x->reply.status < 300;
    if (x->reply.complete && ok2xx && is_get(x) && !check_get_reply(x))
        return 0;
    return len;
}

/* Pushes body bytes of a 2xx GET to the sink: drops the skip, stops at the end wanted. */
static size_t deliver(struct xfer *x, const char *p, size_t len)
{
    size_t used = len;
    if (x->skip) {
        size_t drop = x->skip < len ? (size_t)x->skip : len;
        x->skip -= drop;
        p += drop;
        len -= drop;
    }
    uint64_t left = x->end - next_byte(x);
    if (len > left)
        len = (size_t)left;
    if (len && x->req->sink) {
        ck_rc rc = ck_sink_write(x->req->sink, p, len, &x->cb_err);
        if (rc) {
            x->cb_rc = rc;
            return 0;
        }
    }
    x->delivered += len;
    if (x->end != UINT64_MAX && next_byte(x) == x->end && x->skip == 0 && len < used) {
        x->have_all = true; /* the server sends more than we asked for: stop here */
        return 0;
    }
    return used;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    long st = x->reply.status;
    if (st >= 200 && st < 300 && is_get(x))
        return deliver(x, p, len);
    if (st >= 200 && st < 300) {
        struct ck_buf *rb = x->req->reply_body;
        if (rb && ck_buf_append(rb, p, len) != CK_OK) {
            char msg[96];
            snprintf(msg, sizeof(msg), "reply body longer than %zu bytes", rb->max);
            cb_fail(x, CK_ECORRUPT, msg);
            return 0;
        }
        return len;
    }
    size_t room = x->errbody.max - x->errbody.len;
    ck_buf_append(&x->errbody, p, len < room ? len : room);
    return len;
}

/* A body pulled from the caller (req->body_read). */
static size_t read_pulled(struct xfer *x, char *buf, size_t max)
{
    const struct ck_http_request *req = x->req;
    bool sized = req->body_len != CK_HTTP_LEN_UNKNOWN;
    if (sized) {
        uint64_t left = req->body_len - x->put_pos;
        if (left < max)
            max = (size_t)left;
        if (max == 0)
            return 0;
    }
    size_t got = 0;
    ck_rc rc = req->body_read(req->body_ctx, x->put_pos, buf, max, &got);
    x->last_progress = ck_now(); /* time spent waiting for the body is not a stall */
    if (rc == CK_OK && got > max)
        rc = CK_EINVAL;
    if (rc) {
        cb_fail(x, rc, rc == CK_ECANCELED ? "cancelled" : "the upload body could not be read");
        return CURL_READFUNC_ABORT;
    }
    if (got == 0 && sized) {
        cb_fail(x, CK_EIO, "the upload body ended before its length");
        return CURL_READFUNC_ABORT;
    }
    x->put_pos += got;
    return got;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    const struct ck_http_request *req = x->req;
    if (req->body_read)
        return read_pulled(x, buf, size * n);
    uint64_t left = req->body_len - x->put_pos;
    size_t want = size * n < left ? size * n : (size_t)left;
    if (want == 0)
        return 0;
    memcpy(buf, (const char *)req->body_mem + x->put_pos, want);
    x->put_pos += want;
    return want;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
    struct xfer *x = ud;
    const struct ck_http_request *req = x->req;
    bool sized = !req->body_read || req->body_len != CK_HTTP_LEN_UNKNOWN;
    if (origin != SEEK_SET || off < 0 || (sized && (uint64_t)off > req->body_len))
        return CURL_SEEKFUNC_CANTSEEK;
    x->put_pos = (uint64_t)off; /* a pulled body says at the next read whether it still has it */
    return CURL_SEEKFUNC_OK;
}

static bool cancelled(const struct xfer *x)
{
    return x->req->cancel && atomic_load(x->req->cancel);
}

/* Cuts an attempt that moved no byte for stall_timeout_s. curl's own low-speed check
 * averages over several seconds, so it would let a stall run longer than asked. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct xfer *x = ud;
    if (cancelled(x)) {
        cb_fail(x, CK_ECANCELED, "cancelled");
        return 1;
    }
    double now = ck_now();
    if (dlnow + ulnow != x->last_now) {
        x->last_now = dlnow + ulnow;
        x->last_progress = now;
        return 0;
    }
    if (x->req->stall_timeout_s <= 0 || now - x->last_progress < x->req->stall_timeout_s)
        return 0;
    x->stalled = true;
    return 1;
}

/* Adds the caller's headers; their values are never logged. */
static bool build_headers(const struct ck_http_request *req, struct curl_slist **out)
{
    struct curl_slist *list = NULL;
    for (int i = 0; i < CK_HTTP_MAX_HEADERS && req->headers[i]; i++) {
        struct curl_slist *next = curl_slist_append(list, req->headers[i]);
        if (!next) {
            curl_slist_free_all(list);
            return false;
        }
        list = next;
    }
    *out = list;
    return true;
}

/* The Range of the next attempt of a GET ("START-END", "START-"), or "" for none. */
static void range_text(const struct xfer *x, char *range, size_t size)
{
    uint64_t from = next_byte(x);
    range[0] = '\0';
    if (x->req->method != CK_HTTP_GET || !(x->req->has_range || from > 0))
        return;
    if (x->end != UINT64_MAX)
        snprintf(range, size, "%" PRIu64 "-%" PRIu64, from, x->end - 1);
    else
        snprintf(range, size, "%" PRIu64 "-", from);
}

static void set_range(struct xfer *x)
{
    char range[64];
    range_text(x, range, sizeof(range));
    curl_easy_setopt(x->curl, CURLOPT_RANGE, range[0] ? range : NULL);
}

static void set_method(struct xfer *x)
{
    const struct ck_http_request *req = x->req;
    CURL *c = x->curl;
    if (req->method == CK_HTTP_HEAD) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (req->method == CK_HTTP_DELETE) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else if (has_body(req)) {
        x->put_pos = 0;
        if (req->method == CK_HTTP_PUT) {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            /* unknown size (a pulled body): curl sends it chunked */
            bool chunked = req->body_read && req->body_len == CK_HTTP_LEN_UNKNOWN;
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
                             chunked ? (curl_off_t)-1 : (curl_off_t)req->body_len);
        } else {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        }
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        /* Big reads: a 1 MiB upload buffer instead of 64 KiB cuts callbacks and syscalls. */
        curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
        curl_easy_setopt(c, CURLOPT_READDATA, x);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
    } else {
        set_range(x);
    }
}

/* The CA bundle this request trusts (see TLS in http.h), or NULL: the system's. */
static const char *ca_bundle(const struct ck_http_request *req)
{
    const char *env[] = {"CURL_CA_BUNDLE", "SSL_CERT_FILE"};
    if (req->ca_file && req->ca_file[0])
        return req->ca_file;
    for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++) {
        const char *v = getenv(env[i]);
        if (v && v[0])
            return v;
    }
    return NULL;
}

static void setup_tls(const struct ck_http_request *req, CURL *c)
{
    const char *ca = ca_bundle(req), *dir = getenv("SSL_CERT_DIR");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    if (dir && dir[0])
        curl_easy_setopt(c, CURLOPT_CAPATH, dir);
}

/* Whether c says the server's certificate, or the bundle to check it, was refused. */
static bool curl_code_tls_trust(CURLcode c)
{
    return c == CURLE_PEER_FAILED_VERIFICATION || c == CURLE_SSL_CACERT_BADFILE ||
           c == CURLE_SSL_ISSUER_ERROR || c == CURLE_SSL_CRL_BADFILE ||
           c == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
}

static void setup_attempt(struct xfer *x, struct curl_slist *headers)
{
    const struct ck_http_request *req = x->req;
    CURL *c = x->curl;
    curl_easy_reset(c); /* keeps the connection cache */
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, req->path_as_is ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->curl_msg);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(req->connect_timeout_s * 1000));
    long stall = (long)(req->stall_timeout_s + 0.999);
    if (stall > 0) { /* the backstop; on_progress cuts stalls more precisely */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall);
    }
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    setup_tls(req, c);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    set_method(x);
    x->stalled = false;
    x->last_now = 0;
    x->last_progress = ck_now();
    ck_http_reply_reset(&x->reply);
    x->skip = 0;
    x->curl_msg[0] = '\0';
    for (int i = 0; i < CK_HTTP_CAPTURES; i++)
        x->captured[i][0] = '\0';
    ck_buf_reset(&x->errbody);
    if (req->reply_body)
        ck_buf_reset(req->reply_body);
}

static bool curl_code_transient(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

static ck_rc status_rc(long status)
{
    if (status == 404)
        return CK_ENOTFOUND;
    if (status == 401 || status == 403)
        return CK_EAUTH;
    if (status >= 400 && status < 500 && status != 408 && status != 425 && status != 429)
        return CK_EREMOTE;
    return CK_ENET;
}

/* Error codes (of the XML error body) that mean "try again" whatever the status carrying
 * them. The store telling that the body's checksum does not match the one sent (S3 and
 * GCS BadDigest, S3 and radosgw XAmzContentSHA256Mismatch, Azure Md5Mismatch) means the
 * bytes were damaged on the way: they are sent again from what the request holds. */
static bool code_transient(const char *code)
{
    static const char *const codes[] = {"RequestTimeout", "SlowDown",
                                        "InternalError",  "ServiceUnavailable",
                                        "BadDigest",      "XAmzContentSHA256Mismatch",
                                        "Md5Mismatch",    NULL};
    for (int i = 0; codes[i]; i++) {
        if (strcmp(code, codes[i]) == 0)
            return true;
    }
    return false;
}

/* Whether a 2xx body is an XML document whose root element is <Error>. */
static bool body_is_error(const struct ck_buf *b)
{
    const char *p = b->data, *end = b->data + b->len;
    if (!p)
        return false;
    for (;;) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (end - p >= 2 && p[0] == '<' && p[1] == '?') { /* <?xml ...?> */
            const char *q = memmem(p, (size_t)(end - p), "?>", 2);
            if (!q)
                return false;
            p = q + 2;
            continue;
        }
        break;
    }
    return end - p >= 7 && memcmp(p, "<Error", 6) == 0 &&
           (p[6] == '>' || isspace((unsigned char)p[6]));
}

/* "HTTP 403 Forbidden (AccessDenied)" into out. */
static void describe_status(const struct xfer *x, char *out, size_t outsz)
{
    const char *reason =
        x->reply.reason[0] ? x->reply.reason : ck_http_status_text(x->reply.status);
    char code[64];
    ck_http_error_code(x->errbody.data, x->errbody.len, code, sizeof(code));
    snprintf(out, outsz, "HTTP %ld%s%s%s%s%s", x->reply.status, reason[0] ? " " : "", reason,
             code[0] ? " (" : "", code, code[0] ? ")" : "");
}

/* Classifies a 2xx GET that curl finished: complete, short (retry) or impossible. */
static enum outcome check_get_complete(struct xfer *x, char *what, size_t whatsz,
                                       struct ck_err *err)
{
    const struct ck_http_reply *r = &x->reply;
    uint64_t end = x->end;
    /* "To the end" is the object's end where a 206 states it: a 206 that stops early
     * (bytes 0-99/300000) is a short body to resume, not the whole object. */
    if (end == UINT64_MAX && r->status == 206 && r->total_known)
        end = r->range_total;
    if (end == UINT64_MAX || next_byte(x) >= end)
        return OUT_DONE;
    uint64_t size = r->status == 206 ? (r->total_known ? r->range_total : UINT64_MAX)
                                     : (r->has_content_length ? r->content_length : UINT64_MAX);
    if (size != UINT64_MAX && size < end) {
        ck_fail(err, CK_ECORRUPT, "GET %s: object has %" PRIu64 " bytes, asked up to byte %" PRIu64,
                x->disp, size, end);
        return OUT_FAIL;
    }
    snprintf(what, whatsz, "body ended at byte %" PRIu64 " of %" PRIu64, next_byte(x), end);
    return OUT_RETRY;
}

/* Classifies the attempt that just ended with curl code c. */
static enum outcome classify(struct xfer *x, CURLcode c, char *what, size_t whatsz,
                             struct ck_err *err)
{
    const char *m = ck_http_method_name(x->req->method);
    if (x->cb_rc) {
        *err = x->cb_err;
        return OUT_FAIL;
    }
    x->timed_out = false;
    long st = x->reply.status;
    bool answered = x->reply.complete && (st < 200 || st >= 300);
    if (c != CURLE_OK && !answered && !(c == CURLE_WRITE_ERROR && x->have_all)) {
        if (x->stalled)
            snprintf(what, whatsz, "no progress for %.0f s", x->req->stall_timeout_s);
        else
            snprintf(what, whatsz, "%s", x->curl_msg[0] ? x->curl_msg : curl_easy_strerror(c));
        x->timed_out = x->stalled || c == CURLE_OPERATION_TIMEDOUT;
        if (x->stalled || curl_code_transient(c))
            return OUT_RETRY;
        if (curl_code_tls_trust(c)) {
            const char *ca = ca_bundle(x->req);
            ck_fail(err, CK_EAUTH,
                    "%s %s: TLS: %s (CAs trusted: %s; name the server's CA with SSL_CERT_FILE "
                    "or CURL_CA_BUNDLE, AWS_CA_BUNDLE for s3://)",
                    m, x->disp, what, ca ? ca : "the system's bundle");
            return OUT_FAIL;
        }
        ck_fail(err, c == CURLE_URL_MALFORMAT ? CK_EINVAL : CK_ENET, "%s %s: %s", m, x->disp, what);
        return OUT_FAIL;
    }
    if (st >= 200 && st < 300 && x->req->error_in_2xx && body_is_error(x->req->reply_body)) {
        const struct ck_buf *rb = x->req->reply_body;
        ck_buf_append(&x->errbody, rb->data, rb->len < x->errbody.max ? rb->len : x->errbody.max);
        char code[64];
        ck_http_error_code(x->errbody.data, x->errbody.len, code, sizeof(code));
        snprintf(what, whatsz, "HTTP %ld with an error in its body (%s)", st,
                 code[0] ? code : "no code");
        if (code_transient(code))
            return OUT_RETRY;
        ck_fail(err, CK_EREMOTE, "%s %s: %s", m, x->disp, what);
        return OUT_FAIL;
    }
    if (st >= 200 && st < 300)
        return is_get(x) ? check_get_complete(x, what, whatsz, err) : OUT_DONE;
    describe_status(x, what, whatsz);
    char code[64];
    ck_http_error_code(x->errbody.data, x->errbody.len, code, sizeof(code));
    if (ck_retry_http_status_transient(st) || code_transient(code))
        return OUT_RETRY;
    ck_fail(err, status_rc(st), "%s %s: %s", m, x->disp, what);
    return OUT_FAIL;
}

/* Waits before the next attempt; false when the retry budget is spent. */
static bool wait_for_retry(struct xfer *x, struct ck_retry_state *st, const char *what)
{
    double delay, now = ck_now();
    if (!ck_retry_next(st, now, &delay))
        return false;
    double ra = x->reply.retry_after_s;
    if (ra > delay)
        delay = ra < st->policy.max_delay_s ? ra : st->policy.max_delay_s;
    if (now + delay - st->started > st->policy.deadline_s)
        return false;
    ck_log_warn("%s %s: %s; retry %u of %u in %.2f s", ck_http_method_name(x->req->method), x->disp,
                what, st->attempts - 1, st->policy.max_attempts - 1, delay);
    ck_sleep(delay);
    return true;
}

static uint64_t retry_seed(const void *p)
{
    uint64_t t = (uint64_t)(ck_now() * 1e9);
    return t ^ ((uint64_t)(uintptr_t)p << 17) ^ (uint64_t)pthread_self();
}

/* Builds the headers of attempt number n: the request's, then the hook's. */
static ck_rc attempt_headers(struct xfer *x, unsigned n, struct curl_slist **out,
                             struct ck_err *err)
{
    const struct ck_http_request *req = x->req;
    struct ck_http_attempt a = {.number = n};
    range_text(x, a.range, sizeof(a.range));
    *out = NULL;
    if (!build_headers(req, &a.list))
        return ck_fail(err, CK_ENOMEM, "%s %s: cannot set up the request",
                       ck_http_method_name(req->method), x->disp);
    if (req->on_attempt) {
        ck_rc rc = req->on_attempt(req->on_attempt_ctx, &a, err);
        if (rc) {
            curl_slist_free_all(a.list);
            return rc;
        }
    }
    *out = a.list;
    return CK_OK;
}

static ck_rc run_attempts(struct xfer *x, unsigned *attempts, struct ck_err *err)
{
    struct ck_retry_state st;
    char what[CK_ERR_MSG_MAX / 2];
    ck_retry_begin(&st, &x->req->retry, ck_now(), retry_seed(x));
    for (;;) {
        if (cancelled(x))
            return ck_fail(err, CK_ECANCELED, "%s %s: cancelled",
                           ck_http_method_name(x->req->method), x->disp);
        struct curl_slist *headers;
        ck_rc rc = attempt_headers(x, st.attempts + 1, &headers, err);
        if (rc)
            return rc;
        setup_attempt(x, headers);
        CURLcode c = curl_easy_perform(x->curl);
        curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(headers);
        enum outcome o = classify(x, c, what, sizeof(what), err);
        *attempts = st.attempts;
        if (o == OUT_DONE)
            return CK_OK;
        if (o == OUT_FAIL)
            return err->rc;
        if (!wait_for_retry(x, &st, what))
            return ck_fail(err, x->timed_out ? CK_ETIMEDOUT : status_rc(x->reply.status),
                           "%s %s: %s (gave up after %u "
                           "attempts)",
                           ck_http_method_name(x->req->method), x->disp, what, st.attempts);
    }
}

static ck_rc check_request(const struct ck_http_request *req, const char *disp, struct ck_err *err)
{
    const char *m = ck_http_method_name(req->method);
    if (!req->url)
        return ck_fail(err, CK_EINVAL, "%s: no URL", m);
    if (req->has_range && req->range_len == 0)
        return ck_fail(err, CK_EINVAL, "%s %s: empty range", m, disp);
    if (req->has_range && req->range_len != CK_HTTP_TO_END &&
        req->range_len > UINT64_MAX - req->range_off)
        return ck_fail(err, CK_EINVAL, "%s %s: range overflows", m, disp);
    if (has_body(req) && !req->body_read && req->body_len && !req->body_mem)
        return ck_fail(err, CK_EINVAL, "%s %s: no body", m, disp);
    if (has_body(req) && req->body_len == CK_HTTP_LEN_UNKNOWN &&
        !(req->body_read && req->method == CK_HTTP_PUT))
        return ck_fail(err, CK_EINVAL, "%s %s: a body of unknown length needs a pulled PUT", m,
                       disp);
    if (req->error_in_2xx && !req->reply_body)
        return ck_fail(err, CK_EINVAL, "%s %s: error_in_2xx needs reply_body", m, disp);
    return CK_OK;
}

ck_rc ck_http_perform(const struct ck_http_request *req, struct ck_http_response *resp,
                      struct ck_err *err)
{
    struct xfer x = {.req = req, .disp = req->display_url ? req->display_url : "<url>"};
    struct ck_err local;
    if (!err)
        err = &local; /* the outcome travels in err->rc */
    ck_err_clear(err);
    memset(resp, 0, sizeof(*resp));
    ck_rc rc = check_request(req, x.disp, err);
    if (rc)
        return rc;
    x.start = req->has_range ? req->range_off : 0;
    x.end = req->has_range && req->range_len != CK_HTTP_TO_END ? req->range_off + req->range_len
                                                               : UINT64_MAX;
    ck_buf_init(&x.errbody, CK_HTTP_ERROR_BODY_MAX);
    x.curl = curl_easy_init();
    if (!x.curl) {
        rc = ck_fail(err, CK_ENOMEM, "%s %s: cannot set up the request",
                     ck_http_method_name(req->method), x.disp);
    } else {
        rc = run_attempts(&x, &resp->attempts, err);
    }
    ck_http_reply_export(&x.reply, resp);
    ck_http_error_code(x.errbody.data, x.errbody.len, resp->error_code, sizeof(resp->error_code));
    if (x.errbody.len)
        memcpy(resp->error_body, x.errbody.data, x.errbody.len);
    resp->error_body_len = x.errbody.len;
    resp->error_body[resp->error_body_len] = '\0';
    memcpy(resp->captured, x.captured, sizeof(resp->captured));
    resp->delivered = x.delivered;
    if (x.curl)
        curl_easy_cleanup(x.curl);
    ck_buf_free(&x.errbody);
    return rc;
}
