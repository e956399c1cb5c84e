/*
 * prev_open.c - an open of a small prev/ file answers with its data already in the
 * kernel's page cache of the mount (fuse_lowlevel_notify_store), so reading it costs no
 * READ request.
 *
 * A restore of many small files (per-tensor files, tokenizer folders, data-loader state)
 * is bound by FUSE round trips, not bytes: each file cost an OPEN, a READ and a RELEASE
 * (prev/ opens ask for no FLUSH). prev/ never changes and its handles keep the page cache
 * (keep_cache), so the bytes stored at open are the bytes a READ would have returned; the
 * open waits for them instead of the read (restore/lazy.h: the same fetch, the same
 * read-ahead, since the open asks for the whole file as the read would). Files up to
 * CK_PREV_STORE_MAX only: a large file's reads are few per byte, and storing all of it at
 * open would fetch what a reader of a part never wanted. When the data cannot be had
 * (a failed fetch), the open succeeds as before and the read reports the error. Stored
 * once per node: the kernel keeps the pages (keep_cache); if memory pressure takes them,
 * reads ask for them again.
 *
 * An open of a file whose data was stored so before (a second reader, a second epoch)
 * opens no descriptor: its reads are the kernel's, and a read that does reach the daemon
 * (the pages were dropped) opens one for itself (ops_tree.c). That is two system calls
 * fewer per open, and no descriptor held per open file.
 *
 * The fetch itself stores them too: each file of at most CK_PREV_STORE_MAX bytes whose
 * data a fetched member holds whole is put into the page cache of its node as soon as the
 * member is on the cache disk (restore/lazy.h ck_lazy_on_whole_file), if the kernel knows
 * the node (a listing or a lookup made it; otherwise there is nothing to store into), so
 * the first open of most small files is the open of a stored one above. No read can be
 * waiting on that fetch thread then (lazy.c calls it after answering them), so the pages
 * the store locks are freed by reads that need nothing from it; and a file open now is
 * left to its open (a read of it could be waiting for a member evicted and fetched
 * again under --cache-limit). No lock of the node table is held meanwhile (a read of a
 * handle of no descriptor takes it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs_internal.h"
#include "restore/lazy.h"

#define CK_PREV_STORE_MAX (128u << 10)

struct parked_open {
    fuse_req_t req;
    fuse_ino_t ino;
    struct ck_node *node; /* the kernel holds a lookup of it while it opens */
    int fd;
    size_t size;
    struct fuse_file_info fi;
    struct ck_lazy_hold hold;
};

/* Puts the file's bytes into the kernel's page cache of ino; on any failure nothing is
 * stored and the reads ask for them as usual. */
static void store_pages(struct ck_fs *fs, const struct parked_open *p)
{
    char *buf = malloc(p->size);
    ssize_t n = buf ? pread(p->fd, buf, p->size, 0) : -1;
    if (n == (ssize_t)p->size) {
        struct fuse_bufvec bv = FUSE_BUFVEC_INIT(p->size);
        bv.buf[0].mem = buf;
        if (fuse_lowlevel_notify_store(fs->se, p->ino, 0, &bv, 0) == 0)
            atomic_store(&p->node->stored, true);
    }
    free(buf);
}

/* An open whose reply did not reach the kernel: no release will come for it. */
static void open_failed(struct ck_node *n, int fd)
{
    atomic_fetch_sub(&n->opens, 1);
    if (fd >= 0)
        close(fd);
}

/* Answers the open (a ck_lazy_cb: ctx is the parked open), its pages stored first when its
 * data is present (rc CK_OK). */
static void finish(void *ctx, ck_rc rc)
{
    struct parked_open *p = ctx;
    struct ck_fs *fs = ck_fs_reply_begin(p->req);
    if (fs) {
        if (!rc)
            store_pages(fs, p);
        if (fuse_reply_open(p->req, &p->fi) != 0)
            open_failed(p->node, p->fd);
        ck_fs_reply_end(fs);
    } else {
        open_failed(p->node, p->fd);
    }
    ck_lazy_release(&p->hold);
    free(p);
}

/* ck_lazy_whole_fn: a small prev/ file's bytes, from the fetch that brought them. */
static void push_whole(void *ctx, dev_t dev, ino_t ino, const unsigned char *data, size_t len)
{
    struct ck_fs *fs = ctx;
    struct ck_node *n = ck_nodes_pin(fs, dev, ino);
    if (!n)
        return;
    if (n->area == CK_NODE_PREV && !atomic_load(&n->stored) && !atomic_load(&n->opens)) {
        struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);
        bv.buf[0].mem = (void *)data;
        if (fuse_lowlevel_notify_store(fs->se, (fuse_ino_t)(uintptr_t)n, 0, &bv, 0) == 0)
            atomic_store(&n->stored, true);
    }
    ck_nodes_forget(fs, n, 1);
}

void ck_prev_push_start(struct ck_fs *fs)
{
    struct ck_lazy_whole hook = {push_whole, fs, CK_PREV_STORE_MAX};
    ck_loader_on_whole_file(fs->d->loader, &hook);
}

bool ck_prev_open_stored(fuse_req_t req, struct ck_node *n, struct fuse_file_info *fi)
{
    if (n->area != CK_NODE_PREV || (fi->flags & O_DIRECT) || !atomic_load(&n->stored))
        return false;
    fi->fh = CK_FH_NO_FD;
    fi->keep_cache = 1;
    fi->noflush = 1;
    atomic_fetch_add(&n->opens, 1);
    if (fuse_reply_open(req, fi) != 0)
        open_failed(n, -1);
    return true;
}

void ck_prev_open_reply(fuse_req_t req, fuse_ino_t ino, struct ck_node *n, int fd,
                        struct fuse_file_info *fi)
{
    struct stat st;
    struct parked_open *p = NULL;
    atomic_fetch_add(&n->opens, 1); /* given back by the release, or here if none will come */
    if (fi->keep_cache && !fi->direct_io && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_size > 0 && st.st_size <= (off_t)CK_PREV_STORE_MAX && !atomic_load(&n->stored))
        p = malloc(sizeof(*p));
    if (!p) {
        if (fuse_reply_open(req, fi) != 0)
            open_failed(n, fd);
        return;
    }
    *p = (struct parked_open){req, ino, n, fd, (size_t)st.st_size, *fi, {NULL, 0, 0}};
    struct ck_lazy *lz = ck_loader_lazy(ck_fs_of(req)->d->loader);
    if (lz && ck_lazy_is_placeholder(lz, n->dev, n->ino) &&
        !ck_lazy_want(lz, n->dev, n->ino, 0, p->size, finish, p, &p->hold))
        return; /* answered by a fetch thread */
    finish(p, CK_OK);
}
