/*
 * http.h - one HTTP request with retries, on libcurl.
 *
 * ck_http_perform() runs a GET, HEAD or PUT to completion: it retries transport errors
 * (refused, reset, timeouts, truncated bodies) and transient statuses (408, 425, 429, 5xx
 * per ck_retry_http_status_transient, honouring Retry-After up to the policy's max delay)
 * under a ck_retry_policy. A GET that fails mid-body resumes with a Range request from the
 * first byte not yet delivered, so the sink sees every byte exactly once; a PUT is replayed
 * from its fd or memory. Replies are untrusted: header sizes are capped, Content-Length and
 * Content-Range are parsed strictly, a 206 that starts elsewhere than asked is refused
 * (CK_ECORRUPT "wrong range"), a 200 to a ranged request has its leading bytes skipped,
 * and an object whose ETag changes between attempts is refused.
 *
 * Result codes: 2xx -> CK_OK; 404 -> CK_ENOTFOUND; 401/403 -> CK_EAUTH; other 4xx ->
 * CK_EREMOTE; 5xx, 429 and transport errors once retries are spent -> CK_ENET. The final
 * status is always left in resp->status so callers can treat e.g. 404 or 416 specially.
 * Messages read "METHOD display-url: HTTP 403 Forbidden" or "...: <curl error>"; the real
 * URL (its query string may carry a presigned signature) and header values never appear
 * in messages or logs. Retries are logged with ck_log_warn.
 *
 * Threads: ck_http_global_init() once before any thread starts; then ck_http_perform() may
 * run in several threads at once (each call uses its own curl handle; CURLOPT_NOSIGNAL).
 * Nothing here keeps connections between calls yet (a later issue moves to curl multi).
 */
#ifndef CK_NET_HTTP_H
#define CK_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/retry.h"
#include "util/err.h"
#include "util/sink.h"

#define CK_HTTP_TO_END         UINT64_MAX /* range_len: up to the end of the object */
#define CK_HTTP_MAX_HEADERS    32         /* extra request headers */
#define CK_HTTP_ERROR_BODY_MAX 512        /* bytes of an error reply kept for its message */

enum ck_http_method {
    CK_HTTP_GET,
    CK_HTTP_HEAD,
    CK_HTTP_PUT,
};

/* What to send and where the reply goes. Every pointer is borrowed for the call. */
struct ck_http_request {
    enum ck_http_method method;
    const char *url;         /* full URL; may carry secrets, never logged */
    const char *display_url; /* safe to log (see store/uri.h); NULL shows "<url>" */
    const char *headers[CK_HTTP_MAX_HEADERS]; /* "Name: value", NULL-terminated list */

    /* PUT body: body_fd >= 0 sends [body_off, body_off + body_len) of that fd (pread,
     * so the fd's offset is untouched); otherwise body_mem/body_len (may be empty). */
    int body_fd;
    uint64_t body_off;
    uint64_t body_len;
    const void *body_mem;

    /* GET range: when has_range, bytes [range_off, range_off + range_len); range_len may
     * be CK_HTTP_TO_END. range_len 0 is not allowed. */
    bool has_range;
    uint64_t range_off;
    uint64_t range_len;

    const struct ck_sink *sink; /* 2xx GET body; NULL discards it */
    struct ck_retry_policy retry;
    double connect_timeout_s;
    double stall_timeout_s; /* cut a transfer with no progress for this long (<= 0: never); no total
                               cap */
};

/* Sets defaults: GET, no body (body_fd -1), no range, default retry policy, 10 s connect,
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
    uint64_t delivered;  /* body bytes pushed to the sink over all attempts */
    unsigned attempts;   /* attempts made */
};

/* Calls curl_global_init. Once, from main(), before threads start. */
ck_rc ck_http_global_init(struct ck_err *err);
void ck_http_global_cleanup(void);

/* Runs req with retries; fills resp (always) and err (on failure). See the top comment for
 * the result codes. A sink error stops the transfer and is returned as is. */
ck_rc ck_http_perform(const struct ck_http_request *req, struct ck_http_response *resp,
                      struct ck_err *err);

/* "GET", "HEAD", "PUT". */
const char *ck_http_method_name(enum ck_http_method m);

#endif
