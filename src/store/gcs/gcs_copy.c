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

ck_rc ck_gcs_copy_from(struct ck_store *dst, struct ck_store *src, uint64_t size,
                       struct ck_err *err)
{
    (void)size; /* GCS copies objects of any size within a location */
    struct ck_cloud *d = ck_cloud_of(dst), *s = ck_cloud_of(src);
    const struct ck_gcs *dg = d->priv, *sg = s->priv;
    if (strcmp(dg->endpoint, sg->endpoint) != 0 || dg->anonymous != sg->anonymous)
        return CK_EUNSUPPORTED;
    return ck_mpu_copy_object(d, s, "x-goog-copy-source", "copy", "", err);
}
