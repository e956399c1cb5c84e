/* session.c - mounting, the session loop and unmounting; see fs.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/fs_internal.h"
#include "util/clock.h"
#include "util/fsutil.h"
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
    if (rc)
        return ck_fail_errno(err, rc, "opening %s", path);
    /* save/ itself belongs to --uid/--gid (the daemon is root: the real folder is given). */
    if (fs->owner_set &&
        fchownat(fs->save_root->fd, "", fs->owner_uid, fs->owner_gid, AT_EMPTY_PATH) < 0)
        return ck_fail_errno(err, errno, "giving %s/save to uid %u gid %u", fs->d->cache_dir,
                             (unsigned)fs->owner_uid, (unsigned)fs->owner_gid);
    return CK_OK;
}

/* --uid/--gid, each defaulting to the daemon's own. */
static void set_owner(struct ck_fs *fs, const struct ck_fs_mount *o)
{
    fs->owner_set = o->uid >= 0 || o->gid >= 0;
    fs->owner_uid = o->uid >= 0 ? (uid_t)o->uid : getuid();
    fs->owner_gid = o->gid >= 0 ? (gid_t)o->gid : getgid();
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

/* The mountpoint, made if missing and resolved once: the daemon changes to / when it
 * detaches, and the unmount and /proc/PID/fd (ops_top.c) need the absolute path. */
static ck_rc resolve_mountpoint(struct ck_fs *fs, const char *mnt, struct ck_err *err)
{
    struct stat st;
    if (stat(mnt, &st) != 0 && errno == ENOENT) {
        ck_rc rc = ck_mkdir_p(mnt, 0755, err); /* a fresh emptyDir holds no folder yet */
        if (rc)
            return rc;
    }
    if (!realpath(mnt, fs->mountpoint))
        return ck_fail_errno(err, errno, "mountpoint %s", mnt);
    snprintf(fs->savectl_path, sizeof(fs->savectl_path), "%s%s.save", fs->mountpoint,
             strcmp(fs->mountpoint, "/") == 0 ? "" : "/");
    return CK_OK;
}

/* Which of the usual causes made the mount fail (main.c adds the --no-fuse hint when
 * the device is the problem). */
static const char *mount_failure_cause(char *buf, size_t len)
{
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (fd < 0 && e == ENOENT)
        return "no /dev/fuse in this container (add the device; or run with --no-fuse)";
    if (fd < 0) {
        snprintf(buf, len, "/dev/fuse cannot be opened (%s): %s; or run with --no-fuse",
                 strerror(e),
                 geteuid() == 0 ? "the container's device rules do not allow it (a privileged "
                                  "container or a FUSE device plugin does)"
                                : "the device is root's; run the daemon as root");
        return buf;
    }
    if (geteuid() != 0)
        return "not root: fusermount3 must be installed set-user-ID, and the mountpoint yours";
    return "mount(2) was refused: no CAP_SYS_ADMIN, or AppArmor confines mount (Docker: "
           "--security-opt apparmor=unconfined; Kubernetes: the AppArmor profile "
           "unconfined), or the mountpoint is not a folder one may mount on";
}

static ck_rc mount_and_serve(struct ck_fs *fs, const struct ck_fs_mount *o, struct ck_err *err)
{
    if (fuse_set_signal_handlers(fs->se) != 0)
        return ck_fail(err, CK_EIO, "installing signal handlers");
    /* SIGTERM and SIGINT unmount (and save); SIGHUP (a closed terminal, a reload by habit)
     * and the user signals must not take a mount down under its writers: ignored. */
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    ck_rc rc = CK_OK;
    if (fuse_session_mount(fs->se, fs->mountpoint) != 0) {
        char why[256];
        rc = ck_fail(err, CK_EPERM, "cannot mount %s: %s", fs->mountpoint,
                     mount_failure_cause(why, sizeof(why)));
    } else {
        fuse_daemonize(o->foreground);
        rc = ck_daemon_start(fs->d, err);
        if (!rc)
            rc = serve(fs, err);
        close_replies(fs);
        fuse_session_unmount(fs->se);
        ck_log_info("unmounted %s", fs->mountpoint);
    }
    fuse_remove_signal_handlers(fs->se);
    return rc;
}

ck_rc ck_fs_run(struct ck_daemon *d, const struct ck_fs_mount *o, struct ck_err *err)
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
    set_owner(&fs, o);
    ck_rc rc = resolve_mountpoint(&fs, o->mountpoint, err);
    if (!rc)
        rc = make_roots(&fs, err);
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
        ck_prev_push_start(&fs);
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
