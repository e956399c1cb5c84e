/*
 * log.h - leveled logging to stderr or syslog, one line per event.
 *
 * ck_log_init() is called once by main() before any thread starts; the settings are
 * read-only afterwards. Messages must never contain secrets: log URIs through
 * ck_store's display form, never raw query strings or headers.
 */
#ifndef CK_UTIL_LOG_H
#define CK_UTIL_LOG_H

#include <stdbool.h>

enum ck_log_level {
    CK_LOG_ERROR = 0,
    CK_LOG_WARN = 1,
    CK_LOG_INFO = 2,
    CK_LOG_DEBUG = 3,
};

/* Sets the threshold and the sink (stderr, or syslog when use_syslog). Call once, early. */
void ck_log_init(enum ck_log_level level, bool use_syslog);

/* Parses "error|warn|info|debug"; returns false if s names none of them. */
bool ck_log_parse_level(const char *s, enum ck_log_level *out);

void ck_log(enum ck_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ck_log_error(...) ck_log(CK_LOG_ERROR, __VA_ARGS__)
#define ck_log_warn(...)  ck_log(CK_LOG_WARN, __VA_ARGS__)
#define ck_log_info(...)  ck_log(CK_LOG_INFO, __VA_ARGS__)
#define ck_log_debug(...) ck_log(CK_LOG_DEBUG, __VA_ARGS__)

#endif
