/*
 * retry.h - when and how long to wait before trying a failed request again.
 *
 * Pure logic, no I/O, so it is unit-tested directly. The delay before attempt n (n >= 1
 * being the first retry) is "full jitter": uniform in [0, min(max_delay, base * 2^(n-1))].
 * Retrying stops at max_attempts or when the next attempt would start after the deadline
 * counted from the first attempt, whichever comes first.
 */
#ifndef CK_NET_RETRY_H
#define CK_NET_RETRY_H

#include <stdbool.h>
#include <stdint.h>

struct ck_retry_policy {
    unsigned max_attempts; /* total attempts including the first; >= 1 */
    double base_delay_s;   /* first backoff ceiling */
    double max_delay_s;    /* cap of one backoff */
    double deadline_s;     /* total time budget from the first attempt */
};

/* The defaults: 8 attempts, 0.2 s base, 10 s cap, 120 s budget. */
void ck_retry_policy_default(struct ck_retry_policy *p);

struct ck_retry_state {
    struct ck_retry_policy policy;
    unsigned attempts; /* attempts made so far */
    double started;    /* ck_now() at ck_retry_begin */
    uint64_t rng;      /* xorshift state for the jitter */
};

void ck_retry_begin(struct ck_retry_state *st, const struct ck_retry_policy *p, double now,
                    uint64_t seed);

/* Call after a failed attempt: returns true and the delay to wait if one more attempt is
 * allowed at now + *delay_s, false if the budget is spent. */
bool ck_retry_next(struct ck_retry_state *st, double now, double *delay_s);

/* The jittered delay before retry number n (n >= 1). Advances *rng. */
double ck_retry_delay(const struct ck_retry_policy *p, unsigned n, uint64_t *rng);

/* Whether an HTTP status is worth retrying: 408, 425, 429, 500, 502, 503, 504. */
bool ck_retry_http_status_transient(long status);

#endif
