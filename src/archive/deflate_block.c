/* deflate_block.c - one block as one gzip member; see deflate_block.h. */
#include "archive/deflate_block.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <zlib.h>

#define GZ_HEADER_LEN  10
#define GZ_TRAILER_LEN 8
#define STORED_MAX     65535u
#define SAMPLE_LEN     (64u * 1024u)

struct ck_block_state {
    unsigned char *level_buf; /* ISA-L hash tables, large enough for levels 1..3 */
    size_t level_buf_size;
    unsigned char *sample_out; /* scratch for the auto sample */
};

size_t ck_block_bound(size_t n)
{
    size_t stored = GZ_HEADER_LEN + GZ_TRAILER_LEN + n + 5 * (n / STORED_MAX + 1);
    size_t zb = compressBound((uLong)n) + GZ_HEADER_LEN + GZ_TRAILER_LEN + 64;
    return (stored > zb ? stored : zb) + 1024;
}

ck_rc ck_block_state_new(struct ck_block_state **out, struct ck_err *err)
{
    struct ck_block_state *st = calloc(1, sizeof(*st));
    size_t lb = ISAL_DEF_LVL3_DEFAULT > ISAL_DEF_LVL1_DEFAULT ? ISAL_DEF_LVL3_DEFAULT
                                                              : ISAL_DEF_LVL1_DEFAULT;
    if (st) {
        st->level_buf = malloc(lb);
        st->level_buf_size = lb;
        st->sample_out = malloc(ck_block_bound(SAMPLE_LEN));
    }
    if (!st || !st->level_buf || !st->sample_out) {
        ck_block_state_free(st);
        return ck_fail(err, CK_ENOMEM, "compressor state: out of memory");
    }
    *out = st;
    return CK_OK;
}

void ck_block_state_free(struct ck_block_state *st)
{
    if (!st)
        return;
    free(st->level_buf);
    free(st->sample_out);
    free(st);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static size_t put_header(unsigned char *out, unsigned char flags)
{
    static const unsigned char h[GZ_HEADER_LEN] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    memcpy(out, h, GZ_HEADER_LEN);
    out[3] = flags;
    return GZ_HEADER_LEN;
}

size_t ck_block_stored(const unsigned char *in, size_t n, uint32_t crc, unsigned char *out,
                       size_t cap)
{
    if (cap < ck_block_bound(n))
        return 0;
    size_t o = put_header(out, 0);
    size_t done = 0;
    do {
        size_t len = n - done > STORED_MAX ? STORED_MAX : n - done;
        bool last = done + len == n;
        out[o++] = last ? 1 : 0; /* BFINAL, BTYPE 00, then byte-aligned */
        out[o++] = (unsigned char)len;
        out[o++] = (unsigned char)(len >> 8);
        out[o++] = (unsigned char)~len;
        out[o++] = (unsigned char)(~len >> 8);
        memcpy(out + o, in + done, len);
        o += len;
        done += len;
    } while (done < n);
    put_le32(out + o, crc);
    put_le32(out + o + 4, (uint32_t)n);
    return o + GZ_TRAILER_LEN;
}

/* ISA-L stateless gzip member around a raw deflate stream, its trailer from the CRC-32 the
 * caller has (ISA-L's own gzip wrapper would compute it again); 0 if it did not fit in
 * cap. */
static size_t isal_member(struct ck_block_state *st, int level, const unsigned char *in, size_t n,
                          uint32_t crc, unsigned char *out, size_t cap)
{
    if (cap < GZ_HEADER_LEN + GZ_TRAILER_LEN)
        return 0;
    size_t o = put_header(out, 0);
    struct isal_zstream s;
    isal_deflate_stateless_init(&s);
    s.level = (uint32_t)level;
    s.level_buf = st->level_buf;
    s.level_buf_size = (uint32_t)st->level_buf_size;
    s.gzip_flag = IGZIP_DEFLATE;
    s.end_of_stream = 1;
    s.flush = NO_FLUSH;
    s.next_in = (unsigned char *)in;
    s.avail_in = (uint32_t)n;
    s.next_out = out + o;
    s.avail_out = (uint32_t)(cap - o - GZ_TRAILER_LEN);
    if (isal_deflate_stateless(&s) != COMP_OK)
        return 0;
    o += s.total_out;
    put_le32(out + o, crc);
    put_le32(out + o + 4, (uint32_t)n);
    return o + GZ_TRAILER_LEN;
}

/* zlib gzip member at level; 0 on failure. */
static size_t zlib_member(int level, const unsigned char *in, size_t n, unsigned char *out,
                          size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int r = deflate(&zs, Z_FINISH);
    size_t len = zs.total_out;
    deflateEnd(&zs);
    return r == Z_STREAM_END ? len : 0;
}

static bool shrinks(size_t in, size_t out)
{
    return out > 0 && (double)out < (double)in * CK_AUTO_KEEP_RATIO;
}

static size_t auto_member(struct ck_block_state *st, const unsigned char *in, size_t n,
                          uint32_t crc, unsigned char *out, size_t cap)
{
    /* A sample first: incompressible data (random bytes, encrypted, already compressed)
     * is stored without paying for compressing all of it. */
    if (n > 2 * SAMPLE_LEN) {
        size_t s = isal_member(st, 1, in, SAMPLE_LEN, 0, st->sample_out, /* size only */
                               ck_block_bound(SAMPLE_LEN));
        if (!shrinks(SAMPLE_LEN, s))
            return ck_block_stored(in, n, crc, out, cap);
    }
    size_t c = isal_member(st, 1, in, n, crc, out, cap);
    return shrinks(n, c) ? c : ck_block_stored(in, n, crc, out, cap);
}

size_t ck_block_compress(struct ck_block_state *st, const struct ck_codec *codec,
                         const unsigned char *in, size_t n, uint32_t crc, unsigned char *out,
                         size_t cap)
{
    size_t c = 0;
    switch (codec->kind) {
    case CK_CODEC_STORE:
        return ck_block_stored(in, n, crc, out, cap);
    case CK_CODEC_GZIP:
        c = codec->level <= 3 ? isal_member(st, codec->level, in, n, crc, out, cap)
                              : zlib_member(codec->level, in, n, out, cap);
        return c ? c : ck_block_stored(in, n, crc, out, cap);
    case CK_CODEC_AUTO:
    default:
        return auto_member(st, in, n, crc, out, cap);
    }
}

size_t ck_block_extra_member(char si1, char si2, const void *data, size_t len, unsigned char *out,
                             size_t cap)
{
    if (len > 65531 || cap < GZ_HEADER_LEN + 2 + 4 + len + 2 + GZ_TRAILER_LEN)
        return 0;
    size_t o = put_header(out, 4 /* FEXTRA */);
    size_t xlen = 4 + len;
    out[o++] = (unsigned char)xlen;
    out[o++] = (unsigned char)(xlen >> 8);
    out[o++] = (unsigned char)si1;
    out[o++] = (unsigned char)si2;
    out[o++] = (unsigned char)len;
    out[o++] = (unsigned char)(len >> 8);
    memcpy(out + o, data, len);
    o += len;
    out[o++] = 0x03; /* an empty final block with fixed Huffman codes */
    out[o++] = 0x00;
    memset(out + o, 0, GZ_TRAILER_LEN); /* CRC-32 and ISIZE of nothing */
    return o + GZ_TRAILER_LEN;
}
