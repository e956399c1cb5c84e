/* world.c - one rank's saves of a multi-rank checkpoint; see world.h. */
#include "world/world.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"
#include "layout/manifest.h"
#include "world/round.h"
#include "world/sweep.h"

#define STATE_FILE "world-generation"

struct ck_world {
    struct ck_world_cfg cfg;
    char state_path[PATH_MAX];
    struct ck_store *hint;        /* DEST.ranks/[ID/]committed */
    struct ck_store *round;       /* DEST.ranks/[ID/]round (round.h) */
    struct ck_world_sweep *sweep; /* rank 0: the failed rounds' objects to remove */
    struct ck_save_target target;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool loaded;               /* the counter was read (lock) */
    struct ck_world_status st; /* (lock) */
    bool stop;                 /* (lock) */
    pthread_t poller;
    bool has_poller;
};

/* What one save of this rank carries from begin to end. */
struct world_save {
    struct ck_world *w;
    uint64_t gen;
    char dest_version[128]; /* rank 0: DEST's version before the round opened ("": none) */
    struct ck_pack_trailer trailer;
    const struct ck_save_plan *plan; /* its superseded hook */
    struct ck_store *reuse;          /* rank > 0: its shard the save copies from, or NULL */
};

/* ---------- the committed hint ---------- */

/* The generation in the committed hint; 0 when there is none. */
static ck_rc read_hint(struct ck_world *w, uint64_t *gen, struct ck_err *err)
{
    char text[CK_WORLD_SMALL_MAX + 1];
    *gen = 0;
    ck_rc rc = ck_world_small_get(w->hint, text, err);
    if (rc || text[0] == '\0')
        return rc;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || (*end && *end != '\n'))
        return ck_fail(err, CK_ECORRUPT, "%s: not a generation number", ck_store_uri(w->hint));
    *gen = v;
    return CK_OK;
}

static ck_rc write_hint(struct ck_world *w, uint64_t gen, struct ck_err *err)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRIu64 "\n", gen);
    return ck_world_small_put(w->hint, text, err);
}

/* ---------- the generation counter in the cache dir ---------- */

static ck_rc read_state(struct ck_world *w, uint64_t *gen, struct ck_err *err)
{
    *gen = 0;
    FILE *f = fopen(w->state_path, "re");
    if (!f)
        return errno == ENOENT ? CK_OK : ck_fail_errno(err, errno, "%s", w->state_path);
    unsigned long long v = 0;
    int n = fscanf(f, "%llu", &v);
    fclose(f);
    if (n != 1)
        return ck_fail(err, CK_ECORRUPT, "%s: not a generation number", w->state_path);
    *gen = v;
    return CK_OK;
}

/* Written and fsynced under a temporary name, then renamed: a crash keeps old or new. */
static ck_rc write_state(struct ck_world *w, uint64_t gen, struct ck_err *err)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", w->state_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ck_fail_errno(err, errno, "%s", tmp);
    char text[32];
    int n = snprintf(text, sizeof(text), "%" PRIu64 "\n", gen);
    bool ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok || rename(tmp, w->state_path) != 0) {
        e = ok ? errno : e;
        unlink(tmp);
        return ck_fail_errno(err, e, "%s", w->state_path);
    }
    int dfd = open(w->cfg.cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return CK_OK;
}

static void set_claimed(struct ck_world *w, uint64_t gen)
{
    pthread_mutex_lock(&w->lock);
    w->loaded = true;
    w->st.claimed = gen;
    pthread_mutex_unlock(&w->lock);
}

/* The last generation this rank claimed: remembered, else the counter in the cache dir. */
static ck_rc last_claimed(struct ck_world *w, uint64_t *last, struct ck_err *err)
{
    pthread_mutex_lock(&w->lock);
    bool loaded = w->loaded;
    *last = w->st.claimed;
    pthread_mutex_unlock(&w->lock);
    return loaded ? CK_OK : read_state(w, last, err);
}

