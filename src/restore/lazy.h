/*
 * lazy.h - serving prev/ from a ckptfs archive's seek index: list at once, fetch on read.
 *
 * When the previous checkpoint is a ckptfs archive (archive/seek_index.h), the loader
 * reads the index from the object's tail (one ranged GET) and ck_lazy_open lays out the
 * whole tree under cache-dir/prev at once: directories, symlinks and *sparse* placeholder
 * files of the right size, modes and mtimes. ls and stat are answered from that skeleton
 * immediately; no file data has been fetched yet.
 *
 * A read of a placeholder asks ck_lazy_want for the file's byte range: if the gzip members
 * that hold it are present, the read is served at once from the placeholder; otherwise the
 * missing members are fetched with ranged GETs by a pool of fetch threads, decompressed
 * (ISA-L, CRC-checked), written into every file they overlap, and the parked read is
 * answered from a fetch thread. Sequential reads trigger read-ahead of the next members,
 * so a whole restore overlaps download, decompression and serving.
 *
 * With a cache limit (--cache-limit), the members on the cache disk and those being
 * fetched stay under it: members are evicted, least recently used first, by punching
 * their bytes out of the placeholders (resident.h, fill.h), and fetched again if read
 * again. A read holds the members it reads (ck_lazy_want's hold) until it is answered,
 * so no byte is evicted under it; GETs and read-ahead shrink to fit a quarter of the limit.
 *
 * Lock: lazy->lock (in lazy.c) protects member states, the job queue and waiters; never
 * held while fetching, decompressing, writing files or calling a waiter.
 */
#ifndef CK_RESTORE_LAZY_H
#define CK_RESTORE_LAZY_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "archive/seek_index.h"
#include "store/store.h"

struct ck_lazy;

/* Called once the range is present (rc CK_OK) or cannot be (the error), on any thread. */
typedef void (*ck_lazy_cb)(void *ctx, ck_rc rc);

/* Reads the index of the object (size bytes) in store. CK_ENOTFOUND when the object has
 * no ckptfs index (a foreign archive: use full extraction). On success the tree skeleton
 * exists under prev_dirfd and *out serves reads; store must outlive *out. */
ck_rc ck_lazy_open(struct ck_store *store, uint64_t size, int prev_dirfd, struct ck_lazy **out,
                   uint64_t *entries, struct ck_err *err);

/* The bytes prev/'s files hold in all (the chain's; holes of sparse files not counted). */
uint64_t ck_lazy_data_bytes(struct ck_lazy *lz);

/* Gives each shard of lz's chain an equal share of cache_limit (0: none). Before prev/ is
 * served. */
ck_rc ck_lazy_share_limit(struct ck_lazy *lz, uint64_t cache_limit, struct ck_err *err);

/* Whether prev/'s file with inode ino is served lazily (a placeholder). */
int ck_lazy_is_placeholder(struct ck_lazy *lz, dev_t dev, ino_t ino);

/* If st is a placeholder's, sets its mode and mtime to the archived ones: a placeholder
 * is made 0600 with no times set (lazy.c), filling it moves its mtime on the cache disk
 * (fill.h), and a stat must not see, or let the kernel cache, either. */
void ck_lazy_fix_stat(struct ck_lazy *lz, struct stat *st);

/* The members a read holds on the cache disk (none when lz is NULL). */
struct ck_lazy_hold {
    struct ck_lazy *lz;
    size_t first, last;
};

/* Makes bytes [off, off+len) of the placeholder (dev, ino) present. Returns 1 if they are
 * present already (cb is not called), 0 if cb will be called once they are. Either way
 * they stay present until ck_lazy_release(hold), which the caller calls once it has read
 * them (or cb told it they cannot be). */
int ck_lazy_want(struct ck_lazy *lz, dev_t dev, ino_t ino, uint64_t off, uint64_t len,
                 ck_lazy_cb cb, void *ctx, struct ck_lazy_hold *hold);
void ck_lazy_release(struct ck_lazy_hold *hold);

/* The cache disk's use by prev/'s data (the whole chain). */
struct ck_lazy_cache {
    uint64_t limit;         /* 0: none */
    uint64_t bytes;         /* restored bytes on disk */
    uint64_t evicted_bytes; /* evicted so far */
};
void ck_lazy_cache_use(struct ck_lazy *lz, struct ck_lazy_cache *out);

/* Called on a fetch thread, no lock held, for each regular file of 1 to max bytes whose
 * data one fetched member holds whole, once it is on the cache disk too: (dev, ino) is
 * its placeholder's, data its bytes (valid during the call). */
typedef void (*ck_lazy_whole_fn)(void *ctx, dev_t dev, ino_t ino, const unsigned char *data,
                                 size_t len);
struct ck_lazy_whole {
    ck_lazy_whole_fn fn; /* NULL: none */
    void *ctx;
    size_t max;
};
/* Sets the hook on lz and its chain, from any thread; members fetched from then on. */
void ck_lazy_on_whole_file(struct ck_lazy *lz, const struct ck_lazy_whole *hook);

/* Makes lz serve next's placeholders too (the shards of a multi-rank checkpoint share one
 * prev/): every call on lz covers the chain, and ck_lazy_free(lz) frees next. */
void ck_lazy_chain(struct ck_lazy *lz, struct ck_lazy *next);

/* The bytes of the regular-file entry name (at most max of them), fetched and inflated now,
 * blocking, into a NUL-terminated malloc'd buffer. CK_ENOTFOUND if there is no such entry
 * (err untouched). */
ck_rc ck_lazy_read_entry(struct ck_lazy *lz, const char *name, size_t max, char **out, size_t *len,
                         struct ck_err *err);

/* Removes the top-level file name from prev/ and never writes it (the multi-rank
 * manifest, which is ckptfs's and not the tree's). Before prev/ is served. */
void ck_lazy_hide(struct ck_lazy *lz, const char *name);

/* Bytes fetched from the store so far (the index included). */
uint64_t ck_lazy_bytes_fetched(struct ck_lazy *lz);

/* The last failed fetch of data on demand (what a read answered EIO for) into out, ""
 * if none; over the chain. */
void ck_lazy_last_error(struct ck_lazy *lz, char *out, size_t cap);

/* Stops the fetch threads; waiting reads get CK_ECANCELED. lz stays valid (status). */
void ck_lazy_stop(struct ck_lazy *lz);

/* ck_lazy_stop, then frees lz. */
void ck_lazy_free(struct ck_lazy *lz);

#endif
