/*
 * gcs_request.c - settings, URLs and one authorised request of the GCS backend; see gcs.h.
 *
 * Requests go to the XML API, path-style: ENDPOINT/BUCKET/KEY (the key percent-encoded,
 * '/' kept), or ENDPOINT/BUCKET for the listing of multipart uploads. The attempt hook
 * adds "Authorization: Bearer TOKEN" from the credential provider before every attempt,
 * so a token refreshed during a long upload is used at once. The provider is created on
 * the first request (opening does no I/O). GCS's XML error documents have S3's shape
 * (<Error><Code>..<Message>..), parsed by s3_xml.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sigv4.h"
#include "store/gcs.h"
#include "store/s3_xml.h"

#define URL_MAX 8192

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

ck_rc ck_gcs_configure(struct ck_gcs *g, struct ck_err *err)
{
    const char *emu = getenv("STORAGE_EMULATOR_HOST");
    const char *ep = getenv("CKPTFS_GCS_ENDPOINT");
    ck_rc rc = CK_OK;
    snprintf(g->endpoint, sizeof(g->endpoint), "%s", CK_GCS_ENDPOINT);
    if (ep && ep[0])
        rc = endpoint_from("CKPTFS_GCS_ENDPOINT", ep, false, g->endpoint, sizeof(g->endpoint), err);
    else if (emu && emu[0])
        rc = endpoint_from("STORAGE_EMULATOR_HOST", emu, true, g->endpoint, sizeof(g->endpoint),
                           err);
    g->anonymous = g->env->no_sign_request || (!(ep && ep[0]) && emu && emu[0]);
    g->parts = (struct ck_part_cfg){.part_size = 8ull << 20,
                                    .max_part = CK_GCS_MAX_PART,
                                    .parallel = 4,
                                    .max_parts = CK_GCS_MAX_PARTS};
    if (!rc)
        rc = ck_part_env_size("CKPTFS_GCS_PART_SIZE", CK_GCS_MIN_PART, CK_GCS_MAX_PART,
                              &g->parts.part_size, err);
    if (!rc)
        rc =
            ck_part_env_uint("CKPTFS_GCS_CONCURRENCY", 1, CK_PART_MAX_PAR, &g->parts.parallel, err);
    return rc;
}

static ck_rc ready(struct ck_gcs *g, struct ck_err *err)
{
    ck_rc rc = CK_OK;
    pthread_mutex_lock(&g->lock);
    if (!g->ready) {
        struct ck_gcp_cfg cfg = {
            .getenv_fn = getenv,
            .anonymous = g->anonymous,
            .retry = g->env->retry,
            .connect_timeout_s = g->env->connect_timeout_s,
        };
        rc = ck_gcp_provider_new(&cfg, &g->prov, err);
        if (rc)
            ck_err_prefix(err, "%s: credentials", g->display);
        g->ready = rc == CK_OK;
    }
    pthread_mutex_unlock(&g->lock);
    return rc;
}

struct attempt_ctx {
    struct ck_gcs *g;
    const struct ck_gcs_call *call;
};

static ck_rc authorize(void *ctx, struct ck_http_attempt *a, struct ck_err *err)
{
    struct attempt_ctx *ac = ctx;
    if (ac->call->cancel && atomic_load(ac->call->cancel))
        return ck_fail(err, CK_ECANCELED, "%s %s: cancelled", ck_http_method_name(ac->call->method),
                       ac->g->display);
    if (ck_gcp_anonymous(ac->g->prov))
        return CK_OK;
    char *tok = malloc(CK_OAUTH_TOKEN_MAX + 8);
    if (!tok)
        return ck_fail(err, CK_ENOMEM, "%s: out of memory", ac->g->display);
    memcpy(tok, "Bearer ", 7);
    ck_rc rc = ck_gcp_token(ac->g->prov, tok + 7, CK_OAUTH_TOKEN_MAX, err);
    if (rc)
        ck_err_prefix(err, "%s", ac->g->display);
    else
        rc = ck_http_attempt_header(a, "Authorization", tok, err);
    explicit_bzero(tok, CK_OAUTH_TOKEN_MAX + 8);
    free(tok);
    return rc;
}

/* ENDPOINT/BUCKET/KEY?query, or ENDPOINT/BUCKET?query for the bucket. */
static ck_rc build_url(const struct ck_gcs *g, const char *query, bool bucket_level, char *url,
                       struct ck_err *err)
{
    char *enc = malloc(URL_MAX);
    ck_rc rc = enc ? ck_sigv4_uri_encode(g->key, 1, enc, URL_MAX) : CK_ENOMEM;
    int n = rc ? -1
               : snprintf(url, URL_MAX, "%s/%s%s%s%s%s", g->endpoint, g->bucket,
                          bucket_level ? "" : "/", bucket_level ? "" : enc,
                          query && query[0] ? "?" : "", query ? query : "");
    free(enc);
    if (n < 0 || n >= URL_MAX)
        return ck_fail(err, CK_EINVAL, "%s: URL too long", g->display);
    return CK_OK;
}