/* Rank 0 opens a round: the generation after every one it, the committed hint or the
 * round object knows of (a new cache dir or an earlier rank 0 lose nothing), persisted,
 * then published as "G waiting" for the other ranks to join. */
static ck_rc open_round(struct ck_world *w, uint64_t *gen, struct ck_err *err)
{
    uint64_t last = 0, hinted = 0;
    struct ck_round r;
    ck_rc rc = last_claimed(w, &last, err);
    if (!rc)
        rc = read_hint(w, &hinted, err);
    if (!rc)
        rc = ck_round_read(w->round, &r, err);
    if (rc)
        return rc;
    if (r.gen > hinted && (r.state == CK_ROUND_WAITING || r.state == CK_ROUND_FAILED))
        ck_world_sweep_abandoned(w->sweep, r.gen, r.state == CK_ROUND_WAITING);
    last = last > hinted ? last : hinted;
    *gen = (last > r.gen ? last : r.gen) + 1;
    rc = write_state(w, *gen, err);
    if (!rc)
        rc = ck_round_write(w->round, &(struct ck_round){*gen, CK_ROUND_WAITING}, err);
    if (!rc)
        set_claimed(w, *gen);
    return rc;
}

/* Whether this rank's shard of gen exists already (a save before a restart with a new
 * cache dir): a shard is written once per generation, never replaced (docs/world.md). */
static ck_rc shard_exists(struct ck_world *w, uint64_t gen, bool *exists, struct ck_err *err);

/* Another rank joins the round rank 0 has open and that it has not joined yet, waiting
 * for rank 0 to open one (at most --world-timeout); it gives way to a newer save of its
 * own (a save asked for twice joins once, with the newer snapshot). */
static ck_rc join_round(struct ck_world *w, const struct ck_save_plan *plan, uint64_t *gen,
                        struct ck_err *err)
{
    uint64_t last = 0;
    ck_rc rc = last_claimed(w, &last, err);
    double deadline = ck_now() + w->cfg.timeout_s, delay = 0.05;
    bool said = false;
    while (!rc) {
        struct ck_round r;
        rc = ck_round_read(w->round, &r, err);
        bool exists = false;
        if (!rc && r.state == CK_ROUND_WAITING && r.gen > last)
            rc = shard_exists(w, r.gen, &exists, err);
        if (!rc && r.state == CK_ROUND_WAITING && r.gen > last && !exists) {
            *gen = r.gen;
            break;
        }
        if (!rc && exists)
            last = r.gen;
        if (rc)
            break;
        /* A second save of this rank while the round it joined is still open: a round
         * pairs one save per rank, and waiting for the next round would hand it this
         * older snapshot. */
        if (r.state == CK_ROUND_WAITING && r.gen == last)
            return ck_fail(err, CK_EEXIST,
                           "this rank has saved round %" PRIu64 " already and rank 0 still "
                           "waits for it: one save per rank and round",
                           r.gen);
        if (plan->superseded && plan->superseded(plan->superseded_ctx))
            return ck_fail(err, CK_ECANCELED,
                           "a newer save was asked for before rank 0 opened a round: this one "
                           "gives way to it");
        if (ck_now() >= deadline)
            return ck_fail(err, CK_ETIMEDOUT,
                           "rank 0 opened no new round within %.0f s (the last is %" PRIu64
                           " %s): every rank must save at the same points",
                           w->cfg.timeout_s, r.gen, ck_round_state_name(r.state));
        if (!said)
            ck_log_info("rank %u: waiting for rank 0 to open a round (last joined: %" PRIu64 ")",
                        w->cfg.rank, last);
        said = true;
        ck_sleep(delay);
        delay = delay * 2 < 1.0 ? delay * 2 : 1.0;
    }
    if (!rc)
        rc = write_state(w, *gen, err);
    if (!rc)
        set_claimed(w, *gen);
    return rc;
}

/* ---------- rank 0: waiting for the shards, the manifest ---------- */

