/* signals.c - blocked signals read from a signalfd; see signals.h. */
#include "util/signals.h"

#include <errno.h>
#include <sys/signalfd.h>
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
