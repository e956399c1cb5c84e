/* fetch.c - eager restore into a directory; see fetch.h. */
#include "restore/fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "restore/shards.h"
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
                   struct ck_store_info *info, struct ck_err *err)
{
    *s = NULL;
    info->exists = false;
    ck_rc rc = ck_store_open(uri, cfg->env, s, err);
    if (!rc)
        rc = ck_store_head(*s, info, err);
    if (rc || !info->exists || info->size == 0) {
        if (!rc)
            ck_log_info("checkpoint %s: %s", ck_store_uri(*s),
                        info->exists ? "empty object, skipped" : "does not exist");
        if (*s)
            ck_store_close(*s);
        *s = NULL;
        return rc;
    }
    return CK_OK;
}

/* Streams the object of s into the directory (restore/streamed.h). */
static ck_rc extract_one(const struct ck_fetch_cfg *cfg, struct ck_store *s,
                         const struct ck_store_info *info, struct relay *r,
                         enum ck_object_kind *kind, struct ck_extract_stats *st, struct ck_err *err)
{
    struct ck_extract_limits lim;
    limits_for(cfg->dest_dirfd, &lim);
    atomic_bool cancel = false;
    struct ck_streamed_cfg sc = {.store = s,
                                 .info = info,
                                 .work_dirfd = cfg->work_dirfd,
                                 .prev_dirfd = cfg->dest_dirfd,
                                 .limits = &lim,
                                 .cancel = &cancel,
                                 .progress = on_bytes,
                                 .progress_ctx = r};
    return ck_streamed_load(&sc, kind, st, err);
}

ck_rc ck_fetch_object(struct ck_store *s, const struct ck_store_info *info, int work_dirfd,
                      int dest_dirfd, enum ck_object_kind *kind, struct ck_extract_stats *st,
                      struct ck_err *err)
{
    struct ck_fetch_cfg cfg = {.work_dirfd = work_dirfd, .dest_dirfd = dest_dirfd};
    struct relay r = {&cfg, info->size};
    return extract_one(&cfg, s, info, &r, kind, st, err);
}

/* The manifest extracted with rank 0's files, or CK_ENOTFOUND: a one-rank checkpoint. */
static ck_rc read_manifest(int dirfd, struct ck_world_manifest *m, struct ck_err *err)
{
    int fd = openat(dirfd, CK_WORLD_MANIFEST, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? CK_ENOTFOUND : ck_fail_errno(err, errno, "%s", CK_WORLD_MANIFEST);
    char *text = calloc(1, CK_WORLD_MANIFEST_MAX + 1);
    ssize_t n = text ? read(fd, text, CK_WORLD_MANIFEST_MAX + 1) : -1;
    close(fd);
    ck_rc rc = n < 0 ? ck_fail(err, CK_EIO, "reading %s", CK_WORLD_MANIFEST)
               : n > (ssize_t)CK_WORLD_MANIFEST_MAX || strlen(text) != (size_t)n
                   ? ck_fail(err, CK_ECORRUPT, "%s: not a manifest", CK_WORLD_MANIFEST)
                   : ck_world_manifest_parse(text, CK_WORLD_MANIFEST, m, err);
    free(text);
    if (!rc)
        unlinkat(dirfd, CK_WORLD_MANIFEST, 0); /* ckptfs's, not the tree's */
    return rc;
}

/* A multi-rank checkpoint (layout/manifest.h): every other rank's shard into the same
 * directory; a path two ranks saved fails the extraction (files are created O_EXCL). */
static ck_rc fetch_shards(const struct ck_fetch_cfg *cfg, const char *uri, struct relay *r,
                          struct ck_fetch_result *res, struct ck_err *err)
{
    struct ck_world_manifest m;
    ck_rc rc = read_manifest(cfg->dest_dirfd, &m, err);
    if (rc == CK_ENOTFOUND)
        return CK_OK;
    if (!rc && res->stats.entries > 0)
        res->stats.entries--; /* the manifest */
    for (unsigned k = 1; !rc && k < m.world; k++) {
        struct ck_store *s = NULL;
        struct ck_store_info info;
        rc = ck_shard_open(uri, cfg->env, &m, k, &s, &info, err);
        enum ck_object_kind kind;
        struct ck_extract_stats st = {0};
        if (!rc) {
            r->total = info.size;
            rc = extract_one(cfg, s, &info, r, &kind, &st, err);
            if (rc)
                ck_err_prefix(err, "rank %u's shard %s", k, ck_store_uri(s));
            res->stats.entries += st.entries;
            res->object_bytes += info.size;
        }
        if (s)
            ck_store_close(s);
    }
    if (!rc)
        ck_log_info("restored generation %llu of %u ranks", (unsigned long long)m.generation,
                    m.world);
    ck_world_manifest_free(&m);
    return rc;
}

ck_rc ck_fetch_to_dir(const struct ck_fetch_cfg *cfg, struct ck_fetch_result *res,
                      struct ck_err *err)
{
    memset(res, 0, sizeof(*res));
    double t0 = ck_now();
    struct ck_store *s = NULL;
    struct ck_store_info info;
    const char *uri = NULL;
    for (size_t i = 0; i < cfg->nuri && !s; i++) {
        ck_rc rc = probe(cfg, cfg->uris[i], &s, &info, err);
        if (rc)
            return rc;
        uri = cfg->uris[i];
    }
    if (!s)
        return CK_OK;
    res->object_bytes = info.size;
    snprintf(res->source, sizeof(res->source), "%s", ck_store_uri(s));
    struct relay r = {cfg, res->object_bytes};
    ck_rc rc = extract_one(cfg, s, &info, &r, &res->kind, &res->stats, err);
    if (!rc && res->kind == CK_KIND_TAR)
        rc = fetch_shards(cfg, uri, &r, res, err);
    if (rc)
        ck_err_prefix(err, "restoring %s", res->source);
    ck_store_close(s);
    res->seconds = ck_now() - t0;
    return rc;
}
