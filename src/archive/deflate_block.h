/*
 * deflate_block.h - one block of input as one complete, independent gzip member.
 *
 * The parallel gzip writer (gzip_writer.c) cuts the stream into blocks and compresses each
 * on its own thread with these functions; concatenated members are one ordinary gzip
 * stream for every reader (RFC 1952 allows several members; Python, GNU tar, bsdtar and
 * gzip read them as one). Codecs:
 *   store   stored deflate blocks: output = input + 18 + 5 per 64 KiB (about 0.008%)
 *   isal    ISA-L levels 1..3 (fast: ~10x zlib level 1 on fp32 tensors here)
 *   zlib    zlib levels 1..9 (for --compress gzip-4 .. gzip-9)
 *   auto    ISA-L level 1, but a block whose sample or result does not shrink below
 *           CK_AUTO_KEEP_RATIO is stored instead, so auto never expands data (ISA-L level 0
 *           would: +24% on fp32). The bar is a 10% gain: fp32 tensors gain only ~7% and
 *           compressing them costs ~2.3x the save time on this project's 2-core machines
 *           (240 vs 560 MB/s), a loss unless the upload runs below ~240 MB/s; text,
 *           JSON and bf16 (~20-25%) pass the bar and are compressed. --compress gzip-1
 *           compresses everything (docs/performance.md has the figures).
 * Each function writes into out (capacity cap, at least ck_block_bound(n)) and returns
 * the member's size. The caller owns every buffer; a worker owns its ck_block_state.
 */
#ifndef CK_ARCHIVE_DEFLATE_BLOCK_H
#define CK_ARCHIVE_DEFLATE_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "archive/codec.h"
#include "util/err.h"

#define CK_AUTO_KEEP_RATIO 0.90 /* keep compressed output only below 90% of the input */

/* Worst-case member size for n input bytes (stored fallback included). */
size_t ck_block_bound(size_t n);

/* Per-thread compressor state (ISA-L level buffers); created once per worker. */
struct ck_block_state;
ck_rc ck_block_state_new(struct ck_block_state **out, struct ck_err *err);
void ck_block_state_free(struct ck_block_state *st);

/* Compresses in[0..n) per codec into out; never fails for valid arguments. crc is the
 * CRC-32 of in[0..n) (crc32_gzip_refl(0, in, n)), which the caller computes once for the
 * member's trailer and its seek-index identity; it is not computed again here. */
size_t ck_block_compress(struct ck_block_state *st, const struct ck_codec *codec,
                         const unsigned char *in, size_t n, uint32_t crc, unsigned char *out,
                         size_t cap);

/* A member of stored blocks (used directly by "store" and as the fallback); crc as above. */
size_t ck_block_stored(const unsigned char *in, size_t n, uint32_t crc, unsigned char *out,
                       size_t cap);

/* An empty member whose FEXTRA field carries one subfield (id si1 si2, len <= 65531
 * bytes of data); how ckptfs hides its seek index in a gzip stream (docs/format.md). */
size_t ck_block_extra_member(char si1, char si2, const void *data, size_t len, unsigned char *out,
                             size_t cap);

#endif
