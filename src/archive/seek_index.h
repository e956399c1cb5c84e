/*
 * seek_index.h - the seek index ckptfs hides at the end of its own archives.
 *
 * A ckptfs archive is a gzip stream of independent members (one per block of the tar
 * stream, gzip_writer.h) followed by index members that every reader ignores: empty gzip
 * members whose FEXTRA field carries data (SPEC 3; checked to read with Python tarfile,
 * GNU tar, bsdtar and gzip -t). The index says where each member is (offsets in the tar
 * stream and in the object) and where each entry's data is in the tar stream, so a reader
 * can list the archive from the tail alone and fetch just the members a file needs.
 *
 *   [data members ...][index members: subfield "CK", zlib(index) in chunks][locator]
 *   locator = the last CK_IX_LOCATOR_LEN bytes: an empty member with subfield "CL":
 *             "CKPTIDX1", version, offset and length of the index members, raw and
 *             compressed index length, CRC-32 of the compressed index
 * The layout is specified byte by byte in docs/format.md.
 *
 * The index is untrusted input (it comes from the store): ck_ix_decode checks every
 * count, offset and length, that members are contiguous and cover the tar stream, that
 * every entry's data lies inside it, and every name and link target with the same rules
 * as extraction (entry_name.h). Anything else is CK_ECORRUPT or CK_EHOSTILE.
 *
 * Version 2 added the sparse entry: a file whose data segments (logical offset, length)
 * the index lists; the tar stream holds them one after the other from data_off, the holes
 * not at all. Version 3 (written now) adds each member's identity: the CRC-32 and CRC-64
 * of its tar bytes, by which a later save knows a member whose bytes it would write again
 * (docs/format.md "Member identity"). Versions 1 and 2 are still read.
 */
#ifndef CK_ARCHIVE_SEEK_INDEX_H
#define CK_ARCHIVE_SEEK_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive/gzip_writer.h"
#include "archive/pack.h"
#include "util/sink.h"

#define CK_IX_LOCATOR_LEN 66u

enum ck_ix_type {
    CK_IX_FILE = 0,
    CK_IX_DIR = 1,
    CK_IX_SYMLINK = 2,
    CK_IX_SPARSE = 3, /* a regular file with holes (version 2) */
};

#define CK_IX_MAX_SEGS 65536u /* data segments of one sparse entry, at most */

struct ck_ix_seg {
    uint64_t off, len; /* logical: len bytes of data at off; the rest reads as zeros */
    uint64_t at;       /* where they are stored: offset from the entry's data_off */
};

struct ck_ix_entry {
    const char *name; /* normalized, relative; points into the index's arena */
    const char *link; /* symlink target, or NULL */
    uint8_t type;     /* enum ck_ix_type */
    uint32_t mode;    /* permission bits (07777) */
    uint32_t uid;
    uint32_t gid;
    int64_t mtime_sec;
    uint32_t mtime_nsec;
    uint64_t size;     /* file data bytes (logical: holes included) */
    uint64_t data_off; /* offset of the data in the tar stream */
    uint64_t stored;   /* bytes of data in the tar stream: size, or a sparse file's data */
    const struct ck_ix_seg *segs; /* CK_IX_SPARSE: its data segments in order, else NULL */
    uint32_t nsegs;
};

struct ck_ix_member {
    uint64_t in_off;  /* in the tar stream */
    uint64_t out_off; /* in the object */
    uint32_t in_len;
    uint32_t out_len;
    uint32_t crc32; /* of the member's tar bytes (its gzip trailer's); 0 before version 3 */
    uint64_t crc64; /* CRC-64/ECMA-182 (reflected) of them; 0 before version 3 */
};