/* Opens the object DEST + suffix (a shard, a claim, the hint, the round). */
static ck_rc open_at(const struct ck_world_cfg *cfg, const char *suffix, struct ck_store **out,
                     struct ck_err *err)
{
    return ck_world_open(cfg->dest_uri, cfg->env, suffix, out, err);
}

static ck_rc open_shard(struct ck_world *w, uint64_t gen, unsigned rank, char *suffix,
                        struct ck_store **out, struct ck_err *err)
{
    ck_rc rc = ck_world_shard_suffix(w->cfg.id, gen, rank, w->cfg.size, suffix, err);
    return rc ? rc : open_at(&w->cfg, suffix, out, err);
}

static ck_rc shard_exists(struct ck_world *w, uint64_t gen, bool *exists, struct ck_err *err)
{
    char suffix[CK_WORLD_SUFFIX_MAX];
    struct ck_store *s = NULL;
    struct ck_store_info info = {0};
    ck_rc rc = open_shard(w, gen, w->cfg.rank, suffix, &s, err);
    if (!rc)
        rc = ck_store_head(s, &info, err);
    if (s)
        ck_store_close(s);
    *exists = !rc && info.exists;
    return rc;
}

/* Polls a HEAD of rank's shard until it exists or the deadline passes. */
static ck_rc await_shard(struct ck_world *w, const struct world_save *ws, unsigned rank,
                         double deadline, struct ck_world_shard *out, struct ck_err *err)
{
    uint64_t gen = ws->gen;
    const struct ck_save_plan *plan = ws->plan;
    struct ck_store *s = NULL;
    ck_rc rc = open_shard(w, gen, rank, out->suffix, &s, err);
    double delay = 0.05;
    while (!rc) {
        struct ck_store_info info;
        rc = ck_store_head(s, &info, err);
        if (rc || info.exists) {
            out->size = info.size;
            snprintf(out->etag, sizeof(out->etag), "%s", info.etag);
            break;
        }
        if (plan->superseded && plan->superseded(plan->superseded_ctx)) {
            rc = ck_fail(err, CK_ECANCELED,
                         "generation %" PRIu64 ": rank %u's shard is not there and a newer "
                         "save was asked for: this one gives way to it",
                         gen, rank);
            break;
        }
        if (ck_now() >= deadline) {
            rc = ck_fail(err, CK_ETIMEDOUT,
                         "generation %" PRIu64 ": rank %u's shard %s is not there after %.0f s; "
                         "the previous generation stays the checkpoint",
                         gen, rank, ck_store_uri(s), w->cfg.timeout_s);
            break;
        }
        ck_sleep(delay);
        delay = delay * 2 < 1.0 ? delay * 2 : 1.0;
    }
    ck_store_close(s);
    return rc;
}

/* Rank 0 creates DEST.ranks/[ID/]gG/commit, create-only, before it commits G: a second
 * rank 0 of the same run (a zombie and its replacement) cannot commit G too. The body
 * names this process and a nonce, so a lost reply is resolved to the right winner. */
static ck_rc claim_commit(struct ck_world *w, uint64_t gen, struct ck_err *err)
{
    char suffix[CK_WORLD_SUFFIX_MAX];
    ck_rc rc = ck_world_claim_suffix(w->cfg.id, gen, suffix, err);
    if (rc)
        return rc;
    struct ck_store *s = NULL;
    rc = open_at(&w->cfg, suffix, &s, err);
    char host[64] = "", body[256];
    gethostname(host, sizeof(host) - 1);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int n = snprintf(body, sizeof(body), "rank 0 of %u, host %s, pid %ld, at %lld.%09ld\n",
                     w->cfg.size, host, (long)getpid(), (long long)now.tv_sec, now.tv_nsec);
    struct ck_put_opts opts = {.size = CK_STORE_SIZE_UNKNOWN, .if_absent = true};
    struct ck_store_upload *up = NULL;
    if (!rc)
        rc = ck_store_put_begin(s, &opts, &up, err);
    if (!rc) {
        rc = ck_store_put_write(up, body, (size_t)n, err);
        if (rc)
            ck_store_put_abort(up);
        else
            rc = ck_store_put_commit(up, err);
    }
    if (rc == CK_EUNSUPPORTED) { /* http(s): no create-only put; docs/world.md */
        ck_log_debug("generation %" PRIu64 ": %s; committing without a claim", gen, err->msg);
        ck_err_clear(err);
        rc = CK_OK;
    } else if (rc == CK_EEXIST) {
        rc = ck_fail(err, CK_EEXIST,
                     "generation %" PRIu64 " is already being committed by another rank 0 "
                     "(%s exists); this one gives way",
                     gen, ck_store_uri(s));
    }
    if (s)
        ck_store_close(s);
    return rc;
}

