/* shards.c - a multi-rank checkpoint's shards in one prev/; see shards.h. */
#include "restore/shards.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/digest.h"
#include "util/log.h"
#include "layout/manifest.h"

ck_rc ck_shard_open(const char *uri, const struct ck_store_env *env,
                    const struct ck_world_manifest *m, unsigned r, struct ck_store **store,
                    struct ck_store_info *out, struct ck_err *err)
{
    const struct ck_world_shard *sh = &m->shards[r];
    ck_rc rc = ck_world_open(uri, env, sh->suffix, store, err);
    if (rc)
        return rc;
    struct ck_store_info info;
    rc = ck_store_head(*store, &info, err);
    if (!rc && !info.exists)
        rc = ck_fail(err, CK_ENOTFOUND, "generation %" PRIu64 ": rank %u's shard %s is missing",
                     m->generation, r, ck_store_uri(*store));
    if (!rc && (info.size != sh->size || (sh->etag[0] && !ck_etag_equal(info.etag, sh->etag))))
        rc = ck_fail(err, CK_ECORRUPT,
                     "generation %" PRIu64 ": rank %u's shard %s changed after the commit "
                     "(%" PRIu64 " bytes, ETag %s; the manifest says %" PRIu64 " bytes, ETag %s)",
                     m->generation, r, ck_store_uri(*store), info.size, info.etag, sh->size,
                     sh->etag[0] ? sh->etag : "-");
    *out = info;
    return rc;
}

/* Opens rank r's shard, checks it against the manifest and serves it from prev/. */
static ck_rc attach_one(struct ck_lazy *lz, const char *uri, const struct ck_store_env *env,
                        int prev_dirfd, const struct ck_world_manifest *m, unsigned r,
                        struct ck_store **store, uint64_t *entries, struct ck_err *err)
{
    struct ck_store_info info;
    ck_rc rc = ck_shard_open(uri, env, m, r, store, &info, err);
    struct ck_lazy *next = NULL;
    uint64_t n = 0;
    if (!rc) {
        rc = ck_lazy_open(*store, info.size, prev_dirfd, &next, &n, err);
        if (rc == CK_ENOTFOUND)
            rc = ck_fail(err, CK_ECORRUPT, "not a ckptfs archive (no seek index)");
        if (rc)
            ck_err_prefix(err, "rank %u's shard %s%s", r, ck_store_uri(*store),
                          err->rc == CK_EEXIST ? " (two ranks saved the same path)" : "");
    }
    if (!rc) {
        ck_lazy_chain(lz, next);
        *entries += n;
    }
    return rc;
}

ck_rc ck_shards_attach(struct ck_lazy *lz, const char *uri, const struct ck_store_env *env,
                       int prev_dirfd, struct ck_shards *out, uint64_t *entries, struct ck_err *err)
{
    memset(out, 0, sizeof(*out));
    out->world = 1;
    char *text = NULL;
    size_t len = 0;
    ck_rc rc = ck_lazy_read_entry(lz, CK_WORLD_MANIFEST, CK_WORLD_MANIFEST_MAX, &text, &len, err);
    if (rc == CK_ENOTFOUND)
        return CK_OK; /* a one-rank checkpoint */
    if (rc)
        return rc;
    struct ck_world_manifest m;
    rc = ck_world_manifest_parse_entry(text, len, &m, err);
    if (rc)
        return rc;
    ck_lazy_hide(lz, CK_WORLD_MANIFEST);
    (*entries)--;
    out->stores = calloc(m.world, sizeof(*out->stores));
    if (!out->stores)
        rc = ck_fail(err, CK_ENOMEM, "out of memory");
    out->world = m.world;
    out->generation = m.generation;
    for (unsigned r = 1; !rc && r < m.world; r++) {
        rc = attach_one(lz, uri, env, prev_dirfd, &m, r, &out->stores[r - 1], entries, err);
        out->bytes += m.shards[r].size;
    }
    if (!rc)
        ck_log_info("previous checkpoint: generation %" PRIu64 " of %u ranks", m.generation,
                    m.world);
    ck_world_manifest_free(&m);
    return rc;
}

void ck_shards_close(struct ck_shards *s)
{
    for (unsigned r = 0; s->stores && r + 1 < s->world; r++)
        if (s->stores[r])
            ck_store_close(s->stores[r]);
    free(s->stores);
    s->stores = NULL;
}
