/* objsrc.c - reading a possibly growing object file; see objsrc.h. */
#include "archive/objsrc.h"

#include <errno.h>
#include <unistd.h>

ssize_t ck_objsrc_pread(const struct ck_objsrc *s, void *buf, size_t len, uint64_t off,
                        struct ck_err *err)
{
    uint64_t have = UINT64_MAX;
    if (s->wait && s->wait(s->ctx, off, &have, err) != CK_OK)
        return -1;
    if (have <= off)
        return 0; /* the end of the object */
    if (have - off < len)
        len = (size_t)(have - off);
    for (;;) {
        ssize_t n = pread(s->fd, buf, len, (off_t)off);
        if (n >= 0)
            return n;
        if (errno != EINTR) {
            ck_fail_errno(err, errno, "read of the object at byte %llu", (unsigned long long)off);
            return -1;
        }
    }
}
