/*
 * gate.c - requests under prev/ that arrive before the previous checkpoint is loaded.
 *
 * The first lookup or opendir under prev/ starts the lazy load; the request is parked
 * with the loader and answered from the loader thread, so the FUSE worker that received
 * it is free at once (EIO if the load failed). While a foreign archive streams in, a
 * lookup waits only until its own entry is complete on disk (ck_loader_when_entry): a
 * program that opens prev/model.pt gets it as soon as it is extracted. A directory
 * listing waits for the whole load, since only then is a directory known to be complete.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs_internal.h"

enum parked_op { PARKED_LOOKUP, PARKED_OPENDIR };

struct parked {
    fuse_req_t req;
    enum parked_op op;
    struct ck_node *node;
    struct fuse_file_info fi;
    char name[]; /* for PARKED_LOOKUP */
};

static void resume(void *ctx, ck_rc rc)
{
    struct parked *p = ctx;
    struct ck_fs *fs = ck_fs_reply_begin(p->req);
    if (fs) {
        if (rc)
            fuse_reply_err(p->req, ck_fs_errno(rc));
        else if (p->op == PARKED_LOOKUP)
            ck_tree_lookup(p->req, p->node, p->name);
        else
            ck_tree_opendir(p->req, p->node, &p->fi);
        ck_fs_reply_end(fs);
    }
    free(p);
}

/* The path of name under parent, relative to prev/ ("sub/x"), from the parent's fd. */
static bool prev_relpath(struct ck_fs *fs, struct ck_node *parent, const char *name, char *out,
                         size_t len)
{
    if (parent == fs->prev_root)
        return (size_t)snprintf(out, len, "%s", name) < len;
    char proc[64], abs[PATH_MAX];
    int pfd = ck_node_get(fs, parent);
    if (pfd < 0)
        return false;
    ck_fd_procpath(pfd, proc, sizeof(proc));
    ssize_t n = readlink(proc, abs, sizeof(abs) - 1);
    ck_node_put(fs, parent);
    if (n < 0)
        return false;
    abs[n] = '\0';
    char prefix[PATH_MAX + 8];
    int pl = snprintf(prefix, sizeof(prefix), "%s/prev/", fs->d->cache_dir);
    if (pl < 0 || strncmp(abs, prefix, (size_t)pl) != 0)
        return false;
    return (size_t)snprintf(out, len, "%s/%s", abs + pl, name) < len;
}

static void park(fuse_req_t req, enum parked_op op, struct ck_node *n, const char *name,
                 struct fuse_file_info *fi)
{
    size_t len = name ? strlen(name) + 1 : 1;
    struct parked *p = malloc(sizeof(*p) + len);
    if (!p) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    p->req = req;
    p->op = op;
    p->node = n;
    if (fi)
        p->fi = *fi;
    memcpy(p->name, name ? name : "", len);
    struct ck_fs *fs = ck_fs_of(req);
    char rel[PATH_MAX];
    if (op == PARKED_LOOKUP && prev_relpath(fs, n, name, rel, sizeof(rel)))
        ck_loader_when_entry(fs->d->loader, rel, resume, p);
    else
        ck_loader_when_ready(fs->d->loader, resume, p);
}

void ck_prev_gate_lookup(fuse_req_t req, struct ck_node *parent, const char *name)
{
    park(req, PARKED_LOOKUP, parent, name, NULL);
}

void ck_prev_gate_opendir(fuse_req_t req, struct ck_node *n, struct fuse_file_info *fi)
{
    park(req, PARKED_OPENDIR, n, NULL, fi);
}
