/* clock.h - monotonic and wall time in seconds, as doubles. */
#ifndef CK_UTIL_CLOCK_H
#define CK_UTIL_CLOCK_H

#include <pthread.h>
#include <time.h>

#include "util/err.h"

static inline double ck_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double ck_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Initialises c so that its timed waits count on the monotonic clock: a step of the wall
 * clock neither shortens nor stretches them. Pair with ck_deadline_after. */
void ck_cond_init_monotonic(pthread_cond_t *c);

/* The monotonic time s seconds from now, as pthread_cond_timedwait takes it for a condition
 * made by ck_cond_init_monotonic. */
struct timespec ck_deadline_after(double s);

/* Sleeps for s seconds (s <= 0 returns at once). */
void ck_sleep(double s);

/* "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)" (RFC 3339) to seconds since the epoch;
 * CK_EINVAL for anything else. */
ck_rc ck_parse_iso8601(const char *s, double *out);

#endif
