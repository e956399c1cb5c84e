/*
 * pipeline.h - one save: the tree under save/ becomes one object at the destination.
 *
 *   save/ tree --pack (tar)--> gzip writer --upload sink--> store put --commit--> object
 *
 * The object format is SPEC 3: a gzip tar of the tree; if the tree holds exactly one
 * regular file named "payload", that file raw; an empty tree, an empty object (which
 * every reader takes as "no checkpoint"). read_done(ctx) is called as soon as every byte
 * of local data has been read, before the commit, so the caller can let writers go on
 * while the upload finishes. On any failure the upload is aborted: the destination keeps
 * its old object.
 *
 * Replays (store.h): every upload is replayable. When the store answers CK_EREPLAY the
 * same archive is made again from the same tree into a new upload (pass 2, 3, ...; the
 * store bounds the passes by its retry budget). With a snapshot, the snapshot is held
 * for the whole save (snapshot.h), so every pass reads the same files; without one and
 * with a read_done (the area gate is closed while save/ is read), read_done waits until
 * the upload is committed when the store may ask for a replay.
 */
#ifndef CK_SAVE_PIPELINE_H
#define CK_SAVE_PIPELINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "archive/codec.h"
#include "archive/extract.h"
#include "archive/pack.h"
#include "save/known.h"
#include "save/snapshot.h"
#include "save/splice.h"
#include "store/store.h"

/* A regular file of at least this many bytes has its own gzip members: its data starts a
 * member and the entry after it starts another (docs/format.md "Member-aligned files"). */
#define CK_SAVE_ALIGN_MIN (1u << 20)

/* Live counters of a running save, read by .status while it runs. */
struct ck_save_progress {
    _Atomic uint64_t bytes_in;  /* local bytes archived so far */
    _Atomic uint64_t bytes_out; /* bytes handed to the store so far */
};

struct ck_save_result {
    enum ck_object_kind kind; /* CK_KIND_TAR, CK_KIND_PAYLOAD, or CK_KIND_NONE (empty) */
    uint64_t entries;
    uint64_t bytes;                     /* tar stream or payload bytes */
    uint64_t compressed;                /* bytes of the object */
    uint64_t skipped;                   /* entries left out of the archive (archive/pack.h) */
    uint64_t excluded;                  /* left out on purpose (--exclude, .ckptfsignore) */
    char skipped_names[CK_ERR_MSG_MAX]; /* "name: why; ..." of the first ones, cut */
    struct ck_splice_stats reuse;       /* members copied from the previous object */
    char reuse_note[CK_ERR_MSG_MAX];    /* why nothing could be reused, or "" */
    struct ck_known *known; /* with ck_save_extra.note_known, after a good save: the large
                               files of the new object (known.h); the caller's to free */
};

/* What a save leaves out on purpose: --exclude patterns, and save/.ckptfsignore
 * (archive/exclude.h). */
struct ck_save_excludes {
    const char *const *globs;
    size_t n;
};

/* What a multi-rank save adds to the plain one (world/world.h); NULL: a plain save. */
struct ck_save_extra {
    bool always_tar; /* a tar even of an empty tree or a lone "payload" (world shards) */
    const struct ck_pack_trailer *trailer; /* an entry after the tree, or NULL */
    const char *if_match;         /* a conditional replace of dest (store.h ck_put_opts), or NULL */
    struct ck_store *reuse_from;  /* copy members of this store's object (dest, or the
                              previous attempt's --src) that the new one would hold too
                              (splice.h); NULL: look for none (no request is made for it) */
    const struct ck_known *known; /* files unchanged since the save that made reuse_from's
                                     object: not read if it is that object (known.h) */
    bool note_known;              /* make the record for the next save (result's known) */
};

/* Archives the tree under dirfd: the snapshot's tree when snap is not NULL (its
 * copy-on-write hooks are used while files are read), else save/ itself. excludes NULL:
 * nothing is left out on purpose (not even by a .ckptfsignore). A plain save leaves out a
 * top-level ".ckptfs-world" with a warning (a reader would take it for a multi-rank
 * manifest); a multi-rank one refuses it. */
ck_rc ck_save_pipeline_run(int dirfd, struct ck_snap *snap, struct ck_store *dest,
                           const struct ck_codec *codec, const struct ck_save_excludes *excludes,
                           const struct ck_save_extra *extra, void (*read_done)(void *ctx),
                           void *ctx, struct ck_save_progress *progress, struct ck_save_result *res,
                           struct ck_err *err);

#endif
