/* daemon.c - wiring of one mount; see daemon.h. */
#include "daemon/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/carry.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"

/* Plain relative paths become absolute: the daemon changes directory when it detaches. */
static ck_rc absolute_uri(const char *uri, char **out, struct ck_err *err)
{
    bool relative_path = strstr(uri, "://") == NULL && uri[0] != '/';
    if (!relative_path) {
        *out = strdup(uri);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            return ck_fail_errno(err, errno, "resolving %s", uri);
        if (asprintf(out, "%s/%s", cwd, uri) < 0)
            *out = NULL;
    }
    return *out ? CK_OK : ck_fail(err, CK_ENOMEM, "out of memory");
}

static ck_rc make_cache_dir(struct ck_daemon *d, const char *want, struct ck_err *err)
{
    char tmp[PATH_MAX];
    if (want) {
        ck_rc rc = ck_mkdir_p(want, 0700, err);
        if (rc)
            return rc;
        if (!realpath(want, d->cache_dir))
            return ck_fail_errno(err, errno, "cache dir %s", want);
        return CK_OK;
    }
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/var/tmp";
    if (snprintf(tmp, sizeof(tmp), "%s/ckptfs-XXXXXX", base) >= (int)sizeof(tmp))
        return ck_fail(err, CK_EINVAL, "TMPDIR too long");
    if (!mkdtemp(tmp))
        return ck_fail_errno(err, errno, "creating a cache dir under %s", base);
    if (!realpath(tmp, d->cache_dir))
        return ck_fail_errno(err, errno, "cache dir %s", tmp);
    d->cache_dir_created = true;
    return CK_OK;
}

/* The mount's save area is cache-dir/save behind the FUSE gate; the no-FUSE mode's is the
 * plain folder MOUNTPOINT/save (save/area.h). */
static ck_rc open_area(struct ck_daemon *d, struct ck_err *err)
{
    if (!d->opt->no_fuse)
        return ck_area_open(&d->area, d->cache_dir, err);
    char mnt[PATH_MAX], save[PATH_MAX + 8];
    if (!realpath(d->opt->mountpoint, mnt))
        return ck_fail_errno(err, errno, "mountpoint %s", d->opt->mountpoint);
    snprintf(save, sizeof(save), "%s/save", mnt);
    return ck_area_open_plain(&d->area, save, d->cache_dir, err);
}

void ck_daemon_save_status(struct ck_daemon *d, struct ck_saver_status *out)
{
    if (d->saver)
        ck_saver_status(d->saver, out);
    else
        *out = d->final;
}

void ck_daemon_load_status(struct ck_daemon *d, struct ck_load_status *out)
{
    if (d->loader)
        ck_loader_status(d->loader, out);
    else
        *out = d->eager;
}

ck_rc ck_daemon_init(struct ck_daemon *d, const struct ck_options *o, struct ck_err *err)
{
    memset(d, 0, sizeof(*d));
    d->lock_fd = -1;
    d->opt = o;
    d->started_wall = ck_wall_now();
    ck_rc rc = absolute_uri(o->dest, &d->dest_uri, err);
    for (size_t i = 0; !rc && i < o->nsrc; i++, d->nsrc++)
        rc = absolute_uri(o->srcs[i], &d->src_uris[i], err);
    if (!rc)
        rc = make_cache_dir(d, o->cache_dir, err);
    if (!rc) /* two daemons on one cache dir would share save/ and mix their checkpoints */
        rc = ck_lock_dir(d->cache_dir, &d->lock_fd, err);
    if (rc)
        return rc;
    ck_store_env_default(&d->env);
    d->env.no_sign_request = o->no_sign_request;
    if (o->retries)
        d->env.retry.max_attempts = o->retries;
    d->env.part_memory = o->memory_limit / 2; /* the rest: compression, restore, FUSE */
    d->env.spool_dir = d->cache_dir;
    rc = ck_store_open(d->dest_uri, &d->env, &d->dest, err);
    if (rc) {
        ck_err_prefix(err, "--dest");
        return rc;
    }
    rc = open_area(d, err);
    if (rc)
        return rc;
    d->area_open = true;
    if (!o->no_fuse) {
        struct ck_loader_cfg lc = {(const char *const *)d->src_uris, d->nsrc, &d->env, d->cache_dir,
                                   o->cache_limit};
        rc = ck_loader_new(&lc, &d->loader, err);
    }
    if (rc)
        return rc;
    if (ck_area_dirty(&d->area))
        ck_log_info("cache dir %s holds unsaved changes in save/ from an earlier run",
                    d->cache_dir);
    return CK_OK;
}

/* The saver's previous (saver.h): the --src checkpoint prev/ was loaded from, once it is
 * (ck_loader_reusable_src). No request is made here: a save never waits for a --src
 * that prev/ has not read (or could not reach). */
static ck_rc previous_checkpoint(void *ctx, struct ck_store **out, struct ck_err *err)
{
    const struct ck_daemon *d = ctx;
    const char *uri = d->loader ? ck_loader_reusable_src(d->loader) : NULL;
    *out = NULL;
    return uri ? ck_store_open(uri, &d->env, out, err) : CK_OK;
}

