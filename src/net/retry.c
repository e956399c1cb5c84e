/*
 * retry.c - backoff with full jitter; see retry.h.
 *
 * ck_retry_begin() counts the first attempt, so st->attempts is the number of attempts
 * made or under way, and ck_retry_next() counts the retry it allows.
 */
#include "net/retry.h"

void ck_retry_policy_default(struct ck_retry_policy *p)
{
    p->max_attempts = 8;
    p->base_delay_s = 0.2;
    p->max_delay_s = 10.0;
    p->deadline_s = 120.0;
}

/* xorshift64: small, fast, and good enough to spread retries; never cryptographic. */
static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* A uniform double in [0, 1). */
static double unit_random(uint64_t *rng)
{
    return (double)(xorshift64(rng) >> 11) * (1.0 / 9007199254740992.0);
}

void ck_retry_begin(struct ck_retry_state *st, const struct ck_retry_policy *p, double now,
                    uint64_t seed)
{
    st->policy = *p;
    if (st->policy.max_attempts < 1)
        st->policy.max_attempts = 1;
    st->attempts = 1;
    st->started = now;
    st->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

double ck_retry_delay(const struct ck_retry_policy *p, unsigned n, uint64_t *rng)
{
    double ceiling = p->base_delay_s;
    for (unsigned i = 1; i < n && ceiling < p->max_delay_s; i++)
        ceiling *= 2.0;
    if (ceiling > p->max_delay_s)
        ceiling = p->max_delay_s;
    if (ceiling <= 0)
        return 0;
    return ceiling * unit_random(rng);
}

bool ck_retry_next(struct ck_retry_state *st, double now, double *delay_s)
{
    if (st->attempts >= st->policy.max_attempts)
        return false;
    double d = ck_retry_delay(&st->policy, st->attempts, &st->rng);
    if (now + d - st->started > st->policy.deadline_s)
        return false;
    st->attempts++;
    *delay_s = d;
    return true;
}

bool ck_retry_http_status_transient(long status)
{
    switch (status) {
    case 408:
    case 425:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return true;
    default:
        return false;
    }
}
