/*
 * log.c - see log.h. The two settings below are written once by ck_log_init() before
 * threads exist and only read afterwards, so they need no lock.
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static enum ck_log_level log_threshold = CK_LOG_INFO;
static bool log_to_syslog;

void ck_log_init(enum ck_log_level level, bool use_syslog)
{
    log_threshold = level;
    log_to_syslog = use_syslog;
    if (use_syslog)
        openlog("ckptfs", LOG_PID, LOG_DAEMON);
}

bool ck_log_parse_level(const char *s, enum ck_log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum ck_log_level)i;
            return true;
        }
    }
    return false;
}

void ck_log(enum ck_log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"error", "warn", "info", "debug"};
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    if (level > log_threshold)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (log_to_syslog) {
        syslog(prio[level], "%s", line);
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ckptfs %s: %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            tags[level], line);
}
