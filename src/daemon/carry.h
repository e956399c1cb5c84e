/*
 * carry.h - --carry-forward on unmount: a mount that saved nothing of its own copies the
 * chain's checkpoint to --dest (restore/chain.h says which, and when there is nothing to
 * do), so the next attempt, reading --dest, does not start from nothing.
 *
 * A one-rank checkpoint is one object: copied as it is (ck_chain_copy). A multi-rank one
 * (layout/manifest.h) is rank 0's object, whose manifest names the other ranks' shards
 * relative to it with the size and ETag a HEAD showed at its commit; a copy has an ETag of
 * its own on every store, so the manifest has to change, and it is inside rank 0's object.
 * Rank 0 of the carrying world (a mount with --world N, any N, of which only rank 0
 * carries) therefore:
 *   1. copies every shard to the same suffix beside --dest (server-side where the store
 *      can), checked against the manifest first, and HEADs each copy;
 *   2. extracts rank 0's object alone into CACHE/carry/ and saves it again to --dest with
 *      a new manifest, naming the copies' sizes and ETags, as its last entry: the same save
 *      pipeline as a save of rank 0, whose members are copied from the source object where
 *      the store can (save/splice.h); create-only where the store can (never over a
 *      checkpoint that appeared meanwhile);
 *   3. writes the committed hint of --world-id (DEST.ranks/[ID/]committed), so a world
 *      that saves at --dest later opens its rounds above the carried generation.
 * The commit of step 2 is the moment the carried checkpoint exists; a failure before it
 * leaves --dest without one (and copied shards that the next carry replaces). Costs the
 * cache disk rank 0's part of the checkpoint while it runs.
 */
#ifndef CK_DAEMON_CARRY_H
#define CK_DAEMON_CARRY_H

#include <stddef.h>

#include "archive/codec.h"
#include "store/store.h"

struct ck_carry_cfg {
    const char *const *srcs; /* the chain, in order */
    size_t nsrc;
    const char *dest_uri;
    struct ck_store *dest;
    const struct ck_store_env *env;
    const char *cache_dir;        /* CACHE/carry/ is the scratch of a multi-rank carry */
    const struct ck_codec *codec; /* of rank 0's object saved again */
    const char *world_id;         /* --world-id or NULL: the hint written at the end */
    unsigned rank;                /* of this mount: only rank 0 carries */
};

/* Carries the chain's checkpoint forward (see above). Logs what it did; CK_OK also when
 * there was nothing to do. */
ck_rc ck_carry_forward(const struct ck_carry_cfg *cfg, struct ck_err *err);

#endif
