/*
 * s3_config.h - where S3 requests go: settings from the environment, the endpoint, the
 * addressing style and the URL of a request (internal to src/store/).
 *
 * Pure functions (the environment is read through a getenv function), unit-tested without
 * a server. Endpoint: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then FLYTE_AWS_ENDPOINT,
 * else https://s3.REGION.amazonaws.com. Addressing: FLYTE_AWS_S3_ADDRESSING_STYLE, then
 * AWS_S3_ADDRESSING_STYLE = path | virtual | auto (default auto: virtual-host for AWS
 * endpoints and DNS-compatible bucket names, path-style for custom endpoints, IP
 * addresses and names virtual-host cannot carry, e.g. dotted names over https).
 * Multipart tuning: CKPTFS_S3_PART_SIZE (bytes, K/M/G suffix allowed; 5 MiB .. 5 GiB,
 * default 8 MiB) and CKPTFS_S3_CONCURRENCY (parts in flight, 1 .. 32, default 4).
 */
#ifndef CK_STORE_S3_S3_CONFIG_H
#define CK_STORE_S3_S3_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

#define CK_S3_MIN_PART     (5ull << 20)
#define CK_S3_MAX_PART     (5ull << 30)
#define CK_S3_DEFAULT_PART (8ull << 20)
#define CK_S3_MAX_PARTS    10000u
#define CK_S3_DEFAULT_PAR  4u
#define CK_S3_MAX_PAR      32u
#define CK_S3_PATH_MAX     4096 /* encoded path of one request */
#define CK_S3_URL_MAX      (CK_S3_PATH_MAX + 1024)

enum ck_s3_style { CK_S3_STYLE_AUTO, CK_S3_STYLE_PATH, CK_S3_STYLE_VIRTUAL };

/* What the environment says, read once when a store opens. */
struct ck_s3_settings {
    char endpoint_url[512];   /* the override, or "" for AWS */
    const char *endpoint_var; /* which variable set it (static string), or NULL */
    enum ck_s3_style style;
    uint64_t part_size; /* the first part size; later parts grow (ck_s3_part_size) */
    unsigned parallel;  /* parts in flight */
};

ck_rc ck_s3_settings_from_env(char *(*getenv_fn)(const char *), struct ck_s3_settings *out,
                              struct ck_err *err);

/* A parsed endpoint. */
struct ck_s3_endpoint {
    bool https;
    char host[256];      /* host[:port] as sent in the Host header */
    char base_path[256]; /* path prefix of the endpoint ("" or "/prefix", no trailing '/') */
    bool aws;            /* an amazonaws.com endpoint (AWS's own, or an override naming it) */
    bool ip;             /* the host is an IPv4 or IPv6 literal */
};

/* Parses settings' endpoint override, or builds AWS's regional endpoint for region.
 * CK_EINVAL naming the variable for a malformed override (not http(s), userinfo, query). */
ck_rc ck_s3_endpoint_resolve(const struct ck_s3_settings *set, const char *region,
                             struct ck_s3_endpoint *out, struct ck_err *err);

/* Whether bucket can be a DNS label prefix (virtual-host style) on this endpoint. */
bool ck_s3_bucket_virtual_ok(const char *bucket, bool https);

/* The addressing decision: true for virtual-host style. CK_EINVAL when "virtual" is
 * forced for a bucket name that cannot be a host name. */
ck_rc ck_s3_use_virtual(enum ck_s3_style style, const struct ck_s3_endpoint *ep, const char *bucket,
                        bool *virtual_host, struct ck_err *err);

/* One request's target: what to connect to, what to sign. */
struct ck_s3_target {
    char url[CK_S3_URL_MAX];   /* scheme://host/path?query */
    char host[320];            /* the Host header (signed) */
    char path[CK_S3_PATH_MAX]; /* the encoded path, as signed */
};

/* Builds the target for bucket/key (key may be "" for the bucket itself); query is "" or
 * already encoded "name=value&...". CK_EINVAL if it does not fit. */
ck_rc ck_s3_target_build(const struct ck_s3_endpoint *ep, bool virtual_host, const char *bucket,
                         const char *key, const char *query, struct ck_s3_target *t,
                         struct ck_err *err);

/* Size of part number n (1-based) for a first part size base: base doubled every 1,000
 * parts, capped at CK_S3_MAX_PART, so 10,000 parts of base 5 MiB hold over 5 TiB. */
uint64_t ck_s3_part_size(uint64_t base, unsigned n);

#endif
