/*
 * s3.h - the S3 backend's own state (internal to src/store/); what it shares with GCS and
 * Azure is in cloud.h.
 *
 * s3_request.c holds its table of ops (store and cloud; head and get are the cloud core's);
 * s3_upload.c supplies the requests of an upload (a single PUT or a multipart upload) to
 * part_upload.c, which does the parts in flight; s3_mpu.c and s3_sweep.c (shared with GCS,
 * see s3_mpu.h) run initiate, complete and abort and the sweep of stale uploads of the
 * key; s3_request.c is S3's part of the cloud core: settings, endpoint, SigV4 on every
 * attempt, error documents. The credentials provider, the region and hence the endpoint
 * are resolved lazily on the first request (ck_cloud_ready), so opening a store does no I/O.
 */
#ifndef CK_STORE_S3_S3_H
#define CK_STORE_S3_S3_H

#include <stdbool.h>

#include "auth/aws_creds.h"
#include "store/cloud.h"
#include "store/s3/s3_config.h"

/* The S3 part of a cloud store (ck_cloud.priv); set by configure and, once, by ready. */
struct ck_s3 {
    struct ck_s3_settings set;    /* read at open; read-only afterwards */
    struct ck_aws_provider *prov; /* owned; thread-safe itself */
    struct ck_s3_endpoint ep;
    bool virtual_host;
    char region[64];
};

/* S3's multipart protocol and upload parts (s3_upload.c); the store's put_begin and del
 * are s3_mpu.c's. */
extern const struct ck_mpu_proto ck_s3_mpu_proto;

/* The store's copy_from op: CopyObject from another S3 store on the same endpoint
 * (s3_copy.c); CK_EUNSUPPORTED when that cannot serve. */
ck_rc ck_s3_copy_from(struct ck_store *dst, struct ck_store *src, uint64_t size,
                      struct ck_err *err);

/* The store's put_copy op: copied parts (UploadPartCopy) from an S3 store on the same
 * endpoint (s3_copy.c); CK_EUNSUPPORTED otherwise (the range is read and written). */
/* The store's copies_from op: both on one endpoint and region (s3_copy.c). */
bool ck_s3_copies_from(struct ck_store *dst, struct ck_store *src);

ck_rc ck_s3_put_copy(struct ck_store_upload *u, const struct ck_copy_src *src, struct ck_err *err);

/* SHA-256 of data as hex (CK_SHA256_HEX_LEN + 1) and base64 (45 bytes). */
void ck_s3_sha256(const void *data, size_t len, char *hex, char *b64);

#endif
