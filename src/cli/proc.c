/* proc.c - signalfd and child processes; see proc.h. */
#include "cli/proc.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* In the forked child: drops to user (groups, gid, then uid); false after a message. */
static bool become(const struct ck_spawn_user *u)
{
    struct passwd *pw = getpwuid((uid_t)u->uid);
    gid_t gid = u->gid >= 0 ? (gid_t)u->gid : pw ? pw->pw_gid : (gid_t)u->uid;
    int r = pw ? initgroups(pw->pw_name, gid) : setgroups(0, NULL);
    if (r == 0)
        r = setgid(gid);
    if (r == 0)
        r = setuid((uid_t)u->uid);
    if (r == 0 && pw && pw->pw_dir)
        setenv("HOME", pw->pw_dir, 1);
    if (r == 0 && pw)
        setenv("USER", pw->pw_name, 1);
    if (r != 0)
        fprintf(stderr, "ckptfs: becoming uid %lld gid %u: %s\n", u->uid, (unsigned)gid,
                strerror(errno));
    return r == 0;
}

static void exec_child(char *const argv[], const sigset_t *mask, const char *env_name,
                       const char *env_val, const struct ck_spawn_user *user)
{
    sigprocmask(SIG_SETMASK, mask, NULL);
    if (user && user->uid >= 0 && !become(user))
        _exit(126); /* the forked child: never returns into ckptfs */
    if (env_name)
        setenv(env_name, env_val, 1);
    execvp(argv[0], argv);
    int e = errno;
    fprintf(stderr, "ckptfs: running %s: %s\n", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126); /* the forked child: never returns into ckptfs */
}

ck_rc ck_spawn(char *const argv[], const sigset_t *mask, const char *env_name, const char *env_val,
               const struct ck_spawn_user *user, pid_t *pid, struct ck_err *err)
{
    fflush(NULL);
    *pid = fork();
    if (*pid < 0)
        return ck_fail_errno(err, errno, "fork for %s", argv[0]);
    if (*pid == 0)
        exec_child(argv, mask, env_name, env_val, user);
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
