/*
 * store.h - the one interface to object storage.
 *
 * A backend is a table of operations plus private state (struct ck_store). The daemon,
 * the save pipeline and the loader use only the ck_store_* calls below; nothing outside
 * src/store/ knows which backend it talks to. Backends today: file:// and plain paths
 * (store_file.c), http:// and https:// (store_http.c), s3:// (s3/, docs/s3.md),
 * gs:// (gcs/, docs/gcs.md), az:// / abfs[s]:// / https://ACCOUNT.blob.core.windows.net
 * (azure/, docs/azure.md).
 *
 * Semantics every backend keeps:
 *   - head: exists=false (rc CK_OK) for a missing object; an error only for real failures
 *     (auth, network after retries), so "no previous checkpoint" is never confused with
 *     "could not reach the store".
 *   - get: streams bytes [off, off+len) into the sink; len CK_STORE_TO_END reads to the
 *     end. A transient failure mid-body is retried from the first byte not yet delivered,
 *     so the sink sees every byte exactly once. CK_ENOTFOUND if the object is missing.
 *   - put: put_begin, any number of put_write calls, then exactly one of put_commit or
 *     put_abort, each of which frees the upload. The object at the URI changes only in
 *     put_commit and atomically: readers see the old object or the whole new one. A
 *     failed commit or an abort leaves the old object as it was and nothing partial.
 *   - Replays: a caller that can produce the same bytes again says so (ck_put_opts
 *     .replayable). A backend that then keeps only a bounded window of them (http, whose
 *     PUT cannot resume) sets upload->may_replay; when it needs bytes it no longer holds
 *     (a PUT failed after the window moved on, a server that wants the length first) a
 *     put_write or put_commit fails with CK_EREPLAY, the upload is gone (put_abort it
 *     after a put_write failure, as after any), and the caller writes the same bytes into
 *     a new upload with .pass + 1 and .size set to what the last pass wrote. Without
 *     .replayable a backend never answers CK_EREPLAY.
 *   - Create-only puts (ck_put_opts .if_absent): the commit succeeds only if no object
 *     exists at the URI when it is applied; if one does, put_commit fails with CK_EEXIST
 *     ("PUT s3://b/k: an object is already there (If-None-Match: *)") and nothing is
 *     changed. The check and the write are one atomic step on the server (or the file
 *     system), never a HEAD followed by a PUT. A backend that cannot do that answers
 *     CK_EUNSUPPORTED at put_begin (http, https). It is meant for small objects (a few
 *     bytes: markers, claims): a backend may serve it only in its single-request path, and
 *     an object that would need a multipart, block or resumable upload fails its commit
 *     with CK_EUNSUPPORTED. When a reply is lost and the backend cannot tell whether its
 *     own request created the object, it reads the object back: the same bytes as ours
 *     count as ours (success), any other object is CK_EEXIST. So two writers that may race
 *     for one URI must write bodies that differ (a writer id, a nonce) to learn who won.
 *   - Conditional replaces (ck_put_opts .if_match): the commit succeeds only if the object
 *     at the URI is, when the commit is applied, the one a head() showed (its .version),
 *     or with "" only if no object is there; else put_commit fails with CK_EEXIST ("PUT
 *     s3://b/k: the object changed since it was read (If-Match: "e1")") and nothing is
 *     changed. Any size (single request, multipart, block list). The check and the write
 *     are one atomic step: a conditional header on the committing request (S3 and Azure
 *     If-Match / If-None-Match: *, GCS x-goog-if-generation-match), or on file:// an
 *     exclusive flock(2) of the directory that every commit there takes. http(s) answers
 *     CK_EUNSUPPORTED at put_begin. A commit that failed ambiguously (a lost reply, a
 *     refusal after a retry) is settled by a head(): our own new object is success, the
 *     expected one means the failure stands, any other is CK_EEXIST. A store that ignores
 *     the header (radosgw ignores If-Match on PUT, docs/s3.md) overwrites.
 *   - Copied ranges (ck_store_put_copy): the next bytes of an upload may be a byte range of
 *     an existing object, named with the version its head() showed: the upload then holds
 *     exactly those bytes, as if written, or the call fails (CK_EEXIST "the source
 *     changed" when the object is no longer that version; the upload must then be aborted,
 *     as after a failed put_write). A backend that can copy on the server or the file
 *     system does (put_copy: file:// with copy_file_range, a reflink where the file system
 *     can; S3 with UploadPartCopy, part_upload.h "Copied parts"); any other range is read
 *     with get and written, its version checked by a head before and after. A copy the
 *     service makes later (S3's parts run on workers) is checked again before the commit,
 *     which fails with CK_EEXIST if the source changed meanwhile. A saved object never
 *     holds a wrong byte of a source that changed. The source store stays open until the
 *     upload is committed or aborted.
 *   - Deletes (ck_store_delete): the object goes, and with it what unfinished uploads of
 *     its key left (S3 and GCS: open multipart uploads; file://: temp files of killed
 *     writers; Azure: nothing to do, uncommitted blocks expire by themselves). CK_OK also
 *     when nothing was there. Only for a key no writer is uploading to: an upload in
 *     progress would lose its parts. http(s): CK_EUNSUPPORTED.
 *   - Thread safety: a ck_store may be used by several threads at once; one upload is
 *     used by one thread at a time.
 *   - Errors name the operation and the display URI ("PUT http://h/ck: HTTP 403
 *     Forbidden"); secrets (query strings of presigned URLs, credentials) never appear.
 */
