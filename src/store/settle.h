/*
 * settle.h - an ambiguous commit settled at the destination, the same for S3, GCS and
 * Azure (internal to src/store/).
 *
 * A commit request (a single PUT, CompleteMultipartUpload, Put Block List) that times out,
 * loses its reply, or fails after a retry may still have been applied. Before the save is
 * called failed (or the upload aborted), one HEAD of the destination decides: if it holds
 * the object this commit makes, the commit happened and its failure was only the reply's.
 * That object is recognised by what is known of it before the commit is sent: its ETag
 * where the store's ETags are MD5-based (S3, GCS single PUTs), or the upload's mark, a
 * random id the upload writes into the object's metadata (GCS: x-goog-meta-ckptfs-upload,
 * Azure: x-ms-meta-ckptfsupload) and that HEAD reads back. A copy of the object elsewhere
 * carries the mark too, but a HEAD of this key only sees what was committed to this key.
 */
#ifndef CK_STORE_SETTLE_H
#define CK_STORE_SETTLE_H

#include <stdbool.h>

#include "store/store.h"

/* What names the object a commit makes; either may be NULL or empty (unknown). */
struct ck_commit_id {
    const char *etag; /* its ETag, known in advance (MD5-based ETags) */
    const char *mark; /* the upload's mark in its metadata */
};

/* Whether info (a HEAD of the destination) is the object id names. */
bool ck_commit_is_ours(const struct ck_store_info *info, const struct ck_commit_id *id);

/* The HEAD that settles a commit that failed (failure says how) into info; false (a
 * warning logged, failure left as it is) if the HEAD itself failed. */
bool ck_settle_head(struct ck_store *s, struct ck_store_info *info, const struct ck_err *failure);

/* After a commit that failed with rc (err says how), not a conditional one (cond_put.h
 * settles those): when the failure may have been applied (ck_commit_maybe_applied), HEADs
 * the destination; CK_OK (err cleared, a warning logged) if it holds the object id names,
 * else rc and err as they were. */
ck_rc ck_commit_settle(struct ck_store *s, const struct ck_commit_id *id, ck_rc rc,
                       struct ck_err *err);

#endif
