/*
 * s3_sweep.c - aborting the open multipart uploads of the store's key that no save owns
 * any more, for S3 and GCS's XML API alike; see ck_mpu_sweep in s3_mpu.h.
 *
 * ListMultipartUploads (a GET of the bucket with "uploads"), CK_MPU_SWEEP_PAGE_UPLOADS
 * uploads a page (a page of the default 1,000 could exceed the reply cap). GCS is asked for
 * prefix=KEY; S3 lists the whole bucket (a "prefix" holding "/" is signed differently by
 * some S3-compatible servers, moto among them), and either way the uploads are filtered by
 * key here. A truncated listing is followed with key-marker and upload-id-marker from
 * NextKeyMarker and NextUploadIdMarker, so every open upload is seen, however many. Both
 * list keys in ascending order, so the sweep stops at the first page that ends past the
 * key. It also stops after CK_MPU_SWEEP_PAGES pages, and at a page whose markers do not
 * move forward, so a hostile or broken server cannot keep it going. The requests run
 * through ck_mpu_run, as initiate, complete and abort do (s3_mpu.c).
 */
#include <stdio.h>
#include <string.h>

#include "util/uri_encode.h"
#include "store/s3_mpu.h"
#include "store/s3_xml.h"
#include "util/buf.h"
#include "util/log.h"

#define MARKER_MAX 1100 /* a key is at most 1,024 bytes */

/* Aborts one upload of our key that is not ours. */
static void abort_other(void *ctx, const char *upload_id)
{
    struct ck_mpu *m = ctx;
    if (strcmp(upload_id, m->upload_id) == 0)
        return;
    char enc[3 * CK_S3_UPLOAD_ID_MAX + 1], query[sizeof(enc) + 16];
    if (ck_uri_encode(upload_id, 0, enc, sizeof(enc)) != CK_OK)
        return;
    snprintf(query, sizeof(query), "uploadId=%s", enc);
    struct ck_cloud_call r = {.method = CK_HTTP_DELETE, .query = query};
    struct ck_err err;
    if (ck_mpu_run(m, CK_MPU_ABORT_STALE, &r, &err) == CK_OK)
        ck_log_info("aborted a stale multipart upload of %s (a lost reply, or a daemon killed "
                    "mid-save)",
                    m->cloud->display);
    else
        ck_log_debug("%s", err.msg);
}

static ck_rc collect_body(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    struct ck_buf *b = ctx;
    return ck_buf_append(b, buf, len) ? ck_fail(err, CK_ECORRUPT, "listing too large") : CK_OK;
}

/* The query of the page after (key_marker, id_marker); "" markers are left out. */
static bool page_query(const struct ck_mpu *m, const char *key_marker, const char *id_marker,
                       char *out, size_t outsz)
{
    char kenc[3 * MARKER_MAX + 1], idenc[3 * CK_S3_UPLOAD_ID_MAX + 1], penc[3 * MARKER_MAX + 1];
    if (ck_uri_encode(key_marker, 0, kenc, sizeof(kenc)) != CK_OK ||
        ck_uri_encode(id_marker, 0, idenc, sizeof(idenc)) != CK_OK ||
        ck_uri_encode(m->proto->list_prefix ? m->cloud->key : "", 0, penc, sizeof(penc)) != CK_OK)
        return false;
    int n = snprintf(
        out, outsz, "max-uploads=%u&%s%s%s%s%s%s%s", (unsigned)CK_MPU_SWEEP_PAGE_UPLOADS,
        m->proto->initiate_query, m->proto->list_prefix ? "&prefix=" : "", penc,
        key_marker[0] ? "&key-marker=" : "", kenc, id_marker[0] ? "&upload-id-marker=" : "", idenc);
    return n > 0 && (size_t)n < outsz;
}

/* One page: aborts the key's other uploads on it and says where the next page starts
 * (*more false at the last page or when the listing cannot go on). */
static ck_rc sweep_page(struct ck_mpu *m, char *key_marker, char *id_marker, bool *more,
                        struct ck_err *err)
{
    char q[3 * (2 * MARKER_MAX + CK_S3_UPLOAD_ID_MAX) + 100];
    if (!page_query(m, key_marker, id_marker, q, sizeof(q)))
        return ck_fail(err, CK_EINVAL, "%s (%s): markers too long", m->cloud->display,
                       m->proto->labels[CK_MPU_LIST]);
    struct ck_buf body;
    ck_buf_init(&body, CK_S3_XML_MAX);
    struct ck_sink sink = {collect_body, &body};
    struct ck_cloud_call r = {
        .method = CK_HTTP_GET,
        .query = q,
        .bucket_level = true,
        .sink = &sink,
    };
    char next_key[MARKER_MAX], next_id[CK_S3_UPLOAD_ID_MAX + 1];
    ck_rc rc = ck_mpu_run(m, CK_MPU_LIST, &r, err);
    const char *data = body.data ? body.data : "";
    if (!rc)
        rc = ck_s3_xml_uploads_next(data, body.len, more, next_key, sizeof(next_key), next_id,
                                    sizeof(next_id), err);
    if (!rc)
        rc = ck_s3_xml_each_upload(data, body.len, m->cloud->key, abort_other, m, err);
    ck_buf_free(&body);
    if (rc || !*more)
        return rc;
    /* Forward only: keys ascend; the same key again needs a new upload id marker. */
    int order = strcmp(next_key, key_marker);
    if (!next_key[0] || order < 0 || (order == 0 && strcmp(next_id, id_marker) == 0))
        return ck_fail(err, CK_ECORRUPT, "%s (%s): a truncated listing's markers do not move on",
                       m->cloud->display, m->proto->labels[CK_MPU_LIST]);
    memcpy(key_marker, next_key, sizeof(next_key));
    memcpy(id_marker, next_id, sizeof(next_id));
    *more = strcmp(next_key, m->cloud->key) <= 0; /* past our key: nothing more of ours */
    return CK_OK;
}

void ck_mpu_sweep(struct ck_mpu *m)
{
    char key_marker[MARKER_MAX] = "", id_marker[CK_S3_UPLOAD_ID_MAX + 1] = "";
    struct ck_err err;
    bool more = true;
    unsigned pages = 0;
    while (more && pages < CK_MPU_SWEEP_PAGES) {
        pages++;
        if (sweep_page(m, key_marker, id_marker, &more, &err) != CK_OK) {
            ck_log_debug("%s", err.msg);
            return;
        }
    }
    if (more)
        ck_log_info("%s: stopped listing open multipart uploads after %u pages", m->cloud->display,
                    pages);
}
