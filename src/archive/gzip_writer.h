/*
 * gzip_writer.h - compresses a byte stream into a gzip stream pushed into a sink, on all
 * cores.
 *
 * The input is cut into blocks (CK_GZW_BLOCK by default, or shorter where the caller asks
 * for a boundary: ck_gzw_cut_at); each block becomes one independent gzip member
 * (deflate_block.h), compressed by a pool of worker threads and
 * written to the sink in order by the caller's thread. Memory is bounded: at most
 * 2 x threads blocks are in flight. The member table (where each block starts in the
 * input and in the output) is kept so that the caller can write a seek index after
 * ck_gzw_finish (archive/seek_index.h).
 *
 * Owns its threads and buffers; does not own the output sink. Usage: ck_gzw_new, any
 * number of ck_gzw_write, ck_gzw_finish (flushes every block), ck_gzw_free. After an error
 * the writer only accepts ck_gzw_free.
 */
#ifndef CK_ARCHIVE_GZIP_WRITER_H
#define CK_ARCHIVE_GZIP_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive/codec.h"
#include "util/sink.h"

#define CK_GZW_BLOCK (1u << 20)

struct ck_gzw;

/* One gzip member of the output. */
struct ck_gzw_member {
    uint64_t in_off;  /* offset of its first byte in the input */
    uint64_t out_off; /* offset of the member in the output */
    uint32_t in_len;
    uint32_t out_len;
    uint32_t crc32; /* CRC-32 of its input bytes (as in its gzip trailer) */
    uint64_t crc64; /* CRC-64/ECMA-182, reflected (ISA-L crc64_ecma_refl), of them */
};

/* Where a member goes instead of the output sink (ck_gzw_opts.member): m describes it (its
 * out_off counts what was handed over before it), bytes holds its m->out_len bytes, raw
 * its m->in_len input bytes. A block the claim hook took was not compressed: bytes is
 * NULL and m->out_len 0 (its CRCs are set), and the hook compresses raw itself if it
 * needs the member after all. */
typedef ck_rc (*ck_gzw_member_fn)(void *ctx, const struct ck_gzw_member *m,
                                  const unsigned char *bytes, const unsigned char *raw,
                                  struct ck_err *err);
/* Whether a block of in_len input bytes with these CRCs (those of ck_gzw_member) may skip
 * compression (a save reusing the previous object's member of that identity: splice.h).
 * Called from the worker threads, so it must only read shared state. */
typedef bool (*ck_gzw_claim_fn)(const void *ctx, uint32_t in_len, uint32_t crc32, uint64_t crc64);

struct ck_gzw_opts {
    struct ck_codec codec;
    unsigned threads;        /* 0: one per online CPU */
    size_t block_size;       /* 0: CK_GZW_BLOCK */
    ck_gzw_member_fn member; /* NULL: members go to the output sink */
    void *member_ctx;
    ck_gzw_claim_fn claim; /* NULL: every block is compressed; needs member */
    const void *claim_ctx;
};

ck_rc ck_gzw_new(const struct ck_codec *codec, const struct ck_sink *out, struct ck_gzw **gz,
                 struct ck_err *err);
ck_rc ck_gzw_new_opts(const struct ck_gzw_opts *opts, const struct ck_sink *out, struct ck_gzw **gz,
                      struct ck_err *err);
ck_rc ck_gzw_write(struct ck_gzw *gz, const void *buf, size_t len, struct ck_err *err);
/* A member boundary at input offset in_off (at or after the bytes written so far): the
 * member being filled ends there, short if need be, and the next byte starts a new one.
 * At most one cut is pending at a time (CK_EINVAL otherwise). The save pipeline cuts
 * around a large file's data so that its members depend on its bytes alone. */
ck_rc ck_gzw_cut_at(struct ck_gzw *gz, uint64_t in_off, struct ck_err *err);
/* Every byte written so far is compressed and handed over (the member being filled is
 * cut here): the member hook has seen every member before the next byte. */
ck_rc ck_gzw_flush(struct ck_gzw *gz, struct ck_err *err);
/* The next len input bytes are not given to the writer: the caller has their members
 * already (a save's file unchanged since the previous object, whose members are copied
 * from it: save/splice.h). Every block before them is compressed and handed to the member
 * hook first, in order; *in_off is where they start. The caller then hands their members
 * to its own table (the splice) before writing more. At a member boundary only (the
 * block being filled is cut here); a pending cut inside the range is refused, one at its
 * end is done. Needs a member hook. */
ck_rc ck_gzw_skip(struct ck_gzw *gz, uint64_t len, uint64_t *in_off, struct ck_err *err);
ck_rc ck_gzw_finish(struct ck_gzw *gz, struct ck_err *err);
void ck_gzw_free(struct ck_gzw *gz);

uint64_t ck_gzw_bytes_in(const struct ck_gzw *gz);
uint64_t ck_gzw_bytes_out(const struct ck_gzw *gz);

/* The members written so far (valid until the next call on gz); none when a member hook
 * (ck_gzw_opts.member) takes them. */
const struct ck_gzw_member *ck_gzw_members(const struct ck_gzw *gz, size_t *count);

/* A sink that feeds ck_gzw_write; ctx is gz. */
struct ck_sink ck_gzw_sink(struct ck_gzw *gz);

#endif
