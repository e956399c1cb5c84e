/*
 * gzip_writer.c - one gzip stream through zlib; see gzip_writer.h.
 *
 * deflateInit2 with windowBits 31 writes the gzip header and trailer (CRC-32, ISIZE).
 * "store" is level 0 (stored blocks only); "auto" is level 1 for now: zlib falls back to
 * stored blocks where deflate would expand the data, so the output is never meaningfully
 * bigger than the input. Output is pushed to the sink in chunks of CK_GZW_CHUNK bytes.
 */
#include "archive/gzip_writer.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

#include <zlib.h>

#define CK_GZW_CHUNK (256u * 1024u)

struct ck_gzw {
    z_stream zs;
    struct ck_sink out;  /* not owned */
    unsigned char *obuf; /* CK_GZW_CHUNK bytes, owned */
    uint64_t bytes_in;
    uint64_t bytes_out;
    bool failed;   /* after an error only ck_gzw_free is allowed */
    bool finished; /* the trailer has been written */
};

static int codec_level(const struct ck_codec *c)
{
    switch (c->kind) {
    case CK_CODEC_STORE:
        return 0;
    case CK_CODEC_GZIP:
        return c->level;
    case CK_CODEC_AUTO:
    default:
        return 1;
    }
}

ck_rc ck_gzw_new(const struct ck_codec *codec, const struct ck_sink *out, struct ck_gzw **gz,
                 struct ck_err *err)
{
    *gz = NULL;
    int level = codec_level(codec);
    if (level < 0 || level > 9)
        return ck_fail(err, CK_EINVAL, "gzip writer: compression level %d out of range", level);
    struct ck_gzw *g = calloc(1, sizeof(*g));
    if (!g)
        return ck_fail(err, CK_ENOMEM, "gzip writer: out of memory");
    g->obuf = malloc(CK_GZW_CHUNK);
    if (!g->obuf) {
        free(g);
        return ck_fail(err, CK_ENOMEM, "gzip writer: out of memory for the output buffer");
    }
    int zrc = deflateInit2(&g->zs, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    if (zrc != Z_OK) {
        free(g->obuf);
        free(g);
        return ck_fail(err, zrc == Z_MEM_ERROR ? CK_ENOMEM : CK_EINVAL,
                       "gzip writer: deflateInit2 failed (zlib error %d)", zrc);
    }
    g->out = *out;
    g->zs.next_out = g->obuf;
    g->zs.avail_out = CK_GZW_CHUNK;
    *gz = g;
    return CK_OK;
}

/* Pushes the bytes produced so far (if any) to the sink and resets the output window. */
static ck_rc flush_out(struct ck_gzw *g, struct ck_err *err)
{
    size_t n = CK_GZW_CHUNK - g->zs.avail_out;
    if (n > 0) {
        ck_rc rc = ck_sink_write(&g->out, g->obuf, n, err);
        if (rc)
            return rc;
        g->bytes_out += n;
    }
    g->zs.next_out = g->obuf;
    g->zs.avail_out = CK_GZW_CHUNK;
    return CK_OK;
}

/* Runs deflate with flush over the pending input until it is consumed (or the stream ends). */
static ck_rc run_deflate(struct ck_gzw *g, int flush, struct ck_err *err)
{
    for (;;) {
        int zrc = deflate(&g->zs, flush);
        if (zrc == Z_STREAM_ERROR)
            return ck_fail(err, CK_EIO, "gzip writer: deflate failed: %s",
                           g->zs.msg ? g->zs.msg : "stream error");
        if (g->zs.avail_out == 0) {
            ck_rc rc = flush_out(g, err);
            if (rc)
                return rc;
            continue;
        }
        if (flush == Z_FINISH ? zrc == Z_STREAM_END : g->zs.avail_in == 0)
            return CK_OK;
    }
}

static ck_rc refuse_use(const struct ck_gzw *g, struct ck_err *err)
{
    if (g->failed)
        return ck_fail(err, CK_EINVAL, "gzip writer: used after an error");
    return ck_fail(err, CK_EINVAL, "gzip writer: used after finish");
}

ck_rc ck_gzw_write(struct ck_gzw *gz, const void *buf, size_t len, struct ck_err *err)
{
    if (gz->failed || gz->finished)
        return refuse_use(gz, err);
    const unsigned char *p = buf;
    while (len > 0) {
        uInt n = len > UINT_MAX ? UINT_MAX : (uInt)len;
        gz->zs.next_in = (unsigned char *)p;
        gz->zs.avail_in = n;
        ck_rc rc = run_deflate(gz, Z_NO_FLUSH, err);
        gz->zs.next_in = NULL;
        gz->zs.avail_in = 0;
        if (rc) {
            gz->failed = true;
            return rc;
        }
        gz->bytes_in += n;
        p += n;
        len -= n;
    }
    return CK_OK;
}

ck_rc ck_gzw_finish(struct ck_gzw *gz, struct ck_err *err)
{
    if (gz->failed || gz->finished)
        return refuse_use(gz, err);
    ck_rc rc = run_deflate(gz, Z_FINISH, err);
    if (!rc)
        rc = flush_out(gz, err);
    if (rc) {
        gz->failed = true;
        return rc;
    }
    gz->finished = true;
    return CK_OK;
}

void ck_gzw_free(struct ck_gzw *gz)
{
    if (!gz)
        return;
    deflateEnd(&gz->zs);
    free(gz->obuf);
    free(gz);
}

uint64_t ck_gzw_bytes_in(const struct ck_gzw *gz)
{
    return gz->bytes_in;
}

uint64_t ck_gzw_bytes_out(const struct ck_gzw *gz)
{
    return gz->bytes_out;
}

static ck_rc gzw_sink_write(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    return ck_gzw_write(ctx, buf, len, err);
}

struct ck_sink ck_gzw_sink(struct ck_gzw *gz)
{
    return (struct ck_sink){.write = gzw_sink_write, .ctx = gz};
}
