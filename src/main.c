/*
 * main.c - the ckptfs command: the subcommands (run, save, status, wait, ls, get, put),
 * and the mount itself: parse, set up, mount, and on unmount save and clean up.
 * The only place that exits (forked children of `run` leave with _exit; see cli/run.c).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon/nofuse.h"
#include "config/option_table.h"
#include "config/options.h"
#include "cli/run.h"
#include "cli/tools.h"
#include "daemon/daemon.h"
#include "fs/fs.h"
#include "net/http.h"
#include "util/log.h"

#ifndef CKPTFS_VERSION
#define CKPTFS_VERSION "0.1.0"
#endif

/* A mount that failed on the FUSE device: say how to do without it. */
static void explain_mount_failure(ck_rc rc, const char *msg)
{
    if (rc == CK_EPERM && strstr(msg, "--no-fuse"))
        fputs("ckptfs: with --no-fuse, prev/ is restored eagerly and save/ is a plain directory "
              "(touch MOUNTPOINT/.save to save): no device or privilege needed\n",
              stderr);
}

static int run_mount(const struct ck_options *o)
{
    struct ck_daemon d;
    struct ck_err err;
    ck_err_clear(&err);
    ck_rc rc = ck_daemon_init(&d, o, &err);
    struct ck_fs_mount m = {o->mountpoint, o->fuse_argv, o->fuse_argc,
                            o->foreground, o->uid,       o->gid};
    if (!rc)
        rc = ck_fs_run(&d, &m, &err);
    if (!rc) {
        rc = ck_daemon_finish(&d, &err);
        if (rc)
            ck_log_error("on unmount: %s", err.msg);
    } else {
        ck_log_error("%s", err.msg);
        fprintf(stderr, "ckptfs: %s\n", err.msg);
        explain_mount_failure(rc, err.msg);
        struct ck_err ignored;
        ck_daemon_finish(&d, &ignored);
    }
    ck_daemon_destroy(&d);
    return rc ? 1 : 0;
}

/* The descriptor limit: the soft one up to the hard one (containers often give 1,024 soft
 * under a far higher hard limit). The mount holds a descriptor per inode the kernel
 * remembers, so a tree of many files needs them (docs/operations.md, Sizing). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        ck_log_debug("descriptor limit raised from %llu to %llu", (unsigned long long)was,
                     (unsigned long long)rl.rlim_max);
}

/* The mount's process (under `run`, the forked server: the command keeps the limits it
 * was given). */
static int serve(const struct ck_options *o, void *ctx)
{
    raise_fd_limit();
    return o->no_fuse ? ck_nofuse_serve(o) : run_mount(o);
}

/* `run [OPTIONS] MOUNTPOINT -- COMMAND...`: the options end at the first "--". */
static int split_run(int argc, char **argv, int *opt_argc, char ***cmd)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            *opt_argc = i - 1; /* argv[1] ("run") stands for the program name */
            *cmd = argv + i + 1;
            return i + 1 < argc ? 0 : -1;
        }
    return -1;
}

static int start(int argc, char **argv, char **cmd, const struct ck_options *o)
{
    struct ck_err err;
    ck_log_init(o->debug ? CK_LOG_DEBUG : o->log_level, o->use_syslog);
    if (ck_http_global_init(&err) != CK_OK) {
        fprintf(stderr, "ckptfs: %s\n", err.msg);
        return 1;
    }
    int status;
    if (cmd) {
        struct ck_run_cfg rc = {o, cmd, serve, NULL};
        status = ck_run(&rc);
    } else {
        status = serve(o, NULL);
    }
    ck_http_global_cleanup();
    return status;
}

static int tool(int argc, char **argv, int (*fn)(int, char **))
{
    struct ck_err err;
    ck_log_init(getenv("CKPTFS_DEBUG") ? CK_LOG_DEBUG : CK_LOG_WARN, false);
    if (ck_http_global_init(&err) != CK_OK) {
        fprintf(stderr, "ckptfs: %s\n", err.msg);
        return 1;
    }
    int status = fn(argc, argv);
    ck_http_global_cleanup();
    return status;
}

int main(int argc, char **argv)
{
    struct ck_options o;
    struct ck_err err;
    char **cmd = NULL;
    int (*fn)(int, char **) = argc > 1 ? ck_tool_find(argv[1]) : NULL;
    if (fn)
        return tool(argc - 1, argv + 1, fn);
    if (argc > 1 && strcmp(argv[1], "run") == 0) {
        int n;
        if (split_run(argc, argv, &n, &cmd) != 0) {
            fputs("ckptfs run: usage: ckptfs run [OPTIONS] MOUNTPOINT -- COMMAND [ARGS...]\n",
                  stderr);
            return 2;
        }
        argc = n;
        argv++;
    }
    ck_err_clear(&err);
    if (ck_options_parse(argc, argv, getenv, &o, &err) != CK_OK) {
        fprintf(stderr, "ckptfs: %s\n", err.msg);
        ck_options_free(&o);
        return 2;
    }
    if (o.show_help || o.show_version) {
        if (o.show_help)
            ck_options_print_usage(stdout);
        else
            fputs("ckptfs " CKPTFS_VERSION "\n", stdout);
        ck_options_free(&o);
        return 0;
    }
    char cwd[PATH_MAX], metrics_abs[PATH_MAX]; /* a daemon changes directory: --metrics absolute */
    if (o.metrics_path && o.metrics_path[0] != '/' && getcwd(cwd, sizeof(cwd))) {
        int n = snprintf(metrics_abs, sizeof(metrics_abs), "%s/%s", cwd, o.metrics_path);
        if (n > 0 && (size_t)n < sizeof(metrics_abs))
            o.metrics_path = metrics_abs;
    }
    int status = start(argc, argv, cmd, &o);
    ck_options_free(&o);
    return status;
}
