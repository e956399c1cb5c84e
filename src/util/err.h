/*
 * err.h - the one result type of ckptfs, and the error detail that goes with it.
 *
 * Every fallible function returns a ck_rc and, when it fails, fills a caller-owned
 * struct ck_err with a message that says what failed and where ("GET http://h/k: HTTP 403
 * Forbidden", "archive entry '../x': path leaves the checkpoint"). Callers add context with
 * ck_err_prefix() as the error travels up. errno values are translated into ck_rc at the
 * system-call site (ck_fail_errno) and back into errno only at the FUSE boundary (src/fs/).
 */
#ifndef CK_UTIL_ERR_H
#define CK_UTIL_ERR_H

#include <stddef.h>

typedef enum ck_rc {
    CK_OK = 0,
    CK_ENOMEM,       /* out of memory, or a capped buffer is full */
    CK_EINVAL,       /* bad argument, option or URI */
    CK_ENOTFOUND,    /* the object or file does not exist */
    CK_EAUTH,        /* the store refused our credentials (401, 403) */
    CK_EREMOTE,      /* the store refused the request for another reason (4xx) */
    CK_ENET,         /* network or server failure that retries did not overcome */
    CK_ETIMEDOUT,    /* a bounded wait or retry budget ran out */
    CK_EIO,          /* local I/O failure */
    CK_ENOSPC,       /* local disk full */
    CK_ECORRUPT,     /* data does not parse: truncated or damaged archive, bad reply */
    CK_EHOSTILE,     /* input refused for safety: traversal, links out, devices, absurd sizes */
    CK_EUNSUPPORTED, /* a feature or scheme this build does not have */
    CK_ECANCELED,    /* the operation was cancelled (shutdown) */
    CK_EEXIST,       /* the target already exists */
    CK_EPERM,        /* not permitted locally */
    CK_EREPLAY,      /* an upload that kept only a window of its bytes needs them all again:
                        the caller writes them into a new upload (store.h) */
} ck_rc;

#define CK_ERR_MSG_MAX 512

struct ck_err {
    ck_rc rc;
    char msg[CK_ERR_MSG_MAX]; /* what and where; never holds a secret */
};

/* A short fixed description of rc ("network failure"). */
const char *ck_strerror(ck_rc rc);

/* Clears err (rc = CK_OK, empty message). err may be NULL. */
void ck_err_clear(struct ck_err *err);

/* Records rc and a printf-style message in err (if not NULL) and returns rc. */
ck_rc ck_fail(struct ck_err *err, ck_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like ck_fail, with rc derived from errnum and ": strerror(errnum)" appended. */
ck_rc ck_fail_errno(struct ck_err *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps an errno value to the closest ck_rc. */
ck_rc ck_rc_from_errno(int errnum);

/* Prepends "context: " to err's message (keeps rc). err may be NULL. */
void ck_err_prefix(struct ck_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
