/*
 * gcs_copy.c - server-side copy for the GCS store (XML API: a PUT of the destination
 * object with x-goog-copy-source), used by carry forward (restore/chain.h) through
 * ck_store_copy: the bytes never leave the service.
 *
 * Only between buckets on the same endpoint (the same credentials apply); otherwise
 * CK_EUNSUPPORTED and the caller streams the object. An <Error> in a 2xx reply is a
 * failure. The destination appears whole or not at all, as with every GCS write.
 */
#include <string.h>

#include "store/gcs/gcs.h"
#include "store/s3_mpu.h"
#include "util/buf.h"

#define REPLY_MAX (64 * 1024)

ck_rc ck_gcs_copy_from(struct ck_store *dst, struct ck_store *src, uint64_t size,
                       struct ck_err *err)
{
    (void)size; /* GCS copies objects of any size within a location */
    struct ck_cloud *d = ck_cloud_of(dst), *s = ck_cloud_of(src);
    const struct ck_gcs *dg = d->priv, *sg = s->priv;
    if (strcmp(dg->endpoint, sg->endpoint) != 0 || dg->anonymous != sg->anonymous)
        return CK_EUNSUPPORTED;
    char source[3 * (222 + 1024) + 3];
    if (!ck_mpu_copy_source(s->bucket, s->key, source, sizeof(source)))
        return CK_EUNSUPPORTED; /* names too long to send as a header: stream instead */
    struct ck_buf reply;
    ck_buf_init(&reply, REPLY_MAX);
    struct ck_cloud_call c = {
        .method = CK_HTTP_PUT,
        .query = "",
        .label = "copy",
        .hdr = {{"x-goog-copy-source", source}},
        .reply_body = &reply,
        .error_in_2xx = true,
    };
    struct ck_http_response resp;
    ck_rc rc = ck_cloud_perform(d, &c, &resp, err);
    ck_buf_free(&reply);
    return rc;
}
