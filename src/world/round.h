/*
 * round.h - the round object of a multi-rank checkpoint: how the ranks agree on which
 * generation a save belongs to (docs/world.md, "The agreement").
 *
 * DEST.ranks/[ID/]round holds one line, "G STATE\n": the generation rank 0 opened last
 * and what became of it: waiting (rank 0 is saving it and waits for the shards),
 * committed, failed. Rank 0 is its only writer: it writes "G waiting" when a save of its
 * own starts and "G committed" or "G failed" when it ends. The other ranks read it to join
 * the round that is open, and to learn that a round they joined failed. The small-object
 * helpers below also read and write the committed hint.
 */
#ifndef CK_WORLD_ROUND_H
#define CK_WORLD_ROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define CK_WORLD_SMALL_MAX 64 /* bytes of a round object or hint */

enum ck_round_state {
    CK_ROUND_NONE = 0, /* no round opened yet (no object) */
    CK_ROUND_WAITING,
    CK_ROUND_COMMITTED,
    CK_ROUND_FAILED,
};

struct ck_round {
    uint64_t gen;
    enum ck_round_state state;
};

const char *ck_round_state_name(enum ck_round_state s);

/* Parses "G STATE" (a trailing newline allowed); false if text is not one. */
bool ck_round_parse(const char *text, struct ck_round *out);

/* Reads the round object; a missing one is {0, CK_ROUND_NONE}. */
ck_rc ck_round_read(struct ck_store *s, struct ck_round *out, struct ck_err *err);
ck_rc ck_round_write(struct ck_store *s, const struct ck_round *r, struct ck_err *err);

/* A small object's text (at most CK_WORLD_SMALL_MAX bytes) into buf; "" when missing. */
ck_rc ck_world_small_get(struct ck_store *s, char buf[CK_WORLD_SMALL_MAX + 1], struct ck_err *err);
/* Replaces a small object by text (one plain put). */
ck_rc ck_world_small_put(struct ck_store *s, const char *text, struct ck_err *err);

#endif
