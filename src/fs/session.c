/* session.c - mounting, the session loop and unmounting; see fs.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/fs_internal.h"
#include "util/clock.h"
#include "util/log.h"

#define MAX_WORKERS 64

static ck_rc make_roots(struct ck_fs *fs, struct ck_err *err)
{
    char path[PATH_MAX + 8];
    int rc = ck_nodes_init(fs);
    if (rc)
        return ck_fail_errno(err, rc, "node table");
    snprintf(path, sizeof(path), "%s/save", fs->d->cache_dir);
    rc = ck_nodes_make_root(fs, path, CK_NODE_SAVE, &fs->save_root);
    if (!rc) {
        snprintf(path, sizeof(path), "%s/prev", fs->d->cache_dir);
        rc = ck_nodes_make_root(fs, path, CK_NODE_PREV, &fs->prev_root);
    }
    return rc ? ck_fail_errno(err, rc, "opening %s", path) : CK_OK;
}

static ck_rc add_default_opts(struct fuse_args *args, struct ck_err *err)
{
    /* The kernel checks permissions from the modes we show; fsname shows in mount(8). */
    if (fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, "default_permissions") ||
        fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, "fsname=ckptfs,subtype=ckptfs"))
        return ck_fail(err, CK_ENOMEM, "FUSE arguments: out of memory");
    return CK_OK;
}

struct ck_fs *ck_fs_reply_begin(fuse_req_t req)
{
    struct ck_fs *fs = ck_fs_of(req);
    pthread_rwlock_rdlock(&fs->reply_lock);
    if (!fs->replies_closed)
        return fs;
    pthread_rwlock_unlock(&fs->reply_lock);
    fuse_reply_none(req);
    return NULL;
}

void ck_fs_reply_end(struct ck_fs *fs)
{
    pthread_rwlock_unlock(&fs->reply_lock);
}

/* After the session loop: answers from other threads stop before the descriptor closes. */
static void close_replies(struct ck_fs *fs)
{
    pthread_rwlock_wrlock(&fs->reply_lock);
    fs->replies_closed = true;
    pthread_rwlock_unlock(&fs->reply_lock);
}

static ck_rc serve(struct ck_fs *fs, struct ck_err *err)
{
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    if (!cfg)
        return ck_fail(err, CK_ENOMEM, "FUSE loop config: out of memory");
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    fuse_loop_cfg_set_max_threads(cfg, MAX_WORKERS);
    fuse_loop_cfg_set_idle_threads(cfg, 8);
    int r = fuse_session_loop_mt(fs->se, cfg);
    fuse_loop_cfg_destroy(cfg);
    if (r < 0)
        return ck_fail(err, CK_EIO, "FUSE session loop: %s", strerror(-r));
    return CK_OK;
}

static ck_rc mount_and_serve(struct ck_fs *fs, const struct ck_options *o, struct ck_err *err)
{
    if (fuse_set_signal_handlers(fs->se) != 0)
        return ck_fail(err, CK_EIO, "installing signal handlers");
    ck_rc rc = CK_OK;
    if (fuse_session_mount(fs->se, o->mountpoint) != 0) {
        rc = ck_fail(err, CK_EPERM,
                     "cannot mount %s (is /dev/fuse available and the mountpoint an empty "
                     "directory you may mount on?)",
                     o->mountpoint);
    } else {
        fuse_daemonize(o->foreground);
        rc = ck_daemon_start(fs->d, err);
        if (!rc)
            rc = serve(fs, err);
        close_replies(fs);
        fuse_session_unmount(fs->se);
        ck_log_info("unmounted %s", o->mountpoint);
    }
    fuse_remove_signal_handlers(fs->se);
    return rc;
}

ck_rc ck_fs_run(struct ck_daemon *d, const struct ck_options *o, struct ck_err *err)
{
    struct ck_fs fs;
    memset(&fs, 0, sizeof(fs));
    fs.d = d;
    fs.timeout = 1.0;
    fs.mounted_wall = ck_wall_now();
    pthread_mutex_init(&fs.ctl_lock, NULL);
    pthread_rwlock_init(&fs.reply_lock, NULL);
    pthread_key_create(&fs.read_buf, free);
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    ck_rc rc = make_roots(&fs, err);
    for (int i = 0; !rc && i < o->fuse_argc; i++)
        if (fuse_opt_add_arg(&args, o->fuse_argv[i]))
            rc = ck_fail(err, CK_ENOMEM, "FUSE arguments: out of memory");
    if (!rc)
        rc = add_default_opts(&args, err);
    if (!rc) {
        fs.se = fuse_session_new(&args, &ck_fs_ops, sizeof(ck_fs_ops), &fs);
        if (!fs.se)
            rc = ck_fail(err, CK_EINVAL, "cannot start a FUSE session (bad -o option?)");
    }
    if (!rc) {
        rc = mount_and_serve(&fs, o, err);
        /* Requests parked with the loader or the saver are answered (dropped: the session
         * loop has ended) before the session goes away (a lazily unmounted .save close may
         * still be waiting). */
        ck_loader_shutdown(d->loader);
        if (d->saver)
            ck_saver_wait_idle(d->saver);
        fuse_session_destroy(fs.se);
    }
    fuse_opt_free_args(&args);
    if (fs.buckets)
        ck_nodes_destroy(&fs);
    pthread_mutex_destroy(&fs.ctl_lock);
    pthread_rwlock_destroy(&fs.reply_lock);
    free(pthread_getspecific(fs.read_buf)); /* the main thread's, if it served requests */
    pthread_key_delete(fs.read_buf);
    return rc;
}
