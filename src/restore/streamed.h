/*
 * streamed.h - a foreign checkpoint (flyte-sdk's single gzip stream, bzip2, xz, plain tar,
 * or a raw object) downloaded and extracted at the same time.
 *
 * Download threads write the object into cache-dir/work by parallel ranged GETs
 * (restore/ranged.h) while the caller's thread extracts it from the growing file in order
 * (archive/objsrc.h), so download, decompression and extraction overlap instead of running
 * one after the other. A tar is extracted into
 * prev_dirfd with all of extract.h's checks; any other object becomes prev/payload once
 * it is complete. If extraction fails (a hostile entry, corrupt data), the download is
 * stopped at once.
 */
#ifndef CK_RESTORE_STREAMED_H
#define CK_RESTORE_STREAMED_H

#include <stdatomic.h>
#include <stdint.h>

#include "archive/extract.h"
#include "store/store.h"

struct ck_streamed_cfg {
    struct ck_store *store;           /* not owned */
    const struct ck_store_info *info; /* its HEAD (size, ETag); NULL: unknown, one GET */
    int work_dirfd;                   /* where the object file goes */
    int prev_dirfd;                   /* where the tree goes */
    const struct ck_extract_limits *limits;
    const atomic_bool *cancel;                   /* set by the owner to stop */
    void (*progress)(void *ctx, uint64_t bytes); /* bytes downloaded so far (any thread) */
    void *progress_ctx;
    struct ck_extract_hooks hooks; /* entries as they complete (members may be NULL) */
};

ck_rc ck_streamed_load(const struct ck_streamed_cfg *cfg, enum ck_object_kind *kind,
                       struct ck_extract_stats *st, struct ck_err *err);

#endif
