/* fetch.c - eager restore into a directory; see fetch.h. */
#include "cli/fetch.h"

#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "restore/streamed.h"
#include "util/clock.h"
#include "util/log.h"

struct relay {
    const struct ck_fetch_cfg *cfg;
    uint64_t total;
};

static void on_bytes(void *ctx, uint64_t bytes)
{
    struct relay *r = ctx;
    if (r->cfg->progress)
        r->cfg->progress(r->cfg->ctx, bytes, r->total);
}

static void limits_for(int dirfd, struct ck_extract_limits *lim)
{
    struct statvfs vfs;
    uint64_t free_bytes = UINT64_MAX;
    if (fstatvfs(dirfd, &vfs) == 0)
        free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    lim->max_entry_size = free_bytes;
    lim->max_total_size = free_bytes;
    lim->max_entries = 10u * 1000 * 1000;
}

/* Opens uri and HEADs it: *s stays NULL when it is missing or empty. */
static ck_rc probe(const struct ck_fetch_cfg *cfg, const char *uri, struct ck_store **s,
                   uint64_t *size, struct ck_err *err)
{
    struct ck_store_info info;
    *s = NULL;
    ck_rc rc = ck_store_open(uri, cfg->env, s, err);
    if (!rc)
        rc = ck_store_head(*s, &info, err);
    if (rc || !info.exists || info.size == 0) {
        if (!rc)
            ck_log_info("checkpoint %s: %s", ck_store_uri(*s),
                        info.exists ? "empty object, skipped" : "does not exist");
        if (*s)
            ck_store_close(*s);
        *s = NULL;
        return rc;
    }
    *size = info.size;
    return CK_OK;
}

ck_rc ck_fetch_to_dir(const struct ck_fetch_cfg *cfg, struct ck_fetch_result *res,
                      struct ck_err *err)
{
    memset(res, 0, sizeof(*res));
    double t0 = ck_now();
    struct ck_store *s = NULL;
    for (size_t i = 0; i < cfg->nuri && !s; i++) {
        ck_rc rc = probe(cfg, cfg->uris[i], &s, &res->object_bytes, err);
        if (rc)
            return rc;
    }
    if (!s)
        return CK_OK;
    snprintf(res->source, sizeof(res->source), "%s", ck_store_uri(s));
    struct ck_extract_limits lim;
    limits_for(cfg->dest_dirfd, &lim);
    atomic_bool cancel = false;
    struct relay r = {cfg, res->object_bytes};
    struct ck_streamed_cfg sc = {.store = s,
                                 .work_dirfd = cfg->work_dirfd,
                                 .prev_dirfd = cfg->dest_dirfd,
                                 .limits = &lim,
                                 .cancel = &cancel,
                                 .progress = on_bytes,
                                 .progress_ctx = &r};
    ck_rc rc = ck_streamed_load(&sc, &res->kind, &res->stats, err);
    if (rc)
        ck_err_prefix(err, "restoring %s", res->source);
    ck_store_close(s);
    res->seconds = ck_now() - t0;
    return rc;
}
