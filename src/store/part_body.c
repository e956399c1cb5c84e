/* part_body.c - a part's bytes in memory or in a spool file; see part_body.h. */
#include "store/part_body.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <isa-l/crc.h>
#include <openssl/evp.h>

#include "util/hex.h"

#define CHUNK (1u << 20) /* bytes read from a spool file at a time */

struct ck_part_body ck_part_body_mem(const void *mem, size_t len)
{
    return (struct ck_part_body){mem ? mem : "", -1, 0, len};
}

ck_rc ck_part_body_read(void *ctx, uint64_t pos, void *buf, size_t max, size_t *got)
{
    const struct ck_part_body *b = ctx;
    *got = 0;
    if (pos >= b->len)
        return CK_OK;
    size_t n = b->len - pos < max ? (size_t)(b->len - pos) : max;
    if (b->mem) {
        memcpy(buf, b->mem + pos, n);
        *got = n;
        return CK_OK;
    }
    for (;;) {
        ssize_t r = pread(b->fd, buf, n, (off_t)(b->off + pos));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return CK_EIO; /* the spool file is shorter than the part: never expected */
        *got = (size_t)r;
        return CK_OK;
    }
}

/* The digest md of the body into d (*n bytes), and its CRC-32 into *crc if crc. */
static ck_rc digest(const struct ck_part_body *b, const EVP_MD *md, unsigned char *d, unsigned *n,
                    uint32_t *crc, struct ck_err *err)
{
    if (crc)
        *crc = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *buf = b->mem ? NULL : malloc(CHUNK);
    ck_rc rc = ctx && (b->mem || buf) && EVP_DigestInit_ex(ctx, md, NULL)
                   ? CK_OK
                   : ck_fail(err, CK_ENOMEM, "digest of a part: out of memory");
    for (uint64_t pos = 0; !rc && pos < b->len;) {
        size_t got = (size_t)(b->len - pos);
        const void *p = buf;
        if (b->mem)
            p = b->mem + pos;
        else if (ck_part_body_read((void *)b, pos, buf, CHUNK, &got) != CK_OK)
            rc = ck_fail(err, CK_EIO, "a spooled part could not be read back");
        if (!rc && !EVP_DigestUpdate(ctx, p, got))
            rc = ck_fail(err, CK_EIO, "digest of a part failed");
        if (!rc && crc)
            *crc = crc32_gzip_refl(*crc, p, (uint64_t)got);
        pos += got;
    }
    if (!rc && !EVP_DigestFinal_ex(ctx, d, n))
        rc = ck_fail(err, CK_EIO, "digest of a part failed");
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

ck_rc ck_part_body_sha256(const struct ck_part_body *b, char *hex, char *b64, uint32_t *crc32,
                          struct ck_err *err)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    ck_rc rc = digest(b, EVP_sha256(), d, &n, crc32, err);
    if (rc)
        return rc;
    ck_hex_lower(d, n, hex);
    if (b64)
        EVP_EncodeBlock((unsigned char *)b64, d, (int)n);
    return CK_OK;
}

ck_rc ck_part_body_md5_b64(const struct ck_part_body *b, char *b64, struct ck_err *err)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    ck_rc rc = digest(b, EVP_md5(), d, &n, NULL, err);
    if (!rc)
        EVP_EncodeBlock((unsigned char *)b64, d, (int)n);
    return rc;
}

/* ---------- parts being filled ---------- */

bool ck_part_buf_has(const struct ck_part_buf *b)
{
    return b->data || b->spooled;
}

static ck_rc spool_open(struct ck_part_buf *b, const char *dir, const char *disp,
                        struct ck_err *err)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) { /* no O_TMPFILE there */
        char path[4096];
        snprintf(path, sizeof(path), "%s/.ckptfs-spool-XXXXXX", dir);
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0)
            unlink(path);
    }
    if (fd < 0)
        return ck_fail_errno(err, errno, "PUT %s: a spool file for a part in %s", disp, dir);
    b->spooled = true;
    b->fd = fd;
    return CK_OK;
}

ck_rc ck_part_buf_ready(struct ck_part_buf *b, size_t want, const char *spool_dir, const char *disp,
                        struct ck_err *err)
{
    if (ck_part_buf_has(b) && b->spooled != (spool_dir != NULL))
        ck_part_buf_release(b);
    b->len = 0;
    if (spool_dir)
        return b->spooled ? CK_OK : spool_open(b, spool_dir, disp, err);
    if (b->cap >= want)
        return CK_OK;
    char *p = realloc(b->data, want ? want : 1);
    if (!p)
        return ck_fail(err, CK_ENOMEM, "PUT %s: no memory for a %zu-byte part", disp, want);
    b->data = p;
    b->cap = want;
    return CK_OK;
}

static ck_rc spool_write(struct ck_part_buf *b, const char *p, size_t n, const char *disp,
                         struct ck_err *err)
{
    while (n > 0) {
        ssize_t w = pwrite(b->fd, p, n, (off_t)b->len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ck_fail_errno(err, w < 0 ? errno : EIO, "PUT %s: writing a spooled part", disp);
        b->len += (size_t)w;
        p += w;
        n -= (size_t)w;
    }
    return CK_OK;
}

ck_rc ck_part_buf_append(struct ck_part_buf *b, const void *p, size_t n, const char *disp,
                         struct ck_err *err)
{
    if (b->spooled)
        return spool_write(b, p, n, disp, err);
    if (b->cap < b->len + n) {
        char *q = realloc(b->data, b->len + n);
        if (!q)
            return ck_fail(err, CK_ENOMEM, "PUT %s: no memory for a %zu-byte part", disp,
                           b->len + n);
        b->data = q;
        b->cap = b->len + n;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return CK_OK;
}

ck_rc ck_part_buf_append_buf(struct ck_part_buf *b, const struct ck_part_buf *src, const char *disp,
                             struct ck_err *err)
{
    if (!src->spooled)
        return ck_part_buf_append(b, src->data, src->len, disp, err);
    char *tmp = malloc(CHUNK);
    struct ck_part_body body = ck_part_buf_body(src);
    ck_rc rc = tmp ? CK_OK : ck_fail(err, CK_ENOMEM, "PUT %s: out of memory", disp);
    for (uint64_t pos = 0; !rc && pos < src->len;) {
        size_t got = 0;
        if (ck_part_body_read(&body, pos, tmp, CHUNK, &got) != CK_OK || got == 0)
            rc = ck_fail(err, CK_EIO, "PUT %s: a spooled part could not be read back", disp);
        if (!rc)
            rc = ck_part_buf_append(b, tmp, got, disp, err);
        pos += got;
    }
    free(tmp);
    return rc;
}

struct ck_part_body ck_part_buf_body(const struct ck_part_buf *b)
{
    if (b->spooled)
        return (struct ck_part_body){NULL, b->fd, 0, b->len};
    return ck_part_body_mem(b->data, b->len);
}

void ck_part_buf_sent(struct ck_part_buf *b)
{
    if (b->spooled && ftruncate(b->fd, 0) == 0)
        b->len = 0;
}

void ck_part_buf_release(struct ck_part_buf *b)
{
    free(b->data);
    if (b->spooled)
        close(b->fd);
    memset(b, 0, sizeof(*b));
}
