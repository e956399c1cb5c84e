/*
 * fsutil.h - small file-system helpers that work relative to directory descriptors and
 * never follow symlinks (the daemon is multi-threaded: no chdir, no absolute walks).
 */
#ifndef CK_UTIL_FSUTIL_H
#define CK_UTIL_FSUTIL_H

#include <sys/types.h>

#include "util/err.h"

/* Removes every entry under dirfd, recursively; the directory itself stays. */
ck_rc ck_empty_dir(int dirfd, const char *what, struct ck_err *err);

/* Removes name under dirfd, recursively if it is a directory. Missing is not an error. */
ck_rc ck_rmtree_at(int dirfd, const char *name, const char *what, struct ck_err *err);

/* mkdir -p path with mode for the directories it creates. */
ck_rc ck_mkdir_p(const char *path, mode_t mode, struct ck_err *err);

#endif
