/* nofuse_state.h - the no-FUSE server's state, shared by nofuse.c and nofuse_status.c. */
#ifndef CK_CLI_NOFUSE_STATE_H
#define CK_CLI_NOFUSE_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/fetch.h"
#include "config/options.h"
#include "daemon/metrics.h"
#include "save/saver.h"
#include "store/store.h"
#include "world/world.h"

struct nofuse {
    const struct ck_options *o;
    char mnt[PATH_MAX];
    int mntfd, savefd, prevfd, workfd;
    int lockfd; /* the cache dir's lock (util/fsutil.h) */
    char cache[PATH_MAX];
    bool cache_created;
    struct ck_store_env env;
    struct ck_store *dest;
    struct ck_fetch_result prev;
    char prev_error[CK_ERR_MSG_MAX];
    double started_wall;
    uint64_t saves_ok, saves_failed;
    bool running;
    struct ck_save_report cur, last; /* last valid if last.generation > 0 */
    struct ck_metrics metrics;       /* --metrics: what the textfile shows */
    uint64_t saved_fp;               /* fingerprint of save/ at the last good save; 0: none */
    struct ck_world *world;          /* --world > 1: this rank (world/world.h); else NULL */
    uint64_t world_committed;        /* what .status last showed of it */
};

/* Writes MOUNTPOINT/.status atomically (a temp file renamed over it). */
void ck_nofuse_write_status(const struct nofuse *n, bool dirty);

#endif
