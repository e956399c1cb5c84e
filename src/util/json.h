/*
 * json.h - a small streaming JSON writer into a ck_buf (used for .status).
 *
 * Errors are sticky: every call is a no-op after the first failure, and ck_json_finish()
 * reports it, so callers write a whole document and check once. Strings are escaped per
 * RFC 8259; bytes that are not valid UTF-8 are replaced by U+FFFD.
 */
#ifndef CK_UTIL_JSON_H
#define CK_UTIL_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "util/buf.h"

#define CK_JSON_MAX_DEPTH 16

struct ck_json {
    struct ck_buf *out; /* not owned */
    int depth;
    bool has_items[CK_JSON_MAX_DEPTH];
    bool after_key;
    ck_rc rc;
};

void ck_json_init(struct ck_json *j, struct ck_buf *out);
void ck_json_obj_begin(struct ck_json *j);
void ck_json_obj_end(struct ck_json *j);
void ck_json_arr_begin(struct ck_json *j);
void ck_json_arr_end(struct ck_json *j);
void ck_json_key(struct ck_json *j, const char *key);
void ck_json_str(struct ck_json *j, const char *s); /* NULL writes null */
void ck_json_int(struct ck_json *j, int64_t v);
void ck_json_uint(struct ck_json *j, uint64_t v);
void ck_json_num(struct ck_json *j, double v); /* non-finite writes null */
void ck_json_bool(struct ck_json *j, bool v);
void ck_json_null(struct ck_json *j);
ck_rc ck_json_finish(struct ck_json *j);

/* A member of the open object: its key, then its value as above. */
void ck_json_kv_str(struct ck_json *j, const char *key, const char *s);
void ck_json_kv_int(struct ck_json *j, const char *key, int64_t v);
void ck_json_kv_uint(struct ck_json *j, const char *key, uint64_t v);
void ck_json_kv_num(struct ck_json *j, const char *key, double v);
void ck_json_kv_bool(struct ck_json *j, const char *key, bool v);

#endif
