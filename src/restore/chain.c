/* chain.c - the resume chain and carry forward; see chain.h. */
#include "restore/chain.h"

#include <string.h>

#include "util/clock.h"
#include "util/log.h"

ck_rc ck_chain_pick(const char *const *srcs, size_t nsrc, const struct ck_store_env *env,
                    struct ck_store **store, struct ck_store_info *out, size_t *index,
                    struct ck_err *err)
{
    *store = NULL;
    for (size_t i = 0; i < nsrc; i++) {
        struct ck_store *s;
        struct ck_store_info info;
        ck_rc rc = ck_store_open(srcs[i], env, &s, err);
        if (rc) {
            ck_err_prefix(err, "previous checkpoint");
            return rc;
        }
        rc = ck_store_head(s, &info, err);
        if (rc) {
            ck_store_close(s);
            ck_err_prefix(err, "previous checkpoint");
            return rc;
        }
        if (info.exists && info.size > 0) {
            *store = s;
            *out = info;
            *index = i;
            return CK_OK;
        }
        ck_log_info("previous checkpoint %s: %s", ck_store_uri(s),
                    info.exists ? "empty object, skipped" : "does not exist");
        ck_store_close(s);
    }
    return CK_OK;
}

/* Whether dest already holds a checkpoint (a non-empty object). */
static ck_rc dest_has_checkpoint(struct ck_store *dest, bool *has, struct ck_err *err)
{
    struct ck_store_info info;
    ck_rc rc = ck_store_head(dest, &info, err);
    if (rc) {
        ck_err_prefix(err, "carry forward");
        return rc;
    }
    *has = info.exists && info.size > 0;
    return CK_OK;
}

ck_rc ck_chain_carry_source(const char *const *srcs, size_t nsrc, const char *dest_uri,
                            struct ck_store *dest, const struct ck_store_env *env,
                            struct ck_store **src, struct ck_store_info *info, size_t *index,
                            struct ck_err *err)
{
    *src = NULL;
    bool has;
    ck_rc rc = dest_has_checkpoint(dest, &has, err);
    if (rc)
        return rc;
    if (has) {
        ck_log_info("carry forward: %s already holds a checkpoint; nothing to do",
                    ck_store_uri(dest));
        return CK_OK;
    }
    rc = ck_chain_pick(srcs, nsrc, env, src, info, index, err);
    if (rc) {
        ck_err_prefix(err, "carry forward");
        return rc;
    }
    if (!*src) {
        ck_log_info("carry forward: no previous checkpoint; nothing to do");
    } else if (strcmp(srcs[*index], dest_uri) == 0) {
        ck_store_close(*src);
        *src = NULL;
    }
    return CK_OK;
}

ck_rc ck_chain_copy(struct ck_store *src, const struct ck_store_info *info, struct ck_store *dest,
                    struct ck_err *err)
{
    double t0 = ck_now();
    bool server_side;
    ck_rc rc = ck_store_copy(src, info->size, dest, &server_side, err);
    if (rc)
        ck_err_prefix(err, "carry forward %s -> %s", ck_store_uri(src), ck_store_uri(dest));
    else
        ck_log_info("carried forward %s -> %s: %llu bytes, %s, %.2f s", ck_store_uri(src),
                    ck_store_uri(dest), (unsigned long long)info->size,
                    server_side ? "server-side copy" : "streamed", ck_now() - t0);
    return rc;
}
