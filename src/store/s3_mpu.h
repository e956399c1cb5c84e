/*
 * s3_mpu.h - the requests around the parts of an S3-protocol multipart upload (initiate,
 * complete, abort, and the sweep of stale uploads of the key), shared by S3 (s3_upload.c)
 * and GCS's XML API (gcs_upload.c), whose parts part_upload.c sends. Internal to
 * src/store/.
 *
 * The requests run through the cloud core (cloud.h, signed or with a bearer token); the
 * backend's adjust hook adds what is its own to each step's request (S3 asks for SHA-256
 * checksums at initiate; a conditional replace's precondition goes on complete). Replies are parsed
 * with s3_xml.c, so an UploadId is checked before it is used and a "200 OK" carrying <Error> from
 * complete is a failure. s3_mpu.c has initiate, complete and abort; s3_sweep.c the sweep.
 */
#ifndef CK_STORE_S3_MPU_H
#define CK_STORE_S3_MPU_H

#include <stdbool.h>
#include <stddef.h>

#include "store/cloud.h"
#include "store/digest.h"
#include "store/part_upload.h"
#include "store/s3_xml.h"

enum ck_mpu_step {
    CK_MPU_INITIATE,
    CK_MPU_COMPLETE,
    CK_MPU_ABORT,
    CK_MPU_LIST,        /* ListMultipartUploads: a GET on the bucket (bucket_level) */
    CK_MPU_ABORT_STALE, /* the abort of an upload the sweep found */
    CK_MPU_STEPS
};

/* What differs between the two services' protocols (a cloud's ck_cloud_ops.mpu). */
struct ck_mpu_proto {
    const char *const *labels;  /* a name per step (CK_MPU_STEPS): "CreateMultipartUpload", ... */
    const char *initiate_query; /* "uploads=" (S3) or "uploads" (GCS); also the listing's */
    bool list_prefix;           /* the listing asks for prefix=key (GCS); else filters here */
    /* adds what is the backend's own to a step's request of an upload (ctx: its struct
     * ck_mpu_up; S3 asks for SHA-256 checksums at initiate; a conditional replace's
     * precondition goes on complete), or NULL */
    void (*adjust)(void *ctx, enum ck_mpu_step step, struct ck_cloud_call *c);
    const struct ck_part_ops *part_ops; /* the upload's parts (CK_MPU_PART_OPS and its own) */
    size_t result_size;                 /* part_upload.c's result of a part */
    const char *sum_element; /* Complete's per-part checksum ("ChecksumCRC32"), or NULL */
};

struct ck_mpu {
    /* set by ck_mpu_init */
    struct ck_cloud *cloud; /* the store's (its display URI and key) */
    const struct ck_mpu_proto *proto;
    void *ctx; /* proto->adjust's, or NULL (no upload: no adjust) */
    /* set by ck_mpu_initiate */
    char upload_id[CK_S3_UPLOAD_ID_MAX + 1];
    char id_query[3 * CK_S3_UPLOAD_ID_MAX + 16]; /* "uploadId=<encoded>" */
};

/* The steps of cloud's protocol (cloud->ops->mpu) for the upload ctx, or NULL. */
void ck_mpu_init(struct ck_mpu *m, struct ck_cloud *cloud, void *ctx);

/* Runs one step's request: the backend's adjust, then the cloud core. */
ck_rc ck_mpu_run(struct ck_mpu *m, enum ck_mpu_step step, struct ck_cloud_call *c,
                 struct ck_err *err);

/* The store's del op for both services: the sweep of the key's open uploads, then DELETE
 * (a 404 is CK_ENOTFOUND, which ck_store_delete takes for done). */
ck_rc ck_mpu_delete_object(struct ck_store *s, struct ck_err *err);

/* Initiates the upload: fills upload_id and id_query. */
ck_rc ck_mpu_initiate(struct ck_mpu *m, struct ck_err *err);

/* Completes the upload with n parts, from part_upload.c's results (result_size bytes each,
 * part 1 first), each starting with the part's ETag as a string; checksum_off > 0: each
 * also holds the base64 SHA-256 sent, as a string at that offset, listed as
 * ChecksumSHA256 (not listed where that string is empty: a copied part the service gave
 * no checksum for). etag (may be NULL) gets the object's ETag from the reply, "" if none. */
ck_rc ck_mpu_complete(struct ck_mpu *m, unsigned n, const void *results, size_t result_size,
                      size_t checksum_off, char *etag, size_t etagsz, struct ck_err *err);

/* Aborts the upload (the engine retries; a vanished upload counts as aborted); a failure
 * is logged: the upload then stays open until a lifecycle rule removes it. */
void ck_mpu_abort(struct ck_mpu *m);

#define CK_MPU_SWEEP_PAGES        100u /* listing pages one sweep reads, at most */
#define CK_MPU_SWEEP_PAGE_UPLOADS 100u /* uploads a page (max-uploads) */

/* The sweep (s3_sweep.c): uploads of the store's key other than m's own (upload_id; ""
 * before or without initiate) were left by a killed daemon or by a retried initiate whose
 * first reply was lost: lists them (CK_MPU_LIST) and aborts them (CK_MPU_ABORT_STALE), so
 * no interrupted save leaves parts behind. Called after every save: after a single PUT,
 * after complete and after abort, whatever their outcome. Follows a truncated listing page
 * by page (usually one request; at most CK_MPU_SWEEP_PAGES, and only while the markers
 * move forward and have not passed the key); ckptfs assumes one writer per destination
 * key. Failures are only logged. */
void ck_mpu_sweep(struct ck_mpu *m);

/* The value of a server-side copy's source header (S3 x-amz-copy-source, GCS
 * x-goog-copy-source): "/BUCKET/KEY", URI-encoded ('/' in the key kept). False when it
 * does not fit in cap bytes (the caller streams the object instead). */
bool ck_mpu_copy_source(const char *bucket, const char *key, char *out, size_t cap);
#define CK_MPU_COPY_SOURCE_MAX (3 * (222 + 1024) + 3) /* room for any bucket and key */

/* A server-side copy of s's object to d's (S3 CopyObject, GCS's XML API copy): a PUT of
 * d with header naming s (x-amz-copy-source, x-goog-copy-source). An <Error> in a 2xx
 * reply is a failure; names too long for the header are CK_EUNSUPPORTED (the caller
 * streams). The caller checks that both are on one endpoint. */
ck_rc ck_mpu_copy_object(struct ck_cloud *d, const struct ck_cloud *s, const char *header,
                         const char *label, const char *query, struct ck_err *err);

/* An upload by this protocol: S3's and GCS's upload contexts (their put_begin). */
struct ck_mpu_up {
    struct ck_cloud_up up;               /* first: part_upload.c frees the context */
    struct ck_mpu mpu;                   /* initiate, complete and abort */
    char full_sum_b64[CK_CRC32_B64_LEN]; /* S3: the whole object's CRC-32 for Complete, "" if
                                            unknown */
};

/* part_upload.h ops both backends share: begin initiates; abort aborts, then sweeps. */
ck_rc ck_mpu_up_begin(void *ctx, struct ck_err *err);
void ck_mpu_up_abort(void *ctx);
#define CK_MPU_PART_OPS .begin = ck_mpu_up_begin, .abort = ck_mpu_up_abort, .free_ctx = free

/* The store's put_begin for both services: an upload context (ck_mpu_up, adjust's ctx)
 * with the protocol's part ops. */
ck_rc ck_mpu_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                       struct ck_store_upload **out, struct ck_err *err);

#endif
