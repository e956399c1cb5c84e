/*
 * daemon.h - one mounted ckptfs: the parts the FUSE adapter drives, wired together.
 *
 *   options -> cache dir (save/, prev/, work/) -> destination store
 *           -> save area + saver thread -> loader (lazy) -> status JSON
 *
 * The no-FUSE mode (--no-fuse, daemon/nofuse.h) wires the same parts around a plain save
 * area (MOUNTPOINT/save, save/area.h) and restores prev/ eagerly instead of the loader.
 *
 * Lifecycle: ck_daemon_init (no threads: safe before fuse_daemonize forks),
 * ck_daemon_start (threads), the FUSE loop, ck_daemon_finish (save on unmount, carry
 * forward, stop the saver), ck_daemon_destroy. The struct is filled by init and read-only
 * afterwards except through the components' own locks.
 */
#ifndef CK_DAEMON_DAEMON_H
#define CK_DAEMON_DAEMON_H

#include <limits.h>
#include <stdbool.h>

#include "config/options.h"
#include "daemon/metrics.h"
#include "restore/loader.h"
#include "save/area.h"
#include "save/saver.h"
#include "store/store.h"
#include "util/buf.h"
#include "world/world.h"

struct ck_daemon {
    const struct ck_options *opt; /* not owned */
    char cache_dir[PATH_MAX];     /* absolute */
    bool cache_dir_created;       /* made by us: removed at exit if nothing is unsaved */
    int lock_fd;                  /* the cache dir's lock (util/fsutil.h), or -1 */
    char *dest_uri;               /* owned, absolute if it was a relative path */
    char *src_uris[CK_MAX_SRCS];  /* owned, likewise */
    size_t nsrc;
    struct ck_store_env env;
    struct ck_store *dest;
    struct ck_area area;
    bool area_open;
    struct ck_saver *saver;
    struct ck_saver_status final;      /* the saver's last status, once ck_daemon_finish ran */
    struct ck_loader *loader;          /* prev/ on demand (FUSE); NULL in the no-FUSE mode */
    struct ck_load_status eager;       /* the no-FUSE mode's prev/, restored before start */
    struct ck_metrics_thread *metrics; /* --metrics: NULL when off */
    struct ck_world *world;            /* --world > 1: this rank; else NULL */
    double started_wall;
};

ck_rc ck_daemon_init(struct ck_daemon *d, const struct ck_options *o, struct ck_err *err);
ck_rc ck_daemon_start(struct ck_daemon *d, struct ck_err *err);

/* After unmount: saves unsaved changes (unless --no-save-on-unmount), waits for running
 * saves, carries the previous checkpoint forward if asked and nothing was saved
 * (restore/chain.h), stops the saver. Returns the first failure of these. */
ck_rc ck_daemon_finish(struct ck_daemon *d, struct ck_err *err);
void ck_daemon_destroy(struct ck_daemon *d);

/* What .status shows of the saves (also after ck_daemon_finish stopped the saver). */
void ck_daemon_save_status(struct ck_daemon *d, struct ck_saver_status *out);

/* What .status shows of prev/: the loader's state, or the no-FUSE mode's eager restore. */
void ck_daemon_load_status(struct ck_daemon *d, struct ck_load_status *out);

/* Renders .status (SPEC 2) into out. */
ck_rc ck_daemon_status_json(struct ck_daemon *d, struct ck_buf *out);

#endif
