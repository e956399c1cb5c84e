/*
 * gcp_creds.c - the Google credential chain, the metadata-server source and the provider;
 * see gcp_creds.h. The key-file sources are in gcp_jwt.c and gcp_external.c.
 */
#include "auth/gcp_creds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_read.h"
#include "auth/ini.h"
#include "util/clock.h"
#include "util/log.h"

#define META_PATH "/computeMetadata/v1/instance/service-accounts/default/token"

struct ck_gcp_provider {
    bool anonymous;
    struct ck_gcp_source src;
    struct ck_oauth_cache cache; /* thread-safe itself */
};

static const char *env(const struct ck_gcp_cfg *cfg, const char *name)
{
    const char *v = cfg->getenv_fn ? cfg->getenv_fn(name) : getenv(name);
    return v && v[0] ? v : NULL;
}

ck_rc ck_gcp_source_set(struct ck_gcp_source *out, ck_rc rc, const char *name,
                        ck_oauth_fetch_fn fetch, void *ctx, void (*free_ctx)(void *ctx))
{
    if (rc) {
        free_ctx(ctx);
        return rc;
    }
    snprintf(out->name, sizeof(out->name), "%s", name);
    out->fetch = fetch;
    out->ctx = ctx;
    out->free_ctx = free_ctx;
    return CK_OK;
}

/* ---- metadata server ---------------------------------------------------------------- */

struct meta {
    char url[512];
    struct ck_gcp_cfg cfg;
};

static ck_rc meta_fetch(void *ctx, struct ck_oauth_token *out, struct ck_err *err)
{
    const struct meta *m = ctx;
    return ck_oauth_metadata_token(m->url, "Metadata-Flavor: Google", "GCE metadata server",
                                   &m->cfg.retry, out, err);
}

static ck_rc metadata_source(const struct ck_gcp_cfg *cfg, struct ck_gcp_source *out,
                             struct ck_err *err)
{
    const char *host = env(cfg, "GCE_METADATA_HOST");
    if (!host)
        host = env(cfg, "GCE_METADATA_IP");
    if (!host)
        host = "169.254.169.254";
    if (strpbrk(host, "/?#@ ") || strlen(host) > 255)
        return ck_fail(err, CK_EINVAL, "GCE_METADATA_HOST: not a host[:port]");
    struct meta *m = calloc(1, sizeof(*m));
    if (!m)
        return ck_fail(err, CK_ENOMEM, "metadata: out of memory");
    snprintf(m->url, sizeof(m->url), "http://%s" META_PATH, host);
    m->cfg = *cfg;
    return ck_gcp_source_set(out, CK_OK, "metadata", meta_fetch, m, free);
}

/* ---- key files ---------------------------------------------------------------------- */

ck_rc ck_gcp_file_source(const char *json, size_t len, const char *path,
                         const struct ck_gcp_cfg *cfg, struct ck_gcp_source *out,
                         struct ck_err *err)
{
    char type[64];
    ck_rc rc = ck_json_get_string(json, len, "type", type, sizeof(type));
    if (rc == CK_ECORRUPT)
        rc = ck_fail(err, rc, "credentials file %s: not a well-formed JSON object", path);
    else if (rc)
        rc = ck_fail(err, CK_EINVAL, "credentials file %s: no \"type\"", path);
    else if (strcmp(type, "service_account") == 0)
        rc = ck_gcp_service_account(json, len, path, cfg, out, err);
    else if (strcmp(type, "external_account") == 0)
        rc = ck_gcp_external_account(json, len, path, cfg, out, err);
    else if (strcmp(type, "authorized_user") == 0)
        rc = ck_gcp_authorized_user(json, len, path, cfg, out, err);
    else
        rc = ck_fail(err, CK_EUNSUPPORTED, "credentials file %s: type \"%.32s\" is not supported",
                     path, type);
    return rc;
}

