/*
 * store_file.c - the local-file backend: file:// URIs and plain paths.
 *
 * An upload goes to a temp file next to the destination (".<name>.ckptfs-XXXXXX", so it
 * is on the same filesystem), which is fsynced and renamed over the destination at commit,
 * and the directory is fsynced so the rename survives a crash. rename() is atomic, so a
 * reader sees the old object or the new one; a failed commit or an abort removes the temp
 * file and leaves the old object untouched. A temp file left by a killed daemon is hidden
 * (dot name) and harmless.
 *
 * A create-only put (ck_put_opts .if_absent) commits with link(2) of the synced temp file
 * to the destination instead of rename: link fails with EEXIST when anything is there
 * (a file, a directory, even a dangling symlink), atomically, and then nothing has
 * changed. After the link the temp name is unlinked and the directory fsynced. A file
 * system without hard links (EPERM, EOPNOTSUPP) fails that commit with CK_EUNSUPPORTED.
 *
 * A conditional replace (ck_put_opts .if_match) is checked and renamed under an exclusive
 * flock(2) of the destination's directory, which every commit of this backend takes: the
 * object's version (file_head's ETag: inode, size, mtime) must be the expected one, or
 * absent for "", else CK_EEXIST and the temp file is removed. Writers that are not
 * ckptfs and rename over the object without the lock are not ordered by it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/backend.h"
#include "store/cond_put.h"
#include "store/fileio.h"
#include "util/fsutil.h"

#define READ_CHUNK (256 * 1024)

struct file_store {
    char *path; /* the object's local path */
    char *dir;  /* its directory ("." for a bare name) */
    char *base; /* its last component */
};

struct file_upload {
    struct ck_store_upload hdr; /* first: the generic header */
    int fd;
    bool if_absent; /* commit by link(2), never over an existing object */
    struct ck_cond cond;
    char tmp[PATH_MAX];
};

static struct file_store *fs_of(struct ck_store *s)
{
    return s->priv;
}

/* The ETag (and version) of a file: inode, size and mtime, so a rename over it or a
 * rewrite changes it. */
