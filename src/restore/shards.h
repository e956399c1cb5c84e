/*
 * shards.h - the other ranks' shards of a multi-rank checkpoint, in the same prev/.
 *
 * The object at --src of a world of N ranks is rank 0's archive, whose last entry is the
 * manifest (layout/manifest.h). Once that archive is served lazily, ck_shards_attach reads
 * the manifest, checks each other shard with a HEAD (it must have the size and ETag the
 * manifest names: a shard rewritten after the commit is refused, never mixed in), and
 * serves each one lazily into the same prev/, chained to the first (lazy.h). Two ranks
 * that saved the same path are an error naming it. The manifest itself is not shown in
 * prev/.
 */
#ifndef CK_RESTORE_SHARDS_H
#define CK_RESTORE_SHARDS_H

#include <stdint.h>

#include "restore/lazy.h"
#include "store/store.h"
#include "layout/manifest.h"

struct ck_shards {
    struct ck_store **stores; /* [world - 1], for ranks 1 .. world-1; owned */
    unsigned world;           /* 1: not a multi-rank checkpoint */
    uint64_t generation;
    uint64_t bytes; /* of all shards but rank 0's */
};

/* uri is the full URI of the object lz serves; *entries grows by the shards' entries. */
ck_rc ck_shards_attach(struct ck_lazy *lz, const char *uri, const struct ck_store_env *env,
                       int prev_dirfd, struct ck_shards *out, uint64_t *entries,
                       struct ck_err *err);

/* Opens rank r's shard of manifest m (relative to uri, the object holding m) and checks it
 * with a HEAD: missing is CK_ENOTFOUND, another size or ETag CK_ECORRUPT, both naming it.
 * *store is set (close it) whenever it could be opened. */
ck_rc ck_shard_open(const char *uri, const struct ck_store_env *env,
                    const struct ck_world_manifest *m, unsigned r, struct ck_store **store,
                    struct ck_store_info *info, struct ck_err *err);

/* Closes the shards' stores; after ck_lazy_free of the chain. */
void ck_shards_close(struct ck_shards *s);

#endif
