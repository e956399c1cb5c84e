/*
 * sweep.h - rank 0 removes the objects of failed rounds (docs/world.md, "Objects of failed
 * rounds").
 *
 * A round that failed can leave shards of the ranks that joined it, the commit claim, and
 * open multipart uploads of a rank killed mid-upload. Rank 0 remembers such a generation
 * in CACHE/world-failed (one number a line, at most CK_SWEEP_MAX; the oldest is forgotten,
 * with a log line): a round it closed "failed", and a round an earlier rank 0 left
 * "failed", or "waiting" without a commit claim (a rank 0 that never reached its commit),
 * found when it opens the next one. It deletes their objects (store.h "Deletes") once a
 * later generation has committed: every rank then uploaded a shard of that later round,
 * and a rank saves one round at a time, so none is still uploading to the failed one. A
 * generation that was or may have been committed (a claim exists) is never touched; the
 * shards of committed generations that a newer one replaced stay (a reader may still be
 * reading them; a lifecycle rule on DEST.ranks/ removes them).
 *
 * Used by the saver thread only (no lock). Failures are logged, never fail a save; a
 * generation whose objects could not all be removed stays listed for the next commit.
 */
#ifndef CK_WORLD_SWEEP_H
#define CK_WORLD_SWEEP_H

#include <stdint.h>

#include "world/world.h"

#define CK_SWEEP_MAX 64

struct ck_world_sweep;

/* Reads the list (a missing file is an empty one; a damaged one is logged and dropped).
 * *out is NULL (nothing to do, CK_OK) where the store has no delete (http). */
ck_rc ck_world_sweep_new(const struct ck_world_cfg *cfg, struct ck_world_sweep **out,
                         struct ck_err *err);

/* Remembers gen, a round rank 0 closed as failed. */
void ck_world_sweep_failed(struct ck_world_sweep *s, uint64_t gen);

/* At the opening of a round: the round object showed gen, not committed (state waiting
 * or failed). A failed one is remembered; a waiting one only if its commit claim does not
 * exist. */
void ck_world_sweep_abandoned(struct ck_world_sweep *s, uint64_t gen, bool waiting);

/* After generation committed: deletes the objects of every remembered generation below
 * it. */
void ck_world_sweep_run(struct ck_world_sweep *s, uint64_t committed);

void ck_world_sweep_free(struct ck_world_sweep *s);

#endif
