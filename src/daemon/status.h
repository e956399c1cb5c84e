/*
 * status.h - the .status document (SPEC 2), rendered from a view of the state so that the
 * FUSE daemon (daemon.c: ck_daemon_status_json) and the no-FUSE server (daemon/nofuse.c)
 * write exactly the same fields.
 */
#ifndef CK_DAEMON_STATUS_H
#define CK_DAEMON_STATUS_H

#include <stdbool.h>

#include "restore/loader.h"
#include "save/saver.h"
#include "util/buf.h"
#include "world/world.h"

struct ck_status_view {
    const char *mode;                    /* "fuse" or "no-fuse" */
    double started_wall;                 /* seconds since the epoch */
    const char *dest;                    /* display URI */
    const struct ck_load_status *load;   /* the previous checkpoint */
    const struct ck_saver_status *save;  /* current and last save */
    bool dirty;                          /* save/ holds unsaved changes */
    const struct ck_world_status *world; /* multi-rank: this rank; NULL for world 1 */
};

/* Appends the JSON document (and a newline) to out. */
ck_rc ck_status_render(const struct ck_status_view *v, struct ck_buf *out);

#endif
