/*
 * fsutil.h - small file-system helpers that work relative to directory descriptors and
 * never follow symlinks (the daemon is multi-threaded: no chdir, no absolute walks).
 */
#ifndef CK_UTIL_FSUTIL_H
#define CK_UTIL_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

/* Removes every entry under dirfd, recursively; the directory itself stays. */
ck_rc ck_empty_dir(int dirfd, const char *what, struct ck_err *err);

/* Removes name under dirfd, recursively if it is a directory. Missing is not an error. */
ck_rc ck_rmtree_at(int dirfd, const char *name, const char *what, struct ck_err *err);

/* mkdir -p path with mode for the directories it creates. */
ck_rc ck_mkdir_p(const char *path, mode_t mode, struct ck_err *err);

/* Takes the lock of a cache dir (its file "lock", flock, held until *fd is closed), for
 * one daemon at a time: a second one fails, naming the holder's pid. Writes our pid. */
ck_rc ck_lock_dir(const char *dir, int *fd, struct ck_err *err);

/* Rewrites the pid in a lock taken by ck_lock_dir (after a fork that keeps it). */
void ck_lock_dir_pid(int fd);

#define CK_HOLE_BLOCK 4096u /* the unit ck_pwrite_sparse leaves unwritten */

/* pwrite(2) of len bytes at off, in full (EINTR and short writes retried), except that
 * the pieces (CK_HOLE_BLOCK-aligned blocks, or the parts of one that the range covers)
 * holding only zeros are skipped: for a file whose range is known to read as zeros
 * already (created empty, or a placeholder made by ftruncate), so that runs of zeros stay
 * holes on disk. A failure is "WHAT: write: strerror". */
ck_rc ck_pwrite_sparse(int fd, const void *buf, size_t len, uint64_t off, const char *what,
                       struct ck_err *err);

/* A fingerprint of the tree under path: FNV-1a over every entry's path, size, mtime, mode
 * and inode (never 0). A change of any of them changes it, with the odds of a 64-bit
 * hash; content rewritten in place with the same size and mtime does not. */
uint64_t ck_tree_fingerprint(const char *path);

#endif
