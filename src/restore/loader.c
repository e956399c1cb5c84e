/* loader.c - lazy load of prev/; see loader.h. */
#include "restore/loader.h"
#include "restore/chain.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "restore/lazy.h"
#include "restore/shards.h"
#include "restore/streamed.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "layout/manifest.h"

struct waiter {
    ck_load_cb cb;
    void *ctx;
    struct waiter *next;
    char relpath[]; /* for lookups parked until an entry completes ("" for the whole load) */
};

#define NAME_BUCKETS   4096
#define AUTO_LIMIT_MIN (8u << 20) /* less would fetch the same members again and again */

/* Entries complete on disk while a foreign archive streams in (names relative to prev/). */
struct name_node {
    struct name_node *next;
    char name[];
};

struct ck_loader {
    struct ck_loader_cfg cfg; /* read-only */
    int prev_dirfd;           /* cache-dir/prev; owned */
    int work_dirfd;           /* cache-dir/work; owned */
    pthread_t thread;
    bool thread_started; /* protected by lock */
    bool joined;         /* the thread has been joined (protected by lock) */
    atomic_bool cancel;
    pthread_mutex_t lock;
    struct ck_load_status st;                   /* protected by lock */
    double t0;                                  /* protected by lock */
    struct waiter *waiters;                     /* protected by lock */
    ck_rc result;                               /* protected by lock; valid when READY or FAILED */
    struct name_node *done_names[NAME_BUCKETS]; /* protected by lock */
    struct waiter *entry_waiters;               /* protected by lock */
    struct ck_store *lazy_store; /* the source, kept open while lazy serves from it */
    struct ck_lazy *lazy;        /* set before READY, read-only afterwards */
    struct ck_lazy_whole whole;  /* the hook handed to lazy (protected by lock) */
    struct ck_shards shards;     /* the other ranks' shards (multi-rank), likewise */
    const char *picked; /* the cfg.srcs entry of a one-rank ckptfs archive prev/ serves from
                           its index, or NULL (protected by lock) */
};

const char *ck_loader_reusable_src(struct ck_loader *l)
{
    pthread_mutex_lock(&l->lock);
    const char *uri = l->st.state == CK_LOAD_READY ? l->picked : NULL;
    pthread_mutex_unlock(&l->lock);
    return uri;
}

const char *ck_load_state_name(enum ck_load_state s)
{
    static const char *const names[] = {"not_loaded", "loading", "ready", "failed"};
    return names[s];
}

static int open_subdir(const char *cache_dir, const char *name, struct ck_err *err)
{
    int cfd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cfd < 0) {
        ck_fail_errno(err, errno, "cache dir %s", cache_dir);
        return -1;
    }
    if (mkdirat(cfd, name, 0755) < 0 && errno != EEXIST) {
        ck_fail_errno(err, errno, "creating %s/%s", cache_dir, name);
        close(cfd);
        return -1;
    }
    int fd = openat(cfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        ck_fail_errno(err, errno, "opening %s/%s", cache_dir, name);
    close(cfd);
    return fd;
}

ck_rc ck_loader_new(const struct ck_loader_cfg *cfg, struct ck_loader **out, struct ck_err *err)
{
    struct ck_loader *l = calloc(1, sizeof(*l));
    if (!l)
        return ck_fail(err, CK_ENOMEM, "loader: out of memory");
    l->cfg = *cfg;
    l->st.cache_limit = cfg->cache_limit;
    l->prev_dirfd = open_subdir(cfg->cache_dir, "prev", err);
    l->work_dirfd = l->prev_dirfd < 0 ? -1 : open_subdir(cfg->cache_dir, "work", err);
    ck_rc rc = l->work_dirfd < 0 ? err->rc : CK_OK;
    /* A previous run's prev/ may be stale or partial: always load afresh. */
    if (!rc)
        rc = ck_empty_dir(l->prev_dirfd, "cache prev/", err);
    if (!rc)
        rc = ck_empty_dir(l->work_dirfd, "cache work/", err);
    if (rc) {
        if (l->prev_dirfd >= 0)
            close(l->prev_dirfd);
        if (l->work_dirfd >= 0)
            close(l->work_dirfd);
        free(l);
        return rc;
    }
    pthread_mutex_init(&l->lock, NULL);
    atomic_init(&l->cancel, false);
    *out = l;
    return CK_OK;
}

