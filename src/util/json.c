/* json.c - streaming JSON writer; see json.h. */
#include "util/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void ck_json_init(struct ck_json *j, struct ck_buf *out)
{
    memset(j, 0, sizeof(*j));
    j->out = out;
}

static void put(struct ck_json *j, const char *s, size_t n)
{
    if (j->rc == CK_OK)
        j->rc = ck_buf_append(j->out, s, n);
}

/* Emits the separator a new value needs at the current level. */
static void value_prefix(struct ck_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->has_items[j->depth])
        put(j, ",", 1);
    j->has_items[j->depth] = true;
}

static void open_level(struct ck_json *j, char c)
{
    value_prefix(j);
    if (j->depth + 1 >= CK_JSON_MAX_DEPTH) {
        j->rc = CK_EINVAL;
        return;
    }
    put(j, &c, 1);
    j->has_items[++j->depth] = false;
}

static void close_level(struct ck_json *j, char c)
{
    if (j->depth == 0) {
        j->rc = CK_EINVAL;
        return;
    }
    j->depth--;
    put(j, &c, 1);
}

void ck_json_obj_begin(struct ck_json *j)
{
    open_level(j, '{');
}

void ck_json_obj_end(struct ck_json *j)
{
    close_level(j, '}');
}

void ck_json_arr_begin(struct ck_json *j)
{
    open_level(j, '[');
}

void ck_json_arr_end(struct ck_json *j)
{
    close_level(j, ']');
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = (s[0] & 0xE0) == 0xC0   ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (n == 0 || (n == 2 && s[0] < 0xC2))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

static void put_escaped(struct ck_json *j, const char *s)
{
    put(j, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(j, esc, 2);
            p++;
        } else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            put(j, esc, 6);
            p++;
        } else {
            size_t n = utf8_len(p);
            if (n == 0) {
                put(j, "\xEF\xBF\xBD", 3);
                p++;
            } else {
                put(j, (const char *)p, n);
                p += n;
            }
        }
    }
    put(j, "\"", 1);
}

void ck_json_key(struct ck_json *j, const char *key)
{
    value_prefix(j);
    put_escaped(j, key);
    put(j, ":", 1);
    j->after_key = true;
}

void ck_json_str(struct ck_json *j, const char *s)
{
    if (!s) {
        ck_json_null(j);
        return;
    }
    value_prefix(j);
    put_escaped(j, s);
}

static void put_raw_value(struct ck_json *j, const char *s)
{
    value_prefix(j);
    put(j, s, strlen(s));
}

void ck_json_int(struct ck_json *j, int64_t v)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    put_raw_value(j, tmp);
}

void ck_json_uint(struct ck_json *j, uint64_t v)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    put_raw_value(j, tmp);
}

void ck_json_num(struct ck_json *j, double v)
{
    if (!isfinite(v)) {
        ck_json_null(j);
        return;
    }
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%.6g", v);
    put_raw_value(j, tmp);
}

void ck_json_bool(struct ck_json *j, bool v)
{
    put_raw_value(j, v ? "true" : "false");
}

void ck_json_null(struct ck_json *j)
{
    put_raw_value(j, "null");
}

ck_rc ck_json_finish(struct ck_json *j)
{
    if (j->rc == CK_OK && j->depth != 0)
        j->rc = CK_EINVAL;
    return j->rc;
}

/* ck_json_kv_TYPE: the key, then ck_json_TYPE. */
#define KV(type, ctype)                                                                            \
    void ck_json_kv_##type(struct ck_json *j, const char *key, ctype v)                            \
    {                                                                                              \
        ck_json_key(j, key);                                                                       \
        ck_json_##type(j, v);                                                                      \
    }
KV(str, const char *)
KV(int, int64_t)
KV(uint, uint64_t)
KV(num, double)
KV(bool, bool)
#undef KV
