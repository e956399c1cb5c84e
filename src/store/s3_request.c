/*
 * s3_request.c - one signed S3 request, and the lazy set-up of credentials and endpoint;
 * see s3.h.
 *
 * The request goes through the HTTP engine (ck_http_perform) with an attempt hook that
 * signs it afresh before every attempt: the SigV4 date is current and credentials that
 * rotated since the last attempt are picked up. The body is always signed by its SHA-256
 * (never UNSIGNED-PAYLOAD). Host is set explicitly so that what is signed is what curl
 * sends. On failure the S3 error document's Code and Message (parsed with s3_xml.c,
 * sanitised) replace the engine's generic text; nothing else from the reply is shown.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sigv4.h"
#include "store/s3.h"
#include "store/s3_xml.h"
#include "util/clock.h"

#define AUTH_MAX 2048

void ck_s3_sha256(const void *data, size_t len, char *hex, char *b64)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(data, len, d);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * SHA256_DIGEST_LENGTH] = '\0';
    if (b64)
        EVP_EncodeBlock((unsigned char *)b64, d, SHA256_DIGEST_LENGTH);
}

ck_rc ck_s3_ready(struct ck_s3 *s3, struct ck_err *err)
{
    ck_rc rc = CK_OK;
    pthread_mutex_lock(&s3->lock);
    if (!s3->ready) {
        struct ck_aws_provider_cfg cfg = {
            .getenv_fn = getenv,
            .anonymous = s3->env->no_sign_request,
            .retry = s3->env->retry,
            .connect_timeout_s = s3->env->connect_timeout_s,
        };
        rc = ck_aws_provider_new(&cfg, &s3->prov, err);
        if (rc) {
            ck_err_prefix(err, "%s: credentials", s3->display);
        } else {
            snprintf(s3->region, sizeof(s3->region), "%s", ck_aws_provider_region(s3->prov));
            rc = ck_s3_endpoint_resolve(&s3->set, s3->region, &s3->ep, err);
            if (!rc)
                rc = ck_s3_use_virtual(s3->set.style, &s3->ep, s3->bucket, &s3->virtual_host, err);
            if (rc)
                ck_err_prefix(err, "%s", s3->display);
        }
        if (rc && s3->prov) {
            ck_aws_provider_free(s3->prov);
            s3->prov = NULL;
        }
        s3->ready = rc == CK_OK;
    }
    pthread_mutex_unlock(&s3->lock);
    return rc;
}

struct sign_ctx {
    struct ck_s3 *s3;
    const struct ck_s3_call *call;
    const struct ck_s3_target *target;
    const char *payload_hash;
};

static ck_rc add_headers(struct ck_http_attempt *a, const struct ck_sigv4_header *h, size_t n,
                         struct ck_err *err)
{
    ck_rc rc = CK_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (strcmp(h[i].name, "host") != 0 && strncmp(h[i].name, "x-amz-checksum", 14) != 0 &&
            strncmp(h[i].name, "if-", 3) != 0 && h[i].value != NULL)
            rc = ck_http_attempt_header(a, h[i].name, h[i].value, err);
    }
    return rc;
}

/* The attempt hook: x-amz-date, x-amz-content-sha256, the session token and Authorization,
 * computed now. Host, the checksum header and If-(None-)Match are static request headers
 * (sent unsigned too when the store is anonymous), signed here when they are sent. */
static ck_rc sign_attempt(void *ctx, struct ck_http_attempt *a, struct ck_err *err)
{
    struct sign_ctx *sc = ctx;
    const struct ck_s3_call *c = sc->call;
    if (c->cancel && atomic_load(c->cancel))
        return ck_fail(err, CK_ECANCELED, "%s %s: cancelled", ck_http_method_name(c->method),
                       sc->s3->display);
    if (ck_aws_provider_anonymous(sc->s3->prov))
        return CK_OK;
    struct ck_aws_creds creds;
    ck_rc rc = ck_aws_creds_get(sc->s3->prov, &creds, err);
    if (rc) {
        ck_err_prefix(err, "%s: credentials", sc->s3->display);
        return rc;
    }
    char date[17], auth[AUTH_MAX];
    ck_sigv4_amz_date(ck_wall_now(), date);
    struct ck_sigv4_header h[9];
    size_t n = 0;
    h[n++] = (struct ck_sigv4_header){"host", sc->target->host};
    h[n++] = (struct ck_sigv4_header){"x-amz-content-sha256", sc->payload_hash};
    h[n++] = (struct ck_sigv4_header){"x-amz-date", date};
    if (creds.session_token[0])
        h[n++] = (struct ck_sigv4_header){"x-amz-security-token", creds.session_token};
    if (c->checksum_b64)
        h[n++] = (struct ck_sigv4_header){"x-amz-checksum-sha256", c->checksum_b64};
    if (c->amz_name)
        h[n++] = (struct ck_sigv4_header){c->amz_name, c->amz_value};
    if (c->if_match) /* signed: a proxy that drops it cannot turn it into an overwrite */
        h[n++] = (struct ck_sigv4_header){"if-match", c->if_match};
    if (c->if_none_match)
        h[n++] = (struct ck_sigv4_header){"if-none-match", c->if_none_match};
    struct ck_sigv4_request sr = {
        .method = ck_http_method_name(c->method),
        .path = sc->target->path,
        .query = c->query ? c->query : "",
        .headers = h,
        .nheaders = n,
        .payload_hash = sc->payload_hash,
        .amz_date = date,
        .region = sc->s3->region,
        .service = "s3",
    };
    rc = ck_sigv4_sign(&sr, &creds, auth, sizeof(auth), err);
    if (!rc)
        rc = add_headers(a, h, n, err);
    if (!rc)
        rc = ck_http_attempt_header(a, "Authorization", auth, err);
    explicit_bzero(&creds, sizeof(creds));
    explicit_bzero(auth, sizeof(auth));
    return rc;
}

