/*
 * part_body.h - the bytes of one part of an upload: in memory, or in a spool file on the
 * cache disk (part_upload.h: a part larger than --memory-limit allows in memory). Internal
 * to src/store/.
 *
 * A spooled part is sent by pulling its bytes (ck_http_request.body_read), so a 512 MiB
 * part costs a few pages of memory, not 512 MiB; its digests are read from the file too.
 * A spool file is unnamed (O_TMPFILE): nothing is left behind by a crash.
 */
#ifndef CK_STORE_PART_BODY_H
#define CK_STORE_PART_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct ck_part_body {
    const char *mem; /* the bytes, or NULL: len bytes at off of fd */
    int fd;
    uint64_t off;
    size_t len;
};

/* A body of len bytes at mem. */
struct ck_part_body ck_part_body_mem(const void *mem, size_t len);

/* The body_read of an HTTP request (net/http.h): ctx is the body. */
ck_rc ck_part_body_read(void *ctx, uint64_t pos, void *buf, size_t max, size_t *got);

/* Digests of the body: SHA-256 as lower-case hex (65 bytes) and base64 (48 bytes, b64 may
 * be NULL) with, in the same pass, its CRC-32 (zlib's and gzip's; crc32 may be NULL), and
 * MD5 as base64 (CK_MD5_B64_LEN). A spooled body is read to compute them. */
ck_rc ck_part_body_sha256(const struct ck_part_body *b, char *hex, char *b64, uint32_t *crc32,
                          struct ck_err *err);
ck_rc ck_part_body_md5_b64(const struct ck_part_body *b, char *b64, struct ck_err *err);

/* A part being filled (part_upload.c's buffers). A zeroed one holds nothing. */
struct ck_part_buf {
    char *data; /* in memory: cap bytes */
    size_t cap, len;
    bool spooled; /* in fd's file instead, from offset 0 */
    int fd;
};

/* Whether b holds a buffer (memory or spool file). */
bool ck_part_buf_has(const struct ck_part_buf *b);
/* Makes b an empty buffer for want bytes: in memory, or with spool_dir a spool file there
 * (b's old buffer kept if it is of that kind). disp names the upload in messages. */
ck_rc ck_part_buf_ready(struct ck_part_buf *b, size_t want, const char *spool_dir, const char *disp,
                        struct ck_err *err);
/* Appends n bytes (memory grows if needed; a spool file always can). */
ck_rc ck_part_buf_append(struct ck_part_buf *b, const void *p, size_t n, const char *disp,
                         struct ck_err *err);
/* Appends src's bytes. */
ck_rc ck_part_buf_append_buf(struct ck_part_buf *b, const struct ck_part_buf *src, const char *disp,
                             struct ck_err *err);
struct ck_part_body ck_part_buf_body(const struct ck_part_buf *b);
/* After b's part was sent: a spool file gives its disk and page cache back (truncated). */
void ck_part_buf_sent(struct ck_part_buf *b);
/* Frees the memory or closes the spool file; b is zeroed. */
void ck_part_buf_release(struct ck_part_buf *b);

#endif
