/*
 * fetch.h - restores a checkpoint into a plain directory, eagerly (`ckptfs get`, the
 * no-FUSE mode's prev/).
 *
 * Walks the candidate URIs like the loader (the first that exists and is non-empty wins)
 * and runs the loader's streamed download + safe extraction (restore/streamed.h) into
 * dest_dirfd: same formats, same refusal of hostile entries, a non-tar object becomes
 * dest/payload. No candidate: kind CK_KIND_NONE and dest untouched.
 */
#ifndef CK_RESTORE_FETCH_H
#define CK_RESTORE_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "archive/extract.h"
#include "store/store.h"

struct ck_fetch_result {
    enum ck_object_kind kind;
    char source[1024]; /* display URI of the source used, empty if none */
    uint64_t object_bytes;
    struct ck_extract_stats stats;
    double seconds;
};

/* progress(ctx, done, total) is called from a download thread as bytes arrive. */
struct ck_fetch_cfg {
    const char *const *uris;
    size_t nuri;
    const struct ck_store_env *env;
    int work_dirfd; /* scratch for the object file */
    int dest_dirfd;
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *ctx;
};

ck_rc ck_fetch_to_dir(const struct ck_fetch_cfg *cfg, struct ck_fetch_result *res,
                      struct ck_err *err);

/* The object of s alone (info: its HEAD) into dest_dirfd, by the same streamed download and
 * extraction; a multi-rank checkpoint's other shards are not fetched, and its manifest
 * (layout/manifest.h) is extracted as a file. */
ck_rc ck_fetch_object(struct ck_store *s, const struct ck_store_info *info, int work_dirfd,
                      int dest_dirfd, enum ck_object_kind *kind, struct ck_extract_stats *st,
                      struct ck_err *err);

#endif
