/* options.c - the daemon's command line, by the option table; see options.h. */
#include "config/options.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/mount_opts.h"
#include "config/option_table.h"

static bool is_empty_uri(const char *s)
{
    return s[0] == '\0' || strcmp(s, "\"\"") == 0 || strcmp(s, "''") == 0;
}

bool ck_options_exit_save(const struct ck_options *o)
{
    if (!o->save_on_unmount)
        return false;
    char c = 0;
    if (o->exit_decision_fd < 0 || read(o->exit_decision_fd, &c, 1) != 1)
        return true; /* no word from run (a plain mount, or an unmount by someone else) */
    return c == 'S';
}

/* The value of a valued option: "--name=VALUE" (eq) or the next argument. */
static ck_rc take_value(const char *name, const char *eq, int argc, char **argv, int *i,
                        const char **val, struct ck_err *err)
{
    if (eq) {
        *val = eq + 1;
        return CK_OK;
    }
    if (*i + 1 >= argc)
        return ck_fail(err, CK_EINVAL, "%s needs a value", name);
    *val = argv[++*i];
    return CK_OK;
}

/* Handles the option argv[*i] ("--name", "--name=VALUE", "-o LIST", "-oLIST", "-h"). */
static ck_rc parse_option(struct ck_options *o, int argc, char **argv, int *i, struct ck_err *err)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "-o", 2) == 0 && arg[2] != '\0') /* -oLIST */
        return ck_mount_opts_apply(o, arg + 2, err);
    char name[64];
    const char *eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    const struct ck_opt_def *d = NULL;
    if (n < sizeof(name)) {
        memcpy(name, arg, n);
        name[n] = '\0';
        d = ck_opt_by_name(name);
    }
    if (!d)
        return ck_fail(err, CK_EINVAL, "unknown option '%s' (see --help)", arg);
    if (!ck_opt_valued(d)) {
        if (eq)
            return ck_fail(err, CK_EINVAL, "%s takes no value", name);
        return ck_opt_apply(o, d, name, NULL, err);
    }
    const char *val = NULL;
    ck_rc rc = take_value(name, eq, argc, argv, i, &val, err);
    if (rc)
        return rc;
    if (d->kind == CK_OPT_LIST)
        return ck_mount_opts_apply(o, val, err);
    o->dest_flag |= strcmp(d->name, "--dest") == 0; /* then SOURCE MOUNTPOINT is refused */
    return ck_opt_apply(o, d, name, val, err);
}

static void set_defaults(struct ck_options *o)
{
    memset(o, 0, sizeof(*o));
    o->save_on_unmount = true;
    o->codec.kind = CK_CODEC_AUTO;
    o->save_wait_s = 10;
    o->memory_limit = CK_MEMORY_DEFAULT;
    o->log_level = CK_LOG_INFO;
    o->grace_s = 25;
    o->world = 1;
    o->world_timeout_s = 600;
    o->uid = o->gid = -1;
    o->run_uid = o->run_gid = -1;
    o->exit_decision_fd = -1;
}

static ck_rc parse_args(int argc, char **argv, struct ck_options *o, struct ck_err *err)
{
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        ck_rc rc = CK_OK;
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            rc = parse_option(o, argc, argv, &i, err);
        } else if (o->source) {
            rc = ck_fail(err, CK_EINVAL, "unexpected argument '%s': one MOUNTPOINT only", arg);
        } else if (o->mountpoint) {
            o->source = o->mountpoint; /* mount.fuse3: SOURCE MOUNTPOINT */
            o->mountpoint = arg;
        } else {
            o->mountpoint = arg;
        }
        if (rc)
            return rc;
    }
    return CK_OK;
}

/* The first of the variables that is set, or NULL. */
static const char *first_env(char *(*getenv_fn)(const char *), const char *const *names,
                             const char **which)
{
    for (; *names; names++) {
        const char *v = getenv_fn(*names);
        if (v && v[0]) {
            *which = *names;
            return v;
        }
    }
    return NULL;
}

