/* run.c - `ckptfs run`: server child, the command, signals, the final save; see run.h. */
#include "cli/run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/proc.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"

#define EXIT_MOUNT_FAILED 125

struct run {
    const struct ck_run_cfg *cfg;
    sigset_t mask; /* the mask before ours: children get it back */
    int sigfd;
    char mnt[PATH_MAX];
    dev_t dev_before; /* the mountpoint's device before the mount */
    pid_t server, cmd;
    int server_status, cmd_status; /* valid once the pid is 0 */
    double deadline;               /* SIGTERM: the end of the grace time; 0: none */
    double kill_cmd_at;
    bool cmd_killed; /* we killed the command at the end of its grace time */
    bool stop_asked; /* SIGTERM or SIGINT reached us (and the command) */
    int decision[2]; /* pipe: run tells the server whether to save at exit */
};

static ck_rc prepare_mountpoint(struct run *r, struct ck_err *err)
{
    const char *m = r->cfg->opt->mountpoint;
    ck_rc rc = ck_mkdir_p(m, 0755, err);
    if (rc)
        return rc;
    struct stat st;
    if (!realpath(m, r->mnt) || stat(r->mnt, &st) != 0)
        return ck_fail_errno(err, errno, "mountpoint %s", m);
    r->dev_before = st.st_dev;
    if (r->cfg->opt->no_fuse) { /* readiness is the server's fresh .status */
        char p[PATH_MAX + 16];
        snprintf(p, sizeof(p), "%s/.status", r->mnt);
        unlink(p);
    }
    return CK_OK;
}

static bool is_ready(const struct run *r)
{
    struct stat st;
    char p[PATH_MAX + 16];
    if (r->cfg->opt->no_fuse) {
        snprintf(p, sizeof(p), "%s/.status", r->mnt);
        return stat(p, &st) == 0;
    }
    return stat(r->mnt, &st) == 0 && st.st_dev != r->dev_before;
}

static ck_rc start_server(struct run *r, struct ck_err *err)
{
    fflush(NULL);
    r->server = fork();
    if (r->server < 0)
        return ck_fail_errno(err, errno, "fork for the mount");
    if (r->server > 0)
        return CK_OK;
    /* The server: its own process group, so signals meant for the command's group (a
     * terminal's ^C) do not unmount under it; it stops on our SIGTERM. */
    close(r->sigfd);
    close(r->decision[1]);
    setpgid(0, 0);
    sigprocmask(SIG_SETMASK, &r->mask, NULL);
    struct ck_options o = *r->cfg->opt;
    o.mountpoint = r->mnt;
    o.foreground = true;
    o.exit_decision_fd = r->decision[0];
    _exit(r->cfg->serve(&o, r->cfg->ctx)); /* forked child: never returns into run */
}

static void reap(struct run *r)
{
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        if (p == r->server) {
            r->server = 0;
            r->server_status = st;
        } else if (p == r->cmd) {
            r->cmd = 0;
            r->cmd_status = st;
        }
    }
}

static void on_terminate(struct run *r, double now)
{
    if (r->deadline > 0)
        return;
    r->deadline = now + r->cfg->opt->grace_s;
    r->kill_cmd_at = now + r->cfg->opt->grace_s * 2 / 3;
    ck_log_info("SIGTERM: %.0f s to stop the command and save", r->cfg->opt->grace_s);
}

/* Handles every pending signal; returns the last terminating one (0 if none). */
static int drain_signals(struct run *r)
{
    int sig, last = 0;
    bool from_kernel;
    while ((sig = ck_sig_read(r->sigfd, &from_kernel)) > 0) {
        if (sig == SIGCHLD) {
            reap(r);
            continue;
        }
        last = sig;
        if (sig == SIGTERM || sig == SIGINT)
            r->stop_asked = true;
        if (sig == SIGTERM)
            on_terminate(r, ck_now());
        bool tty_sig = from_kernel && (sig == SIGINT || sig == SIGQUIT);
        if (r->cmd > 0 && !tty_sig)
            kill(r->cmd, sig);
    }
    reap(r);
    return last;
}

static double until(double t)
{
    double d = t - ck_now();
    return d < 0 ? 0 : d;
}

static int wait_ready(struct run *r)
{
    while (!is_ready(r)) {
        ck_poll_in(r->sigfd, 0.02);
        int sig = drain_signals(r);
        if (r->server == 0) {
            fprintf(stderr, "ckptfs run: the mount of %s failed (exit %d); not running %s\n",
                    r->mnt, ck_status_code(r->server_status), r->cfg->cmd[0]);
            return EXIT_MOUNT_FAILED;
        }
        if (sig == SIGTERM || sig == SIGINT)
            return 128 + sig;
    }
    return 0;
}

static void wait_command(struct run *r)
{
    while (r->cmd > 0) {
        double t = r->deadline > 0 ? until(r->kill_cmd_at) : -1;
        if (t == 0) {
            ck_log_warn("the command did not exit within the grace time: killing it");
            kill(r->cmd, SIGKILL);
            r->cmd_killed = true;
            r->kill_cmd_at = ck_now() + 3600;
        }
        ck_poll_in(r->sigfd, t < 0 ? -1 : (t > 0.5 ? 0.5 : t));
        drain_signals(r);
    }
}

