/*
 * gcs.h - the GCS backend's shared state and its one authorised request (internal to
 * src/store/). store_gcs.c opens the store and serves head/get, gcs_upload.c the XML API
 * multipart upload (through part_upload.c, with initiate, complete, abort and the sweep of
 * stale uploads shared with S3: s3_mpu.h), gcs_request.c builds URLs and runs requests
 * with a bearer token. See docs/gcs.md.
 */
#ifndef CK_STORE_GCS_H
#define CK_STORE_GCS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "auth/gcp_creds.h"
#include "net/http.h"
#include "store/part_upload.h"
#include "store/store.h"

#define CK_GCS_ENDPOINT  "https://storage.googleapis.com"
#define CK_GCS_MAX_PARTS 10000u
#define CK_GCS_MIN_PART  (5ull << 20)
#define CK_GCS_MAX_PART  (5ull << 30)

struct ck_gcs {
    char *bucket;                   /* owned */
    char *key;                      /* owned */
    const char *display;            /* the store's display URI (not owned) */
    const struct ck_store_env *env; /* not owned */
    char endpoint[512];             /* scheme://host[:port], no trailing slash; read-only */
    bool anonymous;                 /* STORAGE_EMULATOR_HOST or --no-sign-request */
    struct ck_part_cfg parts;       /* read at open */

    pthread_mutex_t lock;         /* protects prov until ready is set */
    bool ready;                   /* then prov is read-only (and thread-safe itself) */
    struct ck_gcp_provider *prov; /* owned */
};

/* One request on the store's object. Pointers are borrowed for the call. */
struct ck_gcs_call {
    enum ck_http_method method;
    const char *query; /* "" or encoded "name=value&..." */
    const char *label; /* shown after the URI in messages ("part 3"), or NULL */
    const void *body;
    size_t body_len;
    const char *content_md5;  /* base64, or NULL */
    const char *content_type; /* or NULL */
    bool has_range;
    uint64_t range_off, range_len;
    const struct ck_sink *sink;
    struct ck_buf *reply_body;
    bool error_in_2xx;
    const atomic_bool *cancel;  /* when set, no further attempt starts */
    bool bucket_level;          /* address the bucket (list multipart uploads), not the key */
    const char *copy_source;    /* "/bucket/object" (encoded): a server-side copy, or NULL */
    const char *if_generation;  /* x-goog-if-generation-match: VALUE ("0": create only) */
    const char *capture_header; /* a reply header to keep (ck_http_request), or NULL */
};

/* Settings from the environment (endpoint, part size, parallelism). No I/O. */
ck_rc ck_gcs_configure(struct ck_gcs *g, struct ck_err *err);

/* Runs call with retries, with a fresh bearer token on every attempt. On failure the
 * message is "METHOD gs://b/k (label): HTTP 403 AccessDenied: ..." when GCS said so. */
ck_rc ck_gcs_perform(struct ck_gcs *g, const struct ck_gcs_call *call,
                     struct ck_http_response *resp, struct ck_err *err);

/* The store's copy_from op: a server-side copy from another gs:// store on the same
 * endpoint (gcs_copy.c); CK_EUNSUPPORTED when that cannot serve. */
ck_rc ck_gcs_copy_from(struct ck_store *dst, struct ck_store *src, uint64_t size,
                       struct ck_err *err);

/* The store's del op (gcs_upload.c). */
ck_rc ck_gcs_delete(struct ck_store *s, struct ck_err *err);

ck_rc ck_gcs_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                       struct ck_store_upload **out, struct ck_err *err);

#endif
