/*
 * gcs_request.c - GCS's part of the cloud core (cloud.h): settings, URLs, a bearer token
 * on every attempt; see gcs.h.
 *
 * Requests go to the XML API, path-style: ENDPOINT/BUCKET/KEY (the key percent-encoded,
 * '/' kept), or ENDPOINT/BUCKET for the listing of multipart uploads. Every attempt gets
 * "Authorization: Bearer TOKEN" from the credential provider, so a token refreshed during
 * a long upload is used at once. The provider is created on the first request (opening
 * does no I/O). GCS's XML error documents have S3's shape (<Error><Code>..<Message>..),
 * parsed by s3_xml.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/uri_encode.h"
#include "store/backend.h"
#include "store/s3_mpu.h"
#include "store/gcs/gcs.h"

static ck_rc endpoint_from(const char *name, const char *v, bool bare_ok, char *out, size_t outlen,
                           struct ck_err *err)
{
    bool has_scheme = strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0;
    if (!has_scheme && !bare_ok)
        return ck_fail(err, CK_EINVAL, "%s: not an http(s):// URL", name);
    const char *host = has_scheme ? strstr(v, "://") + 3 : v;
    size_t n = strlen(v);
    while (n > 0 && v[n - 1] == '/')
        n--;
    size_t hl = n - (size_t)(host - v);
    if (n <= (size_t)(host - v) || strpbrk(host, "?#@ ") || n + 8 >= outlen ||
        memchr(host, '/', hl))
        return ck_fail(err, CK_EINVAL, "%s: not scheme://host[:port]", name);
    snprintf(out, outlen, "%s%.*s", has_scheme ? "" : "http://", (int)n, v);
    return CK_OK;
}

static ck_rc gcs_configure(struct ck_cloud *c, const struct ck_uri *uri, struct ck_err *err)
{
    struct ck_gcs *g = calloc(1, sizeof(*g));
    if (!g)
        return ck_fail(err, CK_ENOMEM, "out of memory");
    c->priv = g;
    const char *emu = getenv("STORAGE_EMULATOR_HOST");
    const char *ep = getenv("CKPTFS_GCS_ENDPOINT");
    ck_rc rc = CK_OK;
    snprintf(g->endpoint, sizeof(g->endpoint), "%s", CK_GCS_ENDPOINT);
    if (ep && ep[0])
        rc = endpoint_from("CKPTFS_GCS_ENDPOINT", ep, false, g->endpoint, sizeof(g->endpoint), err);
    else if (emu && emu[0])
        rc = endpoint_from("STORAGE_EMULATOR_HOST", emu, true, g->endpoint, sizeof(g->endpoint),
                           err);
    g->anonymous = c->env->no_sign_request || (!(ep && ep[0]) && emu && emu[0]);
    c->parts = (struct ck_part_cfg){.part_size = 8ull << 20,
                                    .max_part = CK_GCS_MAX_PART,
                                    .parallel = 4,
                                    .max_parts = CK_GCS_MAX_PARTS};
    if (!rc)
        rc = ck_part_env_size("CKPTFS_GCS_PART_SIZE", CK_GCS_MIN_PART, CK_GCS_MAX_PART,
                              &c->parts.part_size, err);
    if (!rc)
        rc =
            ck_part_env_uint("CKPTFS_GCS_CONCURRENCY", 1, CK_PART_MAX_PAR, &c->parts.parallel, err);
    return rc;
}

static ck_rc gcs_ready(struct ck_cloud *c, struct ck_err *err)
{
    struct ck_gcs *g = c->priv;
    struct ck_gcp_cfg cfg = {
        .getenv_fn = getenv,
        .anonymous = g->anonymous,
        .retry = c->env->retry,
        .connect_timeout_s = c->env->connect_timeout_s,
    };
    ck_rc rc = ck_gcp_provider_new(&cfg, &g->prov, err);
    if (rc)
        ck_err_prefix(err, "%s: credentials", c->display);
    return rc;
}

static void gcs_destroy(void *priv)
{
    struct ck_gcs *g = priv;
    ck_gcp_provider_free(g->prov);
    free(g);
}

/* "Authorization: Bearer TOKEN" from the provider before every attempt. */
static ck_rc gcs_authorize(struct ck_cloud *c, const struct ck_cloud_call *call,
                           const struct ck_cloud_target *t, struct ck_http_attempt *a,
                           struct ck_err *err)
{
    struct ck_gcs *g = c->priv;
    if (ck_gcp_anonymous(g->prov))
        return CK_OK;
    char *tok = malloc(CK_OAUTH_TOKEN_MAX + 8);
    if (!tok)
        return ck_fail(err, CK_ENOMEM, "%s: out of memory", c->display);
    memcpy(tok, "Bearer ", 7);
    ck_rc rc = ck_gcp_token(g->prov, tok + 7, CK_OAUTH_TOKEN_MAX, err);
    if (rc)
        ck_err_prefix(err, "%s", c->display);
    else
        rc = ck_http_attempt_header(a, "Authorization", tok, err);
    explicit_bzero(tok, CK_OAUTH_TOKEN_MAX + 8);
    free(tok);
    return rc;
}

/* ENDPOINT/BUCKET/KEY?query, or ENDPOINT/BUCKET?query for the bucket. */
static ck_rc gcs_target(const struct ck_cloud *c, const struct ck_cloud_call *call,
                        struct ck_cloud_target *t, struct ck_err *err)
{
    const struct ck_gcs *g = c->priv;
    const char *q = call->query ? call->query : "";
    ck_rc rc = ck_uri_encode(c->key, 1, t->path, sizeof(t->path));
    int n = rc ? -1
               : snprintf(t->url, sizeof(t->url), "%s/%s%s%s%s%s", g->endpoint, c->bucket,
                          call->bucket_level ? "" : "/", call->bucket_level ? "" : t->path,
                          q[0] ? "?" : "", q);
    if (n < 0 || (size_t)n >= sizeof(t->url))
        return ck_fail(err, CK_EINVAL, "%s: URL too long", c->display);
    return CK_OK;
}

const struct ck_cloud_ops ck_gcs_cloud_ops = {
    .store = {CK_CLOUD_STORE_OPS, .name = "gcs", .put_begin = ck_mpu_put_begin,
              .copy_from = ck_gcs_copy_from, .del = ck_mpu_delete_object},
    .mpu = &ck_gcs_mpu_proto,
    .configure = gcs_configure,
    .ready = gcs_ready,
    .target = gcs_target,
    .authorize = gcs_authorize,
    .error_code = ck_cloud_xml_error_code,
    .destroy = gcs_destroy,
    .version_header = "x-goog-generation",
    .mark_header = "x-goog-meta-ckptfs-upload",
};
