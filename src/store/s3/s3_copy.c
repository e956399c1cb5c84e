/*
 * s3_copy.c - server-side copies for the S3 store: CopyObject (copy_from), used by carry
 * forward (restore/chain.h) through ck_store_copy, and UploadPartCopy of byte ranges into
 * an upload (put_copy, part_upload.h "Copied parts"): the bytes never leave the service.
 *
 * Only between buckets on the same endpoint, and only up to CopyObject's 5 GiB limit;
 * otherwise CK_EUNSUPPORTED and the caller streams the object. CopyObject may answer
 * "200 OK" with an <Error> body after it started copying: that is a failure. The object
 * appears whole or not at all, as with every S3 write.
 */
#include <string.h>

#include "store/s3/s3.h"
#include "store/s3_mpu.h"

#define COPY_MAX (5ull << 30) /* CopyObject's limit */

static bool same_endpoint(const struct ck_cloud *ca, const struct ck_cloud *cb)
{
    const struct ck_s3 *a = ca->priv, *b = cb->priv;
    return a->ep.https == b->ep.https && strcmp(a->ep.host, b->ep.host) == 0 &&
           strcmp(a->ep.base_path, b->ep.base_path) == 0 && strcmp(a->region, b->region) == 0;
}

ck_rc ck_s3_copy_from(struct ck_store *dst, struct ck_store *src, uint64_t size, struct ck_err *err)
{
    struct ck_cloud *d = ck_cloud_of(dst), *s = ck_cloud_of(src);
    if (size > COPY_MAX)
        return CK_EUNSUPPORTED;
    ck_rc rc = ck_cloud_ready(d, err);
    if (!rc)
        rc = ck_cloud_ready(s, err);
    if (rc)
        return rc;
    if (!same_endpoint(d, s))
        return CK_EUNSUPPORTED;
    return ck_mpu_copy_object(d, s, "x-amz-copy-source", "(copy)", NULL, err);
}

bool ck_s3_copies_from(struct ck_store *dst, struct ck_store *src)
{
    struct ck_cloud *d = ck_cloud_of(dst), *s = ck_cloud_of(src);
    struct ck_err ignored;
    return ck_cloud_ready(d, &ignored) == CK_OK && ck_cloud_ready(s, &ignored) == CK_OK &&
           same_endpoint(d, s);
}

ck_rc ck_s3_put_copy(struct ck_store_upload *u, const struct ck_copy_src *src, struct ck_err *err)
{
    struct ck_cloud *d = ck_cloud_of(u->store), *s = ck_cloud_of(src->store);
    char source[CK_MPU_COPY_SOURCE_MAX];
    ck_rc rc = ck_cloud_ready(d, err);
    if (!rc)
        rc = ck_cloud_ready(s, err);
    if (rc)
        return rc;
    if (!same_endpoint(d, s) || !ck_mpu_copy_source(s->bucket, s->key, source, sizeof(source)))
        return CK_EUNSUPPORTED;
    return ck_part_upload_copy(u, src, err);
}
