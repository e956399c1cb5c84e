/*
 * azure_request.c - Azure's part of the cloud core (cloud.h): settings, URLs, the
 * authorization of every attempt and Azure's error codes; see azure.h.
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

#include "util/uri_encode.h"
#include "store/backend.h"
#include "store/azure/azure.h"
#include "store/cloud.h"
#include "util/clock.h"

#define AUTH_MAX (CK_OAUTH_TOKEN_MAX + 16)

static char *dup_or_null(const char *s, bool *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = true;
    return d;
}

static void azure_destroy(void *priv)
{
    struct ck_azure *az = priv;
    ck_azure_creds_free(az->creds);
    free(az->account);
    if (az->uri_sas)
        explicit_bzero(az->uri_sas, strlen(az->uri_sas));
    free(az->uri_sas);
    free(az);
}

static ck_rc azure_configure(struct ck_cloud *c, const struct ck_uri *uri, struct ck_err *err)
{
    struct ck_azure *az = calloc(1, sizeof(*az));
    if (!az)
        return ck_fail(err, CK_ENOMEM, "out of memory");
    c->priv = az;
    bool oom = false;
    az->account = dup_or_null(uri->account, &oom);
    az->uri_sas = dup_or_null(uri->sas, &oom);
    if (oom)
        return ck_fail(err, CK_ENOMEM, "out of memory");
    c->parts = (struct ck_part_cfg){.part_size = 8ull << 20,
                                    .max_part = CK_AZURE_MAX_BLOCK,
                                    .parallel = 4,
                                    .max_parts = CK_AZURE_MAX_BLOCKS};
    ck_rc rc = ck_part_env_size("CKPTFS_AZURE_BLOCK_SIZE", 64 << 10, CK_AZURE_MAX_BLOCK,
                                &c->parts.part_size, err);
    if (!rc)
        rc = ck_part_env_uint("CKPTFS_AZURE_CONCURRENCY", 1, CK_PART_MAX_PAR, &c->parts.parallel,
                              err);
    return rc;
}

static ck_rc azure_ready(struct ck_cloud *c, struct ck_err *err)
{
    struct ck_azure *az = c->priv;
    struct ck_azure_cfg cfg = {
        .getenv_fn = getenv,
        .account = az->account,
        .uri_sas = az->uri_sas,
        .anonymous = c->env->no_sign_request,
        .retry = c->env->retry,
        .connect_timeout_s = c->env->connect_timeout_s,
    };
    ck_rc rc = ck_azure_creds_new(&cfg, &az->creds, err);
    if (rc)
        ck_err_prefix(err, "%s: credentials", c->display);
    return rc;
}

static void http_date(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Shared Key over exactly what this attempt sends (a resumed GET asks for a smaller
 * Range, read from the engine); the query is signed without the SAS. */
static ck_rc shared_key(const struct ck_azure *az, const struct ck_cloud_call *call,
                        const struct ck_cloud_target *t, struct ck_http_attempt *a,
                        const struct ck_azure_header *h, size_t nh, char *auth, struct ck_err *err)
{
    char range[80] = "";
    if (ck_http_attempt_range(a)[0])
        snprintf(range, sizeof(range), "bytes=%s", ck_http_attempt_range(a));
    struct ck_azure_sign_req r = {
        .method = ck_http_method_name(call->method),
        .path = t->path,
        .query = call->query ? call->query : "",
        .content_length = call->method == CK_HTTP_PUT ? call->body_len : 0,
        .content_md5 = call->content_md5,
        .content_type = call->content_type,
        .range = range[0] ? range : NULL,
        .if_match = call->if_match,
        .if_none_match = call->if_none_match,
        .xms = h,
        .nxms = nh,
    };
    ck_rc rc = ck_azure_sign(az->creds, &r, auth, AUTH_MAX, err);
    return rc ? rc : ck_http_attempt_header(a, "Authorization", auth, err);
}

/* Before every attempt: x-ms-date and x-ms-version, then Shared Key over the attempt's
 * x-ms-* headers (the call's own included), or a bearer token; a SAS is in the URL. */
