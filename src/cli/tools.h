/*
 * tools.h - the subcommands that use the pipeline without mounting, and the ones that talk
 * to a running mount through its control files. Each takes its own argv (argv[0] is the
 * subcommand's name) and returns an exit status: 0 ok, 1 failed, 2 usage.
 *
 *   ckptfs put [--compress P] [--memory-limit SIZE] DIR URI   save DIR as one checkpoint
 *                                       object (SPEC 3), in a mount's memory budget
 *   ckptfs get URI... DIR               restore the first existing non-empty URI into DIR
 *   ckptfs ls [-l] URI                  list a checkpoint (from the seek index if it has one)
 *   ckptfs save [--async] MOUNTPOINT    save now; returns when durable (or at the snapshot)
 *   ckptfs status [--json] MOUNTPOINT   .status, readable
 *   ckptfs wait [--timeout S] [--committed] MOUNTPOINT  until no save runs or is queued;
 *                                         --committed: and rank 0 committed this rank's last
 *                                         shard (fails when it failed; 900 s by default)
 */
#ifndef CK_CLI_TOOLS_H
#define CK_CLI_TOOLS_H

#include <stddef.h>

#include "util/err.h"

int ck_tool_put(int argc, char **argv);
int ck_tool_get(int argc, char **argv);
int ck_tool_ls(int argc, char **argv);
int ck_tool_save(int argc, char **argv);
int ck_tool_status(int argc, char **argv);
int ck_tool_wait(int argc, char **argv);

/* The subcommand named name, or NULL. */
int (*ck_tool_find(const char *name))(int argc, char **argv);

/* A fresh private scratch dir under $TMPDIR or /var/tmp (ck_scratch_remove removes it). */
ck_rc ck_scratch_make(char *out, size_t len, struct ck_err *err);
void ck_scratch_remove(const char *dir);

#endif
