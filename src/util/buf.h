/*
 * buf.h - a growable byte buffer with a hard cap fixed at creation.
 *
 * Appending past the cap fails with CK_ENOMEM instead of growing without bound; every
 * buffer that holds untrusted input (server replies, headers) is created with a cap.
 * The buffer owns data; ck_buf_free() releases it. data is always NUL-terminated so that
 * text can be used as a C string.
 */
#ifndef CK_UTIL_BUF_H
#define CK_UTIL_BUF_H

#include <stddef.h>

#include "util/err.h"

struct ck_buf {
    char *data; /* owned; NUL-terminated when not NULL */
    size_t len; /* bytes used, excluding the terminator */
    size_t cap; /* bytes allocated */
    size_t max; /* hard limit on len */
};

void ck_buf_init(struct ck_buf *b, size_t max);
void ck_buf_free(struct ck_buf *b);
void ck_buf_reset(struct ck_buf *b); /* len = 0, keeps the allocation */
ck_rc ck_buf_append(struct ck_buf *b, const void *p, size_t n);
ck_rc ck_buf_puts(struct ck_buf *b, const char *s);
ck_rc ck_buf_printf(struct ck_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Detaches the data (caller frees it); the buffer is left empty. */
char *ck_buf_take(struct ck_buf *b);

#endif
