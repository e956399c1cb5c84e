/* gunzip_reader.c - verifying multi-member gzip decoder over a file; see gunzip_reader.h. */
#include "archive/gunzip_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#define GZ_IN_SIZE  (256u * 1024u)
#define GZ_OUT_SIZE (256u * 1024u)

struct ck_gunzip {
    z_stream zs;
    struct ck_objsrc src; /* fd and ctx not owned */
    uint64_t file_off;    /* bytes read from fd so far */
    unsigned char *in;    /* GZ_IN_SIZE, owned */
    unsigned char *out;   /* GZ_OUT_SIZE, owned */
    uint64_t members;     /* complete members so far */
    bool eof;             /* fd has no more bytes */
    bool member_start;    /* the next bytes must start a member (or end the stream) */
    bool done;            /* end of the stream reached */
    bool damaged;         /* failed after it was seen to be gzip (truncated, bad data) */
};

bool ck_gzip_magic(const unsigned char *p, size_t n)
{
    return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

ck_rc ck_gunzip_new(const struct ck_objsrc *src, struct ck_gunzip **gp, struct ck_err *err)
{
    *gp = NULL;
    struct ck_gunzip *g = calloc(1, sizeof(*g));
    if (!g)
        return ck_fail(err, CK_ENOMEM, "gzip reader: out of memory");
    g->in = malloc(GZ_IN_SIZE);
    g->out = malloc(GZ_OUT_SIZE);
    int zrc = (g->in && g->out) ? inflateInit2(&g->zs, 31) : Z_MEM_ERROR;
    if (zrc != Z_OK) {
        free(g->in);
        free(g->out);
        free(g);
        return ck_fail(err, CK_ENOMEM, "gzip reader: inflateInit2 failed (zlib error %d)", zrc);
    }
    g->src = *src;
    g->member_start = true;
    g->zs.next_in = g->in;
    *gp = g;
    return CK_OK;
}

bool ck_gunzip_damaged(const struct ck_gunzip *g)
{
    return g->damaged;
}

uint64_t ck_gunzip_offset(const struct ck_gunzip *g)
{
    return g->file_off - g->zs.avail_in;
}

/* Reads until at least need bytes are pending or the file ends. */
static ck_rc fill(struct ck_gunzip *g, size_t need, struct ck_err *err)
{
    while (g->zs.avail_in < need && !g->eof) {
        if (g->zs.next_in != g->in && g->zs.avail_in > 0)
            memmove(g->in, g->zs.next_in, g->zs.avail_in);
        g->zs.next_in = g->in;
        ssize_t n = ck_objsrc_pread(&g->src, g->in + g->zs.avail_in, GZ_IN_SIZE - g->zs.avail_in,
                                    g->file_off, err);
        if (n < 0)
            return err->rc;
        if (n == 0)
            g->eof = true;
        g->file_off += (uint64_t)n;
        g->zs.avail_in += (uInt)n;
    }
    return CK_OK;
}

/* At a member boundary: true if another member follows; otherwise the stream is done. */
static ck_rc next_member(struct ck_gunzip *g, struct ck_err *err)
{
    ck_rc rc = fill(g, 2, err);
    if (rc)
        return rc;
    if (!ck_gzip_magic(g->zs.next_in, g->zs.avail_in)) {
        if (g->members == 0)
            return ck_fail(err, CK_ECORRUPT, "gzip reader: not a gzip stream");
        g->done = true; /* trailing bytes after a complete member are ignored */
        return CK_OK;
    }
    g->member_start = false;
    return CK_OK;
}

static ck_rc inflate_step(struct ck_gunzip *g, struct ck_err *err)
{
    if (g->zs.avail_in == 0) {
        ck_rc rc = fill(g, 1, err);
        if (rc)
            return rc;
        if (g->zs.avail_in == 0) {
            g->damaged = true;
            return ck_fail(err, CK_ECORRUPT, "gzip stream truncated in member %llu at byte %llu",
                           (unsigned long long)g->members + 1, (unsigned long long)g->file_off);
        }
    }
    int zrc = inflate(&g->zs, Z_NO_FLUSH);
    switch (zrc) {
    case Z_STREAM_END:
        g->members++;
        inflateReset(&g->zs);
        g->member_start = true;
        return CK_OK;
    case Z_OK:
        return CK_OK;
    case Z_BUF_ERROR:
        if (g->zs.avail_in == 0)
            return CK_OK; /* needs more input */
        break;
    case Z_MEM_ERROR:
        return ck_fail(err, CK_ENOMEM, "gzip reader: out of memory");
    default:
        break;
    }
    /* Bad bytes before any output may be a raw payload that starts with the magic. */
    g->damaged = g->members > 0 || g->zs.total_out > 0;
    return ck_fail(err, CK_ECORRUPT, "damaged gzip stream in member %llu near byte %llu: %s",
                   (unsigned long long)g->members + 1, (unsigned long long)ck_gunzip_offset(g),
                   g->zs.msg ? g->zs.msg : "invalid data");
}

ck_rc ck_gunzip_read(struct ck_gunzip *g, const void **out, size_t *len, struct ck_err *err)
{
    *out = g->out;
    *len = 0;
    g->zs.next_out = g->out;
    g->zs.avail_out = GZ_OUT_SIZE;
    while (!g->done && g->zs.avail_out == GZ_OUT_SIZE) {
        ck_rc rc = g->member_start ? next_member(g, err) : inflate_step(g, err);
        if (rc)
            return rc;
    }
    *len = GZ_OUT_SIZE - g->zs.avail_out;
    return CK_OK;
}

void ck_gunzip_free(struct ck_gunzip *g)
{
    if (!g)
        return;
    inflateEnd(&g->zs);
    free(g->in);
    free(g->out);
    free(g);
}