#ifndef CK_STORE_STORE_H
#define CK_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "net/retry.h"
#include "util/err.h"
#include "util/sink.h"

#define CK_STORE_TO_END    UINT64_MAX
#define CK_UPLOAD_MARK_LEN 16 /* hex digits of an upload's mark (ck_store_info .mark) */

struct ck_store;
struct ck_store_upload;
struct ck_put_opts;

/* A byte range of an existing object, the source of ck_store_put_copy. */
struct ck_copy_src {
    struct ck_store *store; /* the object's store (not owned) */
    const char *version;    /* head()'s .version it must still have (its .etag where the
                               store has no versions: http); "" or NULL: unchecked */
    uint64_t off, len;
};

/* What head() learns about an object. */
struct ck_store_info {
    bool exists;
    uint64_t size;
    char etag[128];    /* empty if the store gave none */
    char version[128]; /* what ck_put_opts .if_match takes: the ETag (file, S3, Azure), the
                          generation (GCS); empty where the store has none (http) */
    char mark[CK_UPLOAD_MARK_LEN + 1]; /* the mark of the ckptfs upload that made the
                          object, from its metadata (GCS, Azure); empty if none */
};

/* What every backend may use. Owned by the caller; must outlive the store. */
struct ck_store_env {
    struct ck_retry_policy retry; /* for transient failures */
    double stall_timeout_s;       /* a transfer with no progress for this long is cut */
    double connect_timeout_s;
    bool no_sign_request;  /* s3, gs, azure: anonymous requests (--no-sign-request) */
    uint64_t part_memory;  /* s3, gs, azure: part buffers of an upload in memory at most
                              (0: the default, part_upload.h); larger parts are spooled */
    const char *spool_dir; /* where (the cache dir); NULL: never spooled */
};

/* Fills env with defaults (no scratch dir, default retry policy, 30 s stall, 10 s connect,
 * signed requests). */
void ck_store_env_default(struct ck_store_env *env);

struct ck_store_ops {
    const char *name; /* "file", "http" */
    bool conditional; /* put_begin takes ck_put_opts .if_match (see above) */
    bool local;       /* the object is on this host (file://): no request latency */
    ck_rc (*head)(struct ck_store *s, struct ck_store_info *info, struct ck_err *err);
    ck_rc (*get)(struct ck_store *s, uint64_t off, uint64_t len, const struct ck_sink *sink,
                 struct ck_err *err);
    ck_rc (*put_begin)(struct ck_store *s, const struct ck_put_opts *opts,
                       struct ck_store_upload **out, struct ck_err *err);
    ck_rc (*put_write)(struct ck_store_upload *u, const void *buf, size_t len, struct ck_err *err);
    ck_rc (*put_commit)(struct ck_store_upload *u, struct ck_err *err);
    void (*put_abort)(struct ck_store_upload *u);
    /* Optional: the server copies src (same backend; size bytes from its head) to this
     * store's object, atomically like a put. CK_EUNSUPPORTED when it cannot (another
     * endpoint, too large): the caller then streams the bytes. */
    ck_rc (*copy_from)(struct ck_store *dst, struct ck_store *src, uint64_t size,
                       struct ck_err *err);
    /* Optional (NULL, or CK_EUNSUPPORTED: the bytes are read and written): see "Copied
     * ranges" above. src is on the same backend (same ops). */
    ck_rc (*put_copy)(struct ck_store_upload *u, const struct ck_copy_src *src, struct ck_err *err);
    /* Optional (NULL: any store of this backend): whether put_copy can copy from src's
     * objects into dst's (S3: one endpoint and region). May resolve credentials. */
    bool (*copies_from)(struct ck_store *dst, struct ck_store *src);
    /* Optional (NULL: CK_EUNSUPPORTED): see "Deletes" above; CK_ENOTFOUND counts as done. */
    ck_rc (*del)(struct ck_store *s, struct ck_err *err);
    void (*destroy)(struct ck_store *s);
};

struct ck_store {
    const struct ck_store_ops *ops;
    char *display_uri;              /* owned; safe to log (no query string, no secrets) */
    const struct ck_store_env *env; /* not owned */
    void *priv;                     /* backend state, freed by ops->destroy */
};

#define CK_STORE_SIZE_UNKNOWN UINT64_MAX
#define CK_STORE_MAX_PASSES                                                                        \
    16 /* replays a writer allows at most; the backend's retry                                     \
           budget normally ends them first */

