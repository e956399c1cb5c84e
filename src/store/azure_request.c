/*
 * azure_request.c - settings, URLs and one authorised Blob service request; see azure.h.
 *
 * URL: ENDPOINT/CONTAINER/BLOB[?query][&sas], where ENDPOINT may carry a path (Azurite's
 * http://127.0.0.1:10000/devstoreaccount1). Every attempt gets a fresh x-ms-date and, for
 * Shared Key, a signature over exactly what that attempt sends (a resumed GET asks for a
 * smaller Range, read from the engine with ck_http_attempt_range). Credentials are
 * resolved on the first request; opening does no I/O.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/sigv4.h"
#include "store/azure.h"
#include "store/s3_xml.h"
#include "util/clock.h"

#define URL_MAX  12288
#define AUTH_MAX (CK_OAUTH_TOKEN_MAX + 16)

ck_rc ck_azure_configure(struct ck_azure *az, struct ck_err *err)
{
    az->parts = (struct ck_part_cfg){.part_size = 8ull << 20,
                                     .max_part = CK_AZURE_MAX_BLOCK,
                                     .parallel = 4,
                                     .max_parts = CK_AZURE_MAX_BLOCKS};
    ck_rc rc = ck_part_env_size("CKPTFS_AZURE_BLOCK_SIZE", 64 << 10, CK_AZURE_MAX_BLOCK,
                                &az->parts.part_size, err);
    if (!rc)
        rc = ck_part_env_uint("CKPTFS_AZURE_CONCURRENCY", 1, CK_PART_MAX_PAR, &az->parts.parallel,
                              err);
    return rc;
}

static ck_rc ready(struct ck_azure *az, struct ck_err *err)
{
    ck_rc rc = CK_OK;
    pthread_mutex_lock(&az->lock);
    if (!az->ready) {
        struct ck_azure_cfg cfg = {
            .getenv_fn = getenv,
            .account = az->account,
            .uri_sas = az->uri_sas,
            .anonymous = az->env->no_sign_request,
            .retry = az->env->retry,
            .connect_timeout_s = az->env->connect_timeout_s,
        };
        rc = ck_azure_creds_new(&cfg, &az->creds, err);
        if (rc)
            ck_err_prefix(err, "%s: credentials", az->display);
        az->ready = rc == CK_OK;
    }
    pthread_mutex_unlock(&az->lock);
    return rc;
}

struct attempt_ctx {
    struct ck_azure *az;
    const struct ck_azure_call *call;
    const char *path;  /* URL path as sent */
    const char *query; /* URL query as sent, SAS excluded (SAS is not signed) */
};

static void http_date(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static ck_rc shared_key(struct attempt_ctx *ac, struct ck_http_attempt *a,
                        const struct ck_azure_header *h, size_t nh, char *auth, struct ck_err *err)
{
    const struct ck_azure_call *c = ac->call;
    char range[80] = "";
    if (ck_http_attempt_range(a)[0])
        snprintf(range, sizeof(range), "bytes=%s", ck_http_attempt_range(a));
    struct ck_azure_sign_req r = {
        .method = ck_http_method_name(c->method),
        .path = ac->path,
        .query = ac->query,
        .content_length = c->method == CK_HTTP_PUT ? c->body_len : 0,
        .content_md5 = c->content_md5,
        .content_type = c->content_type,
        .range = range[0] ? range : NULL,
        .if_match = c->if_match,
        .if_none_match = c->if_none_match,
        .xms = h,
        .nxms = nh,
    };
    ck_rc rc = ck_azure_sign(ac->az->creds, &r, auth, AUTH_MAX, err);
    return rc ? rc : ck_http_attempt_header(a, "Authorization", auth, err);
}

static ck_rc authorize(void *ctx, struct ck_http_attempt *a, struct ck_err *err)
{
    struct attempt_ctx *ac = ctx;
    const struct ck_azure_call *c = ac->call;
    if (c->cancel && atomic_load(c->cancel))
        return ck_fail(err, CK_ECANCELED, "%s %s: cancelled", ck_http_method_name(c->method),
                       ac->az->display);
    char date[64];
    http_date(date, sizeof(date));
    struct ck_azure_header h[3] = {{"x-ms-date", date}, {"x-ms-version", CK_AZURE_VERSION}};
    size_t nh = 2;
    if (c->blob_type)
        h[nh++] = (struct ck_azure_header){"x-ms-blob-type", c->blob_type};
    ck_rc rc = CK_OK;
    for (size_t i = 0; i < nh && !rc; i++)
        rc = ck_http_attempt_header(a, h[i].name, h[i].value, err);
    enum ck_azure_auth kind = ck_azure_auth_kind(ac->az->creds);
    if (rc || (kind != CK_AZURE_SHARED_KEY && kind != CK_AZURE_BEARER))
        return rc;
    char *auth = malloc(AUTH_MAX);
    if (!auth)
        return ck_fail(err, CK_ENOMEM, "%s: out of memory", ac->az->display);
    if (kind == CK_AZURE_SHARED_KEY) {
        rc = shared_key(ac, a, h, nh, auth, err);
    } else {
        memcpy(auth, "Bearer ", 7);
        rc = ck_azure_token(ac->az->creds, auth + 7, AUTH_MAX - 7, err);
        if (rc)
            ck_err_prefix(err, "%s", ac->az->display);
        else
            rc = ck_http_attempt_header(a, "Authorization", auth, err);
    }
    explicit_bzero(auth, AUTH_MAX);
    free(auth);
    return rc;
}

/* url = endpoint/container/blob?query[&sas]; *path points at its path. */
static ck_rc build_url(const struct ck_azure *az, const char *query, char *url, const char **path,
                       struct ck_err *err)
{
    const char *ep = ck_azure_endpoint(az->creds);
    const char *sas = ck_azure_auth_kind(az->creds) == CK_AZURE_SAS ? ck_azure_sas(az->creds) : "";
    char *enc = malloc(URL_MAX);
    ck_rc rc = enc ? ck_sigv4_uri_encode(az->key, 1, enc, URL_MAX) : CK_ENOMEM;
    bool q = query && query[0];
    int n = rc ? -1
               : snprintf(url, URL_MAX, "%s/%s/%s%s%s%s%s", ep, az->container, enc,
                          q || sas[0] ? "?" : "", q ? query : "", q && sas[0] ? "&" : "", sas);
    free(enc);
    if (n < 0 || n >= URL_MAX)
        return ck_fail(err, CK_EINVAL, "%s: URL too long", az->display);
    const char *host = strstr(url, "://") + 3;
    *path = host + strcspn(host, "/");
    return CK_OK;
}

bool ck_azure_error_code(const char *body, size_t len, const char *header_code, char *code,
                         size_t codesz, char *msg, size_t msgsz)
{
    if (len && ck_s3_xml_error(body, len, code, codesz, msg, msgsz))
        return true;
    code[0] = msg[0] = '\0';
    size_t n = strlen(header_code);
    if (n == 0 || n >= codesz)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)header_code[i]) && header_code[i] != '.')
            return false;
    }
    memcpy(code, header_code, n + 1);
    return true;
}

