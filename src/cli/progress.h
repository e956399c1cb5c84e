/*
 * progress.h - progress lines on stderr: a redrawn bar on a terminal, a plain line every
 * few seconds otherwise (logs of a pod). One thread updates a given struct at a time.
 */
#ifndef CK_CLI_PROGRESS_H
#define CK_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct ck_progress {
    const char *what; /* "get", "put", "save" */
    bool tty;
    double t0;
    double last_print;
    bool printed;
};

void ck_progress_init(struct ck_progress *p, const char *what);
/* total 0: unknown. */
void ck_progress_update(struct ck_progress *p, uint64_t done, uint64_t total);
/* Ends the bar line on a terminal. */
void ck_progress_end(struct ck_progress *p);

/* "12.3 MB" */
void ck_fmt_bytes(uint64_t n, char *buf, unsigned len);

#endif
