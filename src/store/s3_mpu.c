/*
 * s3_mpu.c - initiate, complete and abort of an S3-protocol multipart upload; see
 * s3_mpu.h.
 */
#include "store/s3_mpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/uri_encode.h"
#include "util/buf.h"
#include "util/log.h"

#define REPLY_MAX (64 * 1024)

void ck_mpu_init(struct ck_mpu *m, struct ck_cloud *cloud, void *ctx)
{
    *m = (struct ck_mpu){.cloud = cloud, .proto = cloud->ops->mpu, .ctx = ctx};
}

ck_rc ck_mpu_run(struct ck_mpu *m, enum ck_mpu_step step, struct ck_cloud_call *c,
                 struct ck_err *err)
{
    c->label = m->proto->labels[step];
    c->commit = step == CK_MPU_COMPLETE;
    if (m->ctx && m->proto->adjust)
        m->proto->adjust(m->ctx, step, c);
    struct ck_http_response resp;
    return ck_cloud_perform(m->cloud, c, &resp, err);
}

ck_rc ck_mpu_delete_object(struct ck_store *s, struct ck_err *err)
{
    struct ck_mpu m;
    ck_mpu_init(&m, ck_cloud_of(s), NULL);
    ck_mpu_sweep(&m);
    struct ck_cloud_call c = {.method = CK_HTTP_DELETE};
    struct ck_http_response resp;
    return ck_cloud_perform(m.cloud, &c, &resp, err);
}

ck_rc ck_mpu_initiate(struct ck_mpu *m, struct ck_err *err)
{
    struct ck_buf reply;
    ck_buf_init(&reply, REPLY_MAX);
    struct ck_cloud_call r = {
        .method = CK_HTTP_POST,
        .query = m->proto->initiate_query,
        .content_type = "application/octet-stream",
        .reply_body = &reply,
    };
    char what[300], enc[3 * CK_S3_UPLOAD_ID_MAX + 1];
    snprintf(what, sizeof(what), "POST %s (%s)", m->cloud->display,
             m->proto->labels[CK_MPU_INITIATE]);
    ck_rc rc = ck_mpu_run(m, CK_MPU_INITIATE, &r, err);
    if (!rc)
        rc = ck_s3_xml_upload_id(reply.data, reply.len, m->upload_id, sizeof(m->upload_id), what,
                                 err);
    ck_buf_free(&reply);
    if (!rc && ck_uri_encode(m->upload_id, 0, enc, sizeof(enc)) != CK_OK)
        rc = ck_fail(err, CK_ECORRUPT, "%s: UploadId too long", what);
    if (!rc)
        snprintf(m->id_query, sizeof(m->id_query), "uploadId=%s", enc);
    return rc;
}

ck_rc ck_mpu_complete(struct ck_mpu *m, unsigned n, const void *results, size_t result_size,
                      size_t checksum_off, char *etag, size_t etagsz, struct ck_err *err)
{
    struct ck_buf body, reply;
    ck_buf_init(&body, (size_t)n * 512 + 256);
    ck_buf_init(&reply, REPLY_MAX);
    struct ck_s3_part_ref *refs = calloc(n ? n : 1, sizeof(*refs));
    ck_rc rc = refs ? CK_OK : ck_fail(err, CK_ENOMEM, "%s: out of memory", m->cloud->display);
    for (unsigned i = 0; !rc && i < n; i++) {
        const char *res = (const char *)results + (size_t)i * result_size;
        const char *sum = checksum_off && res[checksum_off] ? res + checksum_off : NULL;
        refs[i] = (struct ck_s3_part_ref){i + 1, res, sum};
    }
    if (!rc)
        rc = ck_s3_xml_complete_body(refs, n, m->proto->sum_element, &body, err);
    struct ck_cloud_call r = {
        .method = CK_HTTP_POST,
        .query = m->id_query,
        .body = body.data,
        .body_len = body.len,
        .content_type = "application/xml",
        .reply_body = &reply,
        .error_in_2xx = true,
    };
    char what[300], tag[128];
    snprintf(what, sizeof(what), "POST %s (%s)", m->cloud->display,
             m->proto->labels[CK_MPU_COMPLETE]);
    if (!rc)
        rc = ck_mpu_run(m, CK_MPU_COMPLETE, &r, err);
    if (!rc)
        rc = ck_s3_xml_complete_etag(reply.data, reply.len, tag, sizeof(tag), what, err);
    if (!rc && etag)
        snprintf(etag, etagsz, "%s", tag);
    free(refs);
    ck_buf_free(&body);
    ck_buf_free(&reply);
    return rc;
}

void ck_mpu_abort(struct ck_mpu *m)
{
    struct ck_cloud_call r = {.method = CK_HTTP_DELETE, .query = m->id_query};
    struct ck_err err;
    ck_rc rc = ck_mpu_run(m, CK_MPU_ABORT, &r, &err);
    if (rc && rc != CK_ENOTFOUND)
        ck_log_error("%s; the multipart upload stays open until a lifecycle rule removes it",
                     err.msg);
    else
        ck_log_info("aborted the multipart upload of %s", m->cloud->display);
}

bool ck_mpu_copy_source(const char *bucket, const char *key, char *out, size_t cap)
{
    if (cap < 3)
        return false;
    out[0] = '/';
    if (ck_uri_encode(bucket, 0, out + 1, cap - 2) != CK_OK)
        return false;
    size_t n = strlen(out);
    out[n] = '/';
    return ck_uri_encode(key, 1, out + n + 1, cap - n - 1) == CK_OK;
}

ck_rc ck_mpu_copy_object(struct ck_cloud *d, const struct ck_cloud *s, const char *header,
                         const char *label, const char *query, struct ck_err *err)
{
    char source[CK_MPU_COPY_SOURCE_MAX];
    if (!ck_mpu_copy_source(s->bucket, s->key, source, sizeof(source)))
        return CK_EUNSUPPORTED; /* names too long to send as a header: stream instead */
    struct ck_buf reply;
    ck_buf_init(&reply, 64 * 1024);
    struct ck_cloud_call c = {
        .method = CK_HTTP_PUT,
        .query = query,
        .label = label,
        .hdr = {{header, source}},
        .reply_body = &reply,
        .error_in_2xx = true,
    };
    struct ck_http_response resp;
    ck_rc rc = ck_cloud_perform(d, &c, &resp, err);
    ck_buf_free(&reply);
    return rc;
}

ck_rc ck_mpu_up_begin(void *ctx, struct ck_err *err)
{
    struct ck_mpu_up *u = ctx;
    return ck_mpu_initiate(&u->mpu, err);
}

void ck_mpu_up_abort(void *ctx)
{
    struct ck_mpu_up *u = ctx;
    ck_mpu_abort(&u->mpu);
    ck_mpu_sweep(&u->mpu);
}

ck_rc ck_mpu_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                       struct ck_store_upload **out, struct ck_err *err)
{
    struct ck_mpu_up *u;
    ck_rc rc = ck_cloud_up_new(s, opts, sizeof(*u), (void **)&u, err);
    if (rc)
        return rc;
    ck_mpu_init(&u->mpu, u->up.c, u);
    const struct ck_mpu_proto *p = u->mpu.proto;
    return ck_cloud_up_start(&u->up, p->part_ops, p->result_size, out, err);
}
