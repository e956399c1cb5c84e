/*
 * gcp_external.c - the external_account (workload identity federation) and authorized_user
 * sources; see gcp_creds.h.
 *
 * external_account: the subject token (a Kubernetes projected service-account token, an
 * OIDC token) is read from credential_source.file (format "text", or "json" with
 * subject_token_field_name) or fetched from credential_source.url (with its headers), then
 * exchanged at token_url (RFC 8693 token exchange, form body). With
 * service_account_impersonation_url the federated token is exchanged once more for the
 * service account's token (generateAccessToken, JSON body). AWS and executable sources are
 * refused with a message naming them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_read.h"
#include "auth/gcp_creds.h"
#include "util/buf.h"
#include "util/clock.h"

#define SUBJECT_MAX (64 * 1024)

struct ext {
    char audience[512];
    char subject_type[256];
    char token_url[512];
    char impersonate_url[512]; /* "" if none */
    char file[1024];           /* credential_source.file, or "" */
    char url[512];             /* credential_source.url, or "" */
    char json_field[128];      /* format.subject_token_field_name when format is json */
    struct ck_gcp_cfg cfg;
};

static ck_rc str(const char *json, size_t len, const char *key, char *out, size_t outlen,
                 bool required, const char *path, struct ck_err *err)
{
    ck_rc rc = ck_json_get_string(json, len, key, out, outlen);
    if (rc == CK_ECORRUPT)
        return ck_fail(err, rc, "credentials file %s: not a well-formed JSON object", path);
    if (rc == CK_ENOTFOUND && !required) {
        out[0] = '\0';
        return CK_OK;
    }
    if (rc || (required && !out[0]))
        return ck_fail(err, CK_EINVAL, "credentials file %s: no usable \"%s\"", path, key);
    return CK_OK;
}

/* The subject token from the file or URL, as credential_source says. */
static ck_rc subject_token(const struct ext *e, char **out, struct ck_err *err)
{
    char *raw = NULL;
    ck_rc rc;
    if (e->file[0]) {
        rc = ck_oauth_read_file(e->file, SUBJECT_MAX, "external account: subject token file", &raw,
                                err);
    } else {
        struct ck_buf reply;
        struct ck_oauth_call c = {.method = CK_HTTP_GET,
                                  .url = e->url,
                                  .what = "external account: subject token URL",
                                  .retry = e->cfg.retry,
                                  .connect_timeout_s = e->cfg.connect_timeout_s};
        rc = ck_oauth_perform(&c, &reply, err);
        raw = rc ? NULL : ck_buf_take(&reply);
        ck_oauth_reply_free(&reply);
    }
    if (rc || !e->json_field[0]) {
        *out = raw;
        return rc;
    }
    char *tok = malloc(SUBJECT_MAX);
    rc = tok ? ck_json_get_string(raw, strlen(raw), e->json_field, tok, SUBJECT_MAX) : CK_ENOMEM;
    ck_oauth_secret_free(raw);
    if (rc) {
        free(tok);
        return ck_fail(err, CK_EINVAL, "external account: no \"%s\" in the subject token JSON",
                       e->json_field);
    }
    *out = tok;
    return CK_OK;
}

static ck_rc sts_exchange(const struct ext *e, const char *subject, double now,
                          struct ck_oauth_token *out, struct ck_err *err)
{
    struct ck_buf body;
    ck_buf_init(&body, 2 * SUBJECT_MAX);
    ck_rc rc =
        ck_oauth_form_add(&body, "grant_type", "urn:ietf:params:oauth:grant-type:token-exchange");
    if (!rc)
        rc = ck_oauth_form_add(&body, "audience", e->audience);
    if (!rc)
        rc = ck_oauth_form_add(&body, "scope", CK_GCP_CP_SCOPE);
    if (!rc)
        rc = ck_oauth_form_add(&body, "requested_token_type",
                               "urn:ietf:params:oauth:token-type:access_token");
    if (!rc)
        rc = ck_oauth_form_add(&body, "subject_token_type", e->subject_type);
    if (!rc)
        rc = ck_oauth_form_add(&body, "subject_token", subject);
    return ck_oauth_post_form(e->token_url, &body, rc, "external account: STS token exchange",
                              &e->cfg.retry, e->cfg.connect_timeout_s, now, out, err);
}