static ck_rc make_manifest(void *ctx, char **data, size_t *len, struct ck_err *err)
{
    struct world_save *ws = ctx;
    struct ck_world *w = ws->w;
    struct ck_world_manifest m = {ws->gen, w->cfg.size, calloc(w->cfg.size, sizeof(*m.shards))};
    if (!m.shards)
        return ck_fail(err, CK_ENOMEM, "multi-rank manifest: out of memory");
    double deadline = ck_now() + w->cfg.timeout_s;
    ck_log_info("generation %" PRIu64 ": waiting for the shards of ranks 1-%u", ws->gen,
                w->cfg.size - 1);
    ck_rc rc = CK_OK;
    for (unsigned r = 1; !rc && r < w->cfg.size; r++) {
        pthread_mutex_lock(&w->lock);
        w->st.waiting_for = w->cfg.size - r;
        pthread_mutex_unlock(&w->lock);
        rc = await_shard(w, ws, r, deadline, &m.shards[r], err);
    }
    pthread_mutex_lock(&w->lock);
    w->st.waiting_for = 0;
    pthread_mutex_unlock(&w->lock);
    if (!rc)
        rc = claim_commit(w, ws->gen, err);
    if (!rc)
        rc = ck_world_manifest_format(&m, data, len, err);
    free(m.shards);
    return rc;
}

/* ---------- the saver target ---------- */

/* Rank 0, before it opens a round: what DEST holds now, which its commit must still find
 * there (a conditional replace), so that a stale rank 0 never puts an older generation
 * over a newer one (docs/world.md). *cond false where the store cannot check (http). */
static ck_rc read_dest_version(struct ck_world *w, struct world_save *ws, bool *cond,
                               struct ck_err *err)
{
    *cond = ck_store_conditional(w->cfg.dest);
    if (!*cond) {
        ck_log_debug("%s cannot replace conditionally: a stale rank 0 is not fenced",
                     ck_store_uri(w->cfg.dest));
        return CK_OK;
    }
    struct ck_store_info info;
    ck_rc rc = ck_store_head(w->cfg.dest, &info, err);
    if (!rc)
        snprintf(ws->dest_version, sizeof(ws->dest_version), "%s", info.exists ? info.version : "");
    return rc;
}

/* The object this rank's save may copy members of (pipeline.h ck_save_extra.reuse_from):
 * rank 0, DEST once this run committed a generation; another rank, its own last durable
 * shard unless that generation failed, else its shard of the committed one. Opening makes
 * no request; an object that is not there (swept) or changes under the save only costs
 * reuse (the pipeline reads and sends everything then), never the save. */
static void open_reuse(struct ck_world *w, struct world_save *ws, struct ck_save_plan *plan)
{
    pthread_mutex_lock(&w->lock);
    uint64_t committed = w->st.committed, durable = w->st.durable, failed = w->st.failed;
    pthread_mutex_unlock(&w->lock);
    uint64_t gen = durable > failed && durable > committed ? durable : committed;
    if (w->cfg.rank == 0 || gen == 0 || gen >= ws->gen) {
        plan->extra.reuse_from = w->cfg.rank == 0 && committed ? w->cfg.dest : NULL;
        return;
    }
    char suffix[CK_WORLD_SUFFIX_MAX];
    struct ck_err err;
    if (open_shard(w, gen, w->cfg.rank, suffix, &ws->reuse, &err) == CK_OK)
        plan->extra.reuse_from = ws->reuse;
    else
        ck_log_warn("save: not reusing generation %" PRIu64 "'s shard: %s", gen, err.msg);
}

