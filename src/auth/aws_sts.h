/*
 * aws_sts.h - web identity: a token file exchanged for temporary credentials with STS
 * AssumeRoleWithWebIdentity (EKS IRSA, and profiles with role_arn + web_identity_token_file).
 *
 * The request is an unsigned POST of the parameters as a form body, as the AWS SDKs send
 * it: emulators (moto) route only that form to STS, and the token stays out of URLs, which
 * proxies log. The token is re-read from its file at every fetch (the kubelet rotates
 * it). Messages and logs show "<endpoint>/ (AssumeRoleWithWebIdentity)".
 * The reply is XML from the network: parsed with libxml2 without network access, without
 * entity substitution or DTD loading, refused if it has a DTD at all, capped at
 * CK_AWS_STS_REPLY_MAX bytes.
 */
#ifndef CK_AUTH_AWS_STS_H
#define CK_AUTH_AWS_STS_H

#include <stddef.h>

#include "auth/aws_creds.h"
#include "util/err.h"

#define CK_AWS_STS_REPLY_MAX  (64 * 1024)
#define CK_AWS_TOKEN_FILE_MAX (64 * 1024)

struct ck_aws_web_identity {
    char role_arn[2048];
    char token_file[4096];
    char session_name[65]; /* 2-64 characters of [\w+=,.@-] */
    char endpoint[1024];   /* "https://sts.us-east-1.amazonaws.com", no trailing '/' */
};

/* Fills w from the environment's AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE,
 * AWS_ROLE_SESSION_NAME and the STS endpoint for region (see ck_aws_sts_endpoint).
 * CK_ENOTFOUND if the two required variables are not both set. */
ck_rc ck_aws_web_identity_from_env(char *(*getenv_fn)(const char *), const char *region,
                                   struct ck_aws_web_identity *w, struct ck_err *err);

/* AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else https://sts.REGION.amazonaws.com
 * (amazonaws.com.cn for cn- regions); trailing '/' removed. CK_EINVAL if not http(s). */
ck_rc ck_aws_sts_endpoint(char *(*getenv_fn)(const char *), const char *region, char *out,
                          size_t outlen, struct ck_err *err);

/* A session name when none is configured: "ckptfs-<unix time>". */
void ck_aws_default_session_name(char *out, size_t outlen);

/* Reads the token and calls STS; on success out holds keys, token and expiry. */
ck_rc ck_aws_web_identity_fetch(const struct ck_aws_web_identity *w,
                                const struct ck_aws_provider_cfg *cfg, struct ck_aws_creds *out,
                                struct ck_err *err);

/* Parses an AssumeRoleWithWebIdentityResponse (exposed for tests). */
ck_rc ck_aws_sts_parse(const char *xml, size_t len, struct ck_aws_creds *out, struct ck_err *err);

#endif
