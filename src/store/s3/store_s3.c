/*
 * store_s3.c - the s3:// backend's store ops: head and (ranged) get are the cloud core's
 * (cloud.c), uploads are in s3_upload.c (through part_upload.c) and s3_sweep.c, copies in
 * s3_copy.c, and S3's settings and signing in s3_request.c. See docs/s3.md.
 *
 * Opening reads the settings from the environment (endpoint override, addressing style,
 * multipart tuning) and does no I/O; credentials, region and endpoint are resolved on the
 * first request. A missing object (404, NoSuchKey) is "does not exist", never an error.
 */
#include "store/backend.h"
#include "store/s3/s3.h"

static const struct ck_store_ops s3_ops = {
    .name = "s3",
    .conditional = true,
    .head = ck_cloud_head,
    .get = ck_cloud_get,
    .put_begin = ck_s3_put_begin,
    .put_write = ck_part_upload_write,
    .put_commit = ck_part_upload_commit,
    .put_abort = ck_part_upload_abort,
    .copy_from = ck_s3_copy_from,
    .put_copy = ck_s3_put_copy,
    .del = ck_s3_delete,
    .destroy = ck_cloud_destroy,
};

ck_rc ck_store_s3_open(const struct ck_uri *uri, const struct ck_store_env *env,
                       struct ck_store **out, struct ck_err *err)
{
    return ck_cloud_open(&ck_s3_cloud_ops, &s3_ops, uri, env, out, err);
}
