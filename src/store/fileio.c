/* fileio.c - local-file helpers for the backends; see fileio.h. */
#include "store/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ck_rc ck_fd_write_all(int fd, const void *buf, size_t len, const char *what, struct ck_err *err)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ck_fail_errno(err, errno, "writing %s", what);
        p += n;
        len -= (size_t)n;
    }
    return CK_OK;
}

ck_rc ck_fsync_dir(const char *dir, struct ck_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ck_fail_errno(err, errno, "opening directory '%s' to sync it", dir);
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL)
        return ck_fail_errno(err, e, "syncing directory '%s'", dir);
    return CK_OK;
}
