/*
 * store_gcs.c - the gs:// backend's store ops over GCS's XML API: head and (ranged) get
 * are the cloud core's (cloud.c; a HEAD reads the generation, which preconditions name),
 * uploads are in gcs_upload.c, copies in gcs_copy.c, settings and tokens in
 * gcs_request.c. See docs/gcs.md.
 *
 * A missing object (404) is "does not exist", never an error.
 */
#include "store/backend.h"
#include "store/gcs/gcs.h"

static const struct ck_store_ops gcs_ops = {
    .name = "gcs",
    .conditional = true,
    .head = ck_cloud_head,
    .get = ck_cloud_get,
    .put_begin = ck_gcs_put_begin,
    .copy_from = ck_gcs_copy_from,
    .del = ck_gcs_delete,
    .put_write = ck_part_upload_write,
    .put_commit = ck_part_upload_commit,
    .put_abort = ck_part_upload_abort,
    .destroy = ck_cloud_destroy,
};

ck_rc ck_store_gcs_open(const struct ck_uri *uri, const struct ck_store_env *env,
                        struct ck_store **out, struct ck_err *err)
{
    return ck_cloud_open(&ck_gcs_cloud_ops, &gcs_ops, uri, env, out, err);
}
