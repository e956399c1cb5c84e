/*
 * http_reply.h - parsing of HTTP reply headers, with caps (internal to src/net/).
 *
 * Server replies are untrusted: the total header size is capped, numbers are parsed
 * strictly (digits only, no overflow), and a malformed Content-Length or Content-Range
 * makes the reply invalid rather than being guessed at. Kept apart from the transfer code
 * so the parsers can be unit-tested with hostile input.
 */
#ifndef CK_NET_HTTP_REPLY_H
#define CK_NET_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/http.h"

#define CK_HTTP_HEADERS_MAX (64 * 1024) /* total bytes of reply headers accepted */

/* The headers of one reply; fields are reset at each status line (100 Continue, then the
 * final reply), header_bytes only by ck_http_reply_reset() at the start of an attempt. */
struct ck_http_reply {
    long status;
    char reason[64]; /* printable ASCII from the status line, may be empty */
    bool has_content_length;
    uint64_t content_length;
    bool has_content_range;
    bool range_unsatisfied; /* "bytes * /TOTAL" */
    uint64_t range_start, range_end;
    bool total_known;
    uint64_t range_total;
    char etag[128];
    double retry_after_s; /* < 0 when absent or unparsable */
    bool complete;        /* the blank line after a final (non-1xx) status was seen */
    size_t header_bytes;  /* over all header lines of the attempt */
    const char *invalid;  /* static text naming the first malformed header, or NULL */
};

/* Clears everything, header_bytes included: call before each attempt. */
void ck_http_reply_reset(struct ck_http_reply *r);

/* Feeds one raw header line (as curl hands it, with CRLF). Returns false when the reply
 * must be refused (r->invalid says why). */
bool ck_http_reply_line(struct ck_http_reply *r, const char *line, size_t len);

/* Strict unsigned decimal of exactly n bytes; false on anything else or overflow. */
bool ck_http_parse_u64(const char *s, size_t n, uint64_t *out);

/* "bytes START-END/TOTAL", "bytes START-END/STAR", "bytes STAR/TOTAL". */
bool ck_http_parse_content_range(const char *v, size_t n, struct ck_http_reply *r);

/* Copies the reply's fields into the public struct. */
void ck_http_reply_export(const struct ck_http_reply *r, struct ck_http_response *resp);

/* A reason phrase for common statuses when the server sent none (HTTP/2). */
const char *ck_http_status_text(long status);

/* Extracts an S3-style <Code>...</Code> (letters and digits only) from an error body. */
void ck_http_error_code(const char *body, size_t len, char *out, size_t outsz);

#endif
