/*
 * area.h - the save area (cache-dir/save) and the gate that makes a save consistent.
 *
 * The FUSE adapter brackets every operation that changes save/ with
 * ck_area_mutate_begin/end, and counts handles open for writing with
 * ck_area_writer_open/close. A save calls ck_area_freeze: it waits (bounded) until no
 * file is open for writing, then closes the gate and waits for operations in flight to
 * finish. From then until ck_area_thaw, mutations wait at the gate, so the tree the save
 * reads is exactly the tree at the snapshot point and no later write leaks in.
 *
 * Dirty tracking: every mutation bumps change_seq. A marker file "clean" in the cache dir
 * records that the last save covered everything; the first mutation after it removes the
 * marker, so a restarted daemon knows whether save/ holds unsaved changes.
 *
 * A plain area (ck_area_open_plain, the no-FUSE mode) is a directory that programs write
 * directly, past the daemon: nothing passes the gate and no writer is counted. Its change
 * counter moves when a rescan finds the tree's fingerprint (names, sizes, mtimes, modes and
 * inodes of every entry) changed; freeze, dirty and quiet rescan first, so a save's seq is
 * the tree it starts reading and a change made while it reads leaves save/ dirty after it.
 * A plain area takes no snapshot (save/snapshot.h needs the gate): a save reads the files
 * as they are.
 *
 * Lock: lock protects every field below it. It is a leaf lock: nothing else is taken
 * while it is held. scan_lock (plain areas) serializes rescans and is taken before lock.
 */
#ifndef CK_SAVE_AREA_H
#define CK_SAVE_AREA_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "save/changed.h"
#include "save/snapshot.h"
#include "util/err.h"

/* A handle open for writing with its file's name (ck_area_writer_open_named). */
struct ck_area_writer {
    int key;    /* the caller's: unique among open handles (the FUSE adapter's fd) */
    char *name; /* relative to save/; owned */
};

struct ck_area {
    int dirfd;       /* cache-dir/save, O_DIRECTORY; owned */
    int cache_dirfd; /* cache-dir, for the clean marker; owned */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned writers;             /* handles open for writing (protected by lock) */
    unsigned mutators;            /* mutations in flight (protected by lock) */
    bool frozen;                  /* a save holds the gate (protected by lock) */
    bool clean_marker;            /* the marker file exists (protected by lock) */
    uint64_t change_seq;          /* bumped per mutation (protected by lock) */
    uint64_t saved_seq;           /* change_seq covered by the last good save (protected) */
    double last_writer_close;     /* ck_now() of the last writer close (protected by lock) */
    struct ck_snap *snap;         /* the running save's snapshot, or NULL (protected by lock) */
    struct ck_area_writer *named; /* writers with a name, for .status (protected by lock) */
    size_t nnamed, capnamed;
    unsigned snap_users;       /* mutations inside ck_snap_before_modify (protected by lock) */
    struct ck_changed changed; /* inodes changed since the last good save (protected) */
    /* plain areas only: */
    bool plain;
    char *path;                /* the directory, for the walk; owned */
    pthread_mutex_t scan_lock; /* one rescan at a time */
    uint64_t seen_fp;          /* fingerprint at the last rescan (protected by lock) */
};

/* Opens cache_dir/save (creating it) and reads the clean marker. */
ck_rc ck_area_open(struct ck_area *a, const char *cache_dir, struct ck_err *err);
void ck_area_close(struct ck_area *a);

/* Opens a plain area on the directory path (creating it); what it holds now counts as
 * saved. cache_dir keeps the clean marker and nothing else of the area. */
ck_rc ck_area_open_plain(struct ck_area *a, const char *path, const char *cache_dir,
                         struct ck_err *err);

/* A plain area: walks the tree and bumps change_seq if it changed since the last rescan.
 * Any other area: nothing (its mutations are counted as they happen). */
void ck_area_rescan(struct ck_area *a);

void ck_area_mutate_begin(struct ck_area *a);
/* Whether the file (dev, ino) of save/ has not changed since change_seq seq (a save's
 * snapshot point; changed.h): always false for a plain area, which sees no change. */
bool ck_area_unchanged_since(struct ck_area *a, dev_t dev, ino_t ino, uint64_t seq);
/* ck_area_mutate_begin for a change to the data or metadata of the existing inode
 * (dev, ino): noted for ck_area_unchanged_since, and a running save's snapshot gets its own
 * copy first (snapshot.h). */
void ck_area_mutate_begin_inode(struct ck_area *a, dev_t dev, ino_t ino);
/* The same inside a mutation already begun, once the inode is known (a create that finds
 * the file there and truncates it). */
void ck_area_inode_changes(struct ck_area *a, dev_t dev, ino_t ino);
void ck_area_mutate_end(struct ck_area *a);
void ck_area_writer_open(struct ck_area *a);
/* Handles open for writing that a save would wait for, now. */
unsigned ck_area_writers(struct ck_area *a);
void ck_area_writer_close(struct ck_area *a);
/* The same, for a handle whose file's name a save reports when it waits for it (key
 * identifies the handle until its close; name NULL: unknown). */
void ck_area_writer_open_named(struct ck_area *a, int key, const char *name);
void ck_area_writer_close_named(struct ck_area *a, int key);
/* The names of the files open for writing now, joined by ", " into buf (cut to cap). */
void ck_area_writer_names(struct ck_area *a, char *buf, size_t cap);

/* Closes the gate. Waits up to wait_s for open writers to close; *writers_left tells how
 * many were still open when the wait ended. Returns the change_seq at the snapshot. */
uint64_t ck_area_freeze(struct ck_area *a, double wait_s, unsigned *writers_left);
void ck_area_thaw(struct ck_area *a);

/* Publishes the running save's snapshot (or NULL when it is done; that waits until no
 * mutation still uses the old one). */
void ck_area_set_snap(struct ck_area *a, struct ck_snap *snap);

/* Records that a save of snapshot seq succeeded (writes the clean marker if nothing has
 * changed since) and forgets the inode changes before seq (changed.h). */
void ck_area_mark_saved(struct ck_area *a, uint64_t seq);

/* Whether save/ holds changes no successful save has covered. */
bool ck_area_dirty(struct ck_area *a);

/* Seconds since the last write activity (0 if a writer is open now), and whether dirty. */
void ck_area_quiet(struct ck_area *a, double now, double *quiet_s, bool *dirty);

#endif
