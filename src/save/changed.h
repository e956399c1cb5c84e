/*
 * changed.h - the inodes of save/ changed since a point, by the area's change counter.
 *
 * The FUSE adapter changes an existing file's data or metadata only through
 * ck_area_mutate_begin_inode (area.h); the area notes the inode there with its
 * change_seq. A save that made the previous object took its snapshot at change_seq S: a
 * file whose inode has no note at or after S holds what that object holds (save/known.h),
 * so the next save need not read it. Notes before the last good save's S are forgotten
 * (ck_changed_prune), so the set holds only the inodes changed since then: 32 bytes each.
 * When a note cannot be kept (out of memory), every inode counts as changed until a save
 * whose S is later than that.
 *
 * Not thread-safe: the area's lock protects it.
 */
#ifndef CK_SAVE_CHANGED_H
#define CK_SAVE_CHANGED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ck_changed_slot {
    dev_t dev;
    ino_t ino;
    uint64_t seq1; /* change_seq + 1 of the last change; 0: an empty slot */
};

struct ck_changed {
    struct ck_changed_slot *slots; /* open addressing, a power of two of them, or NULL */
    size_t cap, n;
    uint64_t lost1; /* change_seq + 1 of the last change not noted; 0: none */
};

/* Notes that (dev, ino) changes now, at change_seq seq. Never fails (see above). */
void ck_changed_note(struct ck_changed *c, dev_t dev, ino_t ino, uint64_t seq);
/* Whether (dev, ino) may have changed at or after seq. */
bool ck_changed_since(const struct ck_changed *c, dev_t dev, ino_t ino, uint64_t seq);
/* Forgets the changes before seq (a good save's snapshot point). */
void ck_changed_prune(struct ck_changed *c, uint64_t seq);
void ck_changed_free(struct ck_changed *c);

#endif
