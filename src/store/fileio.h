/*
 * fileio.h - small local-file helpers shared by the backends (internal to src/store/).
 *
 * Errors name the operation and the display name given by the caller, never a secret.
 */
#ifndef CK_STORE_FILEIO_H
#define CK_STORE_FILEIO_H

#include <stddef.h>

#include "util/err.h"

/* Writes all of buf to fd (retrying short writes and EINTR). what names the file. */
ck_rc ck_fd_write_all(int fd, const void *buf, size_t len, const char *what, struct ck_err *err);

/* fsyncs the directory dir so that a rename in it is durable. */
ck_rc ck_fsync_dir(const char *dir, struct ck_err *err);

#endif
