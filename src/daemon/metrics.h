/*
 * metrics.h - Prometheus text-format metrics in a file (--metrics FILE), for
 * node_exporter's textfile collector or any scraper that reads a file.
 *
 * The file is rewritten atomically (a temp file in the same directory, then rename), so a
 * reader never sees half a file. In a FUSE mount a small thread (ck_metrics_start) looks
 * at the saver and the loader every half second and rewrites the file when a save or the
 * load has ended; the no-FUSE server calls ck_metrics_write itself after each save.
 *
 *   ckptfs_saves_total{result="ok|failed"}   counter
 *   ckptfs_save_bytes_total                  tar/payload bytes of successful saves
 *   ckptfs_save_compressed_bytes_total       object bytes of successful saves
 *   ckptfs_last_save_seconds                 duration of the last save
 *   ckptfs_last_save_success_timestamp_seconds
 *   ckptfs_load_bytes, ckptfs_load_seconds, ckptfs_load_state{state="..."}
 *   ckptfs_cache_used_bytes, ckptfs_cache_free_bytes  (the cache dir's filesystem)
 */
#ifndef CK_DAEMON_METRICS_H
#define CK_DAEMON_METRICS_H

#include <stdint.h>

#include "util/err.h"

struct ck_metrics {
    uint64_t saves_ok, saves_failed;
    uint64_t save_bytes, save_compressed;
    uint64_t save_reused; /* of save_compressed: copied from the previous object */
    uint64_t files_reused, files_short, files_changed; /* saver.h's, summed */
    uint64_t files_not_read;                           /* of files_reused */
    double last_save_seconds;
    double last_success_wall; /* 0: none */
    uint64_t load_bytes;
    double load_seconds;
    const char *load_state; /* "idle", "running", "ready", "failed" */
    const char *cache_dir;  /* for the cache use gauges; may be NULL */
};

/* Renders m and replaces path atomically. */
ck_rc ck_metrics_write(const char *path, const struct ck_metrics *m, struct ck_err *err);

struct ck_daemon;
struct ck_metrics_thread;

/* Starts the thread that keeps path up to date for d (NULL path: nothing, *out NULL). */
ck_rc ck_metrics_start(struct ck_daemon *d, const char *path, struct ck_metrics_thread **out,
                       struct ck_err *err);
/* Writes a last time, stops the thread and frees it (NULL is fine). */
void ck_metrics_stop(struct ck_metrics_thread *t);

#endif
