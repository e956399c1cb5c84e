/* proc.c - signalfd and child processes; see proc.h. */
#include "cli/proc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

ck_rc ck_sig_open(sigset_t *old, int *fd, struct ck_err *err)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, old) != 0)
        return ck_fail_errno(err, errno, "blocking signals");
    *fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (*fd < 0)
        return ck_fail_errno(err, errno, "signalfd");
    return CK_OK;
}

int ck_sig_read(int fd, bool *from_kernel)
{
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return 0;
    *from_kernel = si.ssi_code == SI_KERNEL;
    return (int)si.ssi_signo;
}

static void exec_child(char *const argv[], const sigset_t *mask, const char *env_name,
                       const char *env_val)
{
    sigprocmask(SIG_SETMASK, mask, NULL);
    if (env_name)
        setenv(env_name, env_val, 1);
    execvp(argv[0], argv);
    int e = errno;
    fprintf(stderr, "ckptfs: running %s: %s\n", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126); /* the forked child: never returns into ckptfs */
}

ck_rc ck_spawn(char *const argv[], const sigset_t *mask, const char *env_name, const char *env_val,
               pid_t *pid, struct ck_err *err)
{
    fflush(NULL);
    *pid = fork();
    if (*pid < 0)
        return ck_fail_errno(err, errno, "fork for %s", argv[0]);
    if (*pid == 0)
        exec_child(argv, mask, env_name, env_val);
    return CK_OK;
}

int ck_status_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 1;
}

bool ck_poll_in(int fd, double timeout_s)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int ms = timeout_s < 0 ? -1 : (int)(timeout_s * 1000 + 0.5);
    int r;
    do
        r = poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
}
