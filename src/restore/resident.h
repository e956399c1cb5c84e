/*
 * resident.h - which restored members stay on the cache disk under --cache-limit.
 *
 * prev/'s data lives in the cache dir's placeholder files, one gzip member's worth at a
 * time (lazy.h). With a limit, the members on disk, plus those being fetched, stay under
 * it: before a fetch, ck_resident_victim names members to evict, least recently used
 * first (the clock algorithm: a member used since the hand last passed it gets a second
 * chance), never one a read holds (ck_resident_pin). The caller punches the member's bytes
 * out of its files (restore/fill.h) and fetches it again if it is read again.
 *
 * Pure bookkeeping, no I/O and no lock of its own: lazy.c calls it under its lock. With
 * limit 0 (no limit) nothing is allocated and every call is a no-op.
 */
#ifndef CK_RESTORE_RESIDENT_H
#define CK_RESTORE_RESIDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct ck_resident {
    uint64_t limit;    /* 0: none */
    uint64_t used;     /* bytes of members on disk */
    uint64_t reserved; /* bytes of members being fetched */
    uint64_t evicted;  /* bytes evicted so far */
    size_t n, hand;
    uint32_t *pins;  /* per member: reads holding it */
    uint8_t *flags;  /* per member: on disk, used since the hand passed */
    uint64_t *bytes; /* per member on disk: the bytes it was counted with */
};

/* n members; limit 0: no limit (nothing allocated). */
ck_rc ck_resident_init(struct ck_resident *r, size_t n, uint64_t limit, struct ck_err *err);
void ck_resident_free(struct ck_resident *r);

/* A read holds members [first, last] until it is answered: they are not evicted. */
void ck_resident_pin(struct ck_resident *r, size_t first, size_t last);
void ck_resident_unpin(struct ck_resident *r, size_t first, size_t last);
bool ck_resident_pinned(const struct ck_resident *r, size_t i);

/* A fetch of bytes is starting; ck_resident_arrived or ck_resident_unreserve ends it. */
void ck_resident_reserve(struct ck_resident *r, uint64_t bytes);
void ck_resident_unreserve(struct ck_resident *r, uint64_t bytes);
/* Member i (bytes of them, reserved before) is on disk. */
void ck_resident_arrived(struct ck_resident *r, size_t i, uint64_t bytes);

/* When the members on disk and those being fetched exceed the limit: a member to evict
 * (no longer counted), true; false when within the limit or every member on disk is held. */
bool ck_resident_victim(struct ck_resident *r, size_t *victim);

#endif
