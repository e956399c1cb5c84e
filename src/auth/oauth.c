/*
 * oauth.c - token requests, token replies, form bodies and the bearer cache; see oauth.h.
 *
 * Reused by gcp_creds.c (token URI, STS, metadata server) and azure_creds.c (Entra ID,
 * IMDS): one place that caps replies, hides secrets and keeps the refresh rule.
 */
#include "auth/oauth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_read.h"
#include "auth/ini.h"
#include "util/uri_encode.h"
#include "util/clock.h"
#include "util/log.h"

static ck_rc reply_sink(void *ctx, const void *p, size_t n, struct ck_err *err)
{
    if (ck_buf_append(ctx, p, n))
        return ck_fail(err, CK_EHOSTILE, "token reply over %d bytes", CK_OAUTH_REPLY_MAX);
    return CK_OK;
}

static bool printable_word(const char *s)
{
    if (!s[0])
        return false;
    for (; *s; s++) {
        if (*s <= 0x20 || *s >= 0x7f)
            return false;
    }
    return true;
}

void ck_oauth_error_name(const char *body, size_t len, char *out, size_t outlen)
{
    char raw[256];
    out[0] = '\0';
    if (ck_json_get_string(body, len, "error", out, outlen) == CK_OK && printable_word(out) &&
        strlen(out) < 64)
        return;
    out[0] = '\0';
    if (ck_json_get_raw(body, len, "error", raw, sizeof(raw)) == CK_OK &&
        ck_json_get_string(raw, strlen(raw), "status", out, outlen) == CK_OK &&
        printable_word(out) && strlen(out) < 64)
        return;
    out[0] = '\0';
}

ck_rc ck_oauth_perform(const struct ck_oauth_call *call, struct ck_buf *reply, struct ck_err *err)
{
    char disp[300];
    snprintf(disp, sizeof(disp), "%.*s", (int)strcspn(call->url, "?#"), call->url);
    ck_buf_init(reply, CK_OAUTH_REPLY_MAX);
    struct ck_sink sink = {reply_sink, reply};
    struct ck_http_request req;
    struct ck_http_response resp;
    ck_http_request_init(&req);
    req.method = call->method;
    req.url = call->url;
    req.display_url = disp;
    for (int i = 0; i < 4 && call->headers[i]; i++)
        req.headers[i] = call->headers[i];
    req.body_mem = call->body;
    req.body_len = call->body ? call->body_len : 0;
    if (call->method == CK_HTTP_GET)
        req.sink = &sink;
    else
        req.reply_body = reply;
    req.retry = call->retry;
    req.connect_timeout_s = call->connect_timeout_s > 0 ? call->connect_timeout_s : 10;
    if (call->metadata) {
        req.retry.max_attempts = CK_OAUTH_META_TRIES;
        if (req.retry.max_delay_s > 0.5)
            req.retry.max_delay_s = 0.5;
        req.connect_timeout_s = CK_OAUTH_META_CONNECT;
        req.stall_timeout_s = 5;
    }
    ck_rc rc = ck_http_perform(&req, &resp, err);
    if (rc) {
        char name[64];
        ck_oauth_error_name(resp.error_body, resp.error_body_len, name, sizeof(name));
        ck_err_prefix(err, "%s", call->what);
        size_t used = strlen(err->msg);
        if (name[0] && used < sizeof(err->msg))
            snprintf(err->msg + used, sizeof(err->msg) - used, ": %s", name);
    }
    return rc;
}

void ck_oauth_reply_free(struct ck_buf *reply)
{
    if (reply->data)
        explicit_bzero(reply->data, reply->cap);
    ck_buf_free(reply);
}

static ck_rc lifetime(const char *json, size_t len, const char *what, const char *expiry_key,
                      double now, double *out, struct ck_err *err)
{
    char raw[64];
    if (expiry_key) {
        if (ck_json_get_string(json, len, expiry_key, raw, sizeof(raw)) != CK_OK ||
            ck_parse_iso8601(raw, out) != CK_OK)
            return ck_fail(err, CK_ECORRUPT, "%s: no valid \"%s\" in the reply", what, expiry_key);
        return CK_OK;
    }
    if (ck_json_get_raw(json, len, "expires_in", raw, sizeof(raw)) != CK_OK)
        return ck_fail(err, CK_ECORRUPT, "%s: no \"expires_in\" in the reply", what);
    const char *p = raw[0] == '"' ? raw + 1 : raw;
    char *end;
    unsigned long v = strtoul(p, &end, 10);
    if (end == p || !isdigit((unsigned char)*p) || v > 366ul * 86400 ||
        (*end && !(raw[0] == '"' && end[0] == '"' && end[1] == '\0')))
        return ck_fail(err, CK_ECORRUPT, "%s: bad \"expires_in\" in the reply", what);
    *out = now + (double)v;
    return CK_OK;
}

