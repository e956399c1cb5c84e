/*
 * sigv4.h - AWS Signature Version 4 with OpenSSL's SHA-256 and HMAC (no own crypto).
 *
 * ck_sigv4_sign computes the Authorization header of one request from its method, path,
 * query, headers and payload hash, as in AWS's "Create a signed AWS API request":
 * canonical request -> string to sign -> signing key (HMAC chain over date, region,
 * service, "aws4_request") -> signature. Unit-tested against AWS's documented examples.
 *
 * The caller supplies every header it will send that must be signed (host, x-amz-date,
 * x-amz-content-sha256, x-amz-security-token when there is a session token, range,
 * content-md5, x-amz-checksum-*...); they are lower-cased, trimmed and sorted here.
 * The path must already be URI-encoded the way it is sent (S3: each segment encoded once,
 * "/" kept); the query is canonicalized here (split, sorted, each name and value
 * re-encoded per RFC 3986; '+' is taken literally, so encode a space as %20).
 * If no x-amz-date header is given, amz_date is signed as one (the caller must then send
 * it); one that differs from amz_date, a missing host header, or credentials with a
 * session token but no x-amz-security-token header are CK_EINVAL. Repeated header names
 * are joined with ',' in the order given. Messages never contain key material.
 */
#ifndef CK_AUTH_SIGV4_H
#define CK_AUTH_SIGV4_H

#include <stddef.h>

#include "auth/aws_creds.h"
#include "util/err.h"

#define CK_SIGV4_MAX_HEADERS 24
#define CK_SHA256_HEX_LEN    64

struct ck_sigv4_header {
    const char *name;
    const char *value;
};

struct ck_sigv4_request {
    const char *method; /* "GET", "PUT", ... */
    const char *path;   /* encoded, e.g. "/bucket/my%20key" */
    const char *query;  /* without '?', may be "" */
    const struct ck_sigv4_header *headers;
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;     /* "20150830T123600Z", also sent as x-amz-date */
    const char *region;
    const char *service; /* "s3", "sts" */
};

/* Writes "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." into out. */
ck_rc ck_sigv4_sign(const struct ck_sigv4_request *req, const struct ck_aws_creds *creds, char *out,
                    size_t outlen, struct ck_err *err);

/* Lower-case hex SHA-256 of data into hex[CK_SHA256_HEX_LEN + 1]. */
void ck_sha256_hex(const void *data, size_t len, char *hex);

/* "YYYYMMDDTHHMMSSZ" for the wall-clock time t. */
void ck_sigv4_amz_date(double t, char out[17]);

#endif
