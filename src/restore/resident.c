/* resident.c - the cache limit's bookkeeping; see resident.h. */
#include "restore/resident.h"

#include <stdlib.h>

#define ON_DISK 1u
#define USED    2u /* used since the clock hand last passed */

ck_rc ck_resident_init(struct ck_resident *r, size_t n, uint64_t limit, struct ck_err *err)
{
    *r = (struct ck_resident){.limit = limit, .n = n};
    if (!limit)
        return CK_OK;
    r->pins = calloc(n + 1, sizeof(*r->pins));
    r->flags = calloc(n + 1, sizeof(*r->flags));
    r->bytes = calloc(n + 1, sizeof(*r->bytes));
    if (!r->pins || !r->flags || !r->bytes) {
        ck_resident_free(r);
        return ck_fail(err, CK_ENOMEM, "prev/: out of memory");
    }
    return CK_OK;
}

void ck_resident_free(struct ck_resident *r)
{
    free(r->pins);
    free(r->flags);
    free(r->bytes);
    r->pins = NULL;
    r->flags = NULL;
    r->bytes = NULL;
}

void ck_resident_pin(struct ck_resident *r, size_t first, size_t last)
{
    if (!r->limit)
        return;
    for (size_t i = first; i <= last && i < r->n; i++) {
        r->pins[i]++;
        r->flags[i] |= USED;
    }
}

void ck_resident_unpin(struct ck_resident *r, size_t first, size_t last)
{
    if (!r->limit)
        return;
    for (size_t i = first; i <= last && i < r->n; i++)
        if (r->pins[i] > 0)
            r->pins[i]--;
}

bool ck_resident_pinned(const struct ck_resident *r, size_t i)
{
    return r->limit && i < r->n && r->pins[i] > 0;
}

void ck_resident_reserve(struct ck_resident *r, uint64_t bytes)
{
    r->reserved += bytes;
}

void ck_resident_unreserve(struct ck_resident *r, uint64_t bytes)
{
    r->reserved -= bytes < r->reserved ? bytes : r->reserved;
}

void ck_resident_arrived(struct ck_resident *r, size_t i, uint64_t bytes)
{
    ck_resident_unreserve(r, bytes);
    if (!r->limit || i >= r->n) {
        r->used += bytes; /* without a limit a member arrives once */
        return;
    }
    if (r->flags[i] & ON_DISK)
        r->used -= r->bytes[i];
    r->flags[i] = ON_DISK | USED; /* a fresh member gets one pass of the hand */
    r->bytes[i] = bytes;
    r->used += bytes;
}

bool ck_resident_victim(struct ck_resident *r, size_t *victim)
{
    if (!r->limit || r->n == 0 || r->used + r->reserved <= r->limit)
        return false;
    for (size_t step = 0; step < 2 * r->n; step++) { /* two turns: every USED bit cleared */
        size_t i = r->hand;
        r->hand = (r->hand + 1) % r->n;
        if (!(r->flags[i] & ON_DISK) || r->pins[i] > 0)
            continue;
        if (r->flags[i] & USED) {
            r->flags[i] &= (uint8_t)~USED;
            continue;
        }
        r->flags[i] = 0;
        r->used -= r->bytes[i];
        r->evicted += r->bytes[i];
        *victim = i;
        return true;
    }
    return false;
}
