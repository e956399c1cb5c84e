/*
 * uri_encode.h - RFC 3986 percent-encoding as every cloud wants it (SigV4's canonical
 * form, the S3, GCS and Azure URLs, copy-source headers, OAuth form bodies):
 * unreserved characters (A-Z a-z 0-9 - _ . ~) kept, every other byte %XX in upper case,
 * '/' kept when asked.
 */
#ifndef CK_UTIL_URI_ENCODE_H
#define CK_UTIL_URI_ENCODE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

/* in encoded into out (outlen bytes with the NUL); CK_EINVAL if it does not fit. */
ck_rc ck_uri_encode(const char *in, bool keep_slash, char *out, size_t outlen);

/* in[0..n) encoded and appended to b; ck_buf_append's result. */
ck_rc ck_uri_encode_buf(struct ck_buf *b, const char *in, size_t n, bool keep_slash);

#endif
