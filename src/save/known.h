/*
 * known.h - the large files a save need not read: unchanged since the object it copies from.
 *
 * A save notes every member-aligned file it archives (docs/format.md: a regular file of at
 * least 1 MiB, not sparse, whose members hold its data and padding alone), with the inode
 * it read it from, its size and mtime. Once the object is whole (ck_known_seal) each file
 * gets the range of the object's members that hold it. The saver keeps the record of the
 * last good save with that save's snapshot point (seq).
 *
 * The next save copies members of that same object (splice.h), and a file of the record
 * whose inode has not changed since seq (ck_known_keep with the area's change notes,
 * save/changed.h) and which still has the same size and mtime is not read at all: its
 * members are placed into the new object as a copied range (ck_splice_place), when that
 * range is sure to be copied: 8 MiB of the object or more on its own, or with the run of
 * copied members it continues (ck_splice_can_place; else the file is read). That the
 * previous object is the one the record describes is checked, not assumed: the SHA-256 of
 * its member table (read back from its seek index) must equal the record's
 * (ck_known_matches). A restarted daemon has no record: everything is read once.
 *
 * Memory: 64 bytes a large file. Not thread-safe: the saver thread's.
 */
#ifndef CK_SAVE_KNOWN_H
#define CK_SAVE_KNOWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "archive/gzip_writer.h"
#include "archive/pack.h"
#include "archive/seek_index.h"

struct ck_known_file {
    dev_t dev;
    ino_t ino;
    uint64_t size;
    struct timespec mtime;
    uint64_t data_off; /* in the tar stream */
    size_t first;      /* its members in the object: first .. first + count - 1 */
    size_t count;
};

struct ck_known {
    uint64_t seq;                /* the area's change_seq at the save's snapshot */
    unsigned char digest[32];    /* SHA-256 of the object's member table */
    struct ck_known_file *files; /* sorted by (dev, ino) once sealed */
    size_t n, cap;
};

ck_rc ck_known_new(struct ck_known **out, struct ck_err *err);
/* A member-aligned file as it is archived (pack.h observe): its data from e->data_off. */
ck_rc ck_known_note(struct ck_known *k, const struct ck_pack_entry *e, struct ck_err *err);
/* The object is whole and these are its members (splice.h ck_splice_members). */
ck_rc ck_known_seal(struct ck_known *k, const struct ck_gzw_member *m, size_t n,
                    struct ck_err *err);
/* Drops the files whose inode changed since k->seq (unchanged: the area's test). */
void ck_known_keep(struct ck_known *k,
                   bool (*unchanged)(void *ctx, dev_t dev, ino_t ino, uint64_t seq), void *ctx);
/* Whether ix (the previous object's index) has the member table k was sealed with. */
bool ck_known_matches(const struct ck_known *k, const struct ck_seek_index *ix);
/* The file of k that e is: same inode, size and mtime; NULL if none. */
const struct ck_known_file *ck_known_find(const struct ck_known *k, const struct ck_pack_entry *e);
void ck_known_free(struct ck_known *k);

#endif
