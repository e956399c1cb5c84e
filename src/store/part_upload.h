/*
 * part_upload.h - an upload in parts with parts in flight and bounded memory, for backends
 * whose atomic commit lists parts uploaded in parallel (S3 multipart upload in
 * s3_upload.c, GCS XML multipart upload in gcs_upload.c, Azure Put Block + Put Block List
 * in azure_upload.c). Internal to src/store/.
 *
 * The backend supplies what is specific to it (ops): begin (start a multi-part upload),
 * send (one part, on a worker thread), complete (the atomic commit, given every part's
 * result), abort (clean up after begin), single (the whole object in one request, used
 * when it fits in the first part). This file does the rest: put_write fills a part
 * buffer; a part is handed to a pool of `parallel` workers only when it is full *and*
 * more bytes arrive, so at commit the last buffer is either the whole object (single) or
 * the last part. At most parallel + 1 part buffers exist, fewer once parts grow so that
 * buffers x part size stays within cfg.memory (never fewer than two: one filling, one
 * uploading); a part over half of cfg.memory goes to a spool file in cfg.spool_dir
 * instead (part_body.h; at most CK_PART_SPOOLED of them), so memory stays within
 * cfg.memory whatever the object's size (ck_part_plan). put_write blocks while all are
 * busy (back-pressure on the save pipeline). Part n has ck_part_size(part_size, max_part,
 * growth, n) bytes: part_size * 2^floor((n-1)/1000), capped at max_part, so that with S3's
 * limits (5 MiB .. 5 GiB, 10,000 parts) any object fits while small ones keep small parts.
 *
 * Copied parts (ck_part_upload_copy, the put_copy of a backend with a copy verb): a byte
 * range of an existing object on the same service becomes parts the service copies (S3
 * UploadPartCopy), never read here. A part but the last may not be smaller than min_part:
 * a started part below it is first topped up to min_part with a ranged GET of the range's
 * head, then handed over as it is (once parts were copied, the last full part written is
 * held back until the next holds min_part, so that a short one joins it instead); the rest is split
 * into copied parts sized alike, about CK_PART_COPY_CHUNK each so that the workers copy side by
 * side (larger where a range would need over 1,000 parts; at most max_copy). A range too short for
 * that is refused (CK_EUNSUPPORTED: the caller reads and writes it). The source's version is
 * checked by a HEAD at the call and again before complete (a service may ignore the copy's source
 * condition: moto and radosgw do), so a source that changed fails the commit with CK_EEXIST. The
 * source store must stay open until the upload ends.
 *
 * With single_only (a create-only put, which backends do in one request only) nothing but
 * single is ever called: bytes past the first part are counted and dropped, and the
 * commit fails with CK_EUNSUPPORTED.
 *
 * Before complete: every part succeeded, parts are 1..N without gaps and their sizes add
 * up to the bytes written. Any failure stops the workers (parts in flight are not retried
 * further: send sees `cancel`) and calls abort; the object changes only if complete
 * succeeds.
 *
 * Ownership: the upload owns ctx from ck_part_upload_new on (ops->free_ctx frees it when
 * the upload ends, whatever the outcome). Locking: one mutex per upload protects the
 * queue, the free buffers, the results and the failure; never held during network I/O.
 */
#ifndef CK_STORE_PART_UPLOAD_H
#define CK_STORE_PART_UPLOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/part_body.h"
#include "store/store.h"

#define CK_PART_MAX_PAR    32u
#define CK_PART_MEMORY     (128u << 20)  /* part buffers of one upload by default (see above) */
#define CK_PART_SPOOLED    4u            /* spooled part buffers of one upload, at most */
#define CK_PART_GROWTH     1000u         /* parts between two doublings of the part size */
#define CK_PART_COPY_CHUNK (64ull << 20) /* a copied part, about (ck_part_upload_copy) */