static ck_rc impersonate(const struct ext *e, const struct ck_oauth_token *fed, double now,
                         struct ck_oauth_token *out, struct ck_err *err)
{
    char *auth = malloc(CK_OAUTH_TOKEN_MAX + 32);
    if (!auth)
        return ck_fail(err, CK_ENOMEM, "external account: out of memory");
    snprintf(auth, CK_OAUTH_TOKEN_MAX + 32, "Authorization: Bearer %s", fed->value);
    static const char body[] = "{\"scope\":[\"" CK_GCP_CP_SCOPE "\"]}";
    const char *what = "external account: service account impersonation";
    struct ck_buf reply;
    struct ck_oauth_call c = {
        .method = CK_HTTP_POST,
        .url = e->impersonate_url,
        .headers = {"Content-Type: application/json", auth},
        .body = body,
        .body_len = sizeof(body) - 1,
        .what = what,
        .retry = e->cfg.retry,
        .connect_timeout_s = e->cfg.connect_timeout_s,
    };
    ck_rc rc = ck_oauth_perform(&c, &reply, err);
    ck_oauth_secret_free(auth);
    if (!rc)
        rc = ck_oauth_parse_token(reply.data, reply.len, what, "accessToken", "expireTime", now,
                                  out, err);
    ck_oauth_reply_free(&reply);
    return rc;
}

static ck_rc ext_fetch(void *ctx, struct ck_oauth_token *out, struct ck_err *err)
{
    struct ext *e = ctx;
    double now = ck_wall_now();
    char *subject = NULL;
    ck_rc rc = subject_token(e, &subject, err);
    if (rc)
        return rc;
    if (!e->impersonate_url[0]) {
        rc = sts_exchange(e, subject, now, out, err);
    } else {
        struct ck_oauth_token *fed = malloc(sizeof(*fed));
        rc = fed ? sts_exchange(e, subject, now, fed, err)
                 : ck_fail(err, CK_ENOMEM, "external account: out of memory");
        if (!rc)
            rc = impersonate(e, fed, now, out, err);
        if (fed)
            explicit_bzero(fed, sizeof(*fed));
        free(fed);
    }
    ck_oauth_secret_free(subject);
    return rc;
}

/* credential_source: file or url, and the format. */
static ck_rc read_source(struct ext *e, const char *json, size_t len, const char *path,
                         struct ck_err *err)
{
    char src[4096], fmt[1024], type[32] = "";
    if (ck_json_get_raw(json, len, "credential_source", src, sizeof(src)) != CK_OK || src[0] != '{')
        return ck_fail(err, CK_EINVAL, "credentials file %s: no credential_source object", path);
    size_t sl = strlen(src);
    char probe[64];
    if (ck_json_get_string(src, sl, "environment_id", probe, sizeof(probe)) != CK_ENOTFOUND ||
        ck_json_get_raw(src, sl, "executable", probe, sizeof(probe)) != CK_ENOTFOUND)
        return ck_fail(err, CK_EUNSUPPORTED,
                       "credentials file %s: AWS and executable credential sources are not "
                       "supported (use a file or url source)",
                       path);
    ck_rc rc = str(src, sl, "file", e->file, sizeof(e->file), false, path, err);
    if (!rc)
        rc = str(src, sl, "url", e->url, sizeof(e->url), false, path, err);
    if (!rc && !e->file[0] && !e->url[0])
        rc = ck_fail(err, CK_EINVAL, "credentials file %s: credential_source has no file or url",
                     path);
    if (!rc && ck_json_get_raw(src, sl, "format", fmt, sizeof(fmt)) == CK_OK) {
        if (ck_json_get_string(fmt, strlen(fmt), "type", type, sizeof(type)) != CK_OK)
            type[0] = '\0';
        if (strcmp(type, "json") == 0)
            rc = str(fmt, strlen(fmt), "subject_token_field_name", e->json_field,
                     sizeof(e->json_field), true, path, err);
        else if (type[0] && strcmp(type, "text") != 0)
            rc = ck_fail(err, CK_EINVAL, "credentials file %s: unknown format type", path);
    }
    return rc;
}

