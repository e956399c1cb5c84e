/*
 * ops_dir.c - directories of save/ and prev/ (the top level is in ops_top.c).
 *
 * Opening prev/ itself is one of the two requests that start the lazy load (gate.c).
 * fsync on save/ itself is a synchronous save ("flush"), answered when it is durable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs_internal.h"

struct dir_handle {
    DIR *dp;
    off_t offset;
    struct dirent *entry; /* read but not yet returned */
};

void ck_tree_opendir(fuse_req_t req, struct ck_node *n, struct fuse_file_info *fi)
{
    struct dir_handle *h = calloc(1, sizeof(*h));
    if (!h) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct ck_fs *fs = ck_fs_of(req);
    int nfd = ck_node_get(fs, n);
    int fd = nfd < 0 ? (errno = -nfd, -1) : openat(nfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int oe = errno;
    if (nfd >= 0)
        ck_node_put(fs, n);
    errno = oe;
    h->dp = fd < 0 ? NULL : fdopendir(fd);
    if (!h->dp) {
        int rc = errno;
        if (fd >= 0)
            close(fd);
        free(h);
        fuse_reply_err(req, rc);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    /* prev/ never changes once loaded (a listing waits for the load: gate.c): the kernel
     * keeps its listings (cache_readdir), across opens too (keep_cache, which for a
     * directory keeps the readdir cache), so a second walk sends no READDIRPLUS. */
    fi->cache_readdir = n->area == CK_NODE_PREV;
    fi->keep_cache = n->area == CK_NODE_PREV;
    if (fuse_reply_open(req, fi) != 0) {
        closedir(h->dp);
        free(h);
    }
}

void ck_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct ck_fs *fs = ck_fs_of(req);
    if (ino == CK_INO_ROOT) {
        ck_top_opendir(req, fi);
        return;
    }
    if (ck_top_is_virtual(ino)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    struct ck_node *n = ck_node_of(ino);
    if (n->area == CK_NODE_PREV && ck_loader_state(fs->d->loader) != CK_LOAD_READY)
        ck_prev_gate_opendir(req, n, fi);
    else
        ck_tree_opendir(req, n, fi);
}

/* One entry into buf (n bytes used, or more than left when it does not fit). With plus, a
 * name other than . and .. is looked up as LOOKUP would (the kernel then needs no LOOKUP
 * of its own for it): *looked is the node to forget if the entry does not fit. An entry
 * that cannot be looked up (gone since the readdir) goes without attributes. */
static size_t add_entry(fuse_req_t req, struct ck_node *dir, char *buf, size_t left,
                        const struct dirent *d, bool plus, fuse_ino_t *looked)
{
    struct stat st = {.st_ino = d->d_ino, .st_mode = (mode_t)d->d_type << 12};
    *looked = 0;
    if (!plus)
        return fuse_add_direntry(req, buf, left, d->d_name, &st, d->d_off);
    struct fuse_entry_param e = {.attr = st};
    bool dots = strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0;
    if (!dots && ck_tree_entry(req, dir, d->d_name, &e) == 0)
        *looked = e.ino;
    else
        e = (struct fuse_entry_param){.attr = st};
    return fuse_add_direntry_plus(req, buf, left, d->d_name, &e, d->d_off);
}

static void readdir_any(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi, bool plus)
{
    if (ino == CK_INO_ROOT) {
        ck_top_readdir(req, size, off, fi, plus);
        return;
    }
    struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
    char *buf = calloc(1, size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    /* While a foreign archive streams into prev/, a lookup waits for its entry to be
     * whole (gate.c): no attributes of a file still being written. */
    if (plus && ck_node_of(ino)->area == CK_NODE_PREV &&
        ck_loader_state(ck_fs_of(req)->d->loader) != CK_LOAD_READY)
        plus = false;
    if (off != h->offset) {
        seekdir(h->dp, off);
        h->entry = NULL;
        h->offset = off;
    }
    size_t used = 0;
    int rc = 0;
    for (;;) {
        if (!h->entry) {
            errno = 0;
            h->entry = readdir(h->dp);
            if (!h->entry) {
                rc = errno;
                break;
            }
        }
        fuse_ino_t looked;
        size_t n =
            add_entry(req, ck_node_of(ino), buf + used, size - used, h->entry, plus, &looked);
        if (n > size - used) {
            if (looked) /* not sent: the kernel never saw this lookup */
                ck_nodes_forget(ck_fs_of(req), ck_node_of(looked), 1);
            break;
        }
        used += n;
        h->offset = h->entry->d_off;
        h->entry = NULL;
    }
    if (rc && used == 0)
        fuse_reply_err(req, rc);
    else
        fuse_reply_buf(req, buf, used);
    free(buf);
}

void ck_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    readdir_any(req, ino, size, off, fi, false);
}

/* Entries with their attributes: a walk of prev/ (os.walk, find, ls -l) then costs one
 * request per folder read instead of one more per entry. */
void ck_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    readdir_any(req, ino, size, off, fi, true);
}

void ck_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
    if (h) {
        closedir(h->dp);
        free(h);
    }
    fuse_reply_err(req, 0);
}

void ck_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct ck_fs *fs = ck_fs_of(req);
    if (ck_top_is_virtual(ino)) {
        fuse_reply_err(req, 0);
        return;
    }
    if (ck_node_of(ino) == fs->save_root) {
        ck_top_sync_save(req, CK_TRIGGER_FSYNC);
        return;
    }
    struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
    int r = datasync ? fdatasync(dirfd(h->dp)) : fsync(dirfd(h->dp));
    fuse_reply_err(req, r < 0 ? errno : 0);
}
