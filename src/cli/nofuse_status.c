/* nofuse_status.c - the no-FUSE .status file: the same document as the FUSE mount's
 * (daemon/status.h), with "mode": "no-fuse", rewritten atomically. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/nofuse_state.h"
#include "daemon/status.h"
#include "util/buf.h"

static void load_view(const struct nofuse *n, struct ck_load_status *ls)
{
    memset(ls, 0, sizeof(*ls));
    ls->state = n->prev_error[0] ? CK_LOAD_FAILED : CK_LOAD_READY;
    ls->kind = n->prev.kind;
    snprintf(ls->source, sizeof(ls->source), "%s", n->prev.source);
    ls->bytes_done = ls->bytes_total = n->prev.object_bytes;
    ls->entries = n->prev.stats.entries;
    ls->seconds = n->prev.seconds;
    snprintf(ls->error, sizeof(ls->error), "%s", n->prev_error);
}

static void save_view(const struct nofuse *n, struct ck_saver_status *ss)
{
    memset(ss, 0, sizeof(*ss));
    ss->running = n->running;
    ss->current = n->cur;
    ss->has_last = n->last.generation > 0;
    ss->last = n->last;
    ss->saves_ok = n->saves_ok;
    ss->saves_failed = n->saves_failed;
}

void ck_nofuse_write_status(const struct nofuse *n, bool dirty)
{
    struct ck_load_status ls;
    struct ck_saver_status ss;
    load_view(n, &ls);
    save_view(n, &ss);
    struct ck_world_status ws;
    if (n->world)
        ck_world_status(n->world, &ws);
    struct ck_status_view v = {"no-fuse", n->started_wall, ck_store_uri(n->dest), &ls,
                               &ss,       dirty,           n->world ? &ws : NULL};
    struct ck_buf b;
    ck_buf_init(&b, 64 * 1024);
    if (ck_status_render(&v, &b) == CK_OK) {
        int fd = openat(n->mntfd, ".status.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, b.data, b.len);
            close(fd);
            if (w == (ssize_t)b.len)
                renameat(n->mntfd, ".status.tmp", n->mntfd, ".status");
        }
    }
    ck_buf_free(&b);
}
