/*
 * fs.h - the FUSE adapter's one public entry point.
 *
 * ck_fs_run mounts m->mountpoint, detaches unless foreground, starts the daemon's threads,
 * serves requests on a multi-threaded low-level session until unmount (fusermount3 -u,
 * SIGTERM, SIGINT), and unmounts. It does not save: the caller calls ck_daemon_finish
 * afterwards. No fuse type leaks out of src/fs/.
 */
#ifndef CK_FS_FS_H
#define CK_FS_FS_H

#include <stdbool.h>

#include "daemon/daemon.h"

/* What the adapter needs of the command line, and nothing more. */
struct ck_fs_mount {
    const char *mountpoint;
    char **fuse_argv; /* argv[0], then -d / -o OPT for FUSE; not owned */
    int fuse_argc;
    bool foreground;
    long long uid, gid; /* owner of the mount's own entries; -1: the daemon's */
};

ck_rc ck_fs_run(struct ck_daemon *d, const struct ck_fs_mount *m, struct ck_err *err);

#endif
