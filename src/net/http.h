/*
 * http.h - one HTTP request with retries, on libcurl.
 *
 * ck_http_perform() runs a GET, HEAD, PUT, POST or DELETE to completion: it retries transport
 * errors (refused, reset, timeouts, truncated bodies) and transient statuses (408, 425, 429, 5xx
 * per ck_retry_http_status_transient, honouring Retry-After up to the policy's max delay)
 * under a ck_retry_policy. A GET that fails mid-body resumes with a Range request from the
 * first byte not yet delivered, so the sink sees every byte exactly once; a PUT is sent
 * again from memory, or from its pulled body while that still holds the bytes. Replies
 * are untrusted: header sizes are capped, Content-Length and Content-Range are parsed
 * strictly, a 206 that starts elsewhere than asked is refused (CK_ECORRUPT "wrong
 * range"), a 200 to a ranged request has its leading bytes skipped, and an object whose
 * ETag changes between attempts is refused.
 *
 * Per-attempt hook: on_attempt is called before every attempt (the first and each retry)
 * and may add headers for that attempt only (ck_http_attempt_header), so a request can be
 * signed afresh each time (SigV4 dates must be current, temporary credentials may rotate
 * between attempts). A hook error ends the request with that error.
 *
 * Replies of S3-style stores: a 400 whose error body's <Code> is RequestTimeout, and any
 * status with <Code> SlowDown, InternalError or ServiceUnavailable, are retried too. With
 * error_in_2xx, a 2xx reply whose body is an XML <Error> document (S3's
 * CompleteMultipartUpload may answer "200 OK" and fail in the body) is treated as a
 * failure: retried for the transient codes above, else CK_EREMOTE. The start of every
 * error body is kept (capped at CK_HTTP_ERROR_BODY_MAX) in resp->error_body so a caller
 * can parse its Code and Message; it is untrusted and may echo request details, so
 * callers show only parsed, sanitised fields.
 *
 * Result codes: 2xx -> CK_OK; 404 -> CK_ENOTFOUND; 401/403 -> CK_EAUTH; other 4xx ->
 * CK_EREMOTE; 5xx, 429 and transport errors once retries are spent -> CK_ENET, or
 * CK_ETIMEDOUT when the last attempt timed out (no progress, or curl's timeout). The final
 * status is always left in resp->status so callers can treat e.g. 404 or 416 specially.
 * Messages read "METHOD display-url: HTTP 403 Forbidden" or "...: <curl error>"; the real
 * URL (its query string may carry a presigned signature) and header values never appear
 * in messages or logs. Retries are logged with ck_log_warn.
 *
 * TLS (https://): the server's certificate is always verified, name included; nothing
 * turns that off. The CAs trusted are req->ca_file if set (S3 passes $AWS_CA_BUNDLE),
 * else $CURL_CA_BUNDLE, else $SSL_CERT_FILE, else the system's bundle; $SSL_CERT_DIR adds
 * a folder of hashed CA certificates. A refused certificate (untrusted, expired, for
 * another name) or an unreadable bundle is not retried: CK_EAUTH, with curl's reason and
 * the bundle that was used in the message.
 *
 * Threads: ck_http_global_init() once before any thread starts; then ck_http_perform() may
 * run in several threads at once (each call uses its own curl handle; CURLOPT_NOSIGNAL).
 * Nothing here keeps connections between calls; parallel transfers (S3 multipart parts)
 * run one ck_http_perform() per thread, each on its own easy handle.
 */
#ifndef CK_NET_HTTP_H
#define CK_NET_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/retry.h"
#include "util/err.h"
#include "util/sink.h"

#define CK_HTTP_TO_END         UINT64_MAX /* range_len: up to the end of the object */
#define CK_HTTP_LEN_UNKNOWN    UINT64_MAX /* body_len of a pulled body: sent chunked */
#define CK_HTTP_MAX_HEADERS    32         /* extra request headers */
#define CK_HTTP_ERROR_BODY_MAX 2048       /* bytes of an error reply kept for its message */
#define CK_HTTP_HEADER_MAX     16384      /* one header line added by an attempt hook */
#define CK_HTTP_CAPTURES       2          /* reply headers kept by one request */

enum ck_http_method {
    CK_HTTP_GET,
    CK_HTTP_HEAD,
    CK_HTTP_PUT,
    CK_HTTP_POST,
    CK_HTTP_DELETE,
};

/* The headers of one attempt, handed to a request's on_attempt hook (opaque). */
struct ck_http_attempt;

/* Called before each attempt; may add headers with ck_http_attempt_header(). ctx is the
 * request's on_attempt_ctx. Runs in the thread of ck_http_perform(). */
typedef ck_rc (*ck_http_attempt_fn)(void *ctx, struct ck_http_attempt *a, struct ck_err *err);

/* 1 for the first attempt, 2 for the first retry, ... */
unsigned ck_http_attempt_number(const struct ck_http_attempt *a);

/* The byte range this attempt of a GET asks for, as sent after "Range: bytes=" ("0-99",
 * "100-"), or "" when it sends no Range. A resumed GET asks for less than the first attempt,
 * so a signer that covers Range (Azure Shared Key) reads it here. */