/* How an upload is written (see "Replays" above). NULL means all defaults. */
struct ck_put_opts {
    bool replayable;      /* the caller can write the same bytes again into a new upload */
    uint64_t size;        /* their exact count if known (a replay), else CK_STORE_SIZE_UNKNOWN */
    unsigned pass;        /* 0 for the first upload of these bytes, then 1, 2, ... */
    bool if_absent;       /* create only: the commit succeeds only if no object exists at the
                             URI (at commit time); else CK_EEXIST naming the URI, and nothing is
                             changed. CK_EUNSUPPORTED at put_begin where the backend cannot do
                             it atomically. Small objects only (see "Create-only puts" above) */
    const char *if_match; /* NULL: unconditional; else a conditional replace (see above):
                             head()'s .version of the object that must be there at commit,
                             or "" for none. Borrowed for put_begin only */
};

/* Every backend's upload starts with this header. */
struct ck_store_upload {
    struct ck_store *store;
    uint64_t bytes;  /* bytes accepted by put_write so far */
    bool may_replay; /* set by the backend at put_begin: it may answer CK_EREPLAY */
};

/* Opens the backend that serves uri ("file:///p", "/p", "rel/p", "http://h/p",
 * "https://h/p?sig", "s3://bucket/key"). CK_EINVAL for a malformed URI, CK_EUNSUPPORTED for an
 * unknown scheme. Opening does no network I/O. The store is freed with ck_store_close(). */
ck_rc ck_store_open(const char *uri, const struct ck_store_env *env, struct ck_store **out,
                    struct ck_err *err);
void ck_store_close(struct ck_store *s);

static inline const char *ck_store_uri(const struct ck_store *s)
{
    return s->display_uri;
}

/* Whether s can delete (ck_store_delete): every backend but http. */
static inline bool ck_store_deletes(const struct ck_store *s)
{
    return s->ops->del != NULL;
}

/* Whether s does conditional replaces (ck_put_opts .if_match): every backend but http. */
/* Whether the store can make a byte range of one of its objects part of an upload
 * without the bytes passing through here (put_copy: file://, S3); elsewhere
 * ck_store_put_copy reads the range and writes it. */
static inline bool ck_store_copies_ranges(const struct ck_store *s)
{
    return s->ops->put_copy != NULL;
}

/* Whether dst copies byte ranges of src's objects that way (ck_store_copies_ranges, and src
 * on the same backend and, for S3, the same endpoint). May resolve credentials. */
bool ck_store_copies_from(struct ck_store *dst, struct ck_store *src);

/* Whether s's object is on this host (file://), where parallel requests gain nothing. */
static inline bool ck_store_is_local(const struct ck_store *s)
{
    return s->ops->local;
}

static inline bool ck_store_conditional(const struct ck_store *s)
{
    return s->ops->conditional;
}

ck_rc ck_store_head(struct ck_store *s, struct ck_store_info *info, struct ck_err *err);
ck_rc ck_store_get(struct ck_store *s, uint64_t off, uint64_t len, const struct ck_sink *sink,
                   struct ck_err *err);
/* Exactly len bytes at off into a new malloc'd buffer (*out; the caller frees it). */
ck_rc ck_store_get_mem(struct ck_store *s, uint64_t off, size_t len, unsigned char **out,
                       struct ck_err *err);
/* The same with the store passed as ctx: a reader callback (archive/seek_index.h's
 * ck_ix_read_fn). */
ck_rc ck_store_read_mem(void *store, uint64_t off, size_t len, unsigned char **out,
                        struct ck_err *err);
ck_rc ck_store_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                         struct ck_store_upload **out, struct ck_err *err);
ck_rc ck_store_put_write(struct ck_store_upload *u, const void *buf, size_t len,
                         struct ck_err *err);
/* CK_OK if src's object is still the version it names ("" or NULL: any); CK_EEXIST
 * "the source changed" if not (another version, or gone). One head(). */
ck_rc ck_store_check_source(const struct ck_copy_src *src, struct ck_err *err);

/* Appends src's range to the upload (see "Copied ranges" above); *server_side tells
 * whether the backend copied it without the bytes passing through here. */
ck_rc ck_store_put_copy(struct ck_store_upload *u, const struct ck_copy_src *src, bool *server_side,
                        struct ck_err *err);
ck_rc ck_store_put_commit(struct ck_store_upload *u, struct ck_err *err);
void ck_store_put_abort(struct ck_store_upload *u);

/* Copies src's object (size bytes, as its head said) to dst, atomically like any put:
 * server-side where the backend can (*server_side tells), else GET streamed into a PUT.
 * A short or long source is an error and leaves dst as it was. */
ck_rc ck_store_copy(struct ck_store *src, uint64_t size, struct ck_store *dst, bool *server_side,
                    struct ck_err *err);

/* Deletes the object and its key's unfinished uploads; see "Deletes" above. */
ck_rc ck_store_delete(struct ck_store *s, struct ck_err *err);

/* A sink that feeds an upload; ctx is the struct ck_store_upload. */
struct ck_sink ck_store_upload_sink(struct ck_store_upload *u);

#endif
