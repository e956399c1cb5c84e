/* changed.c - see changed.h. */
#include "save/changed.h"

#include <stdlib.h>

static size_t slot_of(dev_t dev, ino_t ino, size_t mask)
{
    uint64_t h = ((uint64_t)ino ^ ((uint64_t)dev << 32)) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & mask;
}

static struct ck_changed_slot *find(const struct ck_changed *c, dev_t dev, ino_t ino)
{
    if (!c->slots)
        return NULL;
    size_t mask = c->cap - 1;
    for (size_t h = slot_of(dev, ino, mask);; h = (h + 1) & mask) {
        struct ck_changed_slot *s = &c->slots[h];
        if (!s->seq1 || (s->dev == dev && s->ino == ino))
            return s;
    }
}

/* Rebuilds the table with cap slots, keeping the notes at or after seq. */
static bool rebuild(struct ck_changed *c, size_t cap, uint64_t seq)
{
    struct ck_changed_slot *old = c->slots;
    size_t oldcap = c->cap;
    struct ck_changed_slot *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return false;
    c->slots = slots;
    c->cap = cap;
    c->n = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].seq1 || old[i].seq1 <= seq)
            continue;
        *find(c, old[i].dev, old[i].ino) = old[i];
        c->n++;
    }
    free(old);
    return true;
}

void ck_changed_note(struct ck_changed *c, dev_t dev, ino_t ino, uint64_t seq)
{
    if (2 * (c->n + 1) > c->cap && !rebuild(c, c->cap ? 2 * c->cap : 64, 0)) {
        c->lost1 = seq + 1;
        return;
    }
    struct ck_changed_slot *s = find(c, dev, ino);
    c->n += s->seq1 == 0;
    *s = (struct ck_changed_slot){dev, ino, seq + 1};
}

bool ck_changed_since(const struct ck_changed *c, dev_t dev, ino_t ino, uint64_t seq)
{
    if (c->lost1 > seq)
        return true;
    const struct ck_changed_slot *s = find(c, dev, ino);
    return s && s->seq1 > seq;
}

void ck_changed_prune(struct ck_changed *c, uint64_t seq)
{
    if (c->lost1 && c->lost1 <= seq)
        c->lost1 = 0;
    size_t cap = c->cap;
    while (cap > 64 && 8 * c->n < cap)
        cap /= 2;
    if (c->slots) /* out of memory: every note is kept, which is as true, only larger */
        (void)rebuild(c, cap, seq);
}

void ck_changed_free(struct ck_changed *c)
{
    free(c->slots);
    c->slots = NULL;
    c->cap = c->n = 0;
    c->lost1 = 0;
}
