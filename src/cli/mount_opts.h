/*
 * mount_opts.h - "-o a,b=c" in the mount.fuse3 convention: our keys become options, the
 * rest goes to FUSE.
 *
 * mount(8) and fstab hand every option to the filesystem as one comma-separated -o list
 * (mount.fuse3 runs "ckptfs SOURCE MOUNTPOINT -o OPTS"), so the ckptfs options must be
 * expressible there: dest=URI, src=URI (repeatable), cache_dir=DIR, no_save_on_unmount,
 * carry_forward, autosave_quiet=N, autosave_every=N, compress=P, save_wait=N, log_level=L,
 * metrics=FILE, no_sign_request. Everything else (allow_other, ro, ...) is kept, in order, for
 * FUSE. A value cannot contain a comma.
 *
 * Also the parser's internal entry points that this file shares with options.c.
 */
#ifndef CK_CLI_MOUNT_OPTS_H
#define CK_CLI_MOUNT_OPTS_H

#include <stdbool.h>

#include "cli/options.h"

/* Splits list (copied: o owns the copy) and applies each option. */
ck_rc ck_mount_opts_apply(struct ck_options *o, const char *list, struct ck_err *err);

/* Applies a valued long option ("--dest", val). */
ck_rc ck_options_apply(struct ck_options *o, const char *name, const char *val, struct ck_err *err);
/* Applies a flag ("--no-fuse"); false if name is no flag. */
bool ck_options_flag(struct ck_options *o, const char *name);
/* Appends arg (not copied) to o->fuse_argv. */
ck_rc ck_options_push_fuse_arg(struct ck_options *o, char *arg, struct ck_err *err);

#endif
