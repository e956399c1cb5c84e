/* carry.c - --carry-forward, one-rank and multi-rank; see carry.h. */
#include "daemon/carry.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/ix_read.h"
#include "archive/seek_index.h"
#include "layout/manifest.h"
#include "restore/chain.h"
#include "restore/fetch.h"
#include "restore/shards.h"
#include "save/pipeline.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "world/round.h"

#define SCRATCH "carry"

/* The manifest of src's object, or CK_ENOTFOUND (no message): a one-rank checkpoint (no
 * manifest), a foreign archive (no seek index), or an index too damaged to tell (which a
 * copy carries as it is). */
static ck_rc read_manifest(struct ck_store *src, const struct ck_store_info *info,
                           struct ck_world_manifest *m, struct ck_err *err)
{
    struct ck_seek_index ix;
    ck_rc rc = ck_ix_fetch(ck_store_read_mem, src, info->size, &ix, err);
    if (rc == CK_ENOTFOUND || rc == CK_ECORRUPT) {
        ck_err_clear(err);
        return CK_ENOTFOUND;
    }
    if (rc)
        return rc;
    char *text = NULL;
    size_t len = 0;
    rc = ck_ix_read_entry(&ix, ck_store_read_mem, src, "", CK_WORLD_MANIFEST, CK_WORLD_MANIFEST_MAX,
                          &text, &len, err);
    ck_ix_free(&ix);
    return rc ? rc : ck_world_manifest_parse_entry(text, len, m, err);
}

/* Rank r's shard, checked against m, copied to the same suffix beside dest; m then
 * names the copy's size and ETag. */
static ck_rc copy_shard(const struct ck_carry_cfg *cfg, const char *src_uri,
                        struct ck_world_manifest *m, unsigned r, bool *server_side,
                        struct ck_err *err)
{
    struct ck_store *s = NULL, *d = NULL;
    struct ck_store_info si, di;
    ck_rc rc = ck_shard_open(src_uri, cfg->env, m, r, &s, &si, err);
    if (!rc)
        rc = ck_world_open(cfg->dest_uri, cfg->env, m->shards[r].suffix, &d, err);
    if (!rc)
        rc = ck_store_copy(s, si.size, d, server_side, err);
    if (!rc)
        rc = ck_store_head(d, &di, err);
    if (!rc && (!di.exists || di.size != si.size))
        rc = ck_fail(err, CK_ECORRUPT, "the copy %s holds %" PRIu64 " bytes, not %" PRIu64,
                     ck_store_uri(d), di.exists ? di.size : 0, si.size);
    if (!rc)
        snprintf(m->shards[r].etag, sizeof(m->shards[r].etag), "%s", di.etag);
    if (rc)
        ck_err_prefix(err, "rank %u's shard", r);
    if (s)
        ck_store_close(s);
    if (d)
        ck_store_close(d);
    return rc;
}

/* The trailer of rank 0's object saved again (archive/pack.h): ctx is the new manifest. */
static ck_rc make_manifest(void *ctx, char **data, size_t *len, struct ck_err *err)
{
    const struct ck_world_manifest *m = ctx;
    return ck_world_manifest_format(m, data, len, err);
}

/* CACHE/carry/{tree,work}, empty: *tree and *work are their descriptors. */
static ck_rc make_scratch(const char *cache_dir, int *cache, int *tree, int *work,
                          struct ck_err *err)
{
    *cache = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*cache < 0)
        return ck_fail_errno(err, errno, "cache dir %s", cache_dir);
    ck_rc rc = ck_rmtree_at(*cache, SCRATCH, "cache dir", err);
    if (!rc && mkdirat(*cache, SCRATCH, 0700) < 0)
        rc = ck_fail_errno(err, errno, "creating %s/%s", cache_dir, SCRATCH);
    if (!rc &&
        (mkdirat(*cache, SCRATCH "/tree", 0700) < 0 || mkdirat(*cache, SCRATCH "/work", 0700) < 0))
        rc = ck_fail_errno(err, errno, "creating %s/%s", cache_dir, SCRATCH);
    *tree = rc ? -1 : openat(*cache, SCRATCH "/tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *work = rc ? -1 : openat(*cache, SCRATCH "/work", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!rc && (*tree < 0 || *work < 0))
        rc = ck_fail_errno(err, errno, "opening %s/%s", cache_dir, SCRATCH);
    return rc;
}