static ck_rc world_begin(void *ctx, struct ck_save_plan *plan, struct ck_err *err)
{
    struct ck_world *w = ctx;
    struct world_save *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return ck_fail(err, CK_ENOMEM, "out of memory");
    ws->w = w;
    ws->plan = plan;
    bool cond = false;
    ck_rc rc = w->cfg.rank == 0 ? read_dest_version(w, ws, &cond, err) : CK_OK;
    if (!rc)
        rc = w->cfg.rank == 0 ? open_round(w, &ws->gen, err) : join_round(w, plan, &ws->gen, err);
    plan->extra.always_tar = true;
    if (!rc && w->cfg.rank == 0) {
        plan->store = w->cfg.dest;
        ws->trailer = (struct ck_pack_trailer){CK_WORLD_MANIFEST, make_manifest, ws};
        plan->extra.trailer = &ws->trailer;
        plan->extra.if_match = cond ? ws->dest_version : NULL;
    } else if (!rc) {
        char suffix[CK_WORLD_SUFFIX_MAX];
        rc = open_shard(w, ws->gen, w->cfg.rank, suffix, &plan->store, err);
    }
    if (rc) {
        ck_err_prefix(err, "multi-rank save");
        free(ws);
        return rc;
    }
    ck_log_info("save: generation %" PRIu64 ", rank %u of %u -> %s", ws->gen, w->cfg.rank,
                w->cfg.size, ck_store_uri(plan->store));
    open_reuse(w, ws, plan);
    plan->priv = ws;
    return CK_OK;
}

/* Rank 0, after its save of gen: the hint (committed), then the round's outcome, which
 * lets the other ranks join the next round and learn that gen failed. */
static void close_round(struct ck_world *w, uint64_t gen, ck_rc rc)
{
    pthread_mutex_lock(&w->lock);
    if (rc && gen > w->st.failed)
        w->st.failed = gen;
    pthread_mutex_unlock(&w->lock);
    if (rc == CK_EEXIST) { /* another rank 0 claimed gen or committed since: it owns the round */
        ck_log_warn("generation %" PRIu64 ": another rank 0 of this run committed in the "
                    "meantime; this one gives way and leaves the round object to it",
                    gen);
        return;
    }
    struct ck_err err;
    if (!rc) {
        ck_log_info("generation %" PRIu64 " committed: %u ranks", gen, w->cfg.size);
        if (write_hint(w, gen, &err))
            ck_log_warn("generation %" PRIu64 ": the committed hint was not written (%s); "
                        "the other ranks' .status will not show it",
                        gen, err.msg);
    }
    struct ck_round r = {gen, rc ? CK_ROUND_FAILED : CK_ROUND_COMMITTED};
    if (ck_round_write(w->round, &r, &err))
        ck_log_warn("generation %" PRIu64 ": the round object was not updated (%s); the other "
                    "ranks wait for the next round to learn the outcome",
                    gen, err.msg);
    if (rc)
        ck_world_sweep_failed(w->sweep, gen);
    else
        ck_world_sweep_run(w->sweep, gen);
}

static void world_end(void *ctx, struct ck_save_plan *plan, ck_rc rc)
{
    struct ck_world *w = ctx;
    struct world_save *ws = plan->priv;
    if (w->cfg.rank != 0)
        ck_store_close(plan->store);
    plan->store = NULL;
    if (!rc) {
        pthread_mutex_lock(&w->lock);
        if (ws->gen > w->st.durable)
            w->st.durable = ws->gen;
        if (w->cfg.rank == 0 && ws->gen > w->st.committed)
            w->st.committed = ws->gen;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
    }
    if (w->cfg.rank == 0)
        close_round(w, ws->gen, rc);
    if (ws->reuse)
        ck_store_close(ws->reuse);
    free(ws);
}

