/*
 * aws_json.h - the credential replies of the container endpoint and of EC2 instance
 * metadata: a flat JSON object such as
 *   {"Code":"Success","AccessKeyId":"ASIA...","SecretAccessKey":"...","Token":"...",
 *    "Expiration":"2024-05-01T12:00:00Z"}
 * and the ISO 8601 times in them (and in STS replies).
 *
 * The text comes from the network: the parser is strict (one object; nested values are
 * skipped with a depth cap; bad escapes, control characters, trailing garbage and input
 * over CK_AWS_JSON_MAX refused) and never prints a value in a message.
 */
#ifndef CK_AUTH_AWS_JSON_H
#define CK_AUTH_AWS_JSON_H

#include <stddef.h>

#include "auth/aws_creds.h"
#include "util/err.h"

#define CK_AWS_JSON_MAX (64 * 1024)

/* The string value of top-level member key: CK_OK, CK_ENOTFOUND (absent or not a string),
 * CK_ECORRUPT (not a well-formed object), CK_EINVAL (does not fit in outlen, or holds a
 * control character). */
ck_rc ck_aws_json_string(const char *text, size_t len, const char *key, char *out, size_t outlen);

/* The raw JSON text of top-level member key, whatever its type (a number "3599", an
 * object "{...}" to read again with these functions, a string with its quotes and escapes),
 * after the whole document was checked: same results as ck_aws_json_string. */
ck_rc ck_aws_json_raw(const char *text, size_t len, const char *key, char *out, size_t outlen);

/* Fills out's keys and expiry from a reply with AccessKeyId, SecretAccessKey, Token and
 * Expiration (all required) and, if present, Code (must be "Success"). what names the
 * reply in messages ("container credentials at http://..."). out->source is left as is. */
ck_rc ck_aws_json_creds(const char *text, size_t len, const char *what, struct ck_aws_creds *out,
                        struct ck_err *err);

/* "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)" to seconds since the epoch. */
ck_rc ck_aws_parse_time(const char *s, double *out);

#endif
