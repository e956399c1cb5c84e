/* extract_tree.c - symlink-proof creation of parents under dest; see extract_tree.h. */
#include "archive/extract_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* Opens (creating if asked) the child directory comp of fd, never through a symlink. */
static ck_rc open_child_dir(int fd, const char *comp, bool create, const char *qname, int *out,
                            struct ck_err *err)
{
    int c = openat(fd, comp, DIR_OPEN_FLAGS);
    if (c < 0 && errno == ENOENT && create) {
        if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST)
            return ck_fail_errno(err, errno, "archive entry '%s': mkdir '%s'", qname, comp);
        c = openat(fd, comp, DIR_OPEN_FLAGS);
    }
    if (c < 0 && (errno == ELOOP || errno == ENOTDIR))
        return ck_fail(err, CK_EHOSTILE,
                       "archive entry '%s': path goes through '%s', which is not a directory",
                       qname, comp);
    if (c < 0)
        return ck_fail_errno(err, errno, "archive entry '%s': open directory '%s'", qname, comp);
    *out = c;
    return CK_OK;
}

ck_rc ck_tree_open_parent(int dest_fd, const char *name, bool create, const char *qname,
                          int *parent_fd, const char **base, struct ck_err *err)
{
    *parent_fd = -1;
    int fd = fcntl(dest_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return ck_fail_errno(err, errno, "archive entry '%s': dup of the destination", qname);
    char comp[256 + 1];
    const char *p = name;
    for (const char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        size_t n = (size_t)(slash - p);
        if (n >= sizeof(comp)) {
            close(fd);
            return ck_fail(err, CK_EHOSTILE, "archive entry '%s': path component too long", qname);
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        int child = -1;
        ck_rc rc = open_child_dir(fd, comp, create, qname, &child, err);
        close(fd);
        if (rc)
            return rc;
        fd = child;
    }
    *parent_fd = fd;
    *base = p;
    return CK_OK;
}

void ck_tree_cursor_init(struct ck_tree_cursor *c)
{
    c->fd = -1;
    c->len = 0;
}

void ck_tree_cursor_close(struct ck_tree_cursor *c)
{
    if (c->fd >= 0)
        close(c->fd);
    ck_tree_cursor_init(c);
}

ck_rc ck_tree_cursor_parent(struct ck_tree_cursor *c, int dest_fd, const char *name, bool create,
                            const char *qname, int *parent_fd, const char **base,
                            struct ck_err *err)
{
    const char *slash = strrchr(name, '/');
    size_t len = slash ? (size_t)(slash - name) : 0;
    if (c->fd >= 0 && len == c->len && memcmp(name, c->dir, len) == 0) {
        *parent_fd = c->fd;
        *base = slash ? slash + 1 : name;
        return CK_OK;
    }
    ck_tree_cursor_close(c);
    ck_rc rc = ck_tree_open_parent(dest_fd, name, create, qname, parent_fd, base, err);
    if (rc)
        return rc;
    c->fd = *parent_fd;
    if (len < sizeof(c->dir)) { /* longer paths are opened each time */
        memcpy(c->dir, name, len);
        c->len = len;
    } else {
        c->len = SIZE_MAX;
    }
    return CK_OK;
}

ck_rc ck_tree_make_room(int parent_fd, const char *base, bool keep_dir, const char *qname,
                        bool *is_dir, struct ck_err *err)
{
    *is_dir = false;
    struct stat st;
    if (fstatat(parent_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return CK_OK;
        return ck_fail_errno(err, errno, "archive entry '%s': stat", qname);
    }
    if (S_ISDIR(st.st_mode)) {
        if (!keep_dir)
            return ck_fail(err, CK_EHOSTILE,
                           "archive entry '%s': would replace a directory of the same name", qname);
        *is_dir = true;
        return CK_OK;
    }
    if (unlinkat(parent_fd, base, 0) < 0)
        return ck_fail_errno(err, errno, "archive entry '%s': remove the earlier entry", qname);
    return CK_OK;
}