static void file_version(const struct stat *st, char out[128])
{
    snprintf(out, 128, "%" PRIx64 "-%" PRIx64 "-%" PRIx64 ".%09ld", (uint64_t)st->st_ino,
             (uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

static ck_rc file_head(struct ck_store *s, struct ck_store_info *info, struct ck_err *err)
{
    struct stat st;
    if (stat(fs_of(s)->path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return CK_OK; /* missing: exists stays false */
        return ck_fail_errno(err, errno, "HEAD %s", s->display_uri);
    }
    if (!S_ISREG(st.st_mode))
        return ck_fail(err, CK_EINVAL, "HEAD %s: not a regular file%s", s->display_uri,
                       S_ISDIR(st.st_mode) ? " (a directory)" : "");
    info->exists = true;
    info->size = (uint64_t)st.st_size;
    file_version(&st, info->etag);
    memcpy(info->version, info->etag, sizeof(info->version));
    return CK_OK;
}

/* Opens the object for reading and checks that [off, end) lies inside it. */
static ck_rc open_for_get(struct ck_store *s, uint64_t off, uint64_t *end, int *fd_out,
                          struct ck_err *err)
{
    const char *d = s->display_uri;
    int fd = open(fs_of(s)->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ck_fail_errno(err, errno, "GET %s", d);
    struct stat st;
    ck_rc rc = CK_OK;
    if (fstat(fd, &st) != 0)
        rc = ck_fail_errno(err, errno, "GET %s", d);
    else if (!S_ISREG(st.st_mode))
        rc = ck_fail(err, CK_EINVAL, "GET %s: not a regular file", d);
    else if (*end == CK_STORE_TO_END)
        *end = (uint64_t)st.st_size;
    if (rc == CK_OK && (off > *end || *end > (uint64_t)st.st_size))
        rc = ck_fail(err, CK_ECORRUPT,
                     "GET %s: object has %" PRIu64 " bytes, asked for [%" PRIu64 ", %" PRIu64 ")",
                     d, (uint64_t)st.st_size, off, *end);
    if (rc) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return CK_OK;
}

static ck_rc copy_range(struct ck_store *s, int fd, uint64_t off, uint64_t end, char *buf,
                        const struct ck_sink *sink, struct ck_err *err)
{
    while (off < end) {
        size_t want = end - off < READ_CHUNK ? (size_t)(end - off) : READ_CHUNK;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ck_fail_errno(err, errno, "GET %s: read at byte %" PRIu64, s->display_uri, off);
        if (n == 0)
            return ck_fail(err, CK_EIO, "GET %s: file shrank to %" PRIu64 " bytes while read",
                           s->display_uri, off);
        ck_rc rc = ck_sink_write(sink, buf, (size_t)n, err);
        if (rc)
            return rc;
        off += (uint64_t)n;
    }
    return CK_OK;
}

static ck_rc file_get(struct ck_store *s, uint64_t off, uint64_t len, const struct ck_sink *sink,
                      struct ck_err *err)
{
    if (len == 0)
        return CK_OK;
    uint64_t end = len == CK_STORE_TO_END ? CK_STORE_TO_END : off + len;
    int fd = -1;
    ck_rc rc = open_for_get(s, off, &end, &fd, err);
    if (rc)
        return rc;
    char *buf = malloc(READ_CHUNK);
    if (!buf)
        rc = ck_fail(err, CK_ENOMEM, "GET %s: no memory for a read buffer", s->display_uri);
    else
        rc = copy_range(s, fd, off, end, buf, sink, err);
    free(buf);
    close(fd);
    return rc;
}

static ck_rc file_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                            struct ck_store_upload **out, struct ck_err *err)
{
    struct file_store *fs = fs_of(s); /* every byte is kept until stored: nothing to replay */
    ck_rc rc = ck_mkdir_p(fs->dir, 0755, err);
    if (rc) {
        ck_err_prefix(err, "PUT %s", s->display_uri);
        return rc;
    }
    struct file_upload *u = calloc(1, sizeof(*u));
    if (!u)
        return ck_fail(err, CK_ENOMEM, "PUT %s: out of memory", s->display_uri);
    int n = snprintf(u->tmp, sizeof(u->tmp), "%s/.%s.ckptfs-XXXXXX", fs->dir, fs->base);
    if (n < 0 || (size_t)n >= sizeof(u->tmp)) {
        free(u);
        return ck_fail(err, CK_EINVAL, "PUT %s: path too long", s->display_uri);
    }
    u->fd = mkostemp(u->tmp, O_CLOEXEC);
    if (u->fd < 0 || fchmod(u->fd, 0644) != 0) {
        rc = ck_fail_errno(err, errno, "PUT %s: creating a temp file in '%s'", s->display_uri,
                           fs->dir);
        if (u->fd >= 0) {
            close(u->fd);
            unlink(u->tmp);
        }
        free(u);
        return rc;
    }
    u->hdr.store = s;
    u->if_absent = opts->if_absent;
    rc = ck_cond_init(&u->cond, opts, s->display_uri, err);
    if (rc) {
        close(u->fd);
        unlink(u->tmp);
        free(u);
        return rc;
    }
    *out = &u->hdr;
    return CK_OK;
}

static ck_rc file_put_write(struct ck_store_upload *up, const void *buf, size_t len,
                            struct ck_err *err)
{
    struct file_upload *u = (struct file_upload *)up;
    char what[PATH_MAX + 32];
    snprintf(what, sizeof(what), "the temp file of %s", up->store->display_uri);
    return ck_fd_write_all(u->fd, buf, len, what, err);
}

/* Opens the source of a copy and checks its version and that the range lies inside it. */
static ck_rc open_copy_source(const struct ck_copy_src *src, int *fd, struct ck_err *err)
{
    const char *d = src->store->display_uri;
    *fd = open(fs_of(src->store)->path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return errno == ENOENT ? ck_fail(err, CK_EEXIST, "copying from %s: the source is gone", d)
                               : ck_fail_errno(err, errno, "copying from %s", d);
    struct stat st;
    char version[128];
    ck_rc rc = fstat(*fd, &st) == 0 ? CK_OK : ck_fail_errno(err, errno, "copying from %s", d);
    if (!rc)
        file_version(&st, version);
    if (!rc && src->version && src->version[0] && strcmp(version, src->version) != 0)
        rc = ck_fail(err, CK_EEXIST, "copying from %s: the source changed (version %s, now %s)", d,
                     src->version, version);
    if (!rc && (src->off > (uint64_t)st.st_size || src->len > (uint64_t)st.st_size - src->off))
        rc = ck_fail(err, CK_ECORRUPT,
                     "copying from %s: %" PRIu64 " bytes, asked for [%" PRIu64 ", +%" PRIu64 ")", d,
                     (uint64_t)st.st_size, src->off, src->len);
    if (rc) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

/* The range copied by the file system (copy_file_range: a reflink where it can, else an
 * in-kernel copy). Committed objects are never rewritten in place (a rename replaces
 * them), so the open descriptor reads the version that was checked. CK_EUNSUPPORTED when
 * the kernel cannot before any byte moved (another file system): the caller reads and
 * writes the bytes. */
static ck_rc file_put_copy(struct ck_store_upload *up, const struct ck_copy_src *src,
                           struct ck_err *err)
{
    struct file_upload *u = (struct file_upload *)up;
    int in;
    ck_rc rc = open_copy_source(src, &in, err);
    if (rc)
        return rc;
    loff_t off = (loff_t)src->off;
    uint64_t left = src->len;
    while (!rc && left > 0) {
        size_t want = left < (1u << 30) ? (size_t)left : (1u << 30);
        ssize_t n = copy_file_range(in, &off, u->fd, NULL, want, 0);
        if (n < 0 && errno == EINTR)
            continue;
        bool none_yet = left == src->len;
        if (n < 0 && none_yet &&
            (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL))
            rc = CK_EUNSUPPORTED;
        else if (n < 0)
            rc = ck_fail_errno(err, errno, "PUT %s: copying from %s", up->store->display_uri,
                               src->store->display_uri);
        else if (n == 0)
            rc = ck_fail(err, CK_EIO, "PUT %s: %s ended while copied", up->store->display_uri,
                         src->store->display_uri);
        else
            left -= (uint64_t)n;
    }
    close(in);
    return rc;
}

static void file_put_abort(struct ck_store_upload *up)
{
    struct file_upload *u = (struct file_upload *)up;
    if (u->fd >= 0)
        close(u->fd);
    unlink(u->tmp);
    free(u);
}

/* Why link(2) of the temp file in dir to the destination failed (errno e). */
static ck_rc link_failed(const struct ck_store *s, const char *dir, int e, struct ck_err *err)
{
    if (e == EEXIST)
        return ck_fail(err, CK_EEXIST, "PUT %s: an object is already there", s->display_uri);
    if (e == EPERM || e == EOPNOTSUPP)
        return ck_fail(err, CK_EUNSUPPORTED,
                       "PUT %s: a create-only put needs a hard link, which the file system of "
                       "'%s' refuses: %s",
                       s->display_uri, dir, strerror(e));
    return ck_fail_errno(err, e, "PUT %s: linking the temp file into place", s->display_uri);
}

/* A conditional replace's check, under the directory's lock: the object there is the
 * expected one. */
static ck_rc check_expected(struct file_upload *u, struct ck_err *err)
{
    struct ck_store *s = u->hdr.store;
    struct stat st;
    char now[128] = "";
    if (stat(fs_of(s)->path, &st) == 0)
        file_version(&st, now);
    else if (errno != ENOENT && errno != ENOTDIR)
        return ck_fail_errno(err, errno, "PUT %s: checking the object before the commit",
                             s->display_uri);
    if (strcmp(now, u->cond.version) == 0)
        return CK_OK;
    char cond[192];
    ck_cond_describe(&u->cond, false, cond, sizeof(cond));
    return ck_fail(err, CK_EEXIST, "PUT %s: the object changed since it was read (%s)",
                   s->display_uri, cond);
}

/* rename(2) of the temp file over the destination, under an exclusive flock(2) of its
 * directory (see the top comment). */
static ck_rc rename_locked(struct file_upload *u, struct ck_err *err)
{
    struct ck_store *s = u->hdr.store;
    int dfd = open(fs_of(s)->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || flock(dfd, LOCK_EX) != 0) {
        ck_rc rc = ck_fail_errno(err, errno, "PUT %s: locking the directory '%s'", s->display_uri,
                                 fs_of(s)->dir);
        if (dfd >= 0)
            close(dfd);
        return rc;
    }
    ck_rc rc = u->cond.on ? check_expected(u, err) : CK_OK;
    if (!rc && rename(u->tmp, fs_of(s)->path) != 0)
        rc = ck_fail_errno(err, errno, "PUT %s: renaming the temp file into place", s->display_uri);
    close(dfd); /* releases the lock */
    return rc;
}

/* Puts the synced temp file at the destination: renamed over it, or for a create-only put
 * linked there (EEXIST if anything is there) and its temp name unlinked. */
static ck_rc place_tmp(struct file_upload *u, struct ck_err *err)
{
    struct ck_store *s = u->hdr.store;
    const char *path = fs_of(s)->path;
    if (!u->if_absent) {
        ck_rc rc = rename_locked(u, err);
        if (rc)
            return rc;
    } else {
        if (link(u->tmp, path) != 0)
            return link_failed(s, fs_of(s)->dir, errno, err);
        if (unlink(u->tmp) != 0)
            return CK_OK; /* placed; file_put_commit tries the unlink once more */
    }
    u->tmp[0] = '\0'; /* nothing left to unlink */
    return CK_OK;
}

/* Makes the temp file durable and puts it in place, then syncs the directory. */
static ck_rc commit_tmp(struct file_upload *u, struct ck_err *err)
{
    struct ck_store *s = u->hdr.store;
    if (fsync(u->fd) != 0)
        return ck_fail_errno(err, errno, "PUT %s: syncing the temp file", s->display_uri);
    int fd = u->fd;
    u->fd = -1;
    if (close(fd) != 0)
        return ck_fail_errno(err, errno, "PUT %s: closing the temp file", s->display_uri);
    ck_rc rc = place_tmp(u, err);
    if (rc)
        return rc;
    rc = ck_fsync_dir(fs_of(s)->dir, err);
    if (rc)
        ck_err_prefix(err, "PUT %s", s->display_uri);
    return rc;
}

static ck_rc file_put_commit(struct ck_store_upload *up, struct ck_err *err)
{
    struct file_upload *u = (struct file_upload *)up;
    ck_rc rc = commit_tmp(u, err);
    if (u->fd >= 0)
        close(u->fd);
    if (u->tmp[0])
        unlink(u->tmp);
    free(u);
    return rc;
}

/* unlink(2) of the object, and of the temp files ".<name>.ckptfs-XXXXXX" killed writers
 * left beside it. */
static ck_rc file_delete(struct ck_store *s, struct ck_err *err)
{
    struct file_store *fs = fs_of(s);
    if (unlink(fs->path) != 0 && errno != ENOENT && errno != ENOTDIR)
        return ck_fail_errno(err, errno, "DELETE %s", s->display_uri);
    DIR *d = opendir(fs->dir);
    if (!d)
        return errno == ENOENT ? CK_OK : ck_fail_errno(err, errno, "DELETE %s", s->display_uri);
    char prefix[NAME_MAX + 16];
    int n = snprintf(prefix, sizeof(prefix), ".%s.ckptfs-", fs->base);
    for (struct dirent *e; (e = readdir(d));)
        if (n > 0 && (size_t)n < sizeof(prefix) && strncmp(e->d_name, prefix, (size_t)n) == 0 &&
            strlen(e->d_name) == (size_t)n + 6)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    return CK_OK;
}

static void file_destroy(struct ck_store *s)
{
    struct file_store *fs = fs_of(s);
    if (fs) {
        free(fs->path);
        free(fs->dir);
        free(fs->base);
        free(fs);
    }
    free(s->display_uri);
    free(s);
}

static const struct ck_store_ops file_ops = {
    .name = "file",
    .conditional = true,
    .local = true,
    .del = file_delete,
    .head = file_head,
    .get = file_get,
    .put_begin = file_put_begin,
    .put_write = file_put_write,
    .put_commit = file_put_commit,
    .put_abort = file_put_abort,
    .put_copy = file_put_copy,
    .destroy = file_destroy,
};

/* Splits path into its directory and last component; false if it has no last one. */
static bool split_path(const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    if (b[0] == '\0' || strcmp(b, ".") == 0 || strcmp(b, "..") == 0)
        return false;
    *base = strdup(b);
    if (!slash)
        *dir = strdup(".");
    else if (slash == path)
        *dir = strdup("/");
    else
        *dir = strndup(path, (size_t)(slash - path));
    return true;
}

ck_rc ck_store_file_open(const struct ck_uri *uri, const struct ck_store_env *env,
                         struct ck_store **out, struct ck_err *err)
{
    struct ck_store *s = calloc(1, sizeof(*s));
    struct file_store *fs = calloc(1, sizeof(*fs));
    if (s) {
        s->ops = &file_ops;
        s->env = env;
        s->priv = fs;
        s->display_uri = strdup(uri->display);
    }
    if (!s || !fs || !s->display_uri) {
        free(fs);
        if (s)
            s->priv = NULL;
        ck_store_close(s);
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    bool named = split_path(uri->path, &fs->dir, &fs->base);
    fs->path = strdup(uri->path);
    if (!named) {
        ck_store_close(s);
        return ck_fail(err, CK_EINVAL, "'%s' names a directory, not a file", uri->display);
    }
    if (!fs->path || !fs->dir || !fs->base) {
        ck_store_close(s);
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    *out = s;
    return CK_OK;
}