/* ---------- the other ranks: reading the hint ---------- */

/* What the hint and the round object say of this rank's last durable shard: committed,
 * or failed (rank 0 marked it failed, or has moved on to a later round without
 * committing it). Read in that order: rank 0 writes the hint before the round. */
static void learn_outcome(struct ck_world *w, uint64_t durable)
{
    uint64_t gen = 0;
    struct ck_round r = {0, CK_ROUND_NONE};
    struct ck_err err;
    ck_err_clear(&err);
    ck_rc rc = ck_round_read(w->round, &r, &err);
    if (!rc)
        rc = read_hint(w, &gen, &err);
    if (rc)
        ck_log_debug("multi-rank: %s", err.msg);
    bool failed = !rc && gen < durable &&
                  (r.gen > durable || (r.gen == durable && r.state == CK_ROUND_FAILED));
    pthread_mutex_lock(&w->lock);
    if (gen > w->st.committed)
        w->st.committed = gen;
    if (failed && durable > w->st.failed) {
        w->st.failed = durable;
        ck_log_warn("generation %" PRIu64 " failed on rank 0: this rank's shard of it is not "
                    "part of a checkpoint",
                    durable);
    }
    pthread_mutex_unlock(&w->lock);
}

static void *poll_main(void *arg)
{
    struct ck_world *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        struct timespec ts = ck_deadline_after(1);
        pthread_cond_timedwait(&w->cond, &w->lock, &ts);
        uint64_t durable = w->st.durable;
        if (w->stop || durable <= w->st.committed || durable <= w->st.failed)
            continue;
        pthread_mutex_unlock(&w->lock);
        learn_outcome(w, durable);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---------- life cycle ---------- */

ck_rc ck_world_new(const struct ck_world_cfg *cfg, struct ck_world **out, struct ck_err *err)
{
    struct ck_world *w = calloc(1, sizeof(*w));
    if (!w)
        return ck_fail(err, CK_ENOMEM, "out of memory");
    w->cfg = *cfg;
    w->st.rank = cfg->rank;
    w->st.size = cfg->size;
    w->target = (struct ck_save_target){world_begin, world_end, w};
    snprintf(w->state_path, sizeof(w->state_path), "%s/%s", cfg->cache_dir, STATE_FILE);
    pthread_mutex_init(&w->lock, NULL);
    ck_cond_init_monotonic(&w->cond);
    char suffix[CK_WORLD_SUFFIX_MAX];
    ck_rc rc = ck_world_hint_suffix(cfg->id, suffix, err);
    if (!rc)
        rc = open_at(cfg, suffix, &w->hint, err);
    if (!rc)
        rc = ck_world_round_suffix(cfg->id, suffix, err);
    if (!rc)
        rc = open_at(cfg, suffix, &w->round, err);
    if (!rc && cfg->rank == 0)
        rc = ck_world_sweep_new(&w->cfg, &w->sweep, err);
    if (!rc && cfg->rank != 0) {
        if (pthread_create(&w->poller, NULL, poll_main, w) != 0)
            rc = ck_fail(err, CK_ENOMEM, "cannot start the multi-rank poller");
        w->has_poller = rc == CK_OK;
    }
    if (rc) {
        ck_world_free(w);
        return rc;
    }
    *out = w;
    return CK_OK;
}

const struct ck_save_target *ck_world_target(struct ck_world *w)
{
    return &w->target;
}

void ck_world_status(struct ck_world *w, struct ck_world_status *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->st;
    pthread_mutex_unlock(&w->lock);
}

void ck_world_free(struct ck_world *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    if (w->has_poller)
        pthread_join(w->poller, NULL);
    if (w->hint)
        ck_store_close(w->hint);
    if (w->round)
        ck_store_close(w->round);
    ck_world_sweep_free(w->sweep);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}
