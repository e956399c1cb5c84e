/* err.c - result codes and error messages; see err.h. */
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ck_strerror(ck_rc rc)
{
    switch (rc) {
    case CK_OK:
        return "success";
    case CK_ENOMEM:
        return "out of memory";
    case CK_EINVAL:
        return "invalid argument";
    case CK_ENOTFOUND:
        return "not found";
    case CK_EAUTH:
        return "access denied";
    case CK_EREMOTE:
        return "request refused by the store";
    case CK_ENET:
        return "network failure";
    case CK_ETIMEDOUT:
        return "timed out";
    case CK_EIO:
        return "I/O error";
    case CK_ENOSPC:
        return "no space left on device";
    case CK_ECORRUPT:
        return "corrupt data";
    case CK_EHOSTILE:
        return "unsafe input refused";
    case CK_EUNSUPPORTED:
        return "not supported";
    case CK_ECANCELED:
        return "cancelled";
    case CK_EEXIST:
        return "already exists";
    case CK_EPERM:
        return "not permitted";
    case CK_EREPLAY:
        return "upload to be sent again";
    }
    return "unknown error";
}

void ck_err_clear(struct ck_err *err)
{
    if (err) {
        err->rc = CK_OK;
        err->msg[0] = '\0';
    }
}

/* Appends s to the NUL-terminated dst of capacity cap, truncating. */
static void append(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(dst);
    while (*s && n + 1 < cap)
        dst[n++] = *s++;
    dst[n] = '\0';
}

static void set_msg(struct ck_err *err, ck_rc rc, const char *fmt, va_list ap)
{
    err->rc = rc;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

ck_rc ck_fail(struct ck_err *err, ck_rc rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        set_msg(err, rc, fmt, ap);
        va_end(ap);
    }
    return rc;
}

ck_rc ck_fail_errno(struct ck_err *err, int errnum, const char *fmt, ...)
{
    ck_rc rc = ck_rc_from_errno(errnum);
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        set_msg(err, rc, fmt, ap);
        va_end(ap);
        append(err->msg, sizeof(err->msg), ": ");
        append(err->msg, sizeof(err->msg), strerror(errnum));
    }
    return rc;
}

ck_rc ck_rc_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return CK_OK;
    case ENOMEM:
        return CK_ENOMEM;
    case EINVAL:
    case ENAMETOOLONG:
        return CK_EINVAL;
    case ENOENT:
    case ENOTDIR:
        return CK_ENOTFOUND;
    case EACCES:
    case EPERM:
    case EROFS:
        return CK_EPERM;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return CK_ENOSPC;
    case ETIMEDOUT:
        return CK_ETIMEDOUT;
    case EEXIST:
    case ENOTEMPTY:
        return CK_EEXIST;
    case ECANCELED:
        return CK_ECANCELED;
    case ELOOP:
        return CK_EHOSTILE;
    case ENOTSUP:
        return CK_EUNSUPPORTED;
    default:
        return CK_EIO;
    }
}

void ck_err_prefix(struct ck_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char head[CK_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    char old[CK_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof(old));
    err->msg[0] = '\0';
    append(err->msg, sizeof(err->msg), head);
    append(err->msg, sizeof(err->msg), ": ");
    append(err->msg, sizeof(err->msg), old);
}
