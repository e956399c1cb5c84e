/*
 * gunzip_reader.h - decompresses a gzip file read from an fd, verifying every member
 * (internal to src/archive/).
 *
 * libarchive's gzip filter does not check the CRC-32 and length trailers, and ckptfs'
 * stored blocks carry no other check, so extraction decodes gzip itself: a bit flip
 * anywhere in a member fails with CK_ECORRUPT. Members are read one after the other
 * (ckptfs writes many, plus an empty index member); after a complete member, bytes that
 * do not start another member end the stream and are ignored, as gzip(1) does.
 * The reader owns its buffers and zlib state, not the source; it reads from offset 0.
 */
#ifndef CK_ARCHIVE_GUNZIP_READER_H
#define CK_ARCHIVE_GUNZIP_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive/objsrc.h"
#include "util/err.h"

struct ck_gunzip;

/* True if p (n bytes) starts with the gzip magic. */
bool ck_gzip_magic(const unsigned char *p, size_t n);

/* Reads from src (copied; src->fd and ctx are not owned). */
ck_rc ck_gunzip_new(const struct ck_objsrc *src, struct ck_gunzip **g, struct ck_err *err);

/* Sets *out and *len to the next decompressed bytes, valid until the next call; *len == 0 at
 * the end of the stream. Truncation, bad data or a bad trailer fail with CK_ECORRUPT. */
ck_rc ck_gunzip_read(struct ck_gunzip *g, const void **out, size_t *len, struct ck_err *err);

/* True once a read failed on a stream that was gzip: cut short anywhere, or bad data after
 * the first output. False for bytes that merely start with the magic and decode to nothing
 * (those may be a raw payload). */
bool ck_gunzip_damaged(const struct ck_gunzip *g);

/* Compressed bytes consumed so far (for messages). */
uint64_t ck_gunzip_offset(const struct ck_gunzip *g);

void ck_gunzip_free(struct ck_gunzip *g);

#endif
