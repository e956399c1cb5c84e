/*
 * gcs.h - the GCS backend's own state (internal to src/store/); what it shares with S3
 * and Azure is in cloud.h. store_gcs.c is its store ops table (head and get are the cloud
 * core's), gcs_upload.c the XML API multipart upload (through part_upload.c, with
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

/* GCS's part of the cloud core (gcs_request.c): settings, URLs, bearer tokens. */
extern const struct ck_cloud_ops ck_gcs_cloud_ops;

/* The store's copy_from op: a server-side copy from another gs:// store on the same
 * endpoint (gcs_copy.c); CK_EUNSUPPORTED when that cannot serve. */
ck_rc ck_gcs_copy_from(struct ck_store *dst, struct ck_store *src, uint64_t size,
                       struct ck_err *err);

/* The store's del op (gcs_upload.c). */
ck_rc ck_gcs_delete(struct ck_store *s, struct ck_err *err);

ck_rc ck_gcs_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                       struct ck_store_upload **out, struct ck_err *err);

#endif
