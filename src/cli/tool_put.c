/* tool_put.c - `ckptfs put DIR URI`: DIR becomes one checkpoint object, same pipeline
 * as a mount's save (save/pipeline.h, snap NULL: DIR is read as it is), in the same
 * memory budget (--memory-limit, 256M by default). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/progress.h"
#include "cli/tools.h"
#include "config/options.h"
#include "save/pipeline.h"
#include "util/clock.h"
#include "util/size.h"

struct put_job {
    int dirfd;
    struct ck_store *dest;
    struct ck_codec codec;
    struct ck_save_progress prog;
    struct ck_save_result res;
    struct ck_err err;
    ck_rc rc;
    atomic_bool done;
};

static void *put_thread(void *arg)
{
    struct put_job *j = arg;
    struct ck_save_excludes ex = {NULL, 0};               /* DIR/.ckptfsignore applies */
    struct ck_save_extra extra = {.reuse_from = j->dest}; /* an object already at URI */
    j->rc = ck_save_pipeline_run(j->dirfd, NULL, j->dest, &j->codec, &ex, &extra, NULL, NULL,
                                 &j->prog, &j->res, &j->err);
    atomic_store(&j->done, true);
    return NULL;
}

static void report(const struct put_job *j, const char *dir, double secs)
{
    char b[32], c[32];
    ck_fmt_bytes(j->res.bytes, b, sizeof(b));
    ck_fmt_bytes(j->res.compressed, c, sizeof(c));
    char r[32];
    ck_fmt_bytes(j->res.reuse.reused_bytes, r, sizeof(r));
    fprintf(stderr, "put: %s -> %s: %s, %llu entries, %s -> %s (%s reused) in %.2f s (%.1f MB/s)\n",
            dir, ck_store_uri(j->dest), ck_object_kind_name(j->res.kind),
            (unsigned long long)j->res.entries, b, c, r, secs,
            secs > 0 ? (double)j->res.bytes / 1e6 / secs : 0);
}

static ck_rc run_put(struct put_job *j, const char *dir)
{
    pthread_t t;
    struct ck_progress p;
    ck_progress_init(&p, "put");
    double t0 = ck_now();
    if (pthread_create(&t, NULL, put_thread, j) != 0)
        return ck_fail(&j->err, CK_ENOMEM, "starting the save thread");
    while (!atomic_load(&j->done)) {
        usleep(50 * 1000);
        ck_progress_update(&p, atomic_load(&j->prog.bytes_in), 0);
    }
    pthread_join(t, NULL);
    ck_progress_end(&p);
    if (!j->rc)
        report(j, dir, ck_now() - t0);
    return j->rc;
}

static int usage(void)
{
    fputs("usage: ckptfs put [--compress auto|store|gzip-N] [--memory-limit SIZE] DIR URI\n",
          stderr);
    return 2;
}

/* The flags before DIR URI; false: a usage error (said on stderr). */
static bool parse_flags(int argc, char **argv, int *i, struct put_job *j, uint64_t *memory)
{
    while (*i + 1 < argc && argv[*i][0] == '-') {
        const char *flag = argv[*i], *v = argv[*i + 1];
        if (strcmp(flag, "--compress") == 0) {
            if (!ck_codec_parse(v, &j->codec))
                return false;
        } else if (strcmp(flag, "--memory-limit") == 0) {
            if (!ck_parse_size(v, memory) || *memory < CK_MEMORY_MIN) {
                fprintf(stderr, "ckptfs put: --memory-limit: '%s' is not a size of 32M or more\n",
                        v);
                return false;
            }
        } else {
            return false;
        }
        *i += 2;
    }
    return true;
}

/* As a mount's: half the memory budget for part buffers, larger parts spooled to a file
 * that has no name (O_TMPFILE) in $TMPDIR or /var/tmp (store.h ck_store_env). */
static void put_env(struct ck_store_env *env, uint64_t memory)
{
    ck_store_env_default(env);
    env->part_memory = memory / 2;
    const char *tmp = getenv("TMPDIR");
    env->spool_dir = tmp && *tmp ? tmp : "/var/tmp";
}

int ck_tool_put(int argc, char **argv)
{
    struct put_job j = {.dirfd = -1, .codec = {.kind = CK_CODEC_AUTO}};
    int i = 1;
    uint64_t memory = CK_MEMORY_DEFAULT;
    if (!parse_flags(argc, argv, &i, &j, &memory) || argc - i != 2)
        return usage();
    const char *dir = argv[i], *uri = argv[i + 1];
    struct ck_store_env env;
    put_env(&env, memory);
    ck_rc rc = CK_OK;
    if ((j.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = ck_fail_errno(&j.err, errno, "put: opening %s", dir);
    if (!rc)
        rc = ck_store_open(uri, &env, &j.dest, &j.err);
    if (!rc)
        rc = run_put(&j, dir);
    if (rc)
        fprintf(stderr, "ckptfs put: %s\n", j.err.msg);
    if (j.dest)
        ck_store_close(j.dest);
    if (j.dirfd >= 0)
        close(j.dirfd);
    return rc ? 1 : 0;
}
