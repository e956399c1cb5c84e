/* http_reply.c - strict, capped parsing of reply headers; see http_reply.h. */
#include "net/http_reply.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

void ck_http_reply_reset(struct ck_http_reply *r)
{
    memset(r, 0, sizeof(*r));
    r->retry_after_s = -1;
}

bool ck_http_parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Parses "A-B" within [s, s+n). */
static bool parse_span(const char *s, size_t n, uint64_t *a, uint64_t *b)
{
    const char *dash = memchr(s, '-', n);
    if (!dash)
        return false;
    return ck_http_parse_u64(s, (size_t)(dash - s), a) &&
           ck_http_parse_u64(dash + 1, (size_t)(s + n - dash - 1), b) && *a <= *b;
}

bool ck_http_parse_content_range(const char *v, size_t n, struct ck_http_reply *r)
{
    if (n < 6 || strncasecmp(v, "bytes ", 6) != 0)
        return false;
    v += 6;
    n -= 6;
    const char *slash = memchr(v, '/', n);
    if (!slash)
        return false;
    size_t left = (size_t)(slash - v), right = n - left - 1;
    r->total_known = !(right == 1 && slash[1] == '*');
    if (r->total_known && !ck_http_parse_u64(slash + 1, right, &r->range_total))
        return false;
    if (left == 1 && v[0] == '*') {
        r->range_unsatisfied = true;
        return r->total_known;
    }
    if (!parse_span(v, left, &r->range_start, &r->range_end))
        return false;
    return !r->total_known || r->range_end < r->range_total;
}

/* Copies printable ASCII of [s, s+n) into out; false if it does not fit or has others. */
static bool copy_printable(const char *s, size_t n, char *out, size_t outsz)
{
    if (n >= outsz)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
        out[i] = s[i];
    }
    out[n] = '\0';
    return true;
}

static bool parse_status_line(struct ck_http_reply *r, const char *s, size_t n)
{
    size_t bytes = r->header_bytes; /* the cap covers every header of the attempt */
    ck_http_reply_reset(r);
    r->header_bytes = bytes;
    const char *sp = memchr(s, ' ', n);
    if (!sp || (size_t)(s + n - sp) < 4)
        return false;
    const char *code = sp + 1;
    uint64_t status;
    if (!ck_http_parse_u64(code, 3, &status) || status < 100)
        return false;
    r->status = (long)status;
    const char *rest = code + 3;
    size_t rn = (size_t)(s + n - rest);
    while (rn > 0 && *rest == ' ') {
        rest++;
        rn--;
    }
    if (!copy_printable(rest, rn, r->reason, sizeof(r->reason)))
        r->reason[0] = '\0'; /* an odd reason phrase is only cosmetic */
    return true;
}

static void parse_retry_after(struct ck_http_reply *r, const char *v, size_t n)
{
    uint64_t secs;
    if (ck_http_parse_u64(v, n, &secs)) {
        r->retry_after_s = secs > 86400 ? 86400.0 : (double)secs;
        return;
    }
    char date[64];
    if (!copy_printable(v, n, date, sizeof(date)))
        return;
    time_t when = curl_getdate(date, NULL);
    if (when >= 0) {
        double d = difftime(when, time(NULL));
        r->retry_after_s = d < 0 ? 0 : d;
    }
}

static bool parse_field(struct ck_http_reply *r, const char *name, size_t nn, const char *v,
                        size_t vn)
{
    if (nn == 14 && strncasecmp(name, "Content-Length", nn) == 0) {
        r->has_content_length = ck_http_parse_u64(v, vn, &r->content_length);
        if (!r->has_content_length)
            r->invalid = "malformed Content-Length header";
        return r->has_content_length;
    }
    if (nn == 13 && strncasecmp(name, "Content-Range", nn) == 0) {
        r->has_content_range = ck_http_parse_content_range(v, vn, r);
        if (!r->has_content_range)
            r->invalid = "malformed Content-Range header";
        return r->has_content_range;
    }
    if (nn == 4 && strncasecmp(name, "ETag", nn) == 0) {
        if (!copy_printable(v, vn, r->etag, sizeof(r->etag)))
            r->etag[0] = '\0'; /* too long or odd: treat as absent */
        return true;
    }
    if (nn == 11 && strncasecmp(name, "Retry-After", nn) == 0)
        parse_retry_after(r, v, vn);
    return true;
}

bool ck_http_reply_line(struct ck_http_reply *r, const char *line, size_t len)
{
    r->header_bytes += len;
    if (r->header_bytes > CK_HTTP_HEADERS_MAX) {
        r->invalid = "reply headers too large";
        return false;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        if (!parse_status_line(r, line, len)) {
            r->invalid = "malformed status line";
            return false;
        }
        return true;
    }
    if (len == 0) {
        r->complete = r->status >= 200;
        return true;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line)
        return true; /* not a field we read; curl has judged its syntax */
    const char *v = colon + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return parse_field(r, line, (size_t)(colon - line), v, (size_t)(end - v));
}

void ck_http_reply_export(const struct ck_http_reply *r, struct ck_http_response *resp)
{
    resp->status = r->status;
    resp->has_content_length = r->has_content_length;
    resp->content_length = r->content_length;
    resp->has_content_range = r->has_content_range;
    resp->range_unsatisfied = r->range_unsatisfied;
    resp->range_start = r->range_start;
    resp->range_end = r->range_end;
    resp->total_known = r->total_known;
    resp->range_total = r->range_total;
    memcpy(resp->etag, r->etag, sizeof(resp->etag));
}

const char *ck_http_status_text(long status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}

void ck_http_error_code(const char *body, size_t len, char *out, size_t outsz)
{
    out[0] = '\0';
    const char *open = body ? memmem(body, len, "<Code>", 6) : NULL;
    if (!open || outsz == 0)
        return;
    const char *p = open + 6, *end = body + len;
    size_t n = 0;
    while (p < end && isalnum((unsigned char)*p) && n + 1 < outsz)
        out[n++] = *p++;
    out[n] = '\0';
    if (p >= end || *p != '<')
        out[0] = '\0'; /* only a whole, plain code is shown */
}
