/*
 * ix_read.h - reading a ckptfs archive's data through its seek index (seek_index.h):
 * one gzip member inflated and checked, and a small file read whole (the restore's
 * manifest, `ckptfs ls` of a multi-rank checkpoint).
 */
#ifndef CK_ARCHIVE_IX_READ_H
#define CK_ARCHIVE_IX_READ_H

#include <stddef.h>

#include "archive/seek_index.h"
#include "util/err.h"

/* Inflates member m from in (its m->out_len compressed bytes) into out (m->in_len bytes),
 * checking its CRC: CK_ECORRUPT "archive member at byte N does not decompress (...)". */
ck_rc ck_ix_inflate_member(const struct ck_ix_member *m, const unsigned char *in,
                           unsigned char *out, struct ck_err *err);

/* The regular file name of ix (at most max bytes, else CK_EHOSTILE) into a new
 * NUL-terminated buffer *out of *len bytes, its members read with read(ctx, ...).
 * CK_ENOTFOUND (no message) if ix has no such file. where prefixes messages ("prev/"). */
ck_rc ck_ix_read_entry(const struct ck_seek_index *ix, ck_ix_read_fn read, void *ctx,
                       const char *where, const char *name, size_t max, char **out, size_t *len,
                       struct ck_err *err);

#endif