/* The cache disk's free bytes (UINT64_MAX when they cannot be read). */
static uint64_t cache_room(const struct ck_loader *l)
{
    struct statvfs vfs;
    if (fstatvfs(l->prev_dirfd, &vfs) != 0)
        return UINT64_MAX;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

static void limits_for_cache(struct ck_loader *l, struct ck_extract_limits *lim)
{
    uint64_t free_bytes = cache_room(l);
    lim->max_entry_size = free_bytes;
    lim->max_total_size = free_bytes;
    lim->max_entries = 10u * 1000 * 1000;
}

static size_t name_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)(h % NAME_BUCKETS);
}

static bool name_done(struct ck_loader *l, const char *name, size_t len)
{
    for (struct name_node *n = l->done_names[name_hash(name, len)]; n; n = n->next)
        if (strlen(n->name) == len && memcmp(n->name, name, len) == 0)
            return true;
    return false;
}

/* Records name and its parents as complete (lock held). */
static void add_done(struct ck_loader *l, const char *name)
{
    for (size_t len = strlen(name); len > 0;) {
        if (!name_done(l, name, len)) {
            struct name_node *n = malloc(sizeof(*n) + len + 1);
            if (!n)
                return;
            memcpy(n->name, name, len);
            n->name[len] = '\0';
            size_t b = name_hash(name, len);
            n->next = l->done_names[b];
            l->done_names[b] = n;
        }
        while (len > 0 && name[len - 1] != '/')
            len--;
        if (len > 0)
            len--; /* the parent directory */
    }
}

