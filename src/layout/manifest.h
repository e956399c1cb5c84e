/*
 * manifest.h - the names and the manifest of a multi-rank checkpoint (docs/world.md).
 * The object layout that the save pipeline, the restore and world/ (which runs the
 * rounds, above save/) all read: it depends only on store/ and util/.
 *
 * A world of N ranks saves generation G as N objects: rank R > 0 uploads its save/ as
 * a ckptfs archive to the shard URI
 *
 *     DEST.ranks/[ID/]gG/rR-of-N
 *
 * (DEST the --dest URI, ID the --world-id if one is given; a query string of DEST stays at
 * the end), and rank 0 uploads its own save/ to DEST itself with one more tar entry last,
 * CK_WORLD_MANIFEST, written once every other shard of G is durable. The manifest is
 * text, one record per line:
 *
 *     ckptfs-world 1
 *     generation G
 *     world N
 *     rank 0 .
 *     rank R SIZE ETAG SUFFIX        (R = 1 .. N-1; SUFFIX = ".ranks/.../rR-of-N")
 *
 * SIZE and ETAG are what a HEAD of the shard said when rank 0 committed; a reader opens
 * SUFFIX relative to the object it read (so a copied checkpoint keeps working) and
 * refuses a shard whose size or ETag differ. DEST.ranks/[ID/]committed holds "G\n" of
 * the last committed generation: a hint for the other ranks' status, never trusted by a
 * reader.
 */
#ifndef CK_LAYOUT_MANIFEST_H
#define CK_LAYOUT_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define CK_WORLD_MANIFEST     ".ckptfs-world"
#define CK_WORLD_MANIFEST_MAX (1u << 20) /* bytes a reader accepts */
#define CK_WORLD_SUFFIX_MAX   160

struct ck_world_shard {
    uint64_t size;
    char etag[128];
    char suffix[CK_WORLD_SUFFIX_MAX];
};

struct ck_world_manifest {
    uint64_t generation;
    unsigned world;
    struct ck_world_shard *shards; /* [world]; shards[0] is the object itself (unused) */
};

/* The suffix of rank's shard of generation gen: ".ranks/[ID/]gG/rR-of-N". */
ck_rc ck_world_shard_suffix(const char *id, uint64_t gen, unsigned rank, unsigned world,
                            char out[CK_WORLD_SUFFIX_MAX], struct ck_err *err);

/* The suffix of generation gen's commit claim: ".ranks/[ID/]gG/commit" (world.h). */
ck_rc ck_world_claim_suffix(const char *id, uint64_t gen, char out[CK_WORLD_SUFFIX_MAX],
                            struct ck_err *err);

/* The suffix of the committed hint: ".ranks/[ID/]committed". */
ck_rc ck_world_hint_suffix(const char *id, char out[CK_WORLD_SUFFIX_MAX], struct ck_err *err);

/* The suffix of the round object: ".ranks/[ID/]round" (round.h). */
ck_rc ck_world_round_suffix(const char *id, char out[CK_WORLD_SUFFIX_MAX], struct ck_err *err);

/* uri with suffix appended to its path (before a query string), malloc'd. */
char *ck_world_uri(const char *uri, const char *suffix);

/* Opens the store of ck_world_uri(uri, suffix): a shard, a claim, the hint, the round. */
ck_rc ck_world_open(const char *uri, const struct ck_store_env *env, const char *suffix,
                    struct ck_store **out, struct ck_err *err);

/* The manifest as text, malloc'd. */
ck_rc ck_world_manifest_format(const struct ck_world_manifest *m, char **out, size_t *len,
                               struct ck_err *err);

/* Parses text (NUL-terminated); where names the object for errors. On success m->shards
 * is malloc'd (ck_world_manifest_free). Anything unexpected is CK_ECORRUPT. */
ck_rc ck_world_manifest_parse(const char *text, const char *where, struct ck_world_manifest *m,
                              struct ck_err *err);
void ck_world_manifest_free(struct ck_world_manifest *m);

/* The manifest entry of an archive, read whole into text (len bytes, NUL-terminated; a
 * NUL inside is CK_ECORRUPT), parsed as above; text is freed either way. */
ck_rc ck_world_manifest_parse_entry(char *text, size_t len, struct ck_world_manifest *m,
                                    struct ck_err *err);

#endif
