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
    fi->cache_readdir = n->area == CK_NODE_PREV;
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

void ck_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    if (ino == CK_INO_ROOT) {
        ck_top_readdir(req, size, off, fi);
        return;
    }
    struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
    char *buf = calloc(1, size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
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
        struct stat st = {.st_ino = h->entry->d_ino, .st_mode = (mode_t)h->entry->d_type << 12};
        size_t n =
            fuse_add_direntry(req, buf + used, size - used, h->entry->d_name, &st, h->entry->d_off);
        if (n > size - used)
            break;
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
