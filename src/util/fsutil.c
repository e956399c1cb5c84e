/* fsutil.c - see fsutil.h. */
#include "util/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

ck_rc ck_empty_dir(int dirfd, const char *what, struct ck_err *err)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ck_fail_errno(err, errno, "emptying %s", what);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return ck_fail_errno(err, errno, "emptying %s", what);
    }
    ck_rc rc = CK_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = ck_rmtree_at(dirfd, e->d_name, what, err);
    }
    closedir(d);
    return rc;
}

ck_rc ck_rmtree_at(int dirfd, const char *name, const char *what, struct ck_err *err)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return CK_OK;
    if (errno != EISDIR && errno != EPERM)
        return ck_fail_errno(err, errno, "removing %s/%s", what, name);
    int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return ck_fail_errno(err, errno, "removing %s/%s", what, name);
    ck_rc rc = ck_empty_dir(sub, what, err);
    close(sub);
    if (!rc && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = ck_fail_errno(err, errno, "removing %s/%s", what, name);
    return rc;
}

ck_rc ck_mkdir_p(const char *path, mode_t mode, struct ck_err *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return ck_fail(err, CK_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return ck_fail_errno(err, errno, "creating %s", buf);
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return ck_fail(err, CK_EINVAL, "%s is not a directory", path);
    return CK_OK;
}

void ck_lock_dir_pid(int fd)
{
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n)
        (void)0; /* the pid is a hint for the message only */
}

ck_rc ck_lock_dir(const char *dir, int *fd, struct ck_err *err)
{
    char path[PATH_MAX], pid[32] = "";
    if (snprintf(path, sizeof(path), "%s/lock", dir) >= (int)sizeof(path))
        return ck_fail(err, CK_EINVAL, "path too long: %s/lock", dir);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0)
        return ck_fail_errno(err, errno, "opening %s", path);
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0) {
        ck_lock_dir_pid(*fd);
        return CK_OK;
    }
    int e = errno;
    ssize_t n = pread(*fd, pid, sizeof(pid) - 1, 0);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    close(*fd);
    *fd = -1;
    if (e == EWOULDBLOCK)
        return ck_fail(err, CK_EEXIST,
                       "cache dir %s is in use by another ckptfs (pid %s): give each mount its "
                       "own --cache-dir",
                       dir, pid[0] ? pid : "unknown");
    return ck_fail_errno(err, e, "locking %s", path);
}

/* Whether n bytes at p are all zero. */
static bool all_zero(const unsigned char *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static ck_rc pwrite_all(int fd, const unsigned char *p, size_t n, uint64_t off, const char *what,
                        struct ck_err *err)
{
    for (size_t done = 0; done < n;) {
        ssize_t w = pwrite(fd, p + done, n - done, (off_t)(off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return ck_fail_errno(err, errno, "%s: write", what);
        done += (size_t)w;
    }
    return CK_OK;
}

ck_rc ck_pwrite_sparse(int fd, const void *buf, size_t len, uint64_t off, const char *what,
                       struct ck_err *err)
{
    const unsigned char *p = buf;
    size_t run = 0; /* bytes before the current piece that still have to be written */
    size_t i = 0;
    while (i < len) {
        uint64_t at = off + i;
        size_t piece = CK_HOLE_BLOCK - (size_t)(at % CK_HOLE_BLOCK);
        if (piece > len - i)
            piece = len - i;
        if (all_zero(p + i, piece)) { /* a whole block, or the zero end of one */
            ck_rc rc = pwrite_all(fd, p + i - run, run, at - run, what, err);
            if (rc)
                return rc;
            run = 0;
        } else {
            run += piece;
        }
        i += piece;
    }
    return pwrite_all(fd, p + len - run, run, off + len - run, what, err);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

uint64_t ck_tree_fingerprint(const char *path)
{
    char *paths[] = {(char *)path, NULL};
    FTS *f = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    uint64_t h = 1469598103934665603ull;
    if (!f)
        return 1;
    FTSENT *e;
    while ((e = fts_read(f))) {
        if (e->fts_info == FTS_DP || !e->fts_statp)
            continue;
        const struct stat *st = e->fts_statp;
        uint64_t v[] = {(uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec,
                        (uint64_t)st->st_mtim.tv_nsec, st->st_mode, st->st_ino};
        h = fnv(h, e->fts_path, strlen(e->fts_path) + 1);
        h = fnv(h, v, sizeof(v));
    }
    fts_close(f);
    return h ? h : 1;
}
