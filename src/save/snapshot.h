/*
 * snapshot.h - a point-in-time copy of save/ that costs milliseconds, not a copy of the data.
 *
 * Taken while the area gate is closed (area.h), the snapshot mirrors save/ into
 * cache-dir/snap/tree: directories are created, symlinks recreated, and regular files
 * *hard-linked*, so it holds no data of its own. The gate opens again at once and writers
 * go on at full speed while the save archives the snapshot.
 *
 * Copy-on-write keeps the snapshot exact: a hard link shares the inode with save/, so
 * before a writer changes the data or metadata of a shared inode (write, truncate, chmod,
 * utimens, fallocate, open with O_TRUNC) the FUSE adapter calls ck_snap_before_modify:
 *   - not yet archived: the file is copied (reflink where the file system can, else
 *     copy_file_range) and the copy replaces the snapshot's link; the writer then changes
 *     the live inode, which the snapshot no longer shares;
 *   - being archived right now: the writer waits until the save has read it;
 *   - already archived, or not in the snapshot: nothing to do.
 * Unlink and rename in save/ need nothing: the snapshot has its own names. Only writers of
 * files that the running save has not archived yet pay, once per file per save.
 *
 * Replays: an upload that keeps only a window of its bytes (store.h, http) may need the
 * whole archive again. Then the save holds the snapshot (ck_snap_hold before the first
 * file): archived files stay needed, and their writers copy them first as well, until
 * ck_snap_release at the end of the save; ck_snap_rewind before each further pass makes
 * every file readable again.
 *
 * The pack side calls ck_snap_file_begin/end around reading each file (pack.h hooks).
 *
 * Lock: snap->lock protects the inode table's states; it is a leaf lock, never held while
 * copying (a COPYING state makes others wait on snap->cond instead).
 */
#ifndef CK_SAVE_SNAPSHOT_H
#define CK_SAVE_SNAPSHOT_H

#include <sys/types.h>

#include "util/err.h"

struct ck_snap;

/* Mirrors the tree under save_dirfd into cache-dir/snap/tree (cleared first). *tree_fd is
 * the snapshot's root, owned by the snapshot. Call with the area gate closed. */
ck_rc ck_snap_take(int save_dirfd, int cache_dirfd, struct ck_snap **out, int *tree_fd,
                   struct ck_err *err);

/* Before the live inode (dev, ino) changes: see above. Never fails: if the copy cannot be
 * made (disk full), the writer waits until the save has read the file instead. */
void ck_snap_before_modify(struct ck_snap *s, dev_t dev, ino_t ino);

/* pack.h hooks: ctx is the snapshot. */
void ck_snap_file_begin(void *ctx, int dfd, const char *base);
void ck_snap_file_end(void *ctx);

/* Archived files stay needed until ck_snap_release (see above). Before the first file. */
void ck_snap_hold(struct ck_snap *s);

/* Before reading the snapshot again (a replay): every file not copied away becomes
 * pending again. Not while the pack runs. */
void ck_snap_rewind(struct ck_snap *s);

/* Ends the hold: archived files are no longer needed; writers waiting for them go on. */
void ck_snap_release(struct ck_snap *s);

/* Removes the snapshot tree and frees s. No ck_snap_before_modify may run any more. */
void ck_snap_free(struct ck_snap *s);

/* Removes leftovers of a snapshot (a daemon killed mid-save). */
void ck_snap_clean(int cache_dirfd);

#endif
