/*
 * nofuse.h - the no-FUSE mode (--no-fuse): for pods that may not use /dev/fuse.
 *
 *   MOUNTPOINT/prev/    the previous checkpoint, restored eagerly at start (restore/fetch.h)
 *   MOUNTPOINT/save/    a plain directory: what a save archives
 *   MOUNTPOINT/.save    touch it to save (watched with inotify)
 *   MOUNTPOINT/.status  a plain file, rewritten atomically: the .status document plus
 *                       "mode": "no-fuse"
 *
 * The same daemon (daemon.h) as a FUSE mount, around a plain save area (save/area.h): the
 * same saver thread and its one save function, on .save, and on SIGTERM/SIGINT/SIGHUP
 * when save/ changed since the last save (the area's change counter, moved by a rescan of
 * names, sizes, mtimes and inodes; unless --no-save-on-unmount). No --autosave: a
 * plain folder's changes are seen only by walking it. What a plain directory
 * cannot give: the close of .save does not wait for the save (use `ckptfs save`, which
 * does), and a save is not a point-in-time snapshot: files must not be rewritten in place
 * while a save runs (write a new file and rename it, as most checkpoint writers do).
 */
#ifndef CK_DAEMON_NOFUSE_H
#define CK_DAEMON_NOFUSE_H

#include "config/options.h"

/* Serves MOUNTPOINT in the foreground until a terminating signal; the exit status. */
int ck_nofuse_serve(const struct ck_options *o);

#endif
