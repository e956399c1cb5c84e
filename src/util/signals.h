/*
 * signals.h - signals for `ckptfs run` and the no-FUSE server, read in a poll loop.
 *
 * Signals are never handled asynchronously here: the process blocks the ones it cares
 * about and reads them from a signalfd, so there is no handler and no global (not even a
 * self-pipe).
 */
#ifndef CK_UTIL_SIGNALS_H
#define CK_UTIL_SIGNALS_H

#include <signal.h>
#include <stdbool.h>

#include "util/err.h"

/* Blocks SIGTERM, SIGINT, SIGHUP, SIGQUIT and SIGCHLD (the old mask goes to *old) and
 * opens a signalfd for them in *fd (close it). */
ck_rc ck_sig_open(sigset_t *old, int *fd, struct ck_err *err);

/* Reads one pending signal from fd: its number (0 if none), and whether the kernel sent
 * it (a terminal's ^C reaches the whole foreground group: no need to forward it). */
int ck_sig_read(int fd, bool *from_kernel);

#endif