/* "METHOD gs://b/k (label): HTTP 403 AccessDenied: Access denied." from the error body. */
static void describe_error(const char *disp, const struct ck_gcs_call *c,
                           const struct ck_http_response *resp, struct ck_err *err)
{
    char code[64], msg[200], tail[64] = "";
    if (resp->error_body_len == 0 || !ck_s3_xml_error(resp->error_body, resp->error_body_len, code,
                                                      sizeof(code), msg, sizeof(msg)))
        return;
    if (strstr(err->msg, "(gave up after"))
        snprintf(tail, sizeof(tail), " (gave up after %u attempts)", resp->attempts);
    ck_fail(err, err->rc, "%s %s: HTTP %ld %s%s%s%s", ck_http_method_name(c->method), disp,
            resp->status, code, msg[0] ? ": " : "", msg, tail);
}

ck_rc ck_gcs_perform(struct ck_gcs *g, const struct ck_gcs_call *c, struct ck_http_response *resp,
                     struct ck_err *err)
{
    memset(resp, 0, sizeof(*resp));
    ck_rc rc = ready(g, err);
    if (rc)
        return rc;
    char disp[CK_ERR_MSG_MAX / 2], md5[64], ctype[160], copy[3 * 1024 + 96], gen[192];
    snprintf(disp, sizeof(disp), "%s%s%s%s", g->display, c->label ? " (" : "",
             c->label ? c->label : "", c->label ? ")" : "");
    char *url = malloc(URL_MAX);
    if (!url)
        return ck_fail(err, CK_ENOMEM, "%s: out of memory", disp);
    rc = build_url(g, c->query, c->bucket_level, url, err);
    struct attempt_ctx ac = {g, c};
    struct ck_http_request req;
    ck_http_request_init(&req);
    int h = 0;
    req.headers[h++] = "Expect:";
    if (c->content_md5) {
        snprintf(md5, sizeof(md5), "Content-MD5: %s", c->content_md5);
        req.headers[h++] = md5;
    }
    if (c->content_type) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s", c->content_type);
        req.headers[h++] = ctype;
    }
    if (c->copy_source) {
        snprintf(copy, sizeof(copy), "x-goog-copy-source: %s", c->copy_source);
        req.headers[h++] = copy;
    }
    if (c->if_generation) {
        snprintf(gen, sizeof(gen), "x-goog-if-generation-match: %s", c->if_generation);
        req.headers[h++] = gen;
    }
    req.headers[h] = NULL;
    req.method = c->method;
    req.url = url;
    req.display_url = disp;
    req.body_mem = c->body;
    req.body_len = c->body_len;
    req.has_range = c->has_range;
    req.range_off = c->range_off;
    req.range_len = c->range_len;
    req.sink = c->sink;
    req.reply_body = c->reply_body;
    req.error_in_2xx = c->error_in_2xx;
    req.capture_header = c->capture_header;
    req.path_as_is = true;
    req.on_attempt = authorize;
    req.on_attempt_ctx = &ac;
    req.retry = g->env->retry;
    req.connect_timeout_s = g->env->connect_timeout_s;
    req.stall_timeout_s = g->env->stall_timeout_s;
    if (!rc)
        rc = ck_http_perform(&req, resp, err);
    if (rc && resp->status)
        describe_error(disp, c, resp, err);
    free(url);
    return rc;
}