/* --world auto and the CKPTFS_WORLD / CKPTFS_RANK variables; then the checks. */
static ck_rc resolve_world(struct ck_options *o, char *(*getenv_fn)(const char *),
                           struct ck_err *err)
{
    static const char *const worlds[] = {"CKPTFS_WORLD", "GROUP_WORLD_SIZE", "PET_NNODES",
                                         "WORLD_SIZE", NULL};
    static const char *const ranks[] = {"CKPTFS_RANK", "GROUP_RANK", "PET_NODE_RANK",
                                        "NODE_RANK",   "RANK",       NULL};
    static const char *const ids[] = {"CKPTFS_WORLD_ID", "TORCHELASTIC_RUN_ID", NULL};
    const char *which = NULL, *v;
    ck_rc rc = CK_OK;
    bool from_env = o->world_auto || (o->world == 1 && getenv_fn("CKPTFS_WORLD"));
    if (from_env) {
        v = first_env(getenv_fn, worlds, &which);
        if (!v)
            return ck_fail(err, CK_EINVAL,
                           "--world auto: none of CKPTFS_WORLD, "
                           "GROUP_WORLD_SIZE, PET_NNODES, WORLD_SIZE is set");
        rc = ck_opt_parse_uint(which, v, CK_MAX_WORLD + 1, &o->world, err);
    }
    if (!rc && !o->rank_given && (from_env || getenv_fn("CKPTFS_RANK"))) {
        v = first_env(getenv_fn, ranks, &which);
        if (v)
            rc = ck_opt_parse_uint(which, v, CK_MAX_WORLD, &o->rank, err);
    }
    if (!rc && !o->world_id)
        o->world_id = first_env(getenv_fn, ids, &which);
    if (rc)
        return rc;
    if (o->world == 0)
        return ck_fail(err, CK_EINVAL, "--world: at least 1 rank");
    if (o->rank >= o->world)
        return ck_fail(err, CK_EINVAL, "--rank %u: the world has ranks 0 to %u", o->rank,
                       o->world - 1);
    if (o->world > 1 && (o->autosave_quiet_s > 0 || o->autosave_every_s > 0))
        return ck_fail(err, CK_EINVAL,
                       "--autosave: not with --world > 1 (a save on one rank alone opens or "
                       "joins a round the others do not save; docs/world.md)");
    return CK_OK;
}

ck_rc ck_options_parse(int argc, char **argv, char *(*getenv_fn)(const char *),
                       struct ck_options *o, struct ck_err *err)
{
    set_defaults(o);
    ck_rc rc = ck_options_push_fuse_arg(o, argc > 0 ? argv[0] : "ckptfs", err);
    if (!rc)
        rc = parse_args(argc, argv, o, err);
    if (rc || o->show_help || o->show_version)
        return rc;
    if (o->source && o->dest_flag) /* SOURCE MOUNTPOINT is mount.fuse3's form only */
        return ck_fail(err, CK_EINVAL, "unexpected argument '%s': one MOUNTPOINT only",
                       o->mountpoint);
    if (!o->dest && o->source && strcmp(o->source, "ckptfs") != 0 && strcmp(o->source, "none") != 0)
        o->dest = o->source;
    if (!o->dest)
        o->dest = getenv_fn("CKPTFS_DEST");
    if (o->nsrc == 0 && getenv_fn("CKPTFS_SRC"))
        rc = ck_opt_apply(o, ck_opt_by_key("src", 3), "CKPTFS_SRC", getenv_fn("CKPTFS_SRC"), err);
    if (rc)
        return rc;
    if (!rc)
        rc = resolve_world(o, getenv_fn, err);
    if (rc)
        return rc;
    if (!o->dest || is_empty_uri(o->dest))
        return ck_fail(err, CK_EINVAL, "no destination: give --dest URI or set CKPTFS_DEST");
    if (!o->mountpoint)
        return ck_fail(err, CK_EINVAL, "no MOUNTPOINT given (see --help)");
    return CK_OK;
}

void ck_options_free(struct ck_options *o)
{
    for (size_t i = 0; i < o->nowned; i++)
        free(o->owned[i]);
    o->nowned = 0;
    free(o->fuse_argv);
    o->fuse_argv = NULL;
    o->fuse_argc = 0;
}