ck_rc ck_gcp_external_account(const char *json, size_t len, const char *path,
                              const struct ck_gcp_cfg *cfg, struct ck_gcp_source *out,
                              struct ck_err *err)
{
    struct ext *e = calloc(1, sizeof(*e));
    if (!e)
        return ck_fail(err, CK_ENOMEM, "credentials file %s: out of memory", path);
    e->cfg = *cfg;
    ck_rc rc = str(json, len, "audience", e->audience, sizeof(e->audience), true, path, err);
    if (!rc)
        rc = str(json, len, "subject_token_type", e->subject_type, sizeof(e->subject_type), true,
                 path, err);
    if (!rc)
        rc = str(json, len, "token_url", e->token_url, sizeof(e->token_url), true, path, err);
    if (!rc)
        rc = str(json, len, "service_account_impersonation_url", e->impersonate_url,
                 sizeof(e->impersonate_url), false, path, err);
    if (!rc)
        rc = read_source(e, json, len, path, err);
    return ck_gcp_source_set(out, rc, "external-account", ext_fetch, e, free);
}

/* ---- authorized_user (gcloud auth application-default login) ------------------------ */

struct user {
    char client_id[256];
    char client_secret[256];
    char refresh_token[1024];
    char token_uri[512];
    struct ck_gcp_cfg cfg;
};

static ck_rc user_fetch(void *ctx, struct ck_oauth_token *out, struct ck_err *err)
{
    struct user *u = ctx;
    double now = ck_wall_now();
    struct ck_buf body;
    ck_buf_init(&body, 8192);
    ck_rc rc = ck_oauth_form_add(&body, "grant_type", "refresh_token");
    if (!rc)
        rc = ck_oauth_form_add(&body, "client_id", u->client_id);
    if (!rc)
        rc = ck_oauth_form_add(&body, "client_secret", u->client_secret);
    if (!rc)
        rc = ck_oauth_form_add(&body, "refresh_token", u->refresh_token);
    return ck_oauth_post_form(u->token_uri, &body, rc, "authorized user: token refresh",
                              &u->cfg.retry, u->cfg.connect_timeout_s, now, out, err);
}

static void user_free(void *ctx)
{
    if (ctx)
        explicit_bzero(ctx, sizeof(struct user));
    free(ctx);
}

ck_rc ck_gcp_authorized_user(const char *json, size_t len, const char *path,
                             const struct ck_gcp_cfg *cfg, struct ck_gcp_source *out,
                             struct ck_err *err)
{
    struct user *u = calloc(1, sizeof(*u));
    if (!u)
        return ck_fail(err, CK_ENOMEM, "credentials file %s: out of memory", path);
    u->cfg = *cfg;
    ck_rc rc = str(json, len, "client_id", u->client_id, sizeof(u->client_id), true, path, err);
    if (!rc)
        rc = str(json, len, "client_secret", u->client_secret, sizeof(u->client_secret), true, path,
                 err);
    if (!rc)
        rc = str(json, len, "refresh_token", u->refresh_token, sizeof(u->refresh_token), true, path,
                 err);
    if (!rc)
        rc = str(json, len, "token_uri", u->token_uri, sizeof(u->token_uri), false, path, err);
    if (!rc && !u->token_uri[0])
        snprintf(u->token_uri, sizeof(u->token_uri), "%s", CK_GCP_TOKEN_URI);
    return ck_gcp_source_set(out, rc, "authorized-user", user_fetch, u, user_free);
}
