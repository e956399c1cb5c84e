/*
 * gcp_creds.h - Google Cloud access tokens, found in the order Google's client libraries
 * use, and kept fresh.
 *
 *   1. GOOGLE_APPLICATION_CREDENTIALS names a JSON file:
 *        "service_account": an RS256 JWT signed with its private key (OpenSSL), exchanged at
 *          its token_uri (jwt-bearer grant);
 *        "external_account" (workload identity federation): a subject token from
 *          credential_source.file (text or JSON) or credential_source.url, exchanged at
 *          token_url (STS token exchange), then, if service_account_impersonation_url is
 *          set, exchanged for that service account's token;
 *        "authorized_user": its refresh_token at its token_uri.
 *   2. The gcloud well-known file ($CLOUDSDK_CONFIG or ~/.config/gcloud,
 *      application_default_credentials.json), same types.
 *   3. The metadata server (GKE Workload Identity, GCE): GCE_METADATA_HOST (host[:port])
 *      or 169.254.169.254, "Metadata-Flavor: Google"; short timeouts, then "not available".
 * anonymous (no credentials, unsigned requests) skips the chain.
 *
 * A configured source that fails stops with its error (a broken key file never falls
 * through to the node's identity). Tokens are refreshed CK_OAUTH_REFRESH_S before they
 * expire. Keys, assertions and tokens never appear in messages or the log.
 *
 * Thread safety: one provider serves many threads (ck_gcp_token copies under a lock).
 */
#ifndef CK_AUTH_GCP_CREDS_H
#define CK_AUTH_GCP_CREDS_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/oauth.h"
#include "net/retry.h"
#include "util/err.h"

#define CK_GCP_SCOPE     "https://www.googleapis.com/auth/devstorage.read_write"
#define CK_GCP_CP_SCOPE  "https://www.googleapis.com/auth/cloud-platform"
#define CK_GCP_TOKEN_URI "https://oauth2.googleapis.com/token"
#define CK_GCP_FILE_MAX  (64 * 1024)

struct ck_gcp_cfg {
    char *(*getenv_fn)(const char *name); /* NULL = getenv */
    bool anonymous;
    struct ck_retry_policy retry; /* for token requests */
    double connect_timeout_s;
};

/* One credential source: fetch gets a fresh token (ctx), free_ctx releases ctx. */
struct ck_gcp_source {
    char name[32]; /* "service-account", "external-account", "authorized-user", "metadata" */
    ck_oauth_fetch_fn fetch;
    void *ctx;
    void (*free_ctx)(void *ctx);
};

/* The end of a source's set-up: with rc CK_OK fills out (name, fetch serving ctx,
 * free_ctx); else frees ctx with free_ctx. Returns rc. */
ck_rc ck_gcp_source_set(struct ck_gcp_source *out, ck_rc rc, const char *name,
                        ck_oauth_fetch_fn fetch, void *ctx, void (*free_ctx)(void *ctx));

struct ck_gcp_provider;

/* Resolves the chain and fetches the first token (I/O). CK_EAUTH listing what was tried
 * when nothing has credentials. */
ck_rc ck_gcp_provider_new(const struct ck_gcp_cfg *cfg, struct ck_gcp_provider **out,
                          struct ck_err *err);

/* A token valid for more than the refresh margin; "" when anonymous. */
ck_rc ck_gcp_token(struct ck_gcp_provider *p, char *out, size_t outlen, struct ck_err *err);

bool ck_gcp_anonymous(const struct ck_gcp_provider *p);
const char *ck_gcp_source_name(const struct ck_gcp_provider *p);
void ck_gcp_provider_free(struct ck_gcp_provider *p);

/* The sources, for the chain and for tests. json is the key file's text (len bytes),
 * path names it in messages. ck_gcp_file_source picks one by the file's "type"
 * (service_account, external_account, authorized_user). No I/O. */
ck_rc ck_gcp_file_source(const char *json, size_t len, const char *path,
                         const struct ck_gcp_cfg *cfg, struct ck_gcp_source *out,
                         struct ck_err *err);
ck_rc ck_gcp_service_account(const char *json, size_t len, const char *path,
                             const struct ck_gcp_cfg *cfg, struct ck_gcp_source *out,
                             struct ck_err *err);
ck_rc ck_gcp_external_account(const char *json, size_t len, const char *path,
                              const struct ck_gcp_cfg *cfg, struct ck_gcp_source *out,
                              struct ck_err *err);
ck_rc ck_gcp_authorized_user(const char *json, size_t len, const char *path,
                             const struct ck_gcp_cfg *cfg, struct ck_gcp_source *out,
                             struct ck_err *err);

/* The signed JWT a service account sends: header {"alg":"RS256","typ":"JWT","kid":kid},
 * claims iss, scope, aud, iat = now, exp = now + 3600. pem is the PKCS#8 private key.
 * *out is malloc'd (caller frees). */
ck_rc ck_gcp_jwt(const char *pem, const char *kid, const char *email, const char *aud,
                 const char *scope, long now, char **out, struct ck_err *err);

#endif
