/* fuzz_http_reply.c - the HTTP reply header parser (status line, Content-Length,
 * Content-Range, ETag, Retry-After) on hostile header lines. The input is split into
 * lines at '\n' and fed as curl does (one line per call, CRLF kept); the parsed ranges
 * must be consistent whenever the parser accepted them. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ck_http_reply r;
    ck_http_reply_reset(&r);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (!ck_http_reply_line(&r, p, len))
            break;
        p += len;
    }
    if (r.has_content_range && !r.range_unsatisfied) {
        if (r.range_start > r.range_end)
            abort();
        if (r.total_known && r.range_end >= r.range_total)
            abort();
    }
    if (memchr(r.reason, '\0', sizeof(r.reason)) == NULL ||
        memchr(r.etag, '\0', sizeof(r.etag)) == NULL)
        abort();
    /* the standalone parsers on the raw input as one value */
    struct ck_http_reply r2;
    ck_http_reply_reset(&r2);
    if (ck_http_parse_content_range((const char *)data, size, &r2) && !r2.range_unsatisfied &&
        r2.range_start > r2.range_end)
        abort();
    uint64_t v;
    (void)ck_http_parse_u64((const char *)data, size, &v);
    char code[64];
    ck_http_error_code((const char *)data, size, code, sizeof(code));
    if (memchr(code, '\0', sizeof(code)) == NULL)
        abort();
    return 0;
}
