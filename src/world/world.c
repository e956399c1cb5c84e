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
#include "world/manifest.h"

#define STATE_FILE "world-generation"
#define HINT_MAX   64

struct ck_world {
    struct ck_world_cfg cfg;
    char state_path[PATH_MAX];
    struct ck_store *hint; /* DEST.ranks/[ID/]committed */
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
    struct ck_pack_trailer trailer;
};

/* ---------- small objects ---------- */

struct small_sink {
    char buf[HINT_MAX + 1];
    size_t len;
};

static ck_rc small_write(void *ctx, const void *p, size_t n, struct ck_err *err)
{
    struct small_sink *s = ctx;
    if (n > HINT_MAX - s->len)
        return ck_fail(err, CK_ECORRUPT, "the committed hint is longer than %u bytes", HINT_MAX);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return CK_OK;
}

/* The generation in the committed hint; 0 when there is none. */
static ck_rc read_hint(struct ck_world *w, uint64_t *gen, struct ck_err *err)
{
    struct small_sink s = {.len = 0};
    struct ck_sink sink = {small_write, &s};
    ck_rc rc = ck_store_get(w->hint, 0, CK_STORE_TO_END, &sink, err);
    *gen = 0;
    if (rc == CK_ENOTFOUND) {
        ck_err_clear(err);
        return CK_OK;
    }
    if (rc)
        return rc;
    s.buf[s.len] = '\0';
    char *end = NULL;
    unsigned long long v = strtoull(s.buf, &end, 10);
    if (end == s.buf || (*end && *end != '\n'))
        return ck_fail(err, CK_ECORRUPT, "%s: not a generation number", ck_store_uri(w->hint));
    *gen = v;
    return CK_OK;
}

static ck_rc write_hint(struct ck_world *w, uint64_t gen, struct ck_err *err)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%" PRIu64 "\n", gen);
    struct ck_store_upload *up = NULL;
    ck_rc rc = ck_store_put_begin(w->hint, NULL, &up, err);
    if (rc)
        return rc;
    rc = ck_store_put_write(up, text, (size_t)n, err);
    if (rc) {
        ck_store_put_abort(up);
        return rc;
    }
    return ck_store_put_commit(up, err);
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

/* Claims the next generation for a save: after the counter, the committed hint and every
 * generation claimed before. */
static ck_rc claim(struct ck_world *w, uint64_t *gen, struct ck_err *err)
{
    pthread_mutex_lock(&w->lock);
    bool loaded = w->loaded;
    uint64_t last = w->st.claimed;
    pthread_mutex_unlock(&w->lock);
    ck_rc rc = CK_OK;
    if (!loaded) {
        uint64_t kept = 0, hinted = 0;
        rc = read_state(w, &kept, err);
        if (!rc)
            rc = read_hint(w, &hinted, err);
        if (rc)
            return rc;
        last = kept > hinted ? kept : hinted;
    }
    *gen = last + 1;
    rc = write_state(w, *gen, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&w->lock);
    w->loaded = true;
    w->st.claimed = *gen;
    pthread_mutex_unlock(&w->lock);
    return CK_OK;
}

/* ---------- rank 0: waiting for the shards, the manifest ---------- */

static ck_rc open_shard(struct ck_world *w, uint64_t gen, unsigned rank, char *suffix,
                        struct ck_store **out, struct ck_err *err)
{
    ck_rc rc = ck_world_shard_suffix(w->cfg.id, gen, rank, w->cfg.size, suffix, err);
    if (rc)
        return rc;
    char *uri = ck_world_uri(w->cfg.dest_uri, suffix);
    if (!uri)
        return ck_fail(err, CK_ENOMEM, "out of memory");
    rc = ck_store_open(uri, w->cfg.env, out, err);
    free(uri);
    return rc;
}

/* Polls a HEAD of rank's shard until it exists or the deadline passes. */
static ck_rc await_shard(struct ck_world *w, uint64_t gen, unsigned rank, double deadline,
                         struct ck_world_shard *out, struct ck_err *err)
{
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
    char *uri = ck_world_uri(w->cfg.dest_uri, suffix);
    struct ck_store *s = NULL;
    rc = uri ? ck_store_open(uri, w->cfg.env, &s, err) : ck_fail(err, CK_ENOMEM, "out of memory");
    free(uri);
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
        rc = await_shard(w, ws->gen, r, deadline, &m.shards[r], err);
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

static ck_rc world_begin(void *ctx, struct ck_save_plan *plan, struct ck_err *err)
{
    struct ck_world *w = ctx;
    struct world_save *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return ck_fail(err, CK_ENOMEM, "out of memory");
    ws->w = w;
    ck_rc rc = claim(w, &ws->gen, err);
    plan->extra.always_tar = true;
    if (!rc && w->cfg.rank == 0) {
        plan->store = w->cfg.dest;
        ws->trailer = (struct ck_pack_trailer){CK_WORLD_MANIFEST, make_manifest, ws};
        plan->extra.trailer = &ws->trailer;
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
    plan->priv = ws;
    return CK_OK;
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
    if (!rc && w->cfg.rank == 0) {
        ck_log_info("generation %" PRIu64 " committed: %u ranks", ws->gen, w->cfg.size);
        struct ck_err err;
        if (write_hint(w, ws->gen, &err))
            ck_log_warn("generation %" PRIu64 ": the committed hint was not written (%s); "
                        "the other ranks' .status will not show it",
                        ws->gen, err.msg);
    }
    free(ws);
}

/* ---------- the other ranks: reading the hint ---------- */

static void *poll_main(void *arg)
{
    struct ck_world *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&w->cond, &w->lock, &ts);
        if (w->stop || w->st.durable <= w->st.committed)
            continue;
        pthread_mutex_unlock(&w->lock);
        uint64_t gen = 0;
        struct ck_err err;
        ck_err_clear(&err);
        if (read_hint(w, &gen, &err))
            ck_log_debug("multi-rank: %s", err.msg);
        pthread_mutex_lock(&w->lock);
        if (gen > w->st.committed)
            w->st.committed = gen;
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
    pthread_cond_init(&w->cond, NULL);
    char suffix[CK_WORLD_SUFFIX_MAX];
    ck_rc rc = ck_world_hint_suffix(cfg->id, suffix, err);
    char *uri = rc ? NULL : ck_world_uri(cfg->dest_uri, suffix);
    if (!rc && !uri)
        rc = ck_fail(err, CK_ENOMEM, "out of memory");
    if (!rc)
        rc = ck_store_open(uri, cfg->env, &w->hint, err);
    free(uri);
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
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}
