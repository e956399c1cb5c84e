/*
 * chain.h - the resume chain (SPEC 4): which previous checkpoint a mount uses, and
 * carrying it forward to --dest when the mount saved nothing of its own.
 *
 * Of several --src URIs the first whose object exists and is not empty wins; a missing or
 * empty one means "try the next", any other failure (auth, network after retries) is an
 * error, never taken as "no checkpoint".
 *
 * Carry forward (--carry-forward, daemon/carry.h): a retry that dies before its first save
 * would leave its --dest empty and the next retry, reading that --dest, would start from
 * nothing. On unmount a mount that made no save of its own therefore copies the chain's
 * checkpoint to --dest (server-side where the store can, else streamed; atomic like every
 * put), unless --dest already holds a checkpoint (an earlier daemon of the same attempt
 * saved it: never overwrite newer data with older) or the winner is --dest itself.
 */
#ifndef CK_RESTORE_CHAIN_H
#define CK_RESTORE_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The first of srcs that exists and is not empty: *store (opened, owned by the caller),
 * its HEAD (*info) and *index in srcs. *store is NULL (rc CK_OK) when none is. Errors carry
 * "previous checkpoint" and the URI. */
ck_rc ck_chain_pick(const char *const *srcs, size_t nsrc, const struct ck_store_env *env,
                    struct ck_store **store, struct ck_store_info *info, size_t *index,
                    struct ck_err *err);

/* What carry forward copies to dest (dest_uri as given to ck_store_open; see above): the
 * chain's checkpoint, opened in *src with its HEAD and index as ck_chain_pick gives them.
 * *src is NULL (rc CK_OK, logged) when there is nothing to do: dest holds a checkpoint,
 * there is none, or the winner is dest itself. */
ck_rc ck_chain_carry_source(const char *const *srcs, size_t nsrc, const char *dest_uri,
                            struct ck_store *dest, const struct ck_store_env *env,
                            struct ck_store **src, struct ck_store_info *info, size_t *index,
                            struct ck_err *err);

/* Copies src's object (info: its HEAD) to dest as it is, and logs it. A one-rank
 * checkpoint; a multi-rank one is carried by daemon/carry.h. */
ck_rc ck_chain_copy(struct ck_store *src, const struct ck_store_info *info, struct ck_store *dest,
                    struct ck_err *err);

#endif
