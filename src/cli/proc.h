/*
 * proc.h - child processes and signals for `ckptfs run` and the no-FUSE server.
 *
 * Signals are never handled asynchronously here: the process blocks the ones it cares
 * about and reads them from a signalfd in its poll loop, so there is no handler and no
 * global (not even a self-pipe). Children get the original mask back before they run.
 */
#ifndef CK_CLI_PROC_H
#define CK_CLI_PROC_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "util/err.h"

/* Blocks SIGTERM, SIGINT, SIGHUP, SIGQUIT and SIGCHLD (the old mask goes to *old) and
 * opens a signalfd for them in *fd (close it). */
ck_rc ck_sig_open(sigset_t *old, int *fd, struct ck_err *err);

/* Reads one pending signal from fd: its number (0 if none), and whether the kernel sent
 * it (a terminal's ^C reaches the whole foreground group: no need to forward it). */
int ck_sig_read(int fd, bool *from_kernel);

/* Who a spawned command runs as: uid < 0 keeps ours; gid < 0 with a uid: the user's own
 * group from the password database, else the uid itself as gid. Supplementary groups
 * are the user's (initgroups), or none when the uid has no name. */
struct ck_spawn_user {
    long long uid;
    long long gid;
};

/* fork + execvp(argv) with mask restored, env_name=env_val set, and as user (NULL: as
 * we are). The child _exits with 127 (not found) or 126 (cannot run, or cannot become
 * the user) after a message if exec fails. */
ck_rc ck_spawn(char *const argv[], const sigset_t *mask, const char *env_name, const char *env_val,
               const struct ck_spawn_user *user, pid_t *pid, struct ck_err *err);

/* A wait status as a shell reports it: the exit code, or 128 + the signal. */
int ck_status_code(int wstatus);

/* Polls fd for input for up to timeout_s (< 0: forever); false on timeout. */
bool ck_poll_in(int fd, double timeout_s);

#endif
