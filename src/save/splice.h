/*
 * splice.h - a save that reuses members of the previous object (issue 25).
 *
 * The gzip writer hands each member of the new object to ck_splice_member (its member
 * hook, gzip_writer.h) in order, with the member's identity: its length and the CRC-32
 * and CRC-64 of its tar bytes (docs/format.md "Member identity"). A member whose identity
 * a member of the previous object has (its version 3 seek index, ck_splice_src_load) is
 * not sent: runs of such members that are also consecutive in the previous object become
 * one copied range of it (ck_store_put_copy: S3 UploadPartCopy, copy_file_range on
 * file://; read and written where the store cannot copy). Every other member is written.
 * The new object is whole and standalone: the copied members decompress to the same tar
 * bytes; only where they sit in the object is known to the new seek index, which is
 * built from ck_splice_members.
 *
 * A run shorter than CK_SPLICE_MIN bytes of the previous object is written from the
 * member bytes in hand instead (a copy below S3's 5 MiB part would be read back anyway):
 * the members of a run are kept until it reaches CK_SPLICE_MIN, so memory stays below
 * CK_SPLICE_MIN plus one member.
 *
 * A block the previous object has need not be compressed at all: ck_splice_claim is the
 * gzip writer's claim hook (its workers ask it with the block's CRCs before compressing),
 * and such a member reaches ck_splice_member as its input bytes alone. Kept as they are
 * while its run is short; compressed here only if the run ends short after all, or if
 * the member does not continue a run and starts none (never: a claimed block has a
 * match).
 *
 * The source is checked by the store: a previous object that changed since its index was
 * read fails the copy or the commit with CK_EEXIST ("the source changed"), never a wrong
 * byte; the pipeline then saves again without reuse (pipeline.c).
 *
 * Not thread-safe: one splice per upload, used from the gzip writer's caller thread.
 */
#ifndef CK_SAVE_SPLICE_H
#define CK_SAVE_SPLICE_H

#include <stdbool.h>
#include <stdint.h>

#include "archive/gzip_writer.h"
#include "archive/seek_index.h"
#include "store/store.h"

#define CK_SPLICE_MIN (8u << 20) /* object bytes a copied range holds at least */

/* The previous object a save may take members from. */
struct ck_splice_src {
    struct ck_store *store; /* not owned; open until the save ends */
    char version[128];      /* head()'s version (or ETag) of the object the index is of */
    uint64_t size;
    struct ck_seek_index ix;
    uint32_t *table; /* open addressing: member index + 1, 0 empty */
    size_t table_mask;
};

/* Reads the index of s's object for reuse: a head, the index (ck_ix_fetch) and a second
 * head that must show the same version. CK_ENOTFOUND when there is nothing to reuse (no
 * object, no version, no ckptfs index, an index without member identities); any other
 * failure names what. */
ck_rc ck_splice_src_load(struct ck_store *s, struct ck_splice_src **out, struct ck_err *err);
/* The same from an index in hand (moved into *out, *ix zeroed), of s's object of that
 * version and size; no I/O. */
ck_rc ck_splice_src_new(struct ck_store *s, const char *version, uint64_t size,
                        struct ck_seek_index *ix, struct ck_splice_src **out, struct ck_err *err);
void ck_splice_src_free(struct ck_splice_src *src);

/* What a splice did. */
struct ck_splice_stats {
    uint64_t reused_bytes;       /* object bytes copied from the previous object */
    uint64_t reused_members;     /* members of the new object that were copied */
    uint64_t copies;             /* copied ranges */
    uint64_t server_side;        /* of them, copied without passing through here */
    uint64_t claimed;            /* members the gzip workers did not compress (claim hook) */
    uint64_t claimed_compressed; /* of them, compressed here after all: in a short run */
    uint64_t placed_files;       /* files whose members were placed unread (ck_splice_place) */
    uint64_t placed_bytes;       /* their tar bytes (data and padding), never read */
    /* Files with data (ck_splice_add_file), when there was a previous object: */
    uint64_t files_reused;  /* every byte copied from it */
    uint64_t files_short;   /* unchanged, but sent again: in a run below CK_SPLICE_MIN */
    uint64_t files_changed; /* bytes it does not have (the file's, or, for a file under
                               1 MiB, those of a file sharing its 1 MiB block) */
};

struct ck_splice;

/* A splice into upload u (bytes written go through out, a sink into u); src NULL: every
 * member is written. codec compresses claimed members that are written after all. */
ck_rc ck_splice_new(struct ck_store_upload *u, const struct ck_sink *out,
                    const struct ck_codec *codec, const struct ck_splice_src *src,
                    struct ck_splice **sp, struct ck_err *err);
/* The gzip writer's claim hook (ctx is the ck_splice_src): whether src has a member of
 * that identity. Reads src only, from any thread. */
bool ck_splice_claim(const void *ctx, uint32_t in_len, uint32_t crc32, uint64_t crc64);
/* Whether members j .. j+k-1 of src are there and hold exactly len tar bytes. */
bool ck_splice_src_holds(const struct ck_splice_src *src, size_t j, size_t k, uint64_t len);
/* Whether members j .. j+k-1 of the previous object (ck_splice_src_holds) can be placed
 * next without their bytes: the run they end up in is copied for sure (it holds at least
 * CK_SPLICE_MIN bytes of the object with them). Ask with every member before them handed
 * over (ck_gzw_flush). */
bool ck_splice_can_place(const struct ck_splice *sp, size_t j, size_t k);
/* Members j .. j+k-1 of the previous object are the new object's next members, from tar
 * offset in_off on (where ck_gzw_skip left out len bytes): they are copied, and the bytes
 * they hold are never read (a file not changed since the save that made the previous
 * object, save/known.h). They join the pending run if they continue it. CK_EINVAL unless
 * ck_splice_src_holds and ck_splice_can_place. */
ck_rc ck_splice_place(struct ck_splice *sp, size_t j, size_t k, uint64_t in_off, uint64_t len,
                      struct ck_err *err);
/* Names a regular file's stored bytes in the tar stream, [data_off, data_off + len), in
 * tar order: ck_splice_finish counts what became of it (stats files_*). Nothing is kept
 * when there is no previous object. */
ck_rc ck_splice_add_file(struct ck_splice *sp, uint64_t data_off, uint64_t len, struct ck_err *err);
/* The gzip writer's member hook (ctx is the splice). */
ck_rc ck_splice_member(void *ctx, const struct ck_gzw_member *m, const unsigned char *bytes,
                       const unsigned char *raw, struct ck_err *err);
/* Ends the pending run and counts the files: after the gzip writer's finish, before the
 * index is written. */
ck_rc ck_splice_finish(struct ck_splice *sp, struct ck_err *err);
/* The new object's members (for the seek index) and its data bytes. */
const struct ck_gzw_member *ck_splice_members(const struct ck_splice *sp, size_t *n);
uint64_t ck_splice_bytes_out(const struct ck_splice *sp);
void ck_splice_get_stats(const struct ck_splice *sp, struct ck_splice_stats *st);
void ck_splice_free(struct ck_splice *sp);

#endif
