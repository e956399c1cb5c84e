/*
 * gcs.h - the GCS backend's own state (internal to src/store/); what it shares with S3
 * and Azure is in cloud.h. gcs_request.c holds its table of ops (store and cloud; head and
 * get are the cloud core's), gcs_upload.c the XML API multipart upload (through part_upload.c, with
 * initiate, complete, abort and the sweep of stale uploads shared with S3: s3_mpu.h),
 * gcs_request.c GCS's part of the cloud core: settings, URLs, a bearer token on every
 * attempt. See docs/gcs.md.
 */
#ifndef CK_STORE_GCS_GCS_H
#define CK_STORE_GCS_GCS_H

#include <stdbool.h>

#include "auth/gcp_creds.h"
#include "store/cloud.h"

#define CK_GCS_ENDPOINT  "https://storage.googleapis.com"
#define CK_GCS_MAX_PARTS 10000u
#define CK_GCS_MIN_PART  (5ull << 20)
#define CK_GCS_MAX_PART  (5ull << 30)

/* The GCS part of a cloud store (ck_cloud.priv). */
struct ck_gcs {
    char endpoint[512];           /* scheme://host[:port], no trailing slash; read-only */
    bool anonymous;               /* STORAGE_EMULATOR_HOST or --no-sign-request */
    struct ck_gcp_provider *prov; /* owned; set by ready, thread-safe itself */
};

/* The store's copy_from op: a server-side copy from another gs:// store on the same
 * endpoint (gcs_copy.c); CK_EUNSUPPORTED when that cannot serve. */
ck_rc ck_gcs_copy_from(struct ck_store *dst, struct ck_store *src, uint64_t size,
                       struct ck_err *err);

/* GCS's multipart protocol and upload parts (gcs_upload.c); the store's put_begin and
 * del are s3_mpu.c's. */
extern const struct ck_mpu_proto ck_gcs_mpu_proto;

#endif