static void force_unmount(const struct run *r)
{
    if (r->cfg->opt->no_fuse)
        return;
    char *argv[] = {"fusermount3", "-uz", (char *)r->mnt, NULL};
    pid_t p;
    struct ck_err e;
    if (ck_spawn(argv, &r->mask, NULL, NULL, NULL, &p, &e) == CK_OK)
        waitpid(p, NULL, 0); /* not reaped by reap(): it waits for r's pids only */
}

/* Stops the server, which saves on its way out; false if the save failed or timed out. */
static bool stop_server(struct run *r)
{
    if (r->server > 0)
        kill(r->server, SIGTERM);
    while (r->server > 0) {
        double t = r->deadline > 0 ? until(r->deadline) : -1;
        if (t == 0) {
            fprintf(stderr,
                    "ckptfs run: the final save did not finish within --grace %.0f s; "
                    "the destination keeps its previous object\n",
                    r->cfg->opt->grace_s);
            kill(r->server, SIGKILL);
            waitpid(r->server, NULL, 0);
            r->server = 0;
            force_unmount(r);
            return false;
        }
        ck_poll_in(r->sigfd, t < 0 ? -1 : (t > 0.5 ? 0.5 : t));
        drain_signals(r);
    }
    return ck_status_code(r->server_status) == 0;
}

/* --save-on-exit success: a command that exited 0, or ended by itself after the SIGTERM
 * or SIGINT that reached it through us (the grace path), left its files whole; one that
 * failed, crashed, or was killed at the end of its grace time may have torn one, which
 * must not replace a good checkpoint. */
static bool exit_save_wanted(const struct run *r)
{
    enum ck_exit_save p = r->cfg->opt->exit_save;
    if (p != CK_EXIT_SAVE_SUCCESS)
        return p == CK_EXIT_SAVE_ALWAYS;
    return ck_status_code(r->cmd_status) == 0 || (r->stop_asked && !r->cmd_killed);
}

/* Tells the server its exit save decision, before it is asked to stop. */
static void send_decision(struct run *r)
{
    bool save = exit_save_wanted(r);
    if (!save && r->cfg->opt->exit_save == CK_EXIT_SAVE_SUCCESS)
        fprintf(stderr,
                "ckptfs run: %s ended with status %d: its unsaved changes are not uploaded "
                "(--save-on-exit success; it may have left a file half-written) and stay "
                "in the cache dir\n",
                r->cfg->cmd[0], ck_status_code(r->cmd_status));
    char c = save ? 'S' : 'N';
    if (write(r->decision[1], &c, 1) != 1)
        ck_log_warn("telling the mount whether to save at exit: %s", strerror(errno));
}

static int run_command(struct run *r)
{
    struct ck_err err;
    struct ck_spawn_user user = {r->cfg->opt->run_uid, r->cfg->opt->run_gid};
    if (ck_spawn(r->cfg->cmd, &r->mask, "CKPTFS_MOUNT", r->mnt, &user, &r->cmd, &err) != CK_OK) {
        fprintf(stderr, "ckptfs run: %s\n", err.msg);
        if (write(r->decision[1], "N", 1) != 1) /* the command never ran */
            ck_log_warn("telling the mount not to save: %s", strerror(errno));
        stop_server(r);
        return EXIT_MOUNT_FAILED;
    }
    wait_command(r);
    int code = ck_status_code(r->cmd_status);
    bool server_alive = r->server > 0;
    send_decision(r);
    if (!stop_server(r))
        fprintf(stderr, "ckptfs run: %s (see the messages above)\n",
                server_alive ? "the final save or the unmount failed"
                             : "the mount ended before the command did");
    return code;
}

static void close_decision(struct run *r)
{
    for (int i = 0; i < 2; i++)
        if (r->decision[i] >= 0)
            close(r->decision[i]);
}

int ck_run(const struct ck_run_cfg *cfg)
{
    struct run r = {.cfg = cfg, .sigfd = -1, .decision = {-1, -1}};
    struct ck_err err;
    ck_err_clear(&err);
    ck_rc rc = prepare_mountpoint(&r, &err);
    if (!rc && pipe2(r.decision, O_CLOEXEC | O_NONBLOCK) != 0)
        rc = ck_fail_errno(&err, errno, "pipe for the exit save decision");
    if (!rc)
        rc = ck_sig_open(&r.mask, &r.sigfd, &err);
    if (!rc)
        rc = start_server(&r, &err);
    if (rc) {
        fprintf(stderr, "ckptfs run: %s\n", err.msg);
        if (r.sigfd >= 0)
            close(r.sigfd);
        close_decision(&r);
        return EXIT_MOUNT_FAILED;
    }
    close(r.decision[0]);
    r.decision[0] = -1;
    int code = wait_ready(&r);
    if (code == 0)
        code = run_command(&r);
    else if (r.server > 0)
        stop_server(&r);
    close(r.sigfd);
    close_decision(&r);
    sigprocmask(SIG_SETMASK, &r.mask, NULL);
    return code;
}
