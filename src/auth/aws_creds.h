/*
 * aws_creds.h - AWS credentials, found in the order AWS's own SDKs use, and kept fresh.
 *
 * The chain (first provider that has credentials wins, as in the AWS SDKs):
 *   1. environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
 *   2. Flyte's environment: FLYTE_AWS_ACCESS_KEY_ID / FLYTE_AWS_SECRET_ACCESS_KEY
 *   3. web identity: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (+ AWS_ROLE_SESSION_NAME),
 *      exchanged with STS AssumeRoleWithWebIdentity (EKS IRSA)
 *   4. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and AWS_CONFIG_FILE
 *      (~/.aws/config) for AWS_PROFILE (default "default"): static keys, or role_arn with
 *      web_identity_token_file
 *   5. container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI (on
 *      169.254.170.2), with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) (EKS Pod Identity, ECS)
 *   6. EC2 instance metadata, IMDSv2 (token PUT, then role and credentials GET);
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT overrides the endpoint,
 *      AWS_EC2_METADATA_DISABLED=true skips it
 * Region: AWS_REGION, AWS_DEFAULT_REGION, then the profile's "region" in the config file,
 * else us-east-1.
 *
 * Temporary credentials (3, 4 with a role, 5, 6) carry an expiry; ck_aws_creds_get()
 * refreshes them when fewer than CK_AWS_REFRESH_MARGIN_S seconds remain, so a long upload
 * signs every request with valid credentials. The environment is read through a getenv
 * function given at creation (tests pass their own); nothing is read at signing time but
 * the provider's own state.
 *
 * Secrets (secret key, session token, web identity token, container authorization token)
 * never appear in an error message or the log; messages name the provider and the file or
 * endpoint ("web identity: STS AssumeRoleWithWebIdentity at http://...: HTTP 403
 * AccessDenied").
 *
 * Thread safety: one provider may be used by many threads; ck_aws_creds_get copies the
 * current credentials out under the provider's lock.
 */
#ifndef CK_AUTH_AWS_CREDS_H
#define CK_AUTH_AWS_CREDS_H

#include <stdbool.h>

#include "net/retry.h"
#include "util/err.h"

#define CK_AWS_REFRESH_MARGIN_S 300.0

struct ck_aws_creds {
    char access_key[128];
    char secret_key[128];
    char session_token[4096]; /* empty if none */
    double expires_wall;      /* seconds since the epoch; 0 = does not expire */
    char source[64];          /* provider name for logs/status: "env", "web-identity", ... */
};

struct ck_aws_provider;

struct ck_aws_provider_cfg {
    char *(*getenv_fn)(const char *name); /* getenv, or a test's own; NULL = getenv */
    bool anonymous;                       /* --no-sign-request: no credentials at all */
    struct ck_retry_policy retry;         /* for STS and metadata requests (metadata: at most 2
                                             attempts); max_attempts 0 = the defaults */
    double connect_timeout_s;
};

/* Resolves the chain once (does I/O: files, STS, metadata) and keeps the winner.
 * CK_EAUTH with a message listing what was tried if no provider has credentials. */
ck_rc ck_aws_provider_new(const struct ck_aws_provider_cfg *cfg, struct ck_aws_provider **out,
                          struct ck_err *err);

/* Current credentials, refreshed first if they expire within the margin. For an anonymous
 * provider, fills empty keys and returns CK_OK (callers then do not sign). */
ck_rc ck_aws_creds_get(struct ck_aws_provider *p, struct ck_aws_creds *out, struct ck_err *err);

bool ck_aws_provider_anonymous(const struct ck_aws_provider *p);

/* The region (see above). Never NULL. */
const char *ck_aws_provider_region(const struct ck_aws_provider *p);

void ck_aws_provider_free(struct ck_aws_provider *p);

#endif
