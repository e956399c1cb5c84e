/*
 * azure_sharedkey.h - Azure Storage Shared Key signing (the "SharedKey" scheme of the
 * Blob service, version 2009-09-19 and later), with OpenSSL's HMAC-SHA256.
 *
 * String to sign: VERB, Content-Encoding, Content-Language, Content-Length (empty for 0),
 * Content-MD5, Content-Type, Date, If-Modified-Since, If-Match, If-None-Match,
 * If-Unmodified-Since, Range, each followed by "\n"; then the canonicalized headers (every
 * x-ms-* header, name lower case, sorted, "name:value\n"); then the canonicalized resource
 * ("/" ACCOUNT URL-PATH, then for each query parameter sorted by name "\nname:value" with
 * the value percent-decoded). Pure functions, unit-tested against known signatures.
 */
#ifndef CK_AUTH_AZURE_SHAREDKEY_H
#define CK_AUTH_AZURE_SHAREDKEY_H

#include <stddef.h>

#include "util/err.h"

#define CK_AZURE_KEY_MAX 128 /* decoded account key bytes (real keys are 64) */

struct ck_azure_header {
    const char *name; /* x-ms-*, lower case */
    const char *value;
};

struct ck_azure_sign_req {
    const char *method;
    const char *account;
    const char *path;  /* the URL path as sent (percent-encoded), starting with '/' */
    const char *query; /* the URL query as sent, without '?'; "" for none */
    unsigned long long content_length; /* 0: signed as empty */
    const char *content_md5;           /* or NULL */
    const char *content_type;          /* or NULL */
    const char *range;                 /* the Range header's value ("bytes=0-9"), or NULL */
    const char *if_match;              /* the If-Match header's value (an ETag), or NULL */
    const char *if_none_match;         /* the If-None-Match header's value ("*"), or NULL */
    const struct ck_azure_header *xms;
    size_t nxms;
};

/* Decodes a base64 account key; CK_EINVAL if it is not base64 or too long. */
ck_rc ck_azure_key_decode(const char *b64, unsigned char *key, size_t *keylen);

/* The string to sign (for tests and debugging; it holds no secret). out is malloc'd. */
ck_rc ck_azure_string_to_sign(const struct ck_azure_sign_req *r, char **out, struct ck_err *err);

/* "SharedKey ACCOUNT:SIGNATURE" into out. */
ck_rc ck_azure_sharedkey(const struct ck_azure_sign_req *r, const unsigned char *key, size_t keylen,
                         char *out, size_t outlen, struct ck_err *err);

#endif