/* extract.h hook: an entry is complete; answer the lookups that waited for it. */
static void on_entry_done(void *ctx, const char *name)
{
    struct ck_loader *l = ctx;
    struct waiter *ready = NULL;
    pthread_mutex_lock(&l->lock);
    add_done(l, name);
    for (struct waiter **pp = &l->entry_waiters; *pp;) {
        struct waiter *w = *pp;
        if (name_done(l, w->relpath, strlen(w->relpath))) {
            *pp = w->next;
            w->next = ready;
            ready = w;
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&l->lock);
    while (ready) {
        struct waiter *next = ready->next;
        ready->cb(ready->ctx, CK_OK);
        free(ready);
        ready = next;
    }
}

static void free_done_names(struct ck_loader *l)
{
    for (size_t b = 0; b < NAME_BUCKETS; b++) {
        while (l->done_names[b]) {
            struct name_node *n = l->done_names[b];
            l->done_names[b] = n->next;
            free(n);
        }
    }
}

static void *loader_main(void *arg);

static void on_progress(void *ctx, uint64_t bytes)
{
    struct ck_loader *l = ctx;
    pthread_mutex_lock(&l->lock);
    l->st.bytes_done = bytes;
    pthread_mutex_unlock(&l->lock);
}

/* Any other object: downloaded and extracted at the same time (streamed.h). */
static ck_rc load_streamed(struct ck_loader *l, struct ck_store *s,
                           const struct ck_store_info *info, struct ck_err *err)
{
    struct ck_extract_limits lim;
    limits_for_cache(l, &lim);
    struct ck_streamed_cfg cfg = {.store = s,
                                  .info = info,
                                  .work_dirfd = l->work_dirfd,
                                  .prev_dirfd = l->prev_dirfd,
                                  .limits = &lim,
                                  .cancel = &l->cancel,
                                  .progress = on_progress,
                                  .progress_ctx = l,
                                  .hooks = {on_entry_done, l}};
    enum ck_object_kind kind = CK_KIND_NONE;
    struct ck_extract_stats xs = {0};
    ck_rc rc = ck_streamed_load(&cfg, &kind, &xs, err);
    pthread_mutex_lock(&l->lock);
    l->st.kind = kind;
    l->st.entries = kind == CK_KIND_PAYLOAD ? 1 : xs.entries;
    pthread_mutex_unlock(&l->lock);
    return rc;
}

/* The most of prev/'s data the cache disk keeps (lazy.h): --cache-limit, or half the
 * free space when none was given and the checkpoint does not fit in it. */
static ck_rc fit_cache(struct ck_loader *l, struct ck_lazy *lz, struct ck_err *err)
{
    uint64_t total = ck_lazy_data_bytes(lz), limit = l->cfg.cache_limit, room = cache_room(l);
    if (!limit && total > room) {
        if (room / 2 < AUTO_LIMIT_MIN)
            return ck_fail(err, CK_ENOSPC,
                           "the previous checkpoint holds %llu bytes; the cache disk has "
                           "%llu free",
                           (unsigned long long)total, (unsigned long long)room);
        limit = room / 2;
        ck_log_warn("prev/: the previous checkpoint holds %llu bytes, the cache disk has %llu "
                    "free: keeping at most %llu of it there (as --cache-limit would)",
                    (unsigned long long)total, (unsigned long long)room, (unsigned long long)limit);
    }
    pthread_mutex_lock(&l->lock);
    l->st.cache_limit = limit;
    pthread_mutex_unlock(&l->lock);
    return limit ? ck_lazy_share_limit(lz, limit, err) : CK_OK;
}

/* A ckptfs archive: the tree from its seek index at once, data on demand (lazy.h).
 * CK_ENOTFOUND if the object has no index; the caller then extracts it whole. */
static ck_rc load_indexed(struct ck_loader *l, struct ck_store *s, const char *uri, uint64_t size,
                          struct ck_err *err)
{
    uint64_t entries = 0;
    struct ck_lazy *lz = NULL;
    ck_rc rc = ck_lazy_open(s, size, l->prev_dirfd, &lz, &entries, err);
    struct ck_shards shards = {.world = 1};
    if (!rc) {
        rc = ck_shards_attach(lz, uri, l->cfg.env, l->prev_dirfd, &shards, &entries, err);
        if (!rc)
            rc = fit_cache(l, lz, err);
        if (rc) { /* a multi-rank checkpoint that is not whole is no checkpoint */
            ck_lazy_free(lz);
            ck_shards_close(&shards);
            return rc == CK_ENOTFOUND ? CK_ECORRUPT : rc;
        }
    }
    if (rc == CK_ECORRUPT) {
        /* A damaged index is only a lost shortcut: the tar inside is still readable. */
        ck_log_warn("previous checkpoint %s: seek index unusable (%s); extracting it whole",
                    ck_store_uri(s), err->msg);
        ck_err_clear(err);
        struct ck_err ignored;
        ck_empty_dir(l->prev_dirfd, "cache prev/", &ignored);
        return CK_ENOTFOUND;
    }
    if (rc)        /* no index (CK_ENOTFOUND: extract it whole); a tampered index, refused as */
        return rc; /* extraction would; the index's GET refused or failed: the store's error */
    pthread_mutex_lock(&l->lock);
    ck_lazy_on_whole_file(lz, &l->whole);
    l->lazy = lz;
    l->lazy_store = s;
    l->picked = shards.world <= 1 ? uri : NULL;
    l->shards = shards;
    l->st.world = shards.world;
    l->st.generation = shards.generation;
    l->st.bytes_total += shards.bytes;
    l->st.kind = CK_KIND_TAR;
    l->st.entries = entries;
    l->st.indexed = true;
    pthread_mutex_unlock(&l->lock);
    return CK_OK;
}

static ck_rc load(struct ck_loader *l, struct ck_err *err)
{
    struct ck_store *s = NULL;
    struct ck_store_info info;
    size_t index;
    ck_rc rc = ck_chain_pick(l->cfg.srcs, l->cfg.nsrc, l->cfg.env, &s, &info, &index, err);
    if (rc || !s)
        return rc; /* an error, or no previous checkpoint: prev/ stays empty */
    pthread_mutex_lock(&l->lock);
    snprintf(l->st.source, sizeof(l->st.source), "%s", ck_store_uri(s));
    l->st.bytes_total = info.size;
    pthread_mutex_unlock(&l->lock);
    ck_log_info("loading previous checkpoint %s (%llu bytes)", ck_store_uri(s),
                (unsigned long long)info.size);
    rc = load_indexed(l, s, l->cfg.srcs[index], info.size, err);
    if (rc != CK_ENOTFOUND) {
        if (rc) {
            ck_err_prefix(err, "previous checkpoint %s", ck_store_uri(s));
            ck_store_close(s);
        }
        return rc; /* on success the store stays open for lazy reads */
    }
    rc = load_streamed(l, s, &info, err);
    struct stat st;
    if (!rc && fstatat(l->prev_dirfd, CK_WORLD_MANIFEST, &st, AT_SYMLINK_NOFOLLOW) == 0)
        rc = ck_fail(err, CK_EUNSUPPORTED,
                     "a multi-rank checkpoint whose seek index is unusable: the other ranks' "
                     "shards cannot be served lazily (ckptfs get restores them all)");
    if (rc)
        ck_err_prefix(err, "previous checkpoint %s", ck_store_uri(s));
    ck_store_close(s);
    return rc;
}

static void *loader_main(void *arg)
{
    struct ck_loader *l = arg;
    struct ck_err err;
    ck_err_clear(&err);
    /* prev/ itself keeps the mtime it showed before the load: laying out its entries
     * moves it, and a kernel that saw the old one would drop the listing it keeps of
     * prev/ (fs/ops_dir.c) the first time it looks again. */
    struct stat before;
    bool have_before = fstat(l->prev_dirfd, &before) == 0;
    ck_rc rc = load(l, &err);
    if (rc) {
        struct ck_err ignored;
        ck_empty_dir(l->prev_dirfd, "cache prev/", &ignored);
        ck_log_error("%s", err.msg);
    }
    if (have_before) {
        struct timespec t[2] = {{0, UTIME_OMIT}, before.st_mtim};
        futimens(l->prev_dirfd, t);
    }
    pthread_mutex_lock(&l->lock);
    l->result = rc;
    l->st.state = rc ? CK_LOAD_FAILED : CK_LOAD_READY;
    l->st.seconds = ck_now() - l->t0;
    snprintf(l->st.error, sizeof(l->st.error), "%s", rc ? err.msg : "");
    struct ck_load_status st = l->st;
    struct waiter *w = l->waiters;
    l->waiters = NULL;
    if (w) { /* both lists are answered: append the entry waiters */
        struct waiter *t = w;
        while (t->next)
            t = t->next;
        t->next = l->entry_waiters;
    } else {
        w = l->entry_waiters;
    }
    l->entry_waiters = NULL;
    free_done_names(l);
    pthread_mutex_unlock(&l->lock);
    if (!rc)
        ck_log_info("previous checkpoint ready: %s%s, %llu entries, %llu bytes fetched in %.2f s",
                    ck_object_kind_name(st.kind), st.indexed ? " (indexed, data on demand)" : "",
                    (unsigned long long)st.entries, (unsigned long long)st.bytes_done, st.seconds);
    while (w) {
        struct waiter *next = w->next;
        w->cb(w->ctx, rc);
        free(w);
        w = next;
    }
    return NULL;
}

/* Starts the loader thread (lock held). False if it cannot start: the load is failed. */
static bool start_locked(struct ck_loader *l)
{
    if (l->thread_started)
        return true;
    l->st.state = CK_LOAD_RUNNING;
    l->t0 = ck_now();
    int e = pthread_create(&l->thread, NULL, loader_main, l);
    if (e) {
        l->st.state = CK_LOAD_FAILED;
        l->result = CK_ENOMEM;
        snprintf(l->st.error, sizeof(l->st.error), "starting the loader thread: %s", strerror(e));
        return false;
    }
    l->thread_started = true;
    return true;
}

/* Calls cb once the load has ended, or (relpath not NULL) once that entry is complete. */
static void wait_for(struct ck_loader *l, const char *relpath, ck_load_cb cb, void *ctx)
{
    pthread_mutex_lock(&l->lock);
    enum ck_load_state s = l->st.state;
    if (s == CK_LOAD_READY || s == CK_LOAD_FAILED ||
        (relpath && name_done(l, relpath, strlen(relpath)))) {
        ck_rc rc = s == CK_LOAD_RUNNING ? CK_OK : l->result;
        pthread_mutex_unlock(&l->lock);
        cb(ctx, rc);
        return;
    }
    size_t len = relpath ? strlen(relpath) : 0;
    struct waiter *w = malloc(sizeof(*w) + len + 1);
    if (!w || !start_locked(l)) {
        ck_rc rc = w ? l->result : CK_ENOMEM;
        pthread_mutex_unlock(&l->lock);
        free(w);
        cb(ctx, rc);
        return;
    }
    w->cb = cb;
    w->ctx = ctx;
    memcpy(w->relpath, relpath ? relpath : "", len + 1);
    struct waiter **list = relpath ? &l->entry_waiters : &l->waiters;
    w->next = *list;
    *list = w;
    pthread_mutex_unlock(&l->lock);
}

void ck_loader_when_ready(struct ck_loader *l, ck_load_cb cb, void *ctx)
{
    wait_for(l, NULL, cb, ctx);
}

void ck_loader_when_entry(struct ck_loader *l, const char *relpath, ck_load_cb cb, void *ctx)
{
    wait_for(l, relpath, cb, ctx);
}

enum ck_load_state ck_loader_state(struct ck_loader *l)
{
    pthread_mutex_lock(&l->lock);
    enum ck_load_state s = l->st.state;
    pthread_mutex_unlock(&l->lock);
    return s;
}

void ck_loader_on_whole_file(struct ck_loader *l, const struct ck_lazy_whole *hook)
{
    pthread_mutex_lock(&l->lock);
    l->whole = *hook;
    if (l->lazy)
        ck_lazy_on_whole_file(l->lazy, hook);
    pthread_mutex_unlock(&l->lock);
}

struct ck_lazy *ck_loader_lazy(struct ck_loader *l)
{
    pthread_mutex_lock(&l->lock);
    struct ck_lazy *lz = l->st.state == CK_LOAD_READY ? l->lazy : NULL;
    pthread_mutex_unlock(&l->lock);
    return lz;
}

void ck_loader_status(struct ck_loader *l, struct ck_load_status *out)
{
    pthread_mutex_lock(&l->lock);
    *out = l->st;
    if (l->lazy) {
        out->bytes_done = ck_lazy_bytes_fetched(l->lazy);
        struct ck_lazy_cache c;
        ck_lazy_cache_use(l->lazy, &c);
        out->cache_bytes = c.bytes;
        out->cache_evicted = c.evicted_bytes;
        if (!out->error[0])
            ck_lazy_last_error(l->lazy, out->error, sizeof(out->error));
    }
    if (out->state == CK_LOAD_RUNNING)
        out->seconds = ck_now() - l->t0;
    pthread_mutex_unlock(&l->lock);
}

void ck_loader_shutdown(struct ck_loader *l)
{
    atomic_store(&l->cancel, true);
    pthread_mutex_lock(&l->lock);
    bool started = l->thread_started && !l->joined;
    l->joined = true;
    struct ck_lazy *lz = l->lazy;
    pthread_mutex_unlock(&l->lock);
    if (started)
        pthread_join(l->thread, NULL); /* its waiters are answered when it ends */
    if (lz)
        ck_lazy_stop(lz); /* reads waiting for data: answered now, fetches stopped */
}

void ck_loader_free(struct ck_loader *l)
{
    ck_loader_shutdown(l);
    ck_lazy_free(l->lazy);
    ck_shards_close(&l->shards);
    if (l->lazy_store)
        ck_store_close(l->lazy_store);
    close(l->prev_dirfd);
    close(l->work_dirfd);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