static ck_rc file_source(const char *path, const struct ck_gcp_cfg *cfg, struct ck_gcp_source *out,
                         struct ck_err *err)
{
    char *json = NULL;
    ck_rc rc = ck_oauth_read_file(path, CK_GCP_FILE_MAX, "credentials file", &json, err);
    if (rc)
        return rc;
    rc = ck_gcp_file_source(json, strlen(json), path, cfg, out, err);
    ck_oauth_secret_free(json);
    return rc;
}

/* gcloud's well-known file, if it exists. */
static bool well_known(const struct ck_gcp_cfg *cfg, char *path, size_t len)
{
    const char *dir = env(cfg, "CLOUDSDK_CONFIG");
    const char *home = env(cfg, "HOME");
    if (dir)
        snprintf(path, len, "%s/application_default_credentials.json", dir);
    else if (home)
        snprintf(path, len, "%s/.config/gcloud/application_default_credentials.json", home);
    else
        return false;
    FILE *f = fopen(path, "r");
    if (f)
        fclose(f);
    return f != NULL;
}

/* Picks the source; *tried lists what was not configured. */
static ck_rc pick_source(const struct ck_gcp_cfg *cfg, struct ck_gcp_source *out,
                         struct ck_err *err)
{
    const char *gac = env(cfg, "GOOGLE_APPLICATION_CREDENTIALS");
    char path[1024];
    if (gac)
        return file_source(gac, cfg, out, err);
    if (well_known(cfg, path, sizeof(path)))
        return file_source(path, cfg, out, err);
    return metadata_source(cfg, out, err);
}

ck_rc ck_gcp_provider_new(const struct ck_gcp_cfg *cfg, struct ck_gcp_provider **out,
                          struct ck_err *err)
{
    struct ck_gcp_provider *p = calloc(1, sizeof(*p));
    if (!p)
        return ck_fail(err, CK_ENOMEM, "google credentials: out of memory");
    p->anonymous = cfg->anonymous;
    if (!p->anonymous) {
        ck_rc rc = pick_source(cfg, &p->src, err);
        if (rc) {
            free(p);
            return rc;
        }
    }
    ck_oauth_cache_init(&p->cache, p->src.fetch, p->src.ctx);
    if (!p->anonymous) {
        char tok[CK_OAUTH_TOKEN_MAX];
        ck_rc rc = ck_oauth_cache_get(&p->cache, tok, sizeof(tok), err);
        explicit_bzero(tok, sizeof(tok));
        if (rc) {
            if (strcmp(p->src.name, "metadata") == 0)
                ck_err_prefix(err, "no google credentials found; tried: "
                                   "GOOGLE_APPLICATION_CREDENTIALS (not set); gcloud "
                                   "application_default_credentials.json (none); metadata");
            if (rc != CK_EAUTH && strcmp(p->src.name, "metadata") == 0)
                err->rc = rc = CK_EAUTH;
            ck_gcp_provider_free(p);
            return rc;
        }
        ck_log_info("google credentials: %s", p->src.name);
    }
    *out = p;
    return CK_OK;
}

ck_rc ck_gcp_token(struct ck_gcp_provider *p, char *out, size_t outlen, struct ck_err *err)
{
    if (p->anonymous) {
        out[0] = '\0';
        return CK_OK;
    }
    ck_rc rc = ck_oauth_cache_get(&p->cache, out, outlen, err);
    if (rc)
        ck_err_prefix(err, "google credentials (%s)", p->src.name);
    return rc;
}

bool ck_gcp_anonymous(const struct ck_gcp_provider *p)
{
    return p->anonymous;
}

const char *ck_gcp_source_name(const struct ck_gcp_provider *p)
{
    return p->anonymous ? "anonymous" : p->src.name;
}

void ck_gcp_provider_free(struct ck_gcp_provider *p)
{
    if (!p)
        return;
    ck_oauth_cache_destroy(&p->cache);
    if (p->src.free_ctx)
        p->src.free_ctx(p->src.ctx);
    free(p);
}
