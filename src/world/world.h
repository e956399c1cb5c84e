/*
 * world.h - one rank of a multi-rank checkpoint: where its saves go, and the commit.
 *
 * With --world N > 1 every save of this mount is one generation G of the world's
 * checkpoint (names and manifest: manifest.h; protocol and failure cases: docs/world.md):
 *   - rank R > 0 uploads its save/ to its shard URI of G; the save is done (and .save
 *     returns) when the shard is durable;
 *   - rank 0 uploads its save/ to --dest, and before the end of that archive waits (at most
 *     --world-timeout) until a HEAD shows every other shard of G, then writes the manifest
 *     naming each shard's size and ETag as the last entry; the put's commit makes G the
 *     checkpoint. A rank that never saves G makes rank 0's save of G fail: the previous
 *     generation stays.
 * Rank 0 leads: each of its saves opens generation G (the round object, round.h: "G
 * waiting", then "G committed" or "G failed"); a save of another rank joins the round that
 * is open and that it has not joined yet, waiting for one at most --world-timeout and
 * giving way to a newer save of its own. An extra or missing save on one rank costs at
 * most one round (docs/world.md, "The agreement").
 *
 * The committed generation: rank 0 knows it; the other ranks read the round object and the
 * hint once a second while their last shard is neither committed nor failed (.status
 * "world.committed", "world.failed").
 *
 * Lock: world->lock (world.c) protects the counters and the status; never held across I/O.
 */
#ifndef CK_WORLD_WORLD_H
#define CK_WORLD_WORLD_H

#include <stdbool.h>
#include <stdint.h>

#include "save/saver.h"
#include "store/store.h"

struct ck_world_cfg {
    unsigned rank, size;
    const char *id;                 /* --world-id or NULL */
    const char *dest_uri;           /* full --dest URI; not owned */
    struct ck_store *dest;          /* not owned */
    const struct ck_store_env *env; /* not owned */
    const char *cache_dir;          /* holds the generation counter */
    double timeout_s;               /* rank 0's wait for the shards */
};

struct ck_world_status {
    unsigned rank, size;
    uint64_t claimed;     /* the last generation a save of this rank started */
    uint64_t durable;     /* the last generation whose shard (rank 0: commit) is durable */
    uint64_t committed;   /* the last generation known committed (0: none yet) */
    uint64_t failed;      /* the last generation of this rank known failed (0: none) */
    unsigned waiting_for; /* rank 0 while it waits: ranks whose shard is not there yet */
};

struct ck_world;

ck_rc ck_world_new(const struct ck_world_cfg *cfg, struct ck_world **out, struct ck_err *err);

/* The saver target of this rank (saver.h); valid while w lives. */
const struct ck_save_target *ck_world_target(struct ck_world *w);

void ck_world_status(struct ck_world *w, struct ck_world_status *out);

/* Stops the hint poller and frees w. */
void ck_world_free(struct ck_world *w);

#endif
