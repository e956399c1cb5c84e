/*
 * cloud.h - what the three object-store clouds (S3, GCS, Azure Blob) share, once
 * (internal to src/store/).
 *
 * A cloud store is a struct ck_cloud (bucket or container, key, display URI, part
 * settings, the lazy set-up of credentials) plus a small table of what is really each
 * cloud's own (struct ck_cloud_ops): its settings at open, its credentials and endpoint on
 * the first request, the URL of a request, the authorization of each attempt, and how its
 * error replies name a code. One request (struct ck_cloud_call) is described once and
 * run by ck_cloud_perform with the HTTP engine's retries; head, get, open and destroy are
 * the same for all three (CK_CLOUD_STORE_OPS). Uploads, copies and deletes stay with each
 * cloud (s3_upload.c, gcs_upload.c, azure_upload.c), built on ck_cloud_perform.
 */
#ifndef CK_STORE_CLOUD_H
#define CK_STORE_CLOUD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/http.h"
#include "store/cond_put.h"
#include "store/part_upload.h"
#include "store/store.h"
#include "store/uri.h"

#define CK_CLOUD_HEADERS  4    /* cloud-specific headers of one call, at most */
#define CK_CLOUD_PATH_MAX 4096 /* the encoded path of one request */
#define CK_CLOUD_URL_MAX  12288

/* The no-progress bound of a commit request (call.commit), whatever the store's stall
 * timeout: S3 may work on a CompleteMultipartUpload for minutes (sending only keep-alive
 * whitespace, or nothing through a proxy), and a cut there makes the outcome ambiguous. */
#define CK_COMMIT_STALL_S 300.0

struct ck_cloud_header {
    const char *name; /* lower case: "x-amz-checksum-sha256", "x-goog-copy-source", ... */
    const char *value;
};

/* One request on the store's object. Pointers are borrowed for the call. */
struct ck_cloud_call {
    enum ck_http_method method;
    const char *query; /* "" or NULL, or encoded "name=value&..." */
    const char *label; /* shown after the URI in messages ("part 3"), or NULL */
    const void *body;  /* PUT/POST body in memory */
    size_t body_len;
    const struct ck_part_body *body_src; /* or a part's body (in memory or spooled): then
                                            body is NULL and body_len its length */
    const char *body_sha256;   /* hex SHA-256 of body if the caller has it (S3 signs it) */
    const char *content_type;  /* or NULL */
    const char *content_md5;   /* base64, or NULL */
    const char *if_match;      /* "If-Match: VALUE" (a conditional replace), or NULL */
    const char *if_none_match; /* "If-None-Match: VALUE" ("*": create only), or NULL */
    struct ck_cloud_header hdr[CK_CLOUD_HEADERS]; /* the cloud's own headers (x-amz-*,
                             x-goog-*, x-ms-*), sent on every attempt and signed where the
                             cloud signs such headers; unused slots have name NULL */
    bool has_range;                               /* GET */
    uint64_t range_off, range_len;
    const struct ck_sink *sink;            /* GET body */
    struct ck_buf *reply_body;             /* other methods' 2xx body (capped by its max) */
    bool error_in_2xx;                     /* a 200 with an <Error> document is a failure */
    const char *capture[CK_HTTP_CAPTURES]; /* reply headers to keep (ck_http_request);
                                              capture[0] NULL: the cloud's error_header */
    const atomic_bool *cancel;             /* when set, no further attempt starts (CK_ECANCELED) */
    bool bucket_level;                     /* address the bucket (listings), not the key */
    bool commit; /* a commit: no short no-progress cut (CK_COMMIT_STALL_S) */
};

/* Adds "name: value" to the first free slot of c->hdr; nothing if name is NULL. The
 * slots are enough for every call (CK_CLOUD_HEADERS): more is a bug, caught by assert. */
void ck_cloud_add_header(struct ck_cloud_call *c, const char *name, const char *value);

/* Where one request goes. */
struct ck_cloud_target {
    char url[CK_CLOUD_URL_MAX];   /* scheme://host/path?query; may hold a SAS (secret) */
    char host[320];               /* host[:port] (S3 sends and signs it as Host) */
    char path[CK_CLOUD_PATH_MAX]; /* the encoded path as sent, without the query */
};

struct ck_cloud;
struct ck_mpu_proto;

/* The store ops every cloud shares, written once: a cloud's .store table adds its name,
 * put_begin and the verbs it has (del, copy_from, put_copy). */
#define CK_CLOUD_STORE_OPS                                                                         \
    .conditional = true, .head = ck_cloud_head, .get = ck_cloud_get,                               \
    .put_write = ck_part_upload_write, .put_commit = ck_part_upload_commit,                        \
    .put_abort = ck_part_upload_abort, .destroy = ck_cloud_destroy