static void describe_error(const char *disp, const struct ck_azure_call *c,
                           const struct ck_http_response *resp, struct ck_err *err)
{
    char code[64], msg[200], tail[64] = "";
    if (!ck_azure_error_code(resp->error_body, resp->error_body_len, resp->captured, code,
                             sizeof(code), msg, sizeof(msg)))
        return;
    if (strstr(err->msg, "(gave up after"))
        snprintf(tail, sizeof(tail), " (gave up after %u attempts)", resp->attempts);
    ck_fail(err, err->rc, "%s %s: HTTP %ld %s%s%s%s", ck_http_method_name(c->method), disp,
            resp->status, code, msg[0] ? ": " : "", msg, tail);
}

static void set_headers(struct ck_http_request *req, const struct ck_azure_call *c, char *md5,
                        char *ctype, char cond[2][160])
{
    int h = 0;
    req->headers[h++] = "Expect:";
    if (c->content_md5) {
        snprintf(md5, 64, "Content-MD5: %s", c->content_md5);
        req->headers[h++] = md5;
    }
    if (c->content_type) {
        snprintf(ctype, 160, "Content-Type: %s", c->content_type);
        req->headers[h++] = ctype;
    }
    if (c->if_match) {
        snprintf(cond[0], 160, "If-Match: %s", c->if_match);
        req->headers[h++] = cond[0];
    }
    if (c->if_none_match) {
        snprintf(cond[1], 160, "If-None-Match: %s", c->if_none_match);
        req->headers[h++] = cond[1];
    }
    req->headers[h] = NULL;
}

ck_rc ck_azure_perform(struct ck_azure *az, const struct ck_azure_call *c,
                       struct ck_http_response *resp, struct ck_err *err)
{
    memset(resp, 0, sizeof(*resp));
    ck_rc rc = ready(az, err);
    if (rc)
        return rc;
    char disp[CK_ERR_MSG_MAX / 2], md5[64], ctype[160], cond[2][160];
    snprintf(disp, sizeof(disp), "%s%s%s%s", az->display, c->label ? " (" : "",
             c->label ? c->label : "", c->label ? ")" : "");
    char *url = malloc(URL_MAX);
    const char *path = NULL;
    rc = url ? build_url(az, c->query, url, &path, err)
             : ck_fail(err, CK_ENOMEM, "%s: out of memory", disp);
    char *pathq = rc ? NULL : strndup(path, strcspn(path, "?"));
    if (!rc && !pathq)
        rc = ck_fail(err, CK_ENOMEM, "%s: out of memory", disp);
    struct attempt_ctx ac = {az, c, pathq, c->query ? c->query : ""};
    struct ck_http_request req;
    ck_http_request_init(&req);
    set_headers(&req, c, md5, ctype, cond);
    req.method = c->method;
    req.url = url;
    req.display_url = disp;
    req.body_mem = c->body;
    req.body_len = c->body_len;
    req.has_range = c->has_range;
    req.range_off = c->range_off;
    req.range_len = c->range_len;
    req.sink = c->sink;
    req.path_as_is = true;
    req.capture_header = "x-ms-error-code";
    req.on_attempt = authorize;
    req.on_attempt_ctx = &ac;
    req.retry = az->env->retry;
    req.connect_timeout_s = az->env->connect_timeout_s;
    req.stall_timeout_s = az->env->stall_timeout_s;
    if (!rc)
        rc = ck_http_perform(&req, resp, err);
    if (rc && resp->status)
        describe_error(disp, c, resp, err);
    free(pathq);
    if (url)
        explicit_bzero(url, URL_MAX);
    free(url);
    return rc;
}