ck_rc ck_daemon_start(struct ck_daemon *d, struct ck_err *err)
{
    const struct ck_options *o = d->opt;
    ck_lock_dir_pid(d->lock_fd); /* the daemon's pid after it detached */
    struct ck_saver_cfg sc = {
        .area = &d->area,
        .dest = d->dest,
        .codec = o->codec,
        .excludes = {o->excludes, o->nexclude},
        .save_wait_s = o->save_wait_s,
        .autosave_quiet_s = o->autosave_quiet_s,
        .autosave_every_s = o->autosave_every_s,
        .previous = previous_checkpoint,
        .previous_ctx = d,
    };
    if (d->area.plain && (sc.autosave_quiet_s > 0 || sc.autosave_every_s > 0)) {
        /* a plain area's changes are seen only by walking it; and `ckptfs save` on a
         * no-FUSE mount counts on every save starting from a touch of .save */
        ck_log_warn("--autosave is not available with --no-fuse: saves run on .save only");
        sc.autosave_quiet_s = sc.autosave_every_s = 0;
    }
    ck_rc rc = CK_OK;
    if (o->world > 1) {
        struct ck_world_cfg wc = {o->rank, o->world, o->world_id,  d->dest_uri,
                                  d->dest, &d->env,  d->cache_dir, o->world_timeout_s};
        rc = ck_world_new(&wc, &d->world, err);
        if (!rc)
            sc.target = ck_world_target(d->world);
    }
    if (!rc)
        rc = ck_saver_start(&sc, &d->saver, err);
    if (!rc)
        rc = ck_metrics_start(d, o->metrics_path, &d->metrics, err);
    if (!rc)
        ck_log_info("%s: dest %s, cache %s, %zu source(s)", d->loader ? "mounted" : "serving",
                    ck_store_uri(d->dest), d->cache_dir, d->nsrc);
    return rc;
}

/* Where unsaved files stay, for the log: the plain folder, or the cache dir's save/ (which
 * a mount with --cache-dir on it re-attaches). */
static void kept_in(const struct ck_daemon *d, char *buf, size_t len)
{
    if (d->area.plain)
        snprintf(buf, len, "%s", d->area.path);
    else
        snprintf(buf, len, "%s/save, and a mount with --cache-dir %s re-attaches them",
                 d->cache_dir, d->cache_dir);
}

/* The save at unmount (or the no-FUSE server's stop) of what no save has covered. */
static ck_rc save_at_exit(struct ck_daemon *d, struct ck_err *err)
{
    const char *what = d->area.plain ? "stopped" : "unmounted";
    char where[2 * PATH_MAX + 64];
    if (!ck_area_dirty(&d->area))
        return CK_OK;
    kept_in(d, where, sizeof(where));
    if (d->world) {
        ck_log_warn("%s with unsaved changes: not saved (a multi-rank mount saves only when "
                    "asked, on every rank: a save of this rank alone would wait for ranks that "
                    "do not save); they are kept in %s",
                    what, where);
        return CK_OK;
    }
    if (ck_options_exit_save(d->opt)) {
        ck_log_info("%s with unsaved changes: saving", what);
        return ck_saver_save_sync(d->saver, CK_TRIGGER_UNMOUNT, err);
    }
    ck_log_warn("%s with unsaved changes: not uploaded (%s); they are kept in %s", what,
                d->opt->exit_decision_fd >= 0 ? "the command did not succeed"
                                              : "--no-save-on-unmount",
                where);
    return CK_OK;
}

ck_rc ck_daemon_finish(struct ck_daemon *d, struct ck_err *err)
{
    if (!d->saver)
        return CK_OK;
    ck_rc rc = save_at_exit(d, err);
    ck_saver_status(d->saver, &d->final);
    if (d->opt->carry_forward && d->final.saves_ok == 0) {
        struct ck_err cerr;
        ck_err_clear(&cerr);
        struct ck_carry_cfg cc = {(const char *const *)d->src_uris,
                                  d->nsrc,
                                  d->dest_uri,
                                  d->dest,
                                  &d->env,
                                  d->cache_dir,
                                  &d->opt->codec,
                                  d->opt->world_id,
                                  d->opt->world > 1 ? d->opt->rank : 0};
        ck_rc crc = ck_carry_forward(&cc, &cerr);
        if (crc && !rc) {
            rc = crc;
            *err = cerr;
        } else if (crc) {
            ck_log_error("%s", cerr.msg);
        }
    }
    ck_metrics_stop(d->metrics); /* its last write sees the unmount save */
    d->metrics = NULL;
    ck_saver_stop(d->saver);
    d->saver = NULL;
    return rc;
}

void ck_daemon_destroy(struct ck_daemon *d)
{
    ck_metrics_stop(d->metrics);
    if (d->saver)
        ck_saver_stop(d->saver);
    if (d->loader)
        ck_loader_free(d->loader);
    ck_world_free(d->world); /* after the saver: its saves use it */
    /* a plain area's unsaved files are in MOUNTPOINT/save, not in the cache dir */
    bool unsaved = d->area_open && !d->area.plain && ck_area_dirty(&d->area);
    if (d->area_open)
        ck_area_close(&d->area);
    if (d->dest)
        ck_store_close(d->dest);
    if (d->lock_fd >= 0)
        close(d->lock_fd); /* after the area: nothing of this daemon touches it now */
    if (d->cache_dir_created && !unsaved) {
        struct ck_err e;
        ck_rmtree_at(AT_FDCWD, d->cache_dir, "cache dir", &e);
    } else if (d->cache_dir_created) {
        ck_log_warn("unsaved changes are kept in %s/save", d->cache_dir);
    }
    free(d->dest_uri);
    for (size_t i = 0; i < d->nsrc; i++)
        free(d->src_uris[i]);
}
