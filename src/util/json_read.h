/*
 * json_read.h - a strict reader of one JSON object from the network: credential and token
 * replies (AWS metadata endpoints, OAuth, GCP key files and external accounts) and the
 * .status document the CLI reads back, such as
 *   {"Code":"Success","AccessKeyId":"ASIA...","Token":"...","Expiration":"..."}
 *
 * The text is untrusted: the parser is strict (one object; nested values are skipped with
 * a depth cap; bad escapes, control characters, trailing garbage and input over
 * CK_JSON_READ_MAX refused) and never prints a value in a message.
 */
#ifndef CK_UTIL_JSON_READ_H
#define CK_UTIL_JSON_READ_H

#include <stddef.h>

#include "util/err.h"

#define CK_JSON_READ_MAX (64 * 1024)

/* The string value of top-level member key: CK_OK, CK_ENOTFOUND (absent or not a string),
 * CK_ECORRUPT (not a well-formed object), CK_EINVAL (does not fit in outlen, or holds a
 * control character). */
ck_rc ck_json_get_string(const char *text, size_t len, const char *key, char *out, size_t outlen);

/* The raw JSON text of top-level member key, whatever its type (a number "3599", an
 * object "{...}" to read again with these functions, a string with its quotes and escapes),
 * after the whole document was checked: same results as ck_json_get_string. */
ck_rc ck_json_get_raw(const char *text, size_t len, const char *key, char *out, size_t outlen);

#endif