struct ck_part_ops {
    ck_rc (*begin)(void *ctx, struct ck_err *err);
    /* Uploads part number (1-based); fills result (result_size bytes, zeroed). Runs on a
     * worker thread, several at once. */
    ck_rc (*send)(void *ctx, unsigned number, const struct ck_part_body *body, void *result,
                  const atomic_bool *cancel, struct ck_err *err);
    /* results holds nparts results of result_size bytes, part 1 first. */
    ck_rc (*complete)(void *ctx, unsigned nparts, const void *results, struct ck_err *err);
    void (*abort)(void *ctx);
    ck_rc (*single)(void *ctx, const char *data, size_t len, struct ck_err *err);
    void (*free_ctx)(void *ctx);
    /* Optional: part number made by the service of src's range (same service; its
     * version checked by the service where it can). Like send, on a worker thread. */
    ck_rc (*copy)(void *ctx, unsigned number, const struct ck_copy_src *src, void *result,
                  const atomic_bool *cancel, struct ck_err *err);
};

struct ck_part_cfg {
    uint64_t part_size;    /* first part */
    uint64_t max_part;     /* cap for grown parts */
    unsigned parallel;     /* workers, 1 .. CK_PART_MAX_PAR */
    unsigned max_parts;    /* the service's limit */
    uint64_t min_part;     /* smallest part but the last (0: any) */
    uint64_t max_copy;     /* largest copied part (0: no copied parts) */
    size_t result_size;    /* bytes of one part's result */
    bool single_only;      /* one request or nothing (a create-only put, store.h): bytes past
                              the first part are counted, not kept or sent, and the commit
                              fails with CK_EUNSUPPORTED; begin and send are never called */
    uint64_t memory;       /* part buffers in memory at most (0: CK_PART_MEMORY) */
    const char *spool_dir; /* where parts over memory / 2 are spooled; NULL: never (they
                              are held in memory, over the budget) */
    unsigned growth;       /* parts between doublings (0: CK_PART_GROWTH; tests set less) */
};

/* The size of part n (1-based; 0 counts as 1): first doubled every `growth` parts (0:
 * CK_PART_GROWTH), capped at max_part. */
uint64_t ck_part_size(uint64_t first, uint64_t max_part, unsigned growth, unsigned n);

/* What an upload does with part n (1-based): its size, whether it is spooled (over half
 * the part memory, with a spool dir) and how many buffers of that kind may exist at once.
 * The first part is never spooled: ck_part_upload_new makes it at most half the memory. */
struct ck_part_plan {
    uint64_t size;
    bool spooled;
    unsigned buffers;
};
void ck_part_plan(const struct ck_part_cfg *c, unsigned n, struct ck_part_plan *out);

/* An upload of store s; see store.h for the put_* contract. */
ck_rc ck_part_upload_new(struct ck_store *s, const struct ck_part_ops *ops, void *ctx,
                         const struct ck_part_cfg *cfg, struct ck_store_upload **out,
                         struct ck_err *err);
ck_rc ck_part_upload_write(struct ck_store_upload *u, const void *buf, size_t len,
                           struct ck_err *err);
ck_rc ck_part_upload_commit(struct ck_store_upload *u, struct ck_err *err);
void ck_part_upload_abort(struct ck_store_upload *u);
/* See "Copied parts" above; store.h's put_copy contract. */
ck_rc ck_part_upload_copy(struct ck_store_upload *u, const struct ck_copy_src *src,
                          struct ck_err *err);

/* Reads a size like "8M" (K/M/G suffixes) between lo and hi from variable name; *out keeps
 * its value when the variable is unset. CK_EINVAL naming the variable otherwise. */
ck_rc ck_part_env_size(const char *name, uint64_t lo, uint64_t hi, uint64_t *out,
                       struct ck_err *err);
ck_rc ck_part_env_uint(const char *name, unsigned lo, unsigned hi, unsigned *out,
                       struct ck_err *err);

#endif
