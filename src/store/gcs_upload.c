/*
 * gcs_upload.c - the GCS store's put_*: one PUT for a small object, else an XML API
 * multipart upload (initiate, parts in parallel through part_upload.c, complete; abort on
 * any failure), the same protocol as S3's, whose initiate, complete and abort requests it
 * shares (s3_mpu.c). Every part and single PUT carries Content-MD5, which GCS verifies.
 * The object appears at complete only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/digest.h"
#include "store/gcs.h"
#include "store/s3_mpu.h"

struct gcs_up {
    struct ck_gcs *g;
    struct ck_mpu mpu; /* initiate, complete and abort (s3_mpu.c) */
};

struct part_result {
    char etag[128]; /* first: see ck_mpu_complete */
};

static const char *const step_labels[] = {"initiate multipart upload", "complete multipart upload",
                                          "abort multipart upload"};

static ck_rc mpu_perform(void *ctx, const struct ck_mpu_request *r, struct ck_err *err)
{
    struct gcs_up *u = ctx;
    struct ck_gcs_call c = {.method = r->method,
                            .query = r->query,
                            .label = r->label,
                            .body = r->body,
                            .body_len = r->body_len,
                            .content_type = r->content_type,
                            .reply_body = r->reply_body,
                            .error_in_2xx = r->error_in_2xx};
    struct ck_http_response resp;
    return ck_gcs_perform(u->g, &c, &resp, err);
}

static ck_rc begin(void *ctx, struct ck_err *err)
{
    struct gcs_up *u = ctx;
    return ck_mpu_initiate(&u->mpu, err);
}

static ck_rc send_part(void *ctx, unsigned number, const char *data, size_t len, void *result,
                       const atomic_bool *cancel, struct ck_err *err)
{
    struct gcs_up *u = ctx;
    struct part_result *r = result;
    char query[sizeof(u->mpu.id_query) + 32], label[32], md5[CK_MD5_B64_LEN];
    snprintf(query, sizeof(query), "partNumber=%u&%s", number, u->mpu.id_query);
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
    return ck_mpu_complete(&u->mpu, n, results, sizeof(struct part_result), 0, NULL, 0, err);
}

static void abort_remote(void *ctx)
{
    struct gcs_up *u = ctx;
    ck_mpu_abort(&u->mpu);
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
    u->mpu = (struct ck_mpu){.display = g->display,
                             .labels = step_labels,
                             .initiate_query = "uploads",
                             .perform = mpu_perform,
                             .ctx = u};
    struct ck_part_cfg cfg = g->parts;
    cfg.result_size = sizeof(struct part_result);
    return ck_part_upload_new(s, &gcs_part_ops, u, &cfg, out, err);
}
