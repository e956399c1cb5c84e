/*
 * azure_token.h - bearer-token sources for Azure Storage (internal to src/auth/; used by
 * azure_creds.c). Each fetch function is a ck_oauth_fetch_fn over its struct.
 */
#ifndef CK_AUTH_AZURE_TOKEN_H
#define CK_AUTH_AZURE_TOKEN_H

#include "auth/azure_creds.h"
#include "auth/oauth.h"

/* Workload identity: the token file is re-read at every fetch (kubelet rotates it). */
struct ck_azure_wi {
    char token_url[1024]; /* AUTHORITY/TENANT/oauth2/v2.0/token */
    char client_id[128];
    char token_file[1024];
    struct ck_retry_policy retry;
    double connect_timeout_s;
};

struct ck_azure_imds {
    char url[1024]; /* the full token URL, api-version, resource and client_id included */
    struct ck_retry_policy retry;
};

ck_rc ck_azure_wi_init(const char *authority, const char *tenant, const char *client_id,
                       const char *token_file, struct ck_azure_wi *w, struct ck_err *err);
ck_rc ck_azure_imds_init(const char *base, const char *client_id, struct ck_azure_imds *m,
                         struct ck_err *err);
ck_rc ck_azure_wi_fetch(void *ctx, struct ck_oauth_token *out, struct ck_err *err);
ck_rc ck_azure_imds_fetch(void *ctx, struct ck_oauth_token *out, struct ck_err *err);

#endif
