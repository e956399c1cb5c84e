/*
 * fs.h - the FUSE adapter's one public entry point.
 *
 * ck_fs_run mounts options->mountpoint, detaches unless -f, starts the daemon's threads,
 * serves requests on a multi-threaded low-level session until unmount (fusermount3 -u,
 * SIGTERM, SIGINT), and unmounts. It does not save: the caller calls ck_daemon_finish
 * afterwards. No fuse type leaks out of src/fs/.
 */
#ifndef CK_FS_FS_H
#define CK_FS_FS_H

#include "cli/options.h"
#include "daemon/daemon.h"

ck_rc ck_fs_run(struct ck_daemon *d, const struct ck_options *o, struct ck_err *err);

#endif
