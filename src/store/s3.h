/*
 * s3.h - the S3 backend's shared state and its one signed request (internal to src/store/).
 *
 * store_s3.c opens the store and serves head/get; s3_upload.c supplies the requests of an
 * upload (a single PUT or a multipart upload) to part_upload.c, which does the parts in
 * flight; s3_mpu.c and s3_sweep.c (shared with GCS, see s3_mpu.h) run initiate, complete
 * and abort and the sweep of stale uploads of the key; s3_request.c signs and runs every
 * request. The credentials provider, the region and hence the endpoint are resolved
 * lazily on the first request (ck_s3_ready), so opening a store does no I/O.
 */
#ifndef CK_STORE_S3_H
#define CK_STORE_S3_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/aws_creds.h"
#include "net/http.h"
#include "store/part_upload.h"
#include "store/s3_config.h"
#include "store/store.h"

/* The store's private state (ck_store.priv). */
struct ck_s3 {
    char *bucket;                   /* owned */
    char *key;                      /* owned */
    const char *display;            /* the store's display URI (not owned) */
    const struct ck_store_env *env; /* not owned */
    struct ck_s3_settings set;      /* read at open; read-only afterwards */

    pthread_mutex_t lock;         /* protects the fields below until ready is set */
    bool ready;                   /* set once, under lock; the fields below are then
                                     read-only and read without the lock */
    struct ck_aws_provider *prov; /* owned; thread-safe itself */
    struct ck_s3_endpoint ep;
    bool virtual_host;
    char region[64];
};

/* Creates the credentials provider and resolves region, endpoint and addressing on the
 * first call; later calls return at once. Thread-safe. */
ck_rc ck_s3_ready(struct ck_s3 *s3, struct ck_err *err);

/* One S3 request on the store's object. Pointers are borrowed for the call. */
struct ck_s3_call {
    enum ck_http_method method;
    const char *query; /* "" or encoded "name=value&..." */
    const char *label; /* shown after the URI in messages ("part 3"), or NULL */
    const void *body;  /* PUT/POST body in memory */
    size_t body_len;
    const char *payload_hash; /* hex SHA-256 of body; NULL: computed here */
    const char *checksum_b64; /* sent and signed as x-amz-checksum-sha256, or NULL */
    const char *content_type; /* or NULL */
    const char *amz_name;     /* one more signed x-amz-* header, or NULL */
    const char *amz_value;
    const char *if_none_match; /* send and sign "If-None-Match: VALUE" ("*": create only) */
    const char *if_match;      /* send and sign "If-Match: VALUE" (a conditional replace) */
    bool has_range;            /* GET */
    uint64_t range_off, range_len;
    const struct ck_sink *sink; /* GET body */
    struct ck_buf *reply_body;  /* other methods' 2xx body (capped by its max) */
    bool error_in_2xx;          /* CompleteMultipartUpload */
    const char *capture_header; /* see ck_http_request */
    const atomic_bool *cancel;  /* when set, no further attempt starts (CK_ECANCELED) */
    bool bucket_level;          /* address the bucket (ListMultipartUploads), not the key */
    bool commit;                /* a commit (CompleteMultipartUpload): the server may take
                                   long to answer; no short no-progress cut (CK_COMMIT_STALL_S) */
};

/* The no-progress bound of a commit request, whatever the store's stall timeout: S3 may
 * work on a CompleteMultipartUpload for minutes (sending only keep-alive whitespace, or
 * nothing through a proxy), and a cut there makes the outcome ambiguous. */
#define CK_COMMIT_STALL_S 300.0

/* Runs call with retries, signed afresh on every attempt (SigV4 over the payload's SHA-256,
 * session token included; unsigned when the store is anonymous). On failure the message is
 * "METHOD s3://b/k[ label]: HTTP 403 AccessDenied: Access Denied" when the server said so. */
ck_rc ck_s3_perform(struct ck_s3 *s3, const struct ck_s3_call *call, struct ck_http_response *resp,
                    struct ck_err *err);

/* An upload of the store's object (s3_upload.c); put_write, put_commit and put_abort are
 * part_upload.c's. */
/* The store's del op (s3_upload.c). */
ck_rc ck_s3_delete(struct ck_store *s, struct ck_err *err);

ck_rc ck_s3_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                      struct ck_store_upload **out, struct ck_err *err);

/* The store's copy_from op: CopyObject from another S3 store on the same endpoint
 * (s3_copy.c); CK_EUNSUPPORTED when that cannot serve. */
ck_rc ck_s3_copy_from(struct ck_store *dst, struct ck_store *src, uint64_t size,
                      struct ck_err *err);

/* SHA-256 of data as hex (CK_SHA256_HEX_LEN + 1) and base64 (45 bytes). */
void ck_s3_sha256(const void *data, size_t len, char *hex, char *b64);

#endif
