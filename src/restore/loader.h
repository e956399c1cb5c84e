/*
 * loader.h - lazy loading of the previous checkpoint into cache-dir/prev.
 *
 * Nothing is fetched when the mount starts. The first ck_loader_when_ready() starts a
 * loader thread that walks the --src list (the first source that exists and is not empty
 * wins). A ckptfs archive is served from its seek index (restore/lazy.h): the tree appears
 * at once and file data is fetched on read. Any other object is downloaded into
 * cache-dir/work and turned into the tree under cache-dir/prev: a tar is extracted
 * (archive/extract.h refuses hostile entries), any other object becomes prev/payload, no
 * object leaves prev/ empty. A failure that is not
 * "missing" (auth, network after retries, corrupt or hostile data) is a FAILED load: its
 * error is kept for .status and every waiter gets it, never a silent fresh start.
 *
 * Waiters are called on the loader thread when the load ends (or at once, on the calling
 * thread, if it already has), with no lock held; the FUSE adapter uses them to answer
 * requests that arrived while the load ran, so a slow download never blocks a FUSE thread.
 *
 * Lock: loader->lock (inside loader.c) protects the state, the waiter list and the
 * status fields; it is never held while downloading, extracting or calling a waiter.
 */
#ifndef CK_RESTORE_LOADER_H
#define CK_RESTORE_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "archive/extract.h"
#include "store/store.h"

enum ck_load_state {
    CK_LOAD_IDLE = 0, /* not started: nothing under prev/ has been touched */
    CK_LOAD_RUNNING,
    CK_LOAD_READY,
    CK_LOAD_FAILED,
};

const char *ck_load_state_name(enum ck_load_state s);

struct ck_load_status {
    enum ck_load_state state;
    enum ck_object_kind kind;
    char source[1024]; /* display URI of the source in use, empty if none */
    uint64_t bytes_done;
    uint64_t bytes_total;
    uint64_t entries;
    bool indexed;        /* served from the seek index, data fetched on read */
    unsigned world;      /* ranks of a multi-rank checkpoint (restore/shards.h); 0 or 1: one */
    uint64_t generation; /* its generation */
    double seconds;
    uint64_t cache_limit;       /* --cache-limit, or the one chosen for a disk too small; 0: none */
    uint64_t cache_bytes;       /* restored data on the cache disk now (served from the index) */
    uint64_t cache_evicted;     /* restored data evicted to stay under the limit, so far */
    char error[CK_ERR_MSG_MAX]; /* why the load failed; or, ready, the last failed fetch of
                                   data on demand (a read under prev/ answered EIO) */
};

struct ck_loader_cfg {
    const char *const *srcs; /* candidate URIs in order; not owned */
    size_t nsrc;
    const struct ck_store_env *env; /* not owned */
    const char *cache_dir;          /* holds prev/ and work/ */
    uint64_t cache_limit;           /* --cache-limit: prev/'s restored data on disk; 0: none */
};

typedef void (*ck_load_cb)(void *ctx, ck_rc rc);

struct ck_loader;
struct ck_lazy;
struct ck_lazy_whole;

/* Prepares cache-dir/prev (created empty) and cache-dir/work. Starts no thread. */
ck_rc ck_loader_new(const struct ck_loader_cfg *cfg, struct ck_loader **out, struct ck_err *err);

/* Calls cb(ctx, rc) once the load has ended, starting it if it has not started. */
void ck_loader_when_ready(struct ck_loader *l, ck_load_cb cb, void *ctx);

/* While a foreign archive streams in: calls cb(ctx, rc) as soon as the entry relpath
 * (relative to prev/, e.g. "sub/model.pt") is complete on disk, or when the load ends,
 * whichever comes first; starts the load if needed. A lookup waits only for its entry. */
void ck_loader_when_entry(struct ck_loader *l, const char *relpath, ck_load_cb cb, void *ctx);

/* The state now, without starting anything. */
enum ck_load_state ck_loader_state(struct ck_loader *l);

void ck_loader_status(struct ck_loader *l, struct ck_load_status *out);

/* The hook (lazy.h) a lazy server of prev/ gets, now or when it is made: the FUSE
 * adapter's, which puts small files' bytes into the kernel's page cache as they arrive. */
void ck_loader_on_whole_file(struct ck_loader *l, const struct ck_lazy_whole *hook);

/* The lazy server of prev/ when the load is READY from a seek index, else NULL. */
struct ck_lazy *ck_loader_lazy(struct ck_loader *l);

/* The --src URI (as configured) of the previous checkpoint once prev/ is loaded, when it is
 * a ckptfs archive of one rank served from its seek index (whose members a save may
 * copy); NULL otherwise: not loaded (yet), none, failed, a foreign archive, multi-rank. */
const char *ck_loader_reusable_src(struct ck_loader *l);

/* Cancels a running load, joins its threads and answers every waiting request (EIO or
 * CK_ECANCELED), but keeps l for status: called before the FUSE session goes away, so that
 * no reply is sent to a session that no longer exists. */
void ck_loader_shutdown(struct ck_loader *l);

/* ck_loader_shutdown, then frees l. */
void ck_loader_free(struct ck_loader *l);

#endif
