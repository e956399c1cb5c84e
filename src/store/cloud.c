/* cloud.c - the request, head, get, open and destroy the clouds share; see cloud.h. */
#include "store/cloud.h"

#include <assert.h>
#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/digest.h"
#include "store/object_reply.h"
#include "util/xml.h"

ck_rc ck_cloud_ready(struct ck_cloud *c, struct ck_err *err)
{
    ck_rc rc = CK_OK;
    pthread_mutex_lock(&c->lock);
    if (!c->ready) {
        rc = c->ops->ready(c, err);
        c->ready = rc == CK_OK;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

struct attempt_ctx {
    struct ck_cloud *c;
    const struct ck_cloud_call *call;
    const struct ck_cloud_target *t;
};

static ck_rc authorize(void *ctx, struct ck_http_attempt *a, struct ck_err *err)
{
    struct attempt_ctx *ac = ctx;
    const struct ck_cloud_call *call = ac->call;
    if (call->cancel && atomic_load(call->cancel))
        return ck_fail(err, CK_ECANCELED, "%s %s: cancelled", ck_http_method_name(call->method),
                       ac->c->display);
    return ac->c->ops->authorize(ac->c, call, ac->t, a, err);
}

/* The headers sent the same on every attempt: Host (where the cloud signs it), no
 * Expect (no 100-continue round trip before each part), content and condition headers,
 * and the call's own. The texts live in text (CK_CLOUD_HEADERS + 5 lines). */
#define LINE_MAX_ 3200
static void set_headers(struct ck_http_request *req, const struct ck_cloud *c,
                        const struct ck_cloud_call *call, const struct ck_cloud_target *t,
                        char (*text)[LINE_MAX_])
{
    int h = 0, n = 0;
    req->headers[h++] = "Expect:";
#define ADD(...)                                                                                   \
    do {                                                                                           \
        snprintf(text[n], LINE_MAX_, __VA_ARGS__);                                                 \
        req->headers[h++] = text[n++];                                                             \
    } while (0)
    if (c->ops->send_host)
        ADD("Host: %s", t->host);
    if (call->content_type)
        ADD("Content-Type: %s", call->content_type);
    if (call->content_md5)
        ADD("Content-MD5: %s", call->content_md5);
    if (call->if_match)
        ADD("If-Match: %s", call->if_match);
    if (call->if_none_match)
        ADD("If-None-Match: %s", call->if_none_match);
    for (int i = 0; i < CK_CLOUD_HEADERS && call->hdr[i].name; i++)
        ADD("%s: %s", call->hdr[i].name, call->hdr[i].value);
#undef ADD
    req->headers[h] = NULL;
}

/* "METHOD URI (label): HTTP 403 AccessDenied: Access Denied" when the reply names a code. */
static void describe_error(const struct ck_cloud *c, const char *disp,
                           const struct ck_cloud_call *call, const struct ck_http_response *resp,
                           struct ck_err *err)
{
    char code[64], msg[200], tail[64] = "";
    if (!resp->status || !c->ops->error_code(resp, code, sizeof(code), msg, sizeof(msg)))
        return;
    if (strstr(err->msg, "(gave up after"))
        snprintf(tail, sizeof(tail), " (gave up after %u attempts)", resp->attempts);
    ck_fail(err, err->rc, "%s %s: HTTP %ld %s%s%s%s", ck_http_method_name(call->method), disp,
            resp->status, code, msg[0] ? ": " : "", msg, tail);
}

static void request_from_call(struct ck_http_request *req, const struct ck_cloud *c,
                              const struct ck_cloud_call *call)
{
    req->method = call->method;
    req->body_mem = call->body;
    req->body_len = call->body_len;
    if (call->body_src) {
        req->body_mem = NULL;
        req->body_len = call->body_src->len;
        req->body_read = ck_part_body_read;
        req->body_ctx = (void *)call->body_src;
    }
    req->has_range = call->has_range;
    req->range_off = call->range_off;
    req->range_len = call->range_len;
    req->sink = call->sink;
    req->reply_body = call->reply_body;
    req->error_in_2xx = call->error_in_2xx;
    req->ca_file = c->ops->ca_env ? getenv(c->ops->ca_env) : NULL;
    req->capture_headers[0] = call->capture[0] ? call->capture[0] : c->ops->error_header;
    req->capture_headers[1] = call->capture[1];
    req->path_as_is = true;
    req->retry = c->env->retry;
    req->connect_timeout_s = c->env->connect_timeout_s;
    req->stall_timeout_s = c->env->stall_timeout_s;
    if (call->commit && req->stall_timeout_s > 0 && req->stall_timeout_s < CK_COMMIT_STALL_S)
        req->stall_timeout_s = CK_COMMIT_STALL_S;
}

ck_rc ck_cloud_perform(struct ck_cloud *c, const struct ck_cloud_call *call,
                       struct ck_http_response *resp, struct ck_err *err)
{
    memset(resp, 0, sizeof(*resp));
    ck_rc rc = ck_cloud_ready(c, err);
    if (rc)
        return rc;
    char disp[CK_ERR_MSG_MAX / 2];
    snprintf(disp, sizeof(disp), "%s%s%s%s", c->display, call->label ? " (" : "",
             call->label ? call->label : "", call->label ? ")" : "");
    /* ~16 KiB of URL and 29 KiB of header lines: off the worker stacks */
    struct ck_cloud_target *t = malloc(sizeof(*t));
    char(*text)[LINE_MAX_] = malloc((CK_CLOUD_HEADERS + 5) * sizeof(*text));
    if (!t || !text)
        rc = ck_fail(err, CK_ENOMEM, "%s %s: out of memory", ck_http_method_name(call->method),
                     disp);
    if (!rc)
        rc = c->ops->target(c, call, t, err);
    if (!rc) {
        struct attempt_ctx ac = {c, call, t};
        struct ck_http_request req;
        ck_http_request_init(&req);
        request_from_call(&req, c, call);
        req.url = t->url;
        req.display_url = disp;
        set_headers(&req, c, call, t, text);
        req.on_attempt = authorize;
        req.on_attempt_ctx = &ac;
        rc = ck_http_perform(&req, resp, err);
        if (rc)
            describe_error(c, disp, call, resp, err);
    }
    if (t)
        explicit_bzero(t->url, sizeof(t->url)); /* a SAS is a secret */
    free(t);
    free(text);
    return rc;
}

bool ck_cloud_error_doc(const char *body, size_t len, char *code, size_t codesz, char *msg,
                        size_t msgsz)
{
    code[0] = msg[0] = '\0';
    xmlDocPtr doc;
    if (ck_xml_parse(body, len, CK_CLOUD_ERROR_MAX, true, &doc))
        return false;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    bool ok = ck_xml_is(root, "Error") &&
              ck_xml_text(ck_xml_child(root, "Code"), code, codesz, false) && code[0];
    for (size_t i = 0; ok && code[i]; i++)
        ok = isalnum((unsigned char)code[i]) || code[i] == '.';
    if (ok)
        ck_xml_text(ck_xml_child(root, "Message"), msg, msgsz, true);
    else
        code[0] = msg[0] = '\0';
    xmlFreeDoc(doc);
    return ok;
}

bool ck_cloud_xml_error_code(const struct ck_http_response *resp, char *code, size_t codesz,
                             char *msg, size_t msgsz)
{
    return resp->error_body_len &&
           ck_cloud_error_doc(resp->error_body, resp->error_body_len, code, codesz, msg, msgsz);
}

void ck_cloud_add_header(struct ck_cloud_call *c, const char *name, const char *value)
{
    if (!name)
        return;
    int i = 0;
    while (i < CK_CLOUD_HEADERS && c->hdr[i].name)
        i++;
    assert(i < CK_CLOUD_HEADERS);
    if (i < CK_CLOUD_HEADERS)
        c->hdr[i] = (struct ck_cloud_header){name, value};
}

ck_rc ck_cloud_head(struct ck_store *s, struct ck_store_info *info, struct ck_err *err)
{
    struct ck_cloud *c = ck_cloud_of(s);
    struct ck_cloud_call call = {.method = CK_HTTP_HEAD,
                                 .capture = {c->ops->version_header, c->ops->mark_header}};
    struct ck_http_response resp;
    ck_rc rc = ck_cloud_perform(c, &call, &resp, err);
    rc = ck_object_head_result(s, rc, &resp, info, err);
    if (rc || !info->exists)
        return rc;
    if (c->ops->version_header) /* e.g. GCS: generations, not ETags */
        snprintf(info->version, sizeof(info->version), "%.*s", (int)sizeof(info->version) - 1,
                 resp.captured[0]);
    if (c->ops->mark_header)
        snprintf(info->mark, sizeof(info->mark), "%.*s", (int)sizeof(info->mark) - 1,
                 resp.captured[1]);
    return rc;
}

ck_rc ck_cloud_get(struct ck_store *s, uint64_t off, uint64_t len, const struct ck_sink *sink,
                   struct ck_err *err)
{
    if (len == 0)
        return CK_OK;
    struct ck_cloud_call call = {.method = CK_HTTP_GET, .sink = sink};
    ck_object_get_range(off, len, &call.has_range, &call.range_off, &call.range_len);
    struct ck_http_response resp;
    ck_rc rc = ck_cloud_perform(ck_cloud_of(s), &call, &resp, err);
    return ck_object_get_result(s, rc, &resp, off, len, err);
}

void ck_cloud_destroy(struct ck_store *s)
{
    struct ck_cloud *c = s->priv;
    if (c) {
        if (c->priv)
            c->ops->destroy(c->priv);
        pthread_mutex_destroy(&c->lock);
        free(c->bucket);
        free(c->key);
        free(c);
    }
    free(s->display_uri);
    free(s);
}

ck_rc ck_cloud_put_md5(struct ck_cloud *c, struct ck_cloud_call *call,
                       const struct ck_part_body *body, struct ck_http_response *resp,
                       struct ck_err *err)
{
    char md5[CK_MD5_B64_LEN];
    memset(resp, 0, sizeof(*resp));
    ck_rc rc = ck_part_body_md5_b64(body, md5, err);
    if (rc)
        return rc;
    call->method = CK_HTTP_PUT;
    call->body = NULL;
    call->body_len = body->len;
    call->body_src = body;
    call->content_md5 = md5;
    rc = ck_cloud_perform(c, call, resp, err);
    call->content_md5 = NULL;
    return rc;
}

ck_rc ck_cloud_up_new(struct ck_store *s, const struct ck_put_opts *opts, size_t size, void **out,
                      struct ck_err *err)
{
    struct ck_cloud_up *up = calloc(1, size);
    if (!up)
        return ck_fail(err, CK_ENOMEM, "PUT %s: out of memory", s->display_uri);
    up->c = ck_cloud_of(s);
    up->store = s;
    up->if_absent = opts->if_absent;
    ck_rc rc = ck_cond_init(&up->cond, opts, s->display_uri, err);
    unsigned char rnd[CK_UPLOAD_MARK_LEN / 2];
    if (!rc && RAND_bytes(rnd, sizeof(rnd)) != 1)
        rc = ck_fail(err, CK_EIO, "PUT %s: no random bytes for the upload's mark", s->display_uri);
    if (rc) {
        free(up);
        return rc;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(up->mark + 2 * i, 3, "%02x", rnd[i]);
    *out = up;
    return CK_OK;
}

ck_rc ck_cloud_up_start(struct ck_cloud_up *up, const struct ck_part_ops *ops, size_t result_size,
                        struct ck_store_upload **out, struct ck_err *err)
{
    struct ck_part_cfg cfg = up->c->parts;
    cfg.result_size = result_size;
    cfg.single_only = up->if_absent;
    return ck_part_upload_new(up->store, ops, up, &cfg, out, err);
}

ck_rc ck_cloud_open(const struct ck_cloud_ops *ops, const struct ck_uri *uri,
                    const struct ck_store_env *env, struct ck_store **out, struct ck_err *err)
{
    struct ck_store *s = calloc(1, sizeof(*s));
    struct ck_cloud *c = calloc(1, sizeof(*c));
    if (!s || !c) {
        free(s);
        free(c);
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    pthread_mutex_init(&c->lock, NULL);
    s->ops = &ops->store;
    s->env = env;
    s->priv = c;
    s->display_uri = strdup(uri->display);
    c->ops = ops;
    c->bucket = strdup(uri->bucket ? uri->bucket : "");
    c->key = strdup(uri->key ? uri->key : "");
    c->display = s->display_uri;
    c->env = env;
    if (!s->display_uri || !c->bucket || !c->key) {
        ck_cloud_destroy(s);
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    ck_rc rc = ops->configure(c, uri, err);
    c->parts.memory = env->part_memory;
    c->parts.spool_dir = env->spool_dir;
    if (!rc) /* a test knob: parts double every N instead of CK_PART_GROWTH */
        rc = ck_part_env_uint("CKPTFS_PART_GROWTH", 1, CK_PART_GROWTH, &c->parts.growth, err);
    if (rc) {
        ck_err_prefix(err, "%s", uri->display);
        ck_cloud_destroy(s);
        return rc;
    }
    *out = s;
    return CK_OK;
}
