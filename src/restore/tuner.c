/* tuner.c - concurrency and request size of a ranged download; see tuner.h. */
#include "restore/tuner.h"

#define MIB (1ull << 20)

void ck_tuner_init(struct ck_tuner *t, unsigned max, double now)
{
    t->max = max ? max : 1;
    t->limit = t->max < CK_TUNER_START ? t->max : CK_TUNER_START;
    t->climbing = t->limit < t->max;
    t->chunk = CK_TUNER_CHUNK_FIRST;
    t->best_rate = 0;
    t->window_start = now;
    t->window_bytes = 0;
    t->window_done = 0;
}

/* About CK_TUNER_REQUEST_S of one request's rate, in whole MiB, within the bounds. */
static uint64_t chunk_for(double rate)
{
    double want = rate * CK_TUNER_REQUEST_S;
    if (want <= (double)CK_TUNER_CHUNK_MIN)
        return CK_TUNER_CHUNK_MIN;
    if (want >= (double)CK_TUNER_CHUNK_MAX)
        return CK_TUNER_CHUNK_MAX;
    return ((uint64_t)want + MIB / 2) / MIB * MIB;
}

void ck_tuner_done(struct ck_tuner *t, uint64_t bytes, double secs, double now)
{
    if (secs > 0)
        t->chunk = chunk_for((double)bytes / secs);
    t->window_bytes += bytes;
    t->window_done++;
    double span = now - t->window_start;
    if (!t->climbing || span < CK_TUNER_WINDOW_S || t->window_done < t->limit)
        return;
    double rate = (double)t->window_bytes / span;
    if (rate > t->best_rate * CK_TUNER_GAIN) {
        t->best_rate = rate;
        if (++t->limit >= t->max)
            t->climbing = false;
    } else {
        t->climbing = false;
    }
    t->window_start = now;
    t->window_bytes = 0;
    t->window_done = 0;
}
