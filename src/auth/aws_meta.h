/*
 * aws_meta.h - credentials from metadata endpoints: the container endpoint (ECS, EKS Pod
 * Identity) and EC2 instance metadata (IMDSv2 only; v1 is never used).
 *
 * Container: AWS_CONTAINER_CREDENTIALS_FULL_URI, or http://169.254.170.2 +
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. As in the AWS SDKs, a full URI over plain http
 * must point at a loopback address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23.
 * The Authorization header comes from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read at
 * every fetch: EKS rotates it) or AWS_CONTAINER_AUTHORIZATION_TOKEN.
 *
 * IMDS: PUT /latest/api/token, then GET /latest/meta-data/iam/security-credentials/ (the
 * role) and .../ROLE (the credentials), with a short connect timeout and two attempts, so
 * a machine without IMDS fails over in about two seconds.
 *
 * Tokens and keys never appear in messages; URLs shown carry no secret.
 */
#ifndef CK_AUTH_AWS_META_H
#define CK_AUTH_AWS_META_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/aws_creds.h"
#include "util/err.h"

#define CK_AWS_META_REPLY_MAX (64 * 1024)

/* Fills out's keys and expiry from a reply with AccessKeyId, SecretAccessKey, Token and
 * Expiration (all required) and, if present, Code (must be "Success"). what names the
 * reply in messages ("container credentials at http://..."). out->source is left as is. */
ck_rc ck_aws_meta_creds(const char *text, size_t len, const char *what, struct ck_aws_creds *out,
                        struct ck_err *err);
#define CK_AWS_IMDS_CONNECT_S 1.0
#define CK_AWS_IMDS_ATTEMPTS  2

struct ck_aws_container {
    char url[2048];
    char token[4096];      /* from AWS_CONTAINER_AUTHORIZATION_TOKEN, "" if none */
    char token_file[4096]; /* AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, wins over token */
};

/* CK_ENOTFOUND if neither URI variable is set; CK_EINVAL for a URI that is not allowed. */
ck_rc ck_aws_container_from_env(char *(*getenv_fn)(const char *), struct ck_aws_container *c,
                                struct ck_err *err);

ck_rc ck_aws_container_fetch(const struct ck_aws_container *c,
                             const struct ck_aws_provider_cfg *cfg, struct ck_aws_creds *out,
                             struct ck_err *err);

/* Whether a container credentials URL may be used (the host rule above). */
bool ck_aws_container_url_allowed(const char *url);

struct ck_aws_imds {
    char endpoint[1024]; /* "http://169.254.169.254", no trailing '/' */
};

/* CK_ENOTFOUND when AWS_EC2_METADATA_DISABLED is "true"; else the endpoint from
 * AWS_EC2_METADATA_SERVICE_ENDPOINT, or the IPv4/IPv6 default per
 * AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE. */
ck_rc ck_aws_imds_from_env(char *(*getenv_fn)(const char *), struct ck_aws_imds *m,
                           struct ck_err *err);

ck_rc ck_aws_imds_fetch(const struct ck_aws_imds *m, const struct ck_aws_provider_cfg *cfg,
                        struct ck_aws_creds *out, struct ck_err *err);

#endif
