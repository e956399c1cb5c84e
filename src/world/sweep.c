/* sweep.c - rank 0 removes the objects of failed rounds; see sweep.h. */
#include "world/sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "layout/manifest.h"

#define LIST_FILE "world-failed"

struct ck_world_sweep {
    const struct ck_world_cfg *cfg; /* not owned */
    char path[PATH_MAX];
    uint64_t gens[CK_SWEEP_MAX]; /* ascending */
    unsigned n;
};

static void load(struct ck_world_sweep *s)
{
    FILE *f = fopen(s->path, "re");
    if (!f) {
        if (errno != ENOENT)
            ck_log_warn("%s: %s; the objects of earlier failed rounds stay", s->path,
                        strerror(errno));
        return;
    }
    unsigned long long v;
    while (s->n < CK_SWEEP_MAX && fscanf(f, "%llu", &v) == 1)
        if (v > 0 && (s->n == 0 || v > s->gens[s->n - 1]))
            s->gens[s->n++] = v;
    if (!feof(f) && s->n < CK_SWEEP_MAX)
        ck_log_warn("%s: not a list of generations; the rest is dropped", s->path);
    fclose(f);
}

/* Written under a temporary name, then renamed (a crash keeps the old or the new list). */
static void save(const struct ck_world_sweep *s)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
    FILE *f = fopen(tmp, "we");
    bool ok = f != NULL;
    for (unsigned i = 0; ok && i < s->n; i++)
        ok = fprintf(f, "%" PRIu64 "\n", s->gens[i]) > 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, s->path) != 0) {
        ck_log_warn("%s: %s; the list of failed rounds to remove is not kept", s->path,
                    strerror(errno));
        unlink(tmp);
    }
}

ck_rc ck_world_sweep_new(const struct ck_world_cfg *cfg, struct ck_world_sweep **out,
                         struct ck_err *err)
{
    *out = NULL;
    if (!ck_store_deletes(cfg->dest))
        return CK_OK;
    struct ck_world_sweep *s = calloc(1, sizeof(*s));
    if (!s)
        return ck_fail(err, CK_ENOMEM, "out of memory");
    s->cfg = cfg;
    int n = snprintf(s->path, sizeof(s->path), "%s/%s", cfg->cache_dir, LIST_FILE);
    if (n < 0 || (size_t)n >= sizeof(s->path)) {
        free(s);
        return ck_fail(err, CK_EINVAL, "%s: path too long", cfg->cache_dir);
    }
    load(s);
    *out = s;
    return CK_OK;
}

static void remember(struct ck_world_sweep *s, uint64_t gen)
{
    unsigned i = 0;
    while (i < s->n && s->gens[i] < gen)
        i++;
    if (i < s->n && s->gens[i] == gen)
        return;
    if (s->n == CK_SWEEP_MAX) {
        ck_log_warn("generation %" PRIu64 ": more than %u failed rounds to remove; the objects "
                    "of generation %" PRIu64 " are left in the store",
                    gen, CK_SWEEP_MAX, s->gens[0]);
        memmove(s->gens, s->gens + 1, (s->n - 1) * sizeof(s->gens[0]));
        s->n--;
        i = i > 0 ? i - 1 : 0;
    }
    memmove(s->gens + i + 1, s->gens + i, (s->n - i) * sizeof(s->gens[0]));
    s->gens[i] = gen;
    s->n++;
    save(s);
}

void ck_world_sweep_failed(struct ck_world_sweep *s, uint64_t gen)
{
    if (s)
        remember(s, gen);
}

/* Opens DEST + suffix; NULL (logged) on failure. */
static struct ck_store *open_suffix(const struct ck_world_sweep *s, const char *suffix)
{
    struct ck_store *st = NULL;
    struct ck_err err;
    if (ck_world_open(s->cfg->dest_uri, s->cfg->env, suffix, &st, &err) != CK_OK) {
        ck_log_warn("sweep of failed rounds: %s", err.msg);
        st = NULL;
    }
    return st;
}

void ck_world_sweep_abandoned(struct ck_world_sweep *s, uint64_t gen, bool waiting)
{
    if (!s || gen == 0)
        return;
    if (waiting) { /* left by an earlier rank 0: only if it never reached its commit */
        char suffix[CK_WORLD_SUFFIX_MAX];
        struct ck_err err;
        struct ck_store_info info = {0};
        if (ck_world_claim_suffix(s->cfg->id, gen, suffix, &err) != CK_OK)
            return;
        struct ck_store *claim = open_suffix(s, suffix);
        ck_rc rc = claim ? ck_store_head(claim, &info, &err) : CK_EIO;
        if (claim)
            ck_store_close(claim);
        if (rc || info.exists)
            return;
    }
    remember(s, gen);
}

/* Deletes DEST + suffix; false (logged) if it may still be there. */
static bool delete_one(const struct ck_world_sweep *s, const char *suffix)
{
    struct ck_store *st = open_suffix(s, suffix);
    if (!st)
        return false;
    struct ck_err err;
    ck_rc rc = ck_store_delete(st, &err);
    if (rc)
        ck_log_warn("sweep of failed rounds: %s", err.msg);
    ck_store_close(st);
    return rc == CK_OK;
}

/* Every object of failed generation gen: the shards of ranks 1..N-1, the claim. */
static bool delete_generation(const struct ck_world_sweep *s, uint64_t gen)
{
    char suffix[CK_WORLD_SUFFIX_MAX];
    struct ck_err err;
    bool all = true;
    for (unsigned r = 1; r < s->cfg->size; r++)
        all = (ck_world_shard_suffix(s->cfg->id, gen, r, s->cfg->size, suffix, &err) == CK_OK &&
               delete_one(s, suffix)) &&
              all;
    all =
        (ck_world_claim_suffix(s->cfg->id, gen, suffix, &err) == CK_OK && delete_one(s, suffix)) &&
        all;
    if (all)
        ck_log_info("generation %" PRIu64 " failed: its shards and claim are removed", gen);
    return all;
}

void ck_world_sweep_run(struct ck_world_sweep *s, uint64_t committed)
{
    if (!s || s->n == 0 || s->gens[0] >= committed)
        return;
    unsigned kept = 0;
    for (unsigned i = 0; i < s->n; i++)
        if (s->gens[i] >= committed || !delete_generation(s, s->gens[i]))
            s->gens[kept++] = s->gens[i];
    s->n = kept;
    save(s);
}

void ck_world_sweep_free(struct ck_world_sweep *s)
{
    free(s);
}
