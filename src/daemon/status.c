/*
 * status.c - the .status document (SPEC 2): one JSON object a program can poll.
 *
 *   {"mode": "fuse|no-fuse", "state": "idle|loading|saving|error", "mounted_at": ...,
 *    "dest": URI,
 *    "prev": {"state", "source", "kind", "bytes_done", "bytes_total", "entries",
 *             "seconds", "cache": {"limit" (--cache-limit, or null), "bytes" (restored
 *             data on the cache disk), "evicted_bytes"}, "world", "error" (why the
 *             load failed; or, prev/ ready, the last failed fetch of data on demand)},
 *    "save": {"dirty", "queued", "saves_ok", "saves_failed",
 *             "current": REPORT|null, "last": REPORT|null},
 *    "last_error": null|"..."}
 *   REPORT = {"generation", "trigger", "phase", "result", "kind", "started_at", "seconds",
 *             "entries", "bytes", "compressed_bytes", "reused_bytes" (copied from the
 *             previous object, issue 25), "uploaded_bytes", "reuse_note" (why nothing was
 *             reused, or null), "files" (null, or what became of the files with data:
 *             {"unchanged", "reused", "not_read" (of reused: unchanged since the last
 *             save, so not even read, save/known.h), "not_reused": {"changed",
 *             "short_run"}}), "mb_per_s",
 * "writers_left", "waited_s", "waited_for", "snapshot_ms", "skipped", "warnings" (entries left out
 * of the archive and why), "error"}
 *
 * Only display URIs appear (no query strings, no credentials).
 */
#include <stdio.h>
#include <time.h>

#include "daemon/daemon.h"
#include "daemon/status.h"
#include "util/json.h"

static void iso_time(double t, char *buf, size_t len)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void put_prev(struct ck_json *j, const struct ck_load_status *ls)
{
    ck_json_key(j, "prev");
    ck_json_obj_begin(j);
    ck_json_kv_str(j, "state", ck_load_state_name(ls->state));
    ck_json_kv_str(j, "source", ls->source[0] ? ls->source : NULL);
    ck_json_kv_str(j, "kind", ls->state == CK_LOAD_READY ? ck_object_kind_name(ls->kind) : NULL);
    ck_json_kv_bool(j, "indexed", ls->indexed);
    ck_json_kv_uint(j, "bytes_done", ls->bytes_done);
    ck_json_kv_uint(j, "bytes_total", ls->bytes_total);
    ck_json_kv_uint(j, "entries", ls->entries);
    ck_json_kv_num(j, "seconds", ls->seconds);
    ck_json_key(j, "cache");
    ck_json_obj_begin(j);
    ck_json_key(j, "limit");
    if (ls->cache_limit)
        ck_json_uint(j, ls->cache_limit);
    else
        ck_json_null(j);
    ck_json_kv_uint(j, "bytes", ls->cache_bytes);
    ck_json_kv_uint(j, "evicted_bytes", ls->cache_evicted);
    ck_json_obj_end(j);
    ck_json_key(j, "world");
    if (ls->world > 1) {
        ck_json_obj_begin(j);
        ck_json_kv_uint(j, "ranks", ls->world);
        ck_json_kv_uint(j, "generation", ls->generation);
        ck_json_obj_end(j);
    } else {
        ck_json_null(j);
    }
    ck_json_kv_str(j, "error", ls->error[0] ? ls->error : NULL);
    ck_json_obj_end(j);
}

/* What became of the files with data, against the previous object (null without one). */
static void put_files(struct ck_json *j, const struct ck_save_report *r)
{
    ck_json_key(j, "files");
    if (!r->files_known || r->phase != CK_PHASE_DONE) {
        ck_json_null(j);
        return;
    }
    ck_json_obj_begin(j);
    ck_json_kv_uint(j, "unchanged", r->files_reused + r->files_short);
    ck_json_kv_uint(j, "reused", r->files_reused);
    ck_json_kv_uint(j, "not_read", r->files_not_read);
    ck_json_key(j, "not_reused");
    ck_json_obj_begin(j);
    ck_json_kv_uint(j, "changed", r->files_changed);
    ck_json_kv_uint(j, "short_run", r->files_short);
    ck_json_obj_end(j);
    ck_json_obj_end(j);
}

static const char *result_name(enum ck_save_phase p)
{
    return p == CK_PHASE_DONE ? "ok" : p == CK_PHASE_FAILED ? "failed" : "running";
}

