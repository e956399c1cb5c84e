/*
 * s3_upload.c - the S3 store's put_* operations: buffer into a part, then one PUT for a
 * small object or a multipart upload (s3_multipart.c) for a large one.
 *
 * put_write fills the current part buffer. A part is handed over only when the buffer is
 * full *and* more bytes arrive, so at commit the buffer always holds the last part: if no
 * multipart upload was started by then, the whole object is in that buffer and goes up as
 * one PUT (signed SHA-256, x-amz-checksum-sha256), else it becomes the last part. Part n
 * has ck_s3_part_size(base, n) bytes (the last one fewer). The object appears at commit
 * only; abort and every failure leave the old object untouched.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/sigv4.h"
#include "store/s3.h"
#include "store/s3_multipart.h"

struct s3_upload {
    struct ck_store_upload hdr; /* first: the generic header */
    struct ck_s3 *s3;
    char *buf;             /* the part being filled; owned by the writer */
    size_t cap;            /* allocated */
    size_t len;            /* used */
    size_t want;           /* size of the part being filled */
    struct ck_s3_mpu *mpu; /* NULL until the first part is handed over */
};

ck_rc ck_s3_put_begin(struct ck_store *s, struct ck_store_upload **out, struct ck_err *err)
{
    struct ck_s3 *s3 = s->priv;
    struct s3_upload *u = calloc(1, sizeof(*u));
    if (!u)
        return ck_fail(err, CK_ENOMEM, "PUT %s: out of memory", s->display_uri);
    u->hdr.store = s;
    u->s3 = s3;
    u->want = ck_s3_part_size(s3->set.part_size, 1);
    *out = &u->hdr;
    return CK_OK;
}

/* Hands the full buffer over as a part (starting the multipart upload on the first) and
 * takes a buffer for the next part, waiting while all are busy. */
static ck_rc flush_part(struct s3_upload *u, struct ck_err *err)
{
    ck_rc rc = CK_OK;
    if (!u->mpu)
        rc = ck_s3_mpu_start(u->s3, u->s3->set.parallel, &u->mpu, err);
    if (rc)
        return rc;
    rc = ck_s3_mpu_submit(u->mpu, u->buf, u->len, u->cap, err);
    u->buf = NULL;
    u->cap = u->len = 0;
    if (rc)
        return rc;
    u->want = ck_s3_part_size(u->s3->set.part_size, ck_s3_mpu_next_part(u->mpu));
    return ck_s3_mpu_take_buffer(u->mpu, u->want, &u->buf, &u->cap, err);
}

ck_rc ck_s3_put_write(struct ck_store_upload *up, const void *data, size_t len, struct ck_err *err)
{
    struct s3_upload *u = (struct s3_upload *)up;
    const char *p = data;
    while (len > 0) {
        if (u->len == u->want) {
            ck_rc rc = flush_part(u, err);
            if (rc)
                return rc;
        }
        if (!u->buf) { /* the first part's buffer */
            u->buf = malloc(u->want);
            if (!u->buf)
                return ck_fail(err, CK_ENOMEM, "PUT %s: no memory for a %zu-byte part",
                               u->s3->display, u->want);
            u->cap = u->want;
        }
        size_t n = u->want - u->len < len ? u->want - u->len : len;
        memcpy(u->buf + u->len, p, n);
        u->len += n;
        p += n;
        len -= n;
    }
    return CK_OK;
}

static void free_upload(struct s3_upload *u)
{
    free(u->buf);
    free(u);
}

/* The whole object in one PUT. */
static ck_rc put_single(struct s3_upload *u, struct ck_err *err)
{
    char hex[CK_SHA256_HEX_LEN + 1], b64[48];
    ck_s3_sha256(u->buf ? u->buf : "", u->len, hex, b64);
    struct ck_s3_call c = {
        .method = CK_HTTP_PUT,
        .body = u->buf ? u->buf : "",
        .body_len = u->len,
        .payload_hash = hex,
        .checksum_b64 = b64,
        .content_type = "application/octet-stream",
        .capture_header = "x-amz-checksum-sha256",
    };
    struct ck_http_response resp;
    ck_rc rc = ck_s3_perform(u->s3, &c, &resp, err);
    if (!rc && resp.captured[0] && strcmp(resp.captured, b64) != 0)
        rc = ck_fail(err, CK_ECORRUPT, "PUT %s: server's SHA-256 differs from the one sent",
                     u->s3->display);
    return rc;
}

ck_rc ck_s3_put_commit(struct ck_store_upload *up, struct ck_err *err)
{
    struct s3_upload *u = (struct s3_upload *)up;
    ck_rc rc;
    if (!u->mpu) {
        rc = put_single(u, err);
        ck_s3_sweep_uploads(u->s3, NULL); /* leftovers of an interrupted earlier save */
    } else {
        rc = ck_s3_mpu_submit(u->mpu, u->buf, u->len, u->cap, err);
        u->buf = NULL;
        if (rc)
            ck_s3_mpu_abort(u->mpu);
        else
            rc = ck_s3_mpu_complete(u->mpu, up->bytes, err);
    }
    free_upload(u);
    return rc;
}

void ck_s3_put_abort(struct ck_store_upload *up)
{
    struct s3_upload *u = (struct s3_upload *)up;
    if (u->mpu)
        ck_s3_mpu_abort(u->mpu);
    free_upload(u);
}
