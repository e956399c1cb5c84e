/*
 * ranged.h - a whole object downloaded into a file by parallel ranged GETs, read in order
 * while it grows.
 *
 * Worker threads claim the object's ranges in order (sizes and how many at once from
 * restore/tuner.h), GET each one and write it at its offset. The reader waits for the
 * contiguous prefix: ck_ranged_wait(off) returns once byte off is in the file, which is as
 * soon as the range holding it has arrived up to there (a range is written as its bytes
 * come), so the reader is never held up by a whole range. At most CK_RANGED_AHEAD ranges
 * are claimed past the first unfinished one.
 *
 * A failed range (after the store's own retries) stops the download and is its result.
 * When the object took more than one GET, a HEAD at the end checks that it is still the
 * version the first HEAD saw (size and ETag): ranges of two versions are never taken for
 * one object (CK_ECORRUPT "changed during the download").
 *
 * Local objects (file://), objects of one range, and objects of unknown size are read by
 * one GET, as a stream.
 */
#ifndef CK_RESTORE_RANGED_H
#define CK_RESTORE_RANGED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define CK_RANGED_MAX   16 /* GETs in flight at most */
#define CK_RANGED_AHEAD 64 /* ranges claimed at most, from the first unfinished one */

struct ck_ranged_cfg {
    struct ck_store *store;           /* not owned */
    int fd;                           /* written at each range's offset (not owned) */
    const struct ck_store_info *info; /* the object's HEAD; NULL: size unknown, one GET */
    unsigned max;                     /* GETs in flight at most (0: CK_RANGED_MAX) */
    const atomic_bool *cancel;        /* set by the owner to stop; may be NULL */
    void (*progress)(void *ctx, uint64_t bytes); /* bytes downloaded so far (any thread) */
    void *progress_ctx;
};

struct ck_ranged;

/* Starts the download. cfg must outlive ck_ranged_finish. */
ck_rc ck_ranged_start(const struct ck_ranged_cfg *cfg, struct ck_ranged **out, struct ck_err *err);

/* Blocks until the file holds byte off (CK_OK), or the download has ended without it
 * (CK_OK: off is past the end), or failed (its error). *have: where the contiguous bytes
 * from the start end now (only those are to be read: later ranges may have holes before
 * them). */
ck_rc ck_ranged_wait(struct ck_ranged *r, uint64_t off, uint64_t *have, struct ck_err *err);

/* Ends the download (stop: at once; else waits for every byte), frees r. Returns the
 * download's result, CK_OK when stopped. */
ck_rc ck_ranged_finish(struct ck_ranged *r, bool stop, struct ck_err *err);

/* GETs made so far, for tests and logs. */
unsigned ck_ranged_requests(struct ck_ranged *r);

#endif
