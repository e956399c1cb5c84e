/*
 * run.h - `ckptfs run [OPTIONS] MOUNTPOINT -- COMMAND [ARGS...]` (SPEC 1).
 *
 *   fork server (serve(): the FUSE mount, or the no-FUSE server) in its own process group
 *   -> wait until MOUNTPOINT is ready (FUSE: a new filesystem there; no-FUSE: .status)
 *   -> COMMAND with CKPTFS_MOUNT=MOUNTPOINT (absolute), as --user UID[:GID] if given
 *   -> SIGTERM/SIGINT/SIGHUP/SIGQUIT are forwarded to COMMAND (a terminal's ^C already
 *      reached it and is not sent twice)
 *   -> COMMAND exits -> run tells the server (a pipe, ck_options.exit_decision_fd)
 *      whether to upload unsaved changes: --save-on-exit success (default) says yes when
 *      COMMAND exited 0 or ended by itself after a forwarded SIGTERM/SIGINT, no when it
 *      failed, crashed or was killed at the end of its grace (a torn file must not
 *      replace a good checkpoint; the changes stay in the cache dir); always / never
 *   -> SIGTERM to the server: it saves (or not) and unmounts -> exit with COMMAND's
 *      status (128+N if killed by signal N).
 *
 * SIGTERM bounds the shutdown by --grace seconds in all: COMMAND gets two thirds of it to
 * exit (then SIGKILL), the final save the rest; a save still running at the deadline is
 * abandoned (SIGKILL; the destination keeps its previous object: uploads are atomic).
 * Without SIGTERM the final save is waited for however long it takes.
 *
 * Exit codes of ckptfs itself: 125 if the mount failed (COMMAND is not run), 126/127 if
 * COMMAND cannot be run or is not found (as a shell).
 */
#ifndef CK_CLI_RUN_H
#define CK_CLI_RUN_H

#include "config/options.h"

struct ck_run_cfg {
    const struct ck_options *opt; /* not owned */
    char *const *cmd;             /* NULL-terminated */
    /* Serves the mount in the foreground until SIGTERM; returns an exit status. Runs in
     * the forked server process with the original signal mask. */
    int (*serve)(const struct ck_options *o, void *ctx);
    void *ctx;
};

int ck_run(const struct ck_run_cfg *cfg);

#endif