/* Rank 0's object of src, extracted alone and saved again to dest with manifest m. */
static ck_rc resave_rank0(const struct ck_carry_cfg *cfg, struct ck_store *src,
                          const struct ck_store_info *info, const struct ck_world_manifest *m,
                          struct ck_save_result *res, struct ck_err *err)
{
    int cache = -1, tree = -1, work = -1;
    ck_rc rc = make_scratch(cfg->cache_dir, &cache, &tree, &work, err);
    enum ck_object_kind kind = CK_KIND_NONE;
    struct ck_extract_stats st = {0};
    if (!rc)
        rc = ck_fetch_object(src, info, work, tree, &kind, &st, err);
    if (!rc && kind != CK_KIND_TAR)
        rc = ck_fail(err, CK_ECORRUPT, "rank 0's object is not a tar");
    if (!rc && unlinkat(tree, CK_WORLD_MANIFEST, 0) < 0)
        rc = ck_fail_errno(err, errno, "rank 0's object: its %s", CK_WORLD_MANIFEST);
    struct ck_pack_trailer pt = {CK_WORLD_MANIFEST, make_manifest, (void *)m};
    struct ck_save_extra extra = {.always_tar = true,
                                  .trailer = &pt,
                                  .if_match = ck_store_conditional(cfg->dest) ? "" : NULL,
                                  .reuse_from = src};
    struct ck_save_progress progress = {0};
    if (!rc)
        rc = ck_save_pipeline_run(tree, NULL, cfg->dest, cfg->codec, NULL, &extra, NULL, NULL,
                                  &progress, res, err);
    if (rc)
        ck_err_prefix(err, "rank 0's object");
    if (tree >= 0)
        close(tree);
    if (work >= 0)
        close(work);
    if (cache >= 0) {
        struct ck_err ignored;
        if (ck_rmtree_at(cache, SCRATCH, "cache dir", &ignored))
            ck_log_warn("carry forward: %s", ignored.msg);
        close(cache);
    }
    return rc;
}

/* The committed hint of this mount's world id at dest: gen. A failure is only logged. */
static void write_hint(const struct ck_carry_cfg *cfg, uint64_t gen)
{
    char suffix[CK_WORLD_SUFFIX_MAX], text[32];
    struct ck_err err;
    struct ck_store *h = NULL;
    snprintf(text, sizeof(text), "%" PRIu64 "\n", gen);
    ck_rc rc = ck_world_hint_suffix(cfg->world_id, suffix, &err);
    if (!rc)
        rc = ck_world_open(cfg->dest_uri, cfg->env, suffix, &h, &err);
    if (!rc)
        rc = ck_world_small_put(h, text, &err);
    if (rc)
        ck_log_warn("carry forward: the committed hint was not written (%s)", err.msg);
    if (h)
        ck_store_close(h);
}

/* A multi-rank checkpoint at src (manifest m): see carry.h. */
static ck_rc carry_world(const struct ck_carry_cfg *cfg, struct ck_store *src, const char *src_uri,
                         const struct ck_store_info *info, struct ck_world_manifest *m,
                         struct ck_err *err)
{
    double t0 = ck_now();
    bool all_server_side = true;
    ck_rc rc = CK_OK;
    for (unsigned r = 1; !rc && r < m->world; r++) {
        bool server_side = false;
        rc = copy_shard(cfg, src_uri, m, r, &server_side, err);
        all_server_side = all_server_side && server_side;
    }
    struct ck_save_result res = {0};
    if (!rc)
        rc = resave_rank0(cfg, src, info, m, &res, err);
    if (rc) {
        ck_err_prefix(err, "carry forward %s -> %s", ck_store_uri(src), ck_store_uri(cfg->dest));
        return rc;
    }
    write_hint(cfg, m->generation);
    ck_log_info("carried forward %s -> %s: generation %" PRIu64 " of %u ranks, %u shards "
                "copied (%s), rank 0's object saved again with a new manifest (%" PRIu64
                " bytes copied from the old one, %" PRIu64 " uploaded), %.2f s",
                ck_store_uri(src), ck_store_uri(cfg->dest), m->generation, m->world, m->world - 1,
                all_server_side ? "server-side" : "streamed", res.reuse.reused_bytes,
                res.compressed - res.reuse.reused_bytes, ck_now() - t0);
    return CK_OK;
}

ck_rc ck_carry_forward(const struct ck_carry_cfg *cfg, struct ck_err *err)
{
    if (cfg->rank > 0) {
        ck_log_info("carry forward: rank %u; rank 0 carries the checkpoint forward", cfg->rank);
        return CK_OK;
    }
    struct ck_store *src = NULL;
    struct ck_store_info info;
    size_t index = 0;
    ck_rc rc = ck_chain_carry_source(cfg->srcs, cfg->nsrc, cfg->dest_uri, cfg->dest, cfg->env, &src,
                                     &info, &index, err);
    if (rc || !src)
        return rc;
    struct ck_world_manifest m;
    rc = read_manifest(src, &info, &m, err);
    if (!rc) {
        rc = carry_world(cfg, src, cfg->srcs[index], &info, &m, err);
        ck_world_manifest_free(&m);
    } else if (rc == CK_ENOTFOUND) {
        ck_err_clear(err);
        rc = ck_chain_copy(src, &info, cfg->dest, err);
    } else {
        ck_err_prefix(err, "carry forward %s", ck_store_uri(src));
    }
    ck_store_close(src);
    return rc;
}