/* "METHOD s3://b/k (label): HTTP 403 AccessDenied: Access Denied" from the error body. */
static void describe_error(const char *disp, const struct ck_s3_call *c,
                           const struct ck_http_response *resp, struct ck_err *err)
{
    char code[64], msg[200];
    if (!err || resp->error_body_len == 0 ||
        !ck_s3_xml_error(resp->error_body, resp->error_body_len, code, sizeof(code), msg,
                         sizeof(msg)))
        return;
    char tail[64] = "";
    if (strstr(err->msg, "(gave up after"))
        snprintf(tail, sizeof(tail), " (gave up after %u attempts)", resp->attempts);
    ck_fail(err, err->rc, "%s %s: HTTP %ld %s%s%s%s", ck_http_method_name(c->method), disp,
            resp->status, code, msg[0] ? ": " : "", msg, tail);
}

/* Static headers: Host, Content-Type, x-amz-checksum-*, If-Match, If-None-Match (signed, same on
 * every attempt), no Expect. Other x-amz-* headers travel with the signature in the
 * attempt hook. */
struct static_headers {
    char host[400];
    char ctype[128];
    char checksum[96];
    char amz[256];
    char if_match[160];
    char if_none_match[160];
};

static void set_static_headers(struct ck_http_request *req, const struct ck_s3_call *c,
                               const struct ck_s3_target *t, struct static_headers *sh)
{
    int i = 0;
    snprintf(sh->host, sizeof(sh->host), "Host: %s", t->host);
    req->headers[i++] = sh->host;
    req->headers[i++] = "Expect:"; /* no 100-continue round trip before each part */
    if (c->content_type) {
        snprintf(sh->ctype, sizeof(sh->ctype), "Content-Type: %s", c->content_type);
        req->headers[i++] = sh->ctype;
    }
    if (c->checksum_b64) {
        snprintf(sh->checksum, sizeof(sh->checksum), "x-amz-checksum-sha256: %s", c->checksum_b64);
        req->headers[i++] = sh->checksum;
    }
    if (c->amz_name && strncmp(c->amz_name, "x-amz-checksum", 14) == 0) {
        snprintf(sh->amz, sizeof(sh->amz), "%s: %s", c->amz_name, c->amz_value);
        req->headers[i++] = sh->amz;
    }
    if (c->if_match) {
        snprintf(sh->if_match, sizeof(sh->if_match), "If-Match: %s", c->if_match);
        req->headers[i++] = sh->if_match;
    }
    if (c->if_none_match) {
        snprintf(sh->if_none_match, sizeof(sh->if_none_match), "If-None-Match: %s",
                 c->if_none_match);
        req->headers[i++] = sh->if_none_match;
    }
    req->headers[i] = NULL;
}

ck_rc ck_s3_perform(struct ck_s3 *s3, const struct ck_s3_call *c, struct ck_http_response *resp,
                    struct ck_err *err)
{
    memset(resp, 0, sizeof(*resp));
    ck_rc rc = ck_s3_ready(s3, err);
    if (rc)
        return rc;
    char disp[CK_ERR_MSG_MAX / 2], hash[CK_SHA256_HEX_LEN + 1];
    snprintf(disp, sizeof(disp), "%s%s%s%s", s3->display, c->label ? " (" : "",
             c->label ? c->label : "", c->label ? ")" : "");
    struct ck_s3_target *t = malloc(sizeof(*t)); /* ~9 KiB: keep it off worker stacks */
    if (!t)
        return ck_fail(err, CK_ENOMEM, "%s %s: out of memory", ck_http_method_name(c->method),
                       disp);
    rc = ck_s3_target_build(&s3->ep, s3->virtual_host, s3->bucket, c->bucket_level ? "" : s3->key,
                            c->query ? c->query : "", t, err);
    if (rc) {
        free(t);
        return rc;
    }
    if (!c->payload_hash)
        ck_s3_sha256(c->body ? c->body : "", c->body_len, hash, NULL);
    struct sign_ctx sc = {s3, c, t, c->payload_hash ? c->payload_hash : hash};
    struct static_headers sh;
    struct ck_http_request req;
    ck_http_request_init(&req);
    req.method = c->method;
    req.url = t->url;
    req.display_url = disp;
    set_static_headers(&req, c, t, &sh);
    req.body_mem = c->body;
    req.body_len = c->body_len;
    req.has_range = c->has_range;
    req.range_off = c->range_off;
    req.range_len = c->range_len;
    req.sink = c->sink;
    req.reply_body = c->reply_body;
    req.error_in_2xx = c->error_in_2xx;
    req.path_as_is = true;
    req.capture_header = c->capture_header;
    req.on_attempt = sign_attempt;
    req.on_attempt_ctx = &sc;
    req.retry = s3->env->retry;
    req.connect_timeout_s = s3->env->connect_timeout_s;
    req.stall_timeout_s = s3->env->stall_timeout_s;
    if (c->commit && req.stall_timeout_s > 0 && req.stall_timeout_s < CK_COMMIT_STALL_S)
        req.stall_timeout_s = CK_COMMIT_STALL_S;
    rc = ck_http_perform(&req, resp, err);
    if (rc)
        describe_error(disp, c, resp, err);
    free(t);
    return rc;
}