/* What each cloud does its own way. */
struct ck_cloud_ops {
    struct ck_store_ops store; /* the store's ops (name "s3", "gcs", "azure") */
    /* At open: reads the settings (environment, URI), sets c->parts and c->priv. No I/O. */
    ck_rc (*configure)(struct ck_cloud *c, const struct ck_uri *uri, struct ck_err *err);
    /* On the first request, under c->lock: credentials, region, endpoint. */
    ck_rc (*ready)(struct ck_cloud *c, struct ck_err *err);
    ck_rc (*target)(const struct ck_cloud *c, const struct ck_cloud_call *call,
                    struct ck_cloud_target *t, struct ck_err *err);
    /* Before every attempt: the headers that authorize it (a signature over that attempt,
     * a fresh token), or nothing (anonymous, a SAS in the URL). */
    ck_rc (*authorize)(struct ck_cloud *c, const struct ck_cloud_call *call,
                       const struct ck_cloud_target *t, struct ck_http_attempt *a,
                       struct ck_err *err);
    /* The code and message of an error reply; false if it names none. */
    bool (*error_code)(const struct ck_http_response *resp, char *code, size_t codesz, char *msg,
                       size_t msgsz);
    void (*destroy)(void *priv);
    const struct ck_mpu_proto *mpu; /* S3-protocol multipart uploads (S3, GCS; s3_mpu.h) */
    bool send_host;                 /* send Host explicitly (S3: what is signed is what is sent) */
    const char *error_header;       /* a reply header captured on every call (Azure's error code) */
    const char *version_header;     /* the header a HEAD reads the object's version from
                                       (GCS: x-goog-generation); NULL: the ETag */
    const char *ca_env;             /* an environment variable naming this cloud's CA bundle,
                                       before the generic ones (S3: AWS_CA_BUNDLE), or NULL */
    const char *mark_header;        /* the metadata header that carries the mark of the
                                       upload that made the object (ck_cloud_up .mark), read
                                       by HEAD; NULL: uploads are not marked */
};

struct ck_cloud {
    const struct ck_cloud_ops *ops;
    char *bucket;                   /* bucket or container; owned */
    char *key;                      /* object or blob name; owned */
    const char *display;            /* the store's display URI (not owned) */
    const struct ck_store_env *env; /* not owned */
    struct ck_part_cfg parts;       /* set by configure; read-only afterwards */
    void *priv;                     /* the cloud's own state, freed by ops->destroy */

    pthread_mutex_t lock; /* serialises ops->ready */
    bool ready;           /* set once under lock; ready's results are read-only after */
};

/* Opens a store of this cloud: the struct ck_store with ops->store, a struct ck_cloud as
 * its priv, configured. No I/O. */
ck_rc ck_cloud_open(const struct ck_cloud_ops *ops, const struct ck_uri *uri,
                    const struct ck_store_env *env, struct ck_store **out, struct ck_err *err);

/* Runs the cloud's first-request set-up (ops->ready) if it has not run. Thread-safe. */
ck_rc ck_cloud_ready(struct ck_cloud *c, struct ck_err *err);

/* Runs call with the engine's retries, authorized afresh on every attempt. On failure the
 * message is "METHOD URI (label): HTTP 403 AccessDenied: Access Denied" when the cloud
 * named a code. */
ck_rc ck_cloud_perform(struct ck_cloud *c, const struct ck_cloud_call *call,
                       struct ck_http_response *resp, struct ck_err *err);

/* A PUT of data with its Content-MD5, which GCS and Azure check (parts, blocks, single
 * puts); call names the rest (query, label, headers, conditions). */
ck_rc ck_cloud_put_md5(struct ck_cloud *c, struct ck_cloud_call *call,
                       const struct ck_part_body *body, struct ck_http_response *resp,
                       struct ck_err *err);

#define CK_CLOUD_ERROR_MAX (256 * 1024) /* largest error document parsed */

/* Code (letters, digits and dots, not empty) and Message (its first line, printable ASCII,
 * cut to msgsz - 1; Azure's adds RequestId and Time lines) of the S3-shaped XML error
 * document (<Error><Code>..<Message>..) that S3, GCS's XML API and Azure send; false if
 * body is not one. A truncated body may still give both. */
bool ck_cloud_error_doc(const char *body, size_t len, char *code, size_t codesz, char *msg,
                        size_t msgsz);

/* An error_code op for that document, in a reply's error body. */
bool ck_cloud_xml_error_code(const struct ck_http_response *resp, char *code, size_t codesz,
                             char *msg, size_t msgsz);

/* The store ops every cloud shares. */
ck_rc ck_cloud_head(struct ck_store *s, struct ck_store_info *info, struct ck_err *err);
ck_rc ck_cloud_get(struct ck_store *s, uint64_t off, uint64_t len, const struct ck_sink *sink,
                   struct ck_err *err);
void ck_cloud_destroy(struct ck_store *s);

/* What every cloud's upload context starts with (s3_upload.c, gcs_upload.c,
 * azure_upload.c); part_upload.c frees the context with free(). */
struct ck_cloud_up {
    struct ck_cloud *c;
    struct ck_store *store; /* not owned: the HEAD or read-back that settles an ambiguous
                               commit */
    bool if_absent;         /* a create-only put: one request with the cloud's condition */
    struct ck_cond cond;    /* a conditional replace: the precondition on the commit */
    char mark[CK_UPLOAD_MARK_LEN + 1]; /* random hex naming this upload; the object it
                                          makes carries it in ops->mark_header */
};

/* A zeroed upload context of size bytes (a cloud's struct, starting with struct
 * ck_cloud_up) filled in for s and opts. Every byte is kept until stored: no replays. */
ck_rc ck_cloud_up_new(struct ck_store *s, const struct ck_put_opts *opts, size_t size, void **out,
                      struct ck_err *err);

/* Hands the context to part_upload.c with the cloud's part settings; results of
 * result_size bytes a part. A create-only put is one request (single_only). */
ck_rc ck_cloud_up_start(struct ck_cloud_up *up, const struct ck_part_ops *ops, size_t result_size,
                        struct ck_store_upload **out, struct ck_err *err);

static inline struct ck_cloud *ck_cloud_of(const struct ck_store *s)
{
    return s->priv;
}

#endif