static ck_rc azure_authorize(struct ck_cloud *c, const struct ck_cloud_call *call,
                             const struct ck_cloud_target *t, struct ck_http_attempt *a,
                             struct ck_err *err)
{
    struct ck_azure *az = c->priv;
    char date[64];
    http_date(date, sizeof(date));
    struct ck_azure_header h[2 + CK_CLOUD_HEADERS] = {{"x-ms-date", date},
                                                      {"x-ms-version", CK_AZURE_VERSION}};
    ck_rc rc = CK_OK;
    for (size_t i = 0; i < 2 && !rc; i++)
        rc = ck_http_attempt_header(a, h[i].name, h[i].value, err);
    size_t nh = 2;
    for (int i = 0; i < CK_CLOUD_HEADERS && call->hdr[i].name; i++)
        if (strncmp(call->hdr[i].name, "x-ms-", 5) == 0)
            h[nh++] = (struct ck_azure_header){call->hdr[i].name, call->hdr[i].value};
    enum ck_azure_auth kind = ck_azure_auth_kind(az->creds);
    if (rc || (kind != CK_AZURE_SHARED_KEY && kind != CK_AZURE_BEARER))
        return rc;
    char *auth = malloc(AUTH_MAX);
    if (!auth)
        return ck_fail(err, CK_ENOMEM, "%s: out of memory", c->display);
    if (kind == CK_AZURE_SHARED_KEY) {
        rc = shared_key(az, call, t, a, h, nh, auth, err);
    } else {
        memcpy(auth, "Bearer ", 7);
        rc = ck_azure_token(az->creds, auth + 7, AUTH_MAX - 7, err);
        if (rc)
            ck_err_prefix(err, "%s", c->display);
        else
            rc = ck_http_attempt_header(a, "Authorization", auth, err);
    }
    explicit_bzero(auth, AUTH_MAX);
    free(auth);
    return rc;
}

/* ENDPOINT/CONTAINER/BLOB?query[&sas]; the path as sent, for the signature. */
static ck_rc azure_target(const struct ck_cloud *c, const struct ck_cloud_call *call,
                          struct ck_cloud_target *t, struct ck_err *err)
{
    const struct ck_azure *az = c->priv;
    const char *ep = ck_azure_endpoint(az->creds);
    const char *sas = ck_azure_auth_kind(az->creds) == CK_AZURE_SAS ? ck_azure_sas(az->creds) : "";
    const char *q = call->query ? call->query : "";
    ck_rc rc = ck_uri_encode(c->key, 1, t->path, sizeof(t->path));
    int n = rc ? -1
               : snprintf(t->url, sizeof(t->url), "%s/%s/%s%s%s%s%s", ep, c->bucket, t->path,
                          q[0] || sas[0] ? "?" : "", q, q[0] && sas[0] ? "&" : "", sas);
    if (n < 0 || (size_t)n >= sizeof(t->url))
        return ck_fail(err, CK_EINVAL, "%s: URL too long", c->display);
    const char *host = strstr(t->url, "://") + 3;
    const char *path = host + strcspn(host, "/");
    size_t plen = strcspn(path, "?");
    if (plen >= sizeof(t->path))
        return ck_fail(err, CK_EINVAL, "%s: URL too long", c->display);
    memmove(t->path, path, plen); /* t->path held the encoded blob name until now */
    t->path[plen] = '\0';
    snprintf(t->host, sizeof(t->host), "%.*s", (int)(path - host), host);
    return CK_OK;
}

bool ck_azure_error_code(const char *body, size_t len, const char *header_code, char *code,
                         size_t codesz, char *msg, size_t msgsz)
{
    if (len && ck_cloud_error_doc(body, len, code, codesz, msg, msgsz))
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

static bool azure_error_code(const struct ck_http_response *resp, char *code, size_t codesz,
                             char *msg, size_t msgsz)
{
    return ck_azure_error_code(resp->error_body, resp->error_body_len, resp->captured[0], code,
                               codesz, msg, msgsz);
}

/* Delete Blob (a 404 is CK_ENOTFOUND: ck_store_delete takes it for done). Uncommitted blocks of a
 * blob expire by themselves (there is no call to remove them alone). */
static ck_rc azure_delete(struct ck_store *s, struct ck_err *err)
{
    struct ck_cloud_call c = {.method = CK_HTTP_DELETE};
    struct ck_http_response resp;
    return ck_cloud_perform(ck_cloud_of(s), &c, &resp, err);
}

const struct ck_cloud_ops ck_azure_cloud_ops = {
    .store = {CK_CLOUD_STORE_OPS, .name = "azure", .put_begin = ck_azure_put_begin,
              .del = azure_delete},
    .configure = azure_configure,
    .ready = azure_ready,
    .target = azure_target,
    .authorize = azure_authorize,
    .error_code = azure_error_code,
    .destroy = azure_destroy,
    .error_header = "x-ms-error-code",
    .mark_header = "x-ms-meta-ckptfsupload",
};