static void put_report(struct ck_json *j, const struct ck_save_report *r)
{
    char when[32];
    iso_time(r->started_wall, when, sizeof(when));
    ck_json_obj_begin(j);
    ck_json_kv_uint(j, "generation", r->generation);
    ck_json_kv_str(j, "trigger", ck_save_trigger_name(r->trigger));
    ck_json_kv_str(j, "phase", ck_save_phase_name(r->phase));
    ck_json_kv_str(j, "result", result_name(r->phase));
    ck_json_kv_str(j, "kind", r->phase == CK_PHASE_DONE ? ck_object_kind_name(r->kind) : NULL);
    ck_json_kv_str(j, "started_at", when);
    ck_json_kv_num(j, "seconds", r->seconds);
    ck_json_kv_uint(j, "entries", r->entries);
    ck_json_kv_uint(j, "bytes", r->bytes);
    ck_json_kv_uint(j, "compressed_bytes", r->compressed);
    ck_json_kv_uint(j, "reused_bytes", r->reused);
    ck_json_kv_uint(j, "uploaded_bytes",
                    r->compressed - (r->reused < r->compressed ? r->reused : r->compressed));
    ck_json_kv_str(j, "reuse_note", r->reuse_note[0] ? r->reuse_note : NULL);
    put_files(j, r);
    ck_json_kv_num(j, "mb_per_s", r->seconds > 0 ? (double)r->bytes / 1e6 / r->seconds : 0);
    ck_json_kv_uint(j, "writers_left", r->writers_left);
    ck_json_kv_num(j, "waited_s", r->waited_s);
    ck_json_kv_str(j, "waited_for", r->waited_for[0] ? r->waited_for : NULL);
    ck_json_kv_num(j, "snapshot_ms", r->snapshot_ms);
    ck_json_kv_uint(j, "excluded", r->excluded);
    ck_json_kv_uint(j, "skipped", r->skipped);
    ck_json_kv_str(j, "warnings", r->warnings[0] ? r->warnings : NULL);
    ck_json_kv_str(j, "error", r->error[0] ? r->error : NULL);
    ck_json_obj_end(j);
}

static void put_save(struct ck_json *j, const struct ck_saver_status *ss, bool dirty)
{
    ck_json_key(j, "save");
    ck_json_obj_begin(j);
    ck_json_kv_bool(j, "dirty", dirty);
    ck_json_kv_bool(j, "queued", ss->queued);
    ck_json_kv_uint(j, "saves_ok", ss->saves_ok);
    ck_json_kv_uint(j, "saves_failed", ss->saves_failed);
    ck_json_key(j, "current");
    if (ss->running)
        put_report(j, &ss->current);
    else
        ck_json_null(j);
    ck_json_key(j, "last");
    if (ss->has_last)
        put_report(j, &ss->last);
    else
        ck_json_null(j);
    ck_json_obj_end(j);
}

/* "world": this rank's part in a multi-rank checkpoint (world/world.h). */
static void put_world(struct ck_json *j, const struct ck_world_status *w)
{
    ck_json_key(j, "world");
    if (!w) {
        ck_json_null(j);
        return;
    }
    ck_json_obj_begin(j);
    ck_json_kv_uint(j, "rank", w->rank);
    ck_json_kv_uint(j, "size", w->size);
    ck_json_kv_uint(j, "claimed", w->claimed);
    ck_json_kv_uint(j, "durable", w->durable);
    ck_json_kv_uint(j, "committed", w->committed);
    ck_json_kv_uint(j, "failed", w->failed);
    ck_json_kv_uint(j, "waiting_for_ranks", w->waiting_for);
    ck_json_obj_end(j);
}

static const char *overall_state(const struct ck_load_status *ls, const struct ck_saver_status *ss)
{
    if (ss->running)
        return "saving";
    if (ls->state == CK_LOAD_RUNNING)
        return "loading";
    if (ls->state == CK_LOAD_FAILED || (ss->has_last && ss->last.phase == CK_PHASE_FAILED))
        return "error";
    return "idle";
}

static const char *last_error(const struct ck_load_status *ls, const struct ck_saver_status *ss)
{
    if (ss->has_last && ss->last.phase == CK_PHASE_FAILED)
        return ss->last.error;
    if (ls->state == CK_LOAD_FAILED || ls->error[0])
        return ls->error;
    return NULL;
}

ck_rc ck_status_render(const struct ck_status_view *v, struct ck_buf *out)
{
    char when[32];
    iso_time(v->started_wall, when, sizeof(when));
    struct ck_json j;
    ck_json_init(&j, out);
    ck_json_obj_begin(&j);
    ck_json_key(&j, "mode");
    ck_json_str(&j, v->mode);
    ck_json_key(&j, "state");
    ck_json_str(&j, overall_state(v->load, v->save));
    ck_json_key(&j, "mounted_at");
    ck_json_str(&j, when);
    ck_json_key(&j, "dest");
    ck_json_str(&j, v->dest);
    put_prev(&j, v->load);
    put_save(&j, v->save, v->dirty);
    put_world(&j, v->world);
    ck_json_key(&j, "last_error");
    ck_json_str(&j, last_error(v->load, v->save));
    ck_json_obj_end(&j);
    ck_rc rc = ck_json_finish(&j);
    if (!rc)
        rc = ck_buf_puts(out, "\n");
    return rc;
}

ck_rc ck_daemon_status_json(struct ck_daemon *d, struct ck_buf *out)
{
    struct ck_load_status ls;
    struct ck_saver_status ss = {0};
    ck_daemon_load_status(d, &ls);
    ck_daemon_save_status(d, &ss);
    struct ck_world_status ws;
    if (d->world)
        ck_world_status(d->world, &ws);
    struct ck_status_view v = {
        d->loader ? "fuse" : "no-fuse", d->started_wall,      ck_store_uri(d->dest), &ls, &ss,
        ck_area_dirty(&d->area),        d->world ? &ws : NULL};
    return ck_status_render(&v, out);
}
