/*
 * mount_opts.h - "-o a,b=c" in the mount.fuse3 convention: our keys become options, the
 * rest goes to FUSE.
 *
 * mount(8) and fstab hand every option to the filesystem as one comma-separated -o list
 * (mount.fuse3 runs "ckptfs SOURCE MOUNTPOINT -o OPTS"), so the ckptfs options must be
 * expressible there: every option with a key in the option table (option_table.c:
 * dest=URI, src=URI (repeatable), cache_dir=DIR, no_save_on_unmount, autosave_quiet=N, ...).
 * Everything else (allow_other, ro, ...) is kept, in order, for FUSE. A value cannot
 * contain a comma.
 */
#ifndef CK_CONFIG_MOUNT_OPTS_H
#define CK_CONFIG_MOUNT_OPTS_H

#include <stdbool.h>

#include "config/options.h"

/* Splits list (copied: o owns the copy) and applies each option. */
ck_rc ck_mount_opts_apply(struct ck_options *o, const char *list, struct ck_err *err);

#endif
