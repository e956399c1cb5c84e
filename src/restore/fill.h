/*
 * fill.h - putting restored tar bytes into prev/'s placeholder files, and taking them out.
 *
 * A placeholder (lazy.h) is a sparse file of the archived size under the cache dir's
 * prev/. ck_fill_write writes a stretch of the archive's tar stream (a decompressed gzip
 * member) into every file it overlaps, at their logical offsets (a GNU sparse file's
 * stored bytes go between its holes); ck_fill_punch makes the same stretch holes again
 * (--cache-limit evicts it: resident.h). Placeholders are the daemon's own, 0600, whatever
 * the archived mode (lazy.c). Neither puts the archived mtime back
 * (a futimens per member took the file's inode lock from the other fetch threads writing
 * it: 10% of a restore's CPU); a stat under prev/ shows the archived one (lazy.h
 * ck_lazy_fix_stat). Neither takes a lock: the caller keeps readers away from the stretch
 * (lazy.c).
 */
#ifndef CK_RESTORE_FILL_H
#define CK_RESTORE_FILL_H

#include <stddef.h>
#include <stdint.h>

#include "archive/seek_index.h"

/* prev/ and its regular files with data. */
struct ck_fill {
    int dirfd;                      /* the cache dir's prev/ */
    const struct ck_seek_index *ix; /* the archive's entries */
    const size_t *by_data;          /* entries with data, in data_off order */
    size_t n;
};

/* Writes tar bytes [at, at + n) of the archive, data, into the files they belong to. */
ck_rc ck_fill_write(const struct ck_fill *f, uint64_t at, const unsigned char *data, size_t n,
                    struct ck_err *err);
/* The position in f->by_data of the first file whose data ends after tar offset off
 * (f->n if none). */
size_t ck_fill_first_after(const struct ck_fill *f, uint64_t off);
/* Makes tar bytes [at, at + n) holes in the files they belong to. */
ck_rc ck_fill_punch(const struct ck_fill *f, uint64_t at, uint64_t n, struct ck_err *err);

#endif