ck_rc ck_oauth_parse_token(const char *json, size_t len, const char *what, const char *token_key,
                           const char *expiry_key, double now, struct ck_oauth_token *out,
                           struct ck_err *err)
{
    ck_rc rc = ck_json_get_string(json, len, token_key, out->value, sizeof(out->value));
    if (rc || !printable_word(out->value)) {
        /* a malformed reply may still have had its token decoded before the error */
        explicit_bzero(out->value, sizeof(out->value));
        if (rc == CK_ECORRUPT)
            return ck_fail(err, rc, "%s: the reply is not a well-formed JSON object", what);
        return ck_fail(err, CK_ECORRUPT, "%s: no usable \"%s\" in the reply", what, token_key);
    }
    rc = lifetime(json, len, what, expiry_key, now, &out->expires_wall, err);
    if (rc)
        explicit_bzero(out->value, sizeof(out->value));
    return rc;
}

ck_rc ck_oauth_form_add(struct ck_buf *b, const char *name, const char *value)
{
    size_t cap = strlen(value) * 3 + 1;
    char *enc = malloc(cap);
    ck_rc rc = enc ? ck_uri_encode(value, 0, enc, cap) : CK_ENOMEM;
    if (!rc)
        rc = ck_buf_printf(b, "%s%s=%s", b->len ? "&" : "", name, enc);
    if (enc)
        explicit_bzero(enc, cap);
    free(enc);
    return rc;
}

ck_rc ck_oauth_read_file(const char *path, size_t max, const char *what, char **out,
                         struct ck_err *err)
{
    *out = NULL;
    char *t = NULL;
    ck_rc rc = ck_ini_read(path, &t, err);
    if (rc) {
        ck_err_prefix(err, "%s", what);
        return rc;
    }
    size_t n = strlen(t);
    while (n && isspace((unsigned char)t[n - 1]))
        t[--n] = '\0';
    if (n == 0 || n > max) {
        ck_oauth_secret_free(t);
        return ck_fail(err, CK_EINVAL, "%s: %s is empty or over %zu bytes", what, path, max);
    }
    *out = t;
    return CK_OK;
}

void ck_oauth_secret_free(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    free(s);
}

void ck_oauth_cache_init(struct ck_oauth_cache *c, ck_oauth_fetch_fn fetch, void *ctx)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    c->fetch = fetch;
    c->ctx = ctx;
}

void ck_oauth_cache_destroy(struct ck_oauth_cache *c)
{
    explicit_bzero(&c->cur, sizeof(c->cur));
    pthread_mutex_destroy(&c->lock);
}

static bool fresh(const struct ck_oauth_token *t, double now, double margin)
{
    return t->expires_wall == 0 || t->expires_wall - now > margin;
}

ck_rc ck_oauth_cache_get(struct ck_oauth_cache *c, char *out, size_t outlen, struct ck_err *err)
{
    ck_rc rc = CK_OK;
    pthread_mutex_lock(&c->lock);
    double now = ck_wall_now();
    if (!c->have || !fresh(&c->cur, now, CK_OAUTH_REFRESH_S)) {
        struct ck_oauth_token t;
        rc = c->fetch(c->ctx, &t, err);
        if (!rc) {
            c->cur = t;
            c->have = true;
        } else if (c->have && fresh(&c->cur, now, 5)) {
            ck_log_warn("%s; using the current token until it expires", err->msg);
            rc = CK_OK;
        }
        explicit_bzero(&t, sizeof(t));
    }
    if (!rc && strlen(c->cur.value) >= outlen)
        rc = ck_fail(err, CK_EINVAL, "access token longer than %zu bytes", outlen - 1);
    if (!rc)
        memcpy(out, c->cur.value, strlen(c->cur.value) + 1);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

ck_rc ck_oauth_post_form(const char *url, struct ck_buf *form, ck_rc form_rc, const char *what,
                         const struct ck_retry_policy *retry, double connect_timeout_s, double now,
                         struct ck_oauth_token *out, struct ck_err *err)
{
    struct ck_buf reply;
    ck_buf_init(&reply, CK_OAUTH_REPLY_MAX);
    struct ck_oauth_call c = {
        .method = CK_HTTP_POST,
        .url = url,
        .headers = {"Content-Type: application/x-www-form-urlencoded"},
        .body = form->data,
        .body_len = form->len,
        .what = what,
        .retry = *retry,
        .connect_timeout_s = connect_timeout_s,
    };
    ck_rc rc = form_rc ? ck_fail(err, form_rc, "%s: request too long", what)
                       : ck_oauth_perform(&c, &reply, err);
    if (!rc)
        rc = ck_oauth_parse_token(reply.data, reply.len, what, "access_token", NULL, now, out, err);
    ck_oauth_reply_free(form);
    ck_oauth_reply_free(&reply);
    return rc;
}

ck_rc ck_oauth_metadata_token(const char *url, const char *header, const char *what,
                              const struct ck_retry_policy *retry, struct ck_oauth_token *out,
                              struct ck_err *err)
{
    double now = ck_wall_now();
    struct ck_buf reply;
    struct ck_oauth_call c = {
        .method = CK_HTTP_GET,
        .url = url,
        .headers = {header},
        .what = what,
        .metadata = true,
        .retry = *retry,
    };
    ck_rc rc = ck_oauth_perform(&c, &reply, err);
    if (!rc)
        rc = ck_oauth_parse_token(reply.data, reply.len, what, "access_token", NULL, now, out, err);
    ck_oauth_reply_free(&reply);
    return rc;
}
