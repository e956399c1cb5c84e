/*
 * pack.h - writes a directory tree as a tar stream (the body of a saved checkpoint).
 *
 * The tree under dir_fd is walked in sorted order (byte order of names, a directory's
 * entry before its contents) and written with relative names ("model.pt", "sub",
 * "sub/x"; no "./", no leading "/"), keeping mode, mtime, uid/gid and symlink targets.
 * Regular files, directories and symlinks that stay inside the tree are archived. What
 * the readers' "data" filter (SPEC 3) would refuse is left out, with a warning in the log
 * and through the skipped hook, so every object extracts everywhere: fifos, sockets and
 * devices, and symlinks that are absolute or climb out of the tree (the rule of
 * entry_name.h, which the reader applies too). Files are read through descriptors opened relative
 * to dir_fd with O_NOFOLLOW, never by absolute path. The tar bytes go to out uncompressed.
 */
#ifndef CK_ARCHIVE_PACK_H
#define CK_ARCHIVE_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "util/sink.h"

struct ck_pack_stats {
    uint64_t entries;    /* tar entries written */
    uint64_t file_bytes; /* bytes of regular-file data */
    uint64_t tar_bytes;  /* bytes of tar stream produced */
    uint64_t skipped;    /* entries left out, with a warning (pack.h) */
    uint64_t excluded;   /* entries left out on purpose (leave_out) */
};

ck_rc ck_pack_tar(int dir_fd, const struct ck_sink *out, struct ck_pack_stats *st,
                  struct ck_err *err);

/* A data segment of a sparse file: size bytes at logical offset off. */
struct ck_pack_seg {
    uint64_t off, len;
};

/* What ck_pack_tar_observed reports of each entry, once its header is written. */
struct ck_pack_entry {
    const char *name; /* relative, as archived */
    mode_t mode;      /* type and permission bits */
    uid_t uid;
    gid_t gid;
    struct timespec mtime;
    uint64_t size;     /* regular files: data bytes; others 0 */
    const char *link;  /* symlink target or NULL */
    uint64_t data_off; /* offset of the entry's first data byte in the tar stream */
    /* A sparse file (a pax GNU.sparse 1.0 entry): its data segments in order, which the
     * tar stream holds one after the other from data_off (holes are not stored); nsegs
     * may be 0 (all holes). NULL for every other entry (size bytes from data_off). */
    const struct ck_pack_seg *segs;
    size_t nsegs;
    dev_t dev; /* of the file archived (the snapshot's link: the live inode, see */
    ino_t ino; /* save/snapshot.h) */
};

/* A regular file's data as the tar stream holds it: padded to 512-byte records. */
static inline uint64_t ck_pack_padded(uint64_t size)
{
    return (size + 511) & ~(uint64_t)511;
}

typedef ck_rc (*ck_pack_entry_fn)(void *ctx, const struct ck_pack_entry *e, struct ck_err *err);

/* An entry written after the whole tree, before the end of the archive: a regular file
 * "name" (mode 0644, the current time) whose bytes make() returns in a malloc'd buffer
 * (pack frees it). make() runs once the tree is written and may block (the multi-rank
 * manifest waits for the other ranks there, world/world.h). */
struct ck_pack_trailer {
    const char *name;
    ck_rc (*make)(void *ctx, char **data, size_t *len, struct ck_err *err);
    void *ctx;
};

/* Optional hooks of ck_pack_tar_ex (every member may be NULL). */
struct ck_pack_opts {
    ck_pack_entry_fn observe; /* every entry, once its header is written (seek index) */
    void *observe_ctx;
    /* Around the reading of each regular file base of dfd: file_begin before it is
     * opened, file_end after its last byte (the copy-on-write snapshot uses them). */
    void (*file_begin)(void *ctx, int dfd, const char *base);
    void (*file_end)(void *ctx);
    void *file_ctx;
    const struct ck_pack_trailer *trailer;
    /* Each entry left out of the archive: its relative name and why. */
    void (*skipped)(void *ctx, const char *name, const char *why);
    void *skipped_ctx;
    /* Asked of every entry before it is archived (a directory: before its subtree):
     * NULL keeps it, "" leaves it out on purpose (counted as excluded), any other string
     * leaves it out with that warning (as skipped). */
    const char *(*leave_out)(void *ctx, const char *name);
    void *leave_out_ctx;
    /* Asked of every regular file that is not a sparse entry, after observe: *skip true
     * means the caller has its data already (save/known.h), so the file is not read and
     * its data and padding (size rounded up to 512 bytes, from data_off) do not reach the
     * sink; the tar offsets count them all the same. */
    ck_rc (*skip_data)(void *ctx, const struct ck_pack_entry *e, bool *skip, struct ck_err *err);
    void *skip_ctx;
};

ck_rc ck_pack_tar_ex(int dir_fd, const struct ck_sink *out, const struct ck_pack_opts *opts,
                     struct ck_pack_stats *st, struct ck_err *err);

#endif
