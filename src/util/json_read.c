/*
 * json_read.c - a strict reader of one flat JSON object; see json_read.h.
 *
 * Design: a recursive-descent scanner over the whole object for each lookup (replies are
 * a few hundred bytes and hold five members). Strings are decoded only for the member that
 * is asked for; \uXXXX escapes become UTF-8 (surrogate pairs joined, lone ones refused).
 */
#include "util/json_read.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 16

struct rd {
    const char *p, *end;
    char *out; /* decoded string goes here when not NULL */
    size_t outlen, outpos;
    bool overflow, ctrl;
    bool raw; /* the wanted member's value is copied as raw JSON text, whatever its type */
};

static void ws(struct rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static void put(struct rd *r, const char *s, size_t n)
{
    if (!r->out)
        return;
    if (r->outpos + n >= r->outlen) {
        r->overflow = true;
        return;
    }
    memcpy(r->out + r->outpos, s, n);
    r->outpos += n;
    r->out[r->outpos] = '\0';
}

static bool hex4(struct rd *r, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++, r->p++) {
        if (r->p >= r->end)
            return false;
        char c = *r->p;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return false;
        *v = *v * 16 + (unsigned)d;
    }
    return true;
}

static void put_utf8(struct rd *r, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    if (cp < 0x20)
        r->ctrl = true;
    put(r, b, n);
}

/* \uXXXX (the 'u' already read), with a following low surrogate when needed. */
static bool unicode_escape(struct rd *r)
{
    unsigned hi, lo;
    if (!hex4(r, &hi) || (hi >= 0xdc00 && hi <= 0xdfff))
        return false;
    if (hi < 0xd800 || hi > 0xdbff) {
        put_utf8(r, hi);
        return true;
    }
    if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
        return false;
    r->p += 2;
    if (!hex4(r, &lo) || lo < 0xdc00 || lo > 0xdfff)
        return false;
    put_utf8(r, 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
    return true;
}

static bool escape(struct rd *r)
{
    if (r->p >= r->end)
        return false;
    char c = *r->p++;
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *k = c ? strchr(from, c) : NULL;
    if (c == 'u')
        return unicode_escape(r);
    if (!k)
        return false;
    if (to[k - from] < 0x20)
        r->ctrl = true;
    put(r, &to[k - from], 1);
    return true;
}

/* A string at r->p (the opening quote); decoded into r->out if set. */
static bool string(struct rd *r)
{
    if (r->p >= r->end || *r->p != '"')
        return false;
    r->p++;
    if (r->out)
        r->out[0] = '\0';
    r->outpos = 0;
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '"') {
            r->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        r->p++;
        if (c == '\\' && !escape(r))
            return false;
        if (c != '\\')
            put(r, (const char *)&c, 1);
    }
    return false;
}

static bool value(struct rd *r, int depth);

/* '[' or '{' already seen at r->p; skips the container. */
static bool container(struct rd *r, int depth)
{
    char close = *r->p == '[' ? ']' : '}';
    bool object = close == '}';
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return true;
    }
    for (;;) {
        ws(r);
        if (object) {
            if (!string(r))
                return false;
            ws(r);
            if (r->p >= r->end || *r->p++ != ':')
                return false;
        }
        if (!value(r, depth + 1))
            return false;
        ws(r);
        if (r->p >= r->end)
            return false;
        char c = *r->p++;
        if (c == close)
            return true;
        if (c != ',')
            return false;
    }
}

static bool literal(struct rd *r)
{
    const char *words[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(r->end - r->p) >= n && memcmp(r->p, words[i], n) == 0) {
            r->p += n;
            return true;
        }
    }
    const char *start = r->p;
    while (r->p < r->end && strchr("+-0123456789.eE", *r->p) && *r->p)
        r->p++;
    return r->p > start;
}

static bool value(struct rd *r, int depth)
{
    ws(r);
    if (r->p >= r->end || depth > MAX_DEPTH)
        return false;
    if (*r->p == '"') {
        char *save = r->out;
        r->out = NULL; /* a nested or unwanted string is only validated */
        bool ok = string(r);
        r->out = save;
        return ok;
    }
    if (*r->p == '{' || *r->p == '[')
        return container(r, depth);
    return literal(r);
}

/* The value of a wanted member: decoded into out if it is a string. */
static ck_rc wanted_value(struct rd *r, char *out, size_t outlen)
{
    if (r->raw) {
        const char *start = r->p;
        if (!value(r, 1))
            return CK_ECORRUPT;
        size_t n = (size_t)(r->p - start);
        if (n >= outlen)
            return CK_EINVAL;
        memcpy(out, start, n);
        out[n] = '\0';
        return CK_OK;
    }
    if (r->p >= r->end || *r->p != '"')
        return value(r, 1) ? CK_ENOTFOUND : CK_ECORRUPT;
    r->out = out, r->outlen = outlen, r->overflow = false, r->ctrl = false;
    bool ok = string(r);
    r->out = NULL;
    if (!ok)
        return CK_ECORRUPT;
    if (r->overflow || r->ctrl) {
        out[0] = '\0';
        return CK_EINVAL;
    }
    return CK_OK;
}

/* Walks the top-level object; decodes the first member named key into out. */
static ck_rc walk(const char *text, size_t len, const char *key, char *out, size_t outlen, bool raw)
{
    if (len > CK_JSON_READ_MAX)
        return CK_ECORRUPT;
    struct rd r = {.p = text, .end = text + len, .raw = raw};
    ck_rc result = CK_ENOTFOUND;
    bool found = false;
    ws(&r);
    if (r.p >= r.end || *r.p++ != '{')
        return CK_ECORRUPT;
    ws(&r);
    bool more = !(r.p < r.end && *r.p == '}');
    if (!more)
        r.p++;
    while (more) {
        char name[64];
        ws(&r);
        r.out = name, r.outlen = sizeof(name), r.overflow = false;
        bool ok = string(&r);
        bool want = ok && !found && !r.overflow && strcmp(name, key) == 0;
        r.out = NULL;
        ws(&r);
        if (!ok || r.p >= r.end || *r.p++ != ':')
            return CK_ECORRUPT;
        ws(&r);
        if (want) {
            found = true;
            result = wanted_value(&r, out, outlen);
            if (result == CK_ECORRUPT)
                return result;
        } else if (!value(&r, 1)) {
            return CK_ECORRUPT;
        }
        ws(&r);
        if (r.p >= r.end)
            return CK_ECORRUPT;
        char c = *r.p++;
        if (c != ',' && c != '}')
            return CK_ECORRUPT;
        more = c == ',';
    }
    ws(&r);
    return r.p == r.end ? result : CK_ECORRUPT;
}

ck_rc ck_json_get_string(const char *text, size_t len, const char *key, char *out, size_t outlen)
{
    if (outlen == 0)
        return CK_EINVAL;
    out[0] = '\0';
    return walk(text, len, key, out, outlen, false);
}

ck_rc ck_json_get_raw(const char *text, size_t len, const char *key, char *out, size_t outlen)
{
    if (outlen == 0)
        return CK_EINVAL;
    out[0] = '\0';
    return walk(text, len, key, out, outlen, true);
}
