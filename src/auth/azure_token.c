/*
 * azure_token.c - the two bearer-token sources of azure_creds.h: workload identity
 * (Entra ID client credentials with the projected service-account token as
 * client_assertion) and managed identity (IMDS). Both go through oauth.c.
 */
#include "auth/azure_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/clock.h"

#define ASSERTION_MAX (64 * 1024)

ck_rc ck_azure_wi_fetch(void *ctx, struct ck_oauth_token *out, struct ck_err *err)
{
    const struct ck_azure_wi *w = ctx;
    double now = ck_wall_now();
    char *assertion = NULL;
    ck_rc rc = ck_oauth_read_file(w->token_file, ASSERTION_MAX,
                                  "workload identity: AZURE_FEDERATED_TOKEN_FILE", &assertion, err);
    if (rc)
        return rc;
    struct ck_buf body;
    ck_buf_init(&body, 2 * ASSERTION_MAX);
    rc = ck_oauth_form_add(&body, "client_id", w->client_id);
    if (!rc)
        rc = ck_oauth_form_add(&body, "scope", CK_AZURE_SCOPE);
    if (!rc)
        rc = ck_oauth_form_add(&body, "client_assertion_type",
                               "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    if (!rc)
        rc = ck_oauth_form_add(&body, "client_assertion", assertion);
    if (!rc)
        rc = ck_oauth_form_add(&body, "grant_type", "client_credentials");
    ck_oauth_secret_free(assertion);
    return ck_oauth_post_form(w->token_url, &body, rc, "workload identity: Entra ID token request",
                              &w->retry, w->connect_timeout_s, now, out, err);
}

ck_rc ck_azure_imds_fetch(void *ctx, struct ck_oauth_token *out, struct ck_err *err)
{
    const struct ck_azure_imds *m = ctx;
    return ck_oauth_metadata_token(m->url, "Metadata: true", "managed identity (IMDS)", &m->retry,
                                   out, err);
}

static bool url_ok(const char *u)
{
    return (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) && !strpbrk(u, " ?#");
}

ck_rc ck_azure_wi_init(const char *authority, const char *tenant, const char *client_id,
                       const char *token_file, struct ck_azure_wi *w, struct ck_err *err)
{
    size_t al = strlen(authority);
    const char *slash = al && authority[al - 1] == '/' ? "" : "/";
    for (const char *p = tenant; *p; p++) {
        if (!(*p == '-' || *p == '.' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z')))
            return ck_fail(err, CK_EINVAL, "workload identity: AZURE_TENANT_ID is malformed");
    }
    if (!url_ok(authority))
        return ck_fail(err, CK_EINVAL, "workload identity: AZURE_AUTHORITY_HOST is not a URL");
    int n = snprintf(w->token_url, sizeof(w->token_url), "%s%s%s/oauth2/v2.0/token", authority,
                     slash, tenant);
    if (n < 0 || (size_t)n >= sizeof(w->token_url) || strlen(client_id) >= sizeof(w->client_id) ||
        strlen(token_file) >= sizeof(w->token_file))
        return ck_fail(err, CK_EINVAL, "workload identity: settings too long");
    snprintf(w->client_id, sizeof(w->client_id), "%s", client_id);
    snprintf(w->token_file, sizeof(w->token_file), "%s", token_file);
    return CK_OK;
}

ck_rc ck_azure_imds_init(const char *base, const char *client_id, struct ck_azure_imds *m,
                         struct ck_err *err)
{
    if (!url_ok(base))
        return ck_fail(err, CK_EINVAL,
                       "managed identity: AZURE_POD_IDENTITY_AUTHORITY_HOST is "
                       "not a URL");
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    char enc[512] = "";
    for (const char *p = client_id ? client_id : ""; *p; p++) {
        if (!(*p == '-' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z')))
            return ck_fail(err, CK_EINVAL, "managed identity: AZURE_CLIENT_ID is malformed");
    }
    if (client_id && client_id[0])
        snprintf(enc, sizeof(enc), "&client_id=%.128s", client_id);
    int n = snprintf(m->url, sizeof(m->url),
                     "%.*s/metadata/identity/oauth2/token?api-version=2018-02-01&resource="
                     "https%%3A%%2F%%2Fstorage.azure.com%%2F%s",
                     (int)bl, base, enc);
    if (n < 0 || (size_t)n >= sizeof(m->url))
        return ck_fail(err, CK_EINVAL, "managed identity: endpoint too long");
    return CK_OK;
}