struct ck_seek_index {
    struct ck_ix_member *members; /* sorted by in_off and out_off, contiguous */
    size_t nmembers;
    struct ck_ix_entry *entries; /* in archive order */
    size_t nentries;
    uint64_t tar_size;           /* bytes of the tar stream */
    bool member_ids;             /* version 3: members carry crc32 and crc64 */
    char *arena;                 /* owns every name and link */
    struct ck_ix_seg *seg_arena; /* owns every sparse entry's segments */
};

/* Where the index is, from the object's last CK_IX_LOCATOR_LEN bytes. */
struct ck_ix_locator {
    uint64_t index_off; /* first index member in the object */
    uint64_t index_len; /* bytes of index members (the locator excluded) */
    uint32_t raw_len;   /* serialized index bytes */
    uint32_t z_len;     /* zlib-compressed index bytes */
    uint32_t crc;       /* CRC-32 of the compressed index */
};

/* --- writing (the save pipeline) --- */

struct ck_ix_builder;

ck_rc ck_ix_builder_new(struct ck_ix_builder **out, struct ck_err *err);
/* A ck_pack_entry_fn: records one entry (ctx is the builder). */
ck_rc ck_ix_builder_add(void *ctx, const struct ck_pack_entry *e, struct ck_err *err);
/* Serializes the index for these data members and writes the index and locator members
 * to out, which continues the object right after the data members (data_end bytes). */
ck_rc ck_ix_builder_write(struct ck_ix_builder *b, const struct ck_gzw_member *members,
                          size_t nmembers, uint64_t tar_size, uint64_t data_end,
                          const struct ck_sink *out, struct ck_err *err);
void ck_ix_builder_free(struct ck_ix_builder *b);

/* --- reading (the restore) --- */

/* Parses the locator from the object's tail (tail holds its last len bytes, len >=
 * CK_IX_LOCATOR_LEN). CK_ENOTFOUND: no ckptfs index (a foreign archive: not an error);
 * CK_ECORRUPT: a locator that does not add up. */
ck_rc ck_ix_parse_locator(const unsigned char *tail, size_t len, uint64_t object_size,
                          struct ck_ix_locator *loc, struct ck_err *err);

/* Decodes the index members (buf holds the object bytes [loc->index_off,
 * loc->index_off + loc->index_len)). On success ix owns its memory (ck_ix_free). */
ck_rc ck_ix_decode(const unsigned char *buf, size_t len, const struct ck_ix_locator *loc,
                   struct ck_seek_index *ix, struct ck_err *err);
void ck_ix_free(struct ck_seek_index *ix);

#define CK_IX_TAIL_FETCH (256u << 10) /* what ck_ix_fetch reads first: the object's tail */

/* How ck_ix_fetch reads the object: exactly len bytes at off into a new malloc'd buffer. */
typedef ck_rc (*ck_ix_read_fn)(void *ctx, uint64_t off, size_t len, unsigned char **out,
                               struct ck_err *err);

/* The index of an object of size bytes, read with read(ctx, ...): its last
 * CK_IX_TAIL_FETCH bytes, and the index members in a second read when they start before
 * those. CK_ENOTFOUND: the object has no ckptfs index (a foreign archive). */
ck_rc ck_ix_fetch(ck_ix_read_fn read, void *ctx, uint64_t size, struct ck_seek_index *ix,
                  struct ck_err *err);

/* The index of the first member that holds tar offset off (off < tar_size). */
size_t ck_ix_member_at(const struct ck_seek_index *ix, uint64_t off);

/* A file entry's stored bytes [from, to) in the tar stream (offsets from data_off) that
 * hold its logical range [off, off + len); from == to when the range is all holes. */
void ck_ix_stored_range(const struct ck_ix_entry *e, uint64_t off, uint64_t len, uint64_t *from,
                        uint64_t *to);

/* Where stored byte at (from data_off) of a file entry belongs: its logical offset, and
 * how many stored bytes from there are contiguous in the file (*run >= 1). */
void ck_ix_logical_at(const struct ck_ix_entry *e, uint64_t at, uint64_t *logical, uint64_t *run);

#endif
