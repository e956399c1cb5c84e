/*
 * tuner.h - how many ranged GETs a whole-object download keeps in flight, and how large
 * each one is, adapted to what the store delivers.
 *
 * Pure logic (no I/O, no clock of its own: the caller passes the time), unit-tested
 * directly. Used by restore/ranged.h.
 *
 * Concurrency climbs: it starts at 2 and, after every window (at least
 * CK_TUNER_WINDOW_S long and at least one request per request in flight), goes up by one
 * while the aggregate rate of that window beat the best rate of the windows before by
 * CK_TUNER_GAIN; the first window that does not stops the climb for good (more requests
 * would only add load). A single stream that is already at the line rate (a store on this
 * host) therefore stays at two or three requests; a store whose streams are each slow (S3,
 * GCS and Azure over a WAN: about 50-100 MB/s a stream) climbs to the maximum.
 *
 * Request size follows the rate of one request: about CK_TUNER_REQUEST_S worth of bytes,
 * rounded to MiB, between CK_TUNER_CHUNK_MIN and CK_TUNER_CHUNK_MAX, so a request is long
 * enough that its latency does not matter and short enough that a retried range costs
 * little. The first requests are CK_TUNER_CHUNK_FIRST.
 */
#ifndef CK_RESTORE_TUNER_H
#define CK_RESTORE_TUNER_H

#include <stdbool.h>
#include <stdint.h>

#define CK_TUNER_CHUNK_FIRST (8ull << 20)
#define CK_TUNER_CHUNK_MIN   (4ull << 20)
#define CK_TUNER_CHUNK_MAX   (64ull << 20)
#define CK_TUNER_REQUEST_S   1.0
#define CK_TUNER_WINDOW_S    0.5
#define CK_TUNER_GAIN        1.10
#define CK_TUNER_START       2

struct ck_tuner {
    unsigned limit;      /* requests in flight allowed now */
    unsigned max;        /* the most ever */
    bool climbing;       /* false once a step up gained nothing */
    uint64_t chunk;      /* size of the next request */
    double best_rate;    /* bytes/s of the best window so far */
    double window_start; /* the current window's start */
    uint64_t window_bytes;
    unsigned window_done; /* requests completed in the current window */
};

/* max >= 1: the most requests in flight (1: one at a time, no climb). */
void ck_tuner_init(struct ck_tuner *t, unsigned max, double now);

/* A request of bytes completed at now after running secs. Updates limit and chunk. */
void ck_tuner_done(struct ck_tuner *t, uint64_t bytes, double secs, double now);

#endif
