/*
 * proc.h - child processes for `ckptfs run`. Children get the signal mask of before
 * ck_sig_open (util/signals.h) back before they run.
 */
#ifndef CK_CLI_PROC_H
#define CK_CLI_PROC_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "util/err.h"
#include "util/signals.h"

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
