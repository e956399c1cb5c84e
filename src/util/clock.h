/* clock.h - monotonic and wall time in seconds, as doubles. */
#ifndef CK_UTIL_CLOCK_H
#define CK_UTIL_CLOCK_H

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

/* Sleeps for s seconds (s <= 0 returns at once). */
void ck_sleep(double s);

/* "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)" (RFC 3339) to seconds since the epoch;
 * CK_EINVAL for anything else. */
ck_rc ck_parse_iso8601(const char *s, double *out);

#endif
