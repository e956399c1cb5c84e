/*
 * gate.c - requests under prev/ that arrive before the previous checkpoint is loaded.
 *
 * The first lookup or opendir directly under prev/ starts the lazy load; the request is
 * parked with the loader and answered from the loader thread when the load ends (EIO if
 * it failed), so the FUSE worker that received it is free at once. Deeper requests need a
 * node that only a completed lookup under prev/ can give, so these two are the only
 * entry points to gate.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
    if (rc)
        fuse_reply_err(p->req, EIO);
    else if (p->op == PARKED_LOOKUP)
        ck_tree_lookup(p->req, p->node, p->name);
    else
        ck_tree_opendir(p->req, p->node, &p->fi);
    free(p);
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
    ck_loader_when_ready(ck_fs_of(req)->d->loader, resume, p);
}

void ck_prev_gate_lookup(fuse_req_t req, struct ck_node *parent, const char *name)
{
    park(req, PARKED_LOOKUP, parent, name, NULL);
}

void ck_prev_gate_opendir(fuse_req_t req, struct ck_node *n, struct fuse_file_info *fi)
{
    park(req, PARKED_OPENDIR, n, NULL, fi);
}
