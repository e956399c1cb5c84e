/*
 * gcs_upload.c - the GCS store's put_*: one PUT for a small object, else an XML API
 * multipart upload (initiate, parts in parallel through part_upload.c, complete; abort on
 * any failure), the same protocol as S3's. Every part and single PUT carries Content-MD5,
 * which GCS verifies. The object appears at complete only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sigv4.h"
#include "store/digest.h"
#include "store/gcs.h"
#include "store/s3_xml.h"
#include "util/buf.h"
#include "util/log.h"

#define REPLY_MAX (64 * 1024)

struct gcs_up {
    struct ck_gcs *g;
    char upload_id[CK_S3_UPLOAD_ID_MAX + 1];
    char id_query[3 * CK_S3_UPLOAD_ID_MAX + 16]; /* "uploadId=<encoded>" */
};

struct part_result {
    char etag[128];
};

static ck_rc begin(void *ctx, struct ck_err *err)
{
    struct gcs_up *u = ctx;
    struct ck_buf reply;
    ck_buf_init(&reply, REPLY_MAX);
    struct ck_gcs_call c = {
        .method = CK_HTTP_POST,
        .query = "uploads",
        .label = "initiate multipart upload",
        .content_type = "application/octet-stream",
        .reply_body = &reply,
    };
    struct ck_http_response resp;
    char what[300];
    snprintf(what, sizeof(what), "POST %s (initiate multipart upload)", u->g->display);
    ck_rc rc = ck_gcs_perform(u->g, &c, &resp, err);
    if (!rc)
        rc = ck_s3_xml_upload_id(reply.data, reply.len, u->upload_id, sizeof(u->upload_id), what,
                                 err);
    ck_buf_free(&reply);
    if (rc)
        return rc;
    char enc[3 * CK_S3_UPLOAD_ID_MAX + 1];
    if (ck_sigv4_uri_encode(u->upload_id, 0, enc, sizeof(enc)) != CK_OK)
        return ck_fail(err, CK_ECORRUPT, "%s: UploadId too long", what);
    snprintf(u->id_query, sizeof(u->id_query), "uploadId=%s", enc);
    return CK_OK;
}

static ck_rc send_part(void *ctx, unsigned number, const char *data, size_t len, void *result,
                       const atomic_bool *cancel, struct ck_err *err)
{
    struct gcs_up *u = ctx;
    struct part_result *r = result;
    char query[sizeof(u->id_query) + 32], label[32], md5[CK_MD5_B64_LEN];
    snprintf(query, sizeof(query), "partNumber=%u&%s", number, u->id_query);
    snprintf(label, sizeof(label), "part %u", number);
    ck_md5_b64(data, len, md5);
    struct ck_gcs_call c = {
        .method = CK_HTTP_PUT,
        .query = query,
        .label = label,
        .body = data,
        .body_len = len,
        .content_md5 = md5,
        .cancel = cancel,
    };
    struct ck_http_response resp;
    ck_rc rc = ck_gcs_perform(u->g, &c, &resp, err);
    if (!rc && !resp.etag[0])
        rc = ck_fail(err, CK_ECORRUPT, "PUT %s (%s): reply has no ETag", u->g->display, label);
    if (!rc)
        memcpy(r->etag, resp.etag, sizeof(r->etag));
    return rc;
}

static ck_rc complete(void *ctx, unsigned n, const void *results, struct ck_err *err)
{
    struct gcs_up *u = ctx;
    const struct part_result *res = results;
    struct ck_buf body, reply;
    ck_buf_init(&body, (size_t)n * 256 + 256);
    ck_buf_init(&reply, REPLY_MAX);
    struct ck_s3_part_ref *refs = calloc(n, sizeof(*refs));
    ck_rc rc = refs ? CK_OK : ck_fail(err, CK_ENOMEM, "%s: out of memory", u->g->display);
    for (unsigned i = 0; !rc && i < n; i++)
        refs[i] = (struct ck_s3_part_ref){i + 1, res[i].etag, NULL};
    if (!rc)
        rc = ck_s3_xml_complete_body(refs, n, &body, err);
    struct ck_gcs_call c = {
        .method = CK_HTTP_POST,
        .query = u->id_query,
        .label = "complete multipart upload",
        .body = body.data,
        .body_len = body.len,
        .content_type = "application/xml",
        .reply_body = &reply,
        .error_in_2xx = true,
    };
    struct ck_http_response resp;
    char what[300], etag[128];
    snprintf(what, sizeof(what), "POST %s (complete multipart upload)", u->g->display);
    if (!rc)
        rc = ck_gcs_perform(u->g, &c, &resp, err);
    if (!rc)
        rc = ck_s3_xml_complete_etag(reply.data, reply.len, etag, sizeof(etag), what, err);
    free(refs);
    ck_buf_free(&body);
    ck_buf_free(&reply);
    return rc;
}

static void abort_remote(void *ctx)
{
    struct gcs_up *u = ctx;
    struct ck_gcs_call c = {
        .method = CK_HTTP_DELETE,
        .query = u->id_query,
        .label = "abort multipart upload",
    };
    struct ck_http_response resp;
    struct ck_err err;
    ck_rc rc = ck_gcs_perform(u->g, &c, &resp, &err);
    if (rc && rc != CK_ENOTFOUND)
        ck_log_error("%s; the multipart upload stays open until a lifecycle rule removes it",
                     err.msg);
    else
        ck_log_info("aborted the multipart upload of %s", u->g->display);
}

static ck_rc single(void *ctx, const char *data, size_t len, struct ck_err *err)
{
    struct gcs_up *u = ctx;
    char md5[CK_MD5_B64_LEN];
    ck_md5_b64(data, len, md5);
    struct ck_gcs_call c = {
        .method = CK_HTTP_PUT,
        .body = data,
        .body_len = len,
        .content_md5 = md5,
        .content_type = "application/octet-stream",
    };
    struct ck_http_response resp;
    return ck_gcs_perform(u->g, &c, &resp, err);
}

static const struct ck_part_ops gcs_part_ops = {
    .begin = begin,
    .send = send_part,
    .complete = complete,
    .abort = abort_remote,
    .single = single,
    .free_ctx = free,
};

ck_rc ck_gcs_put_begin(struct ck_store *s, struct ck_store_upload **out, struct ck_err *err)
{
    struct ck_gcs *g = s->priv;
    struct gcs_up *u = calloc(1, sizeof(*u));
    if (!u)
        return ck_fail(err, CK_ENOMEM, "PUT %s: out of memory", s->display_uri);
    u->g = g;
    struct ck_part_cfg cfg = g->parts;
    cfg.result_size = sizeof(struct part_result);
    return ck_part_upload_new(s, &gcs_part_ops, u, &cfg, out, err);
}