const char *ck_http_attempt_range(const struct ck_http_attempt *a);

/* Adds "name: value" to this attempt (copied). CK_EINVAL for CR/LF or an over-long line. */
ck_rc ck_http_attempt_header(struct ck_http_attempt *a, const char *name, const char *value,
                             struct ck_err *err);

struct ck_buf;

/* What to send and where the reply goes. Every pointer is borrowed for the call. */
struct ck_http_request {
    enum ck_http_method method;
    const char *url;         /* full URL; may carry secrets, never logged */
    const char *display_url; /* safe to log (see store/uri.h); NULL shows "<url>" */
    const char *headers[CK_HTTP_MAX_HEADERS]; /* "Name: value", NULL-terminated list */

    /* PUT/POST body: body_mem/body_len (body_mem may be NULL when body_len is 0), or,
     * with body_read set, bytes pulled from the caller: body_read(body_ctx, pos, buf, max,
     * &got) copies up to max bytes from offset pos of the body into buf and sets got; got 0
     * means the body ends at pos. It may block until the bytes exist (time spent waiting for
     * them is not a stall). pos follows on from the last read, or moves back when curl
     * rewinds to send the body again (a retry starts at 0); an error (say, a byte no longer
     * held) ends the request with that code and is not retried. body_len is the body's
     * size, or CK_HTTP_LEN_UNKNOWN (PUT only): sent with chunked transfer encoding. */
    const void *body_mem;
    uint64_t body_len;
    ck_rc (*body_read)(void *ctx, uint64_t pos, void *buf, size_t max, size_t *got);
    void *body_ctx;
    /* Set by another thread to stop the request: the transfer is cut within about a
     * second and no further attempt starts (CK_ECANCELED). NULL: never. */
    const atomic_bool *cancel;

    /* GET range: when has_range, bytes [range_off, range_off + range_len); range_len may
     * be CK_HTTP_TO_END. range_len 0 is not allowed. */
    bool has_range;
    uint64_t range_off;
    uint64_t range_len;

    const struct ck_sink *sink; /* 2xx GET body; NULL discards it */
    struct ck_buf *reply_body;  /* other methods: 2xx body collected here (caller-owned,
                                   capped by its max, emptied at each attempt; a longer
                                   body is CK_ECORRUPT); NULL discards it */
    bool error_in_2xx;          /* an XML <Error> body in a 2xx reply is a failure (needs
                                   reply_body) */
    bool path_as_is;            /* send the path exactly as given ("/./", "/../" kept) */
    const char *ca_file;        /* https: the PEM bundle of the CAs to trust, or NULL: see TLS in
                                   the top comment */
    const char *capture_headers[CK_HTTP_CAPTURES]; /* reply headers whose values go to
                                                      resp->captured[i]; NULL: none */
    ck_http_attempt_fn on_attempt;                 /* NULL: none */
    void *on_attempt_ctx;
    struct ck_retry_policy retry;
    double connect_timeout_s;
    double stall_timeout_s; /* cut a transfer with no progress for this long (<= 0: never); no total
                               cap */
};

/* Sets defaults: GET, no body, no range, default retry policy, 10 s connect,
 * 30 s stall. The caller then sets url, display_url and what it needs. */
void ck_http_request_init(struct ck_http_request *req);

/* What the last attempt's reply said (parsed with caps). */
struct ck_http_response {
    long status; /* final HTTP status; 0 if no reply was received */
    bool has_content_length;
    uint64_t content_length;
    bool has_content_range;          /* Content-Range: bytes START-END/TOTAL or bytes STAR/TOTAL */
    bool range_unsatisfied;          /* the "bytes * /TOTAL" form (no start/end) */
    uint64_t range_start, range_end; /* inclusive, as sent */
    bool total_known;
    uint64_t range_total;
    char etag[128];      /* empty if none, or if the server's was too long */
    char error_code[64]; /* <Code> of an XML error body (S3 style), or empty */
    char error_body[CK_HTTP_ERROR_BODY_MAX + 1]; /* start of the last error body, NUL-ended;
                                                    untrusted: parse, never echo whole */
    size_t error_body_len;
    char captured[CK_HTTP_CAPTURES][256]; /* values of req->capture_headers (printable
                                             ASCII), each empty if absent */
    uint64_t delivered;                   /* body bytes pushed to the sink over all attempts */
    unsigned attempts;                    /* attempts made */
};

/* Calls curl_global_init. Once, from main(), before threads start. */
ck_rc ck_http_global_init(struct ck_err *err);
void ck_http_global_cleanup(void);

/* Runs req with retries; fills resp (always) and err (on failure). See the top comment for
 * the result codes. A sink error stops the transfer and is returned as is. */
ck_rc ck_http_perform(const struct ck_http_request *req, struct ck_http_response *resp,
                      struct ck_err *err);

/* "GET", "HEAD", "PUT", "POST", "DELETE". */
const char *ck_http_method_name(enum ck_http_method m);

#endif
