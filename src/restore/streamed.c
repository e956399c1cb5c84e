/* streamed.c - download and extraction overlapped; see streamed.h. */
#include "restore/streamed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore/ranged.h"

#define OBJECT_FILE "prev.object"

static ck_rc wait_ranged(void *ctx, uint64_t off, uint64_t *have, struct ck_err *err)
{
    return ck_ranged_wait(ctx, off, have, err);
}

ck_rc ck_streamed_load(const struct ck_streamed_cfg *cfg, enum ck_object_kind *kind,
                       struct ck_extract_stats *st, struct ck_err *err)
{
    int fd = openat(cfg->work_dirfd, OBJECT_FILE, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ck_fail_errno(err, errno, "creating %s in the cache", OBJECT_FILE);
    struct ck_ranged_cfg rc_cfg = {.store = cfg->store,
                                   .fd = fd,
                                   .info = cfg->info,
                                   .cancel = cfg->cancel,
                                   .progress = cfg->progress,
                                   .progress_ctx = cfg->progress_ctx};
    struct ck_ranged *dl = NULL;
    ck_rc rc = ck_ranged_start(&rc_cfg, &dl, err);
    if (!rc) {
        struct ck_objsrc src = {fd, wait_ranged, dl};
        rc = ck_extract_src(&src, cfg->prev_dirfd, cfg->limits, &cfg->hooks, kind, st, err);
        /* A tar needs nothing past its end; a payload needs every byte. */
        ck_rc drc = ck_ranged_finish(dl, rc != CK_OK, err);
        if (!rc)
            rc = drc;
    }
    if (!rc && *kind == CK_KIND_PAYLOAD) {
        if (renameat(cfg->work_dirfd, OBJECT_FILE, cfg->prev_dirfd, "payload") < 0)
            rc = ck_fail_errno(err, errno, "moving the payload into prev/");
        else
            fchmod(fd, 0444);
    }
    close(fd);
    unlinkat(cfg->work_dirfd, OBJECT_FILE, 0);
    return rc;
}
