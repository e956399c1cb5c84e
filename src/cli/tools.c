/* tools.c - the subcommand table and scratch dirs; see tools.h. */
#include "cli/tools.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fsutil.h"

struct tool {
    const char *name;
    int (*fn)(int argc, char **argv);
};

static const struct tool tools[] = {
    {"put", ck_tool_put},       {"get", ck_tool_get},   {"ls", ck_tool_ls}, {"save", ck_tool_save},
    {"status", ck_tool_status}, {"wait", ck_tool_wait}, {NULL, NULL},
};

int (*ck_tool_find(const char *name))(int argc, char **argv)
{
    for (const struct tool *t = tools; t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t->fn;
    return NULL;
}

ck_rc ck_scratch_make(char *out, size_t len, struct ck_err *err)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/var/tmp";
    if (snprintf(out, len, "%s/ckptfs-tool-XXXXXX", base) >= (int)len)
        return ck_fail(err, CK_EINVAL, "TMPDIR too long");
    if (!mkdtemp(out))
        return ck_fail_errno(err, errno, "creating a scratch dir under %s", base);
    return CK_OK;
}

void ck_scratch_remove(const char *dir)
{
    struct ck_err e;
    ck_rmtree_at(AT_FDCWD, dir, "scratch dir", &e);
}
