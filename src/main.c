/*
 * main.c - the ckptfs command: parse, set up, mount, and on unmount save and clean up.
 * The only place that exits.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli/options.h"
#include "daemon/daemon.h"
#include "fs/fs.h"
#include "net/http.h"
#include "util/log.h"

#ifndef CKPTFS_VERSION
#define CKPTFS_VERSION "0.1.0"
#endif

static int run_mount(const struct ck_options *o)
{
    struct ck_daemon d;
    struct ck_err err;
    ck_err_clear(&err);
    ck_rc rc = ck_daemon_init(&d, o, &err);
    if (!rc)
        rc = ck_fs_run(&d, o, &err);
    if (!rc) {
        rc = ck_daemon_finish(&d, &err);
        if (rc)
            ck_log_error("save on unmount failed: %s", err.msg);
    } else {
        ck_log_error("%s", err.msg);
        fprintf(stderr, "ckptfs: %s\n", err.msg);
        struct ck_err ignored;
        ck_daemon_finish(&d, &ignored);
    }
    ck_daemon_destroy(&d);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct ck_options o;
    struct ck_err err;
    ck_err_clear(&err);
    if (ck_options_parse(argc, argv, getenv, &o, &err) != CK_OK) {
        fprintf(stderr, "ckptfs: %s\n", err.msg);
        ck_options_free(&o);
        return 2;
    }
    if (o.show_help || o.show_version) {
        fputs(o.show_help ? ck_options_usage() : "ckptfs " CKPTFS_VERSION "\n", stdout);
        ck_options_free(&o);
        return 0;
    }
    ck_log_init(o.debug ? CK_LOG_DEBUG : o.log_level, o.use_syslog);
    if (ck_http_global_init(&err) != CK_OK) {
        fprintf(stderr, "ckptfs: %s\n", err.msg);
        ck_options_free(&o);
        return 1;
    }
    int status = run_mount(&o);
    ck_http_global_cleanup();
    ck_options_free(&o);
    return status;
}
