/* buf.c - capped growable buffer; see buf.h. */
#include "util/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ck_buf_init(struct ck_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void ck_buf_free(struct ck_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void ck_buf_reset(struct ck_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static ck_rc reserve(struct ck_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return CK_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return CK_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return CK_ENOMEM;
    b->data = p;
    b->cap = cap;
    return CK_OK;
}

ck_rc ck_buf_append(struct ck_buf *b, const void *p, size_t n)
{
    ck_rc rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CK_OK;
}

ck_rc ck_buf_puts(struct ck_buf *b, const char *s)
{
    return ck_buf_append(b, s, strlen(s));
}

ck_rc ck_buf_printf(struct ck_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CK_EINVAL;
    ck_rc rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CK_OK;
}

char *ck_buf_take(struct ck_buf *b)
{
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
