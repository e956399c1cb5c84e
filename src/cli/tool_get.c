/* tool_get.c - `ckptfs get URI... DIR`: restore into a directory with the loader's safe
 * extraction (fetch.h). DIR must be empty or absent: nothing in it is overwritten. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "restore/fetch.h"
#include "cli/progress.h"
#include "cli/tools.h"
#include "util/fsutil.h"

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    ck_progress_update(ctx, done, total);
}

static ck_rc open_empty_dir(const char *dir, int *fd, struct ck_err *err)
{
    ck_rc rc = ck_mkdir_p(dir, 0755, err);
    if (rc)
        return rc;
    DIR *d = opendir(dir);
    if (!d)
        return ck_fail_errno(err, errno, "get: opening %s", dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    if (n)
        return ck_fail(err, CK_EEXIST, "get: %s is not empty", dir);
    *fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return *fd < 0 ? ck_fail_errno(err, errno, "get: opening %s", dir) : CK_OK;
}

static void report(const struct ck_fetch_result *r, const char *dir)
{
    char b[32];
    ck_fmt_bytes(r->object_bytes, b, sizeof(b));
    fprintf(stderr, "get: %s -> %s: %s, %llu entries, %s in %.2f s (%.1f MB/s)\n", r->source, dir,
            ck_object_kind_name(r->kind), (unsigned long long)r->stats.entries, b, r->seconds,
            r->seconds > 0 ? (double)r->object_bytes / 1e6 / r->seconds : 0);
}

int ck_tool_get(int argc, char **argv)
{
    if (argc < 3) {
        fputs("usage: ckptfs get URI [URI...] DIR\n", stderr);
        return 2;
    }
    const char *dir = argv[argc - 1];
    char scratch[4096] = "";
    int work = -1, dest = -1;
    struct ck_err err;
    struct ck_store_env env;
    struct ck_fetch_result res;
    struct ck_progress p;
    ck_err_clear(&err);
    ck_store_env_default(&env);
    ck_progress_init(&p, "get");
    ck_rc rc = ck_scratch_make(scratch, sizeof(scratch), &err);
    if (!rc && (work = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = ck_fail_errno(&err, errno, "opening %s", scratch);
    if (!rc)
        rc = open_empty_dir(dir, &dest, &err);
    struct ck_fetch_cfg cfg = {
        (const char *const *)argv + 1, (size_t)argc - 2, &env, work, dest, on_progress, &p};
    if (!rc)
        rc = ck_fetch_to_dir(&cfg, &res, &err);
    ck_progress_end(&p);
    if (!rc && res.kind == CK_KIND_NONE)
        rc = ck_fail(&err, CK_ENOTFOUND, "no checkpoint: every URI is missing or empty");
    if (rc)
        fprintf(stderr, "ckptfs get: %s\n", err.msg);
    else
        report(&res, dir);
    if (dest >= 0)
        close(dest);
    if (work >= 0)
        close(work);
    if (scratch[0])
        ck_scratch_remove(scratch);
    return rc == CK_ENOTFOUND ? 3 : rc ? 1 : 0;
}
