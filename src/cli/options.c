/* options.c - command line parsing; see options.h. */
#include "cli/options.h"

#include "cli/mount_opts.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: ckptfs [OPTIONS] MOUNTPOINT\n"
    "       ckptfs run [OPTIONS] MOUNTPOINT -- COMMAND [ARGS...]\n"
    "       ckptfs save|status|wait MOUNTPOINT\n"
    "       ckptfs ls URI | get URI DIR | put DIR URI\n"
    "       ckptfs SOURCE MOUNTPOINT -o dest=URI,... (mount -t fuse.ckptfs, fstab)\n"
    "\n"
    "Mounts a checkpoint filesystem: MOUNTPOINT/prev/ shows the previous checkpoint\n"
    "(read-only, fetched on first access), MOUNTPOINT/save/ is the writable save area,\n"
    "touch MOUNTPOINT/.save saves it to --dest, MOUNTPOINT/.status reports progress.\n"
    "\n"
    "  --dest URI              where saves go (env CKPTFS_DEST); file://, path, http(s)://,\n"
    "                          s3://bucket/key\n"
    "  --src URI               previous checkpoint (env CKPTFS_SRC); repeatable, the first\n"
    "                          that exists and is non-empty wins; \"\" means none\n"
    "  --cache-dir DIR         local disk for save/ and prev/ (default: a new folder\n"
    "                          under $TMPDIR or /var/tmp); reuse it to re-attach save/\n"
    "  --no-save-on-unmount    do not save unsaved changes when unmounted\n"
    "  --carry-forward         when unmounted without a save of its own, copy the\n"
    "                          previous checkpoint (--src) to --dest, so the chain holds\n"
    "  --autosave quiet=N      save when changed and no file was open for writing for N s\n"
    "  --autosave every=N      save changes at most every N s\n"
    "  --compress POLICY       auto (default), store, gzip-1 .. gzip-9\n"
    "  --save-wait SECONDS     how long a save waits for files open for writing (10)\n"
    "  --exclude GLOB          leave matching files out of every save (repeatable; a\n"
    "                          GLOB without '/' matches base names: '*.log'); also the\n"
    "                          lines of save/.ckptfsignore\n"
    "  --no-sign-request       s3: send unsigned requests (public buckets)\n"
    "  --log-level LEVEL       error, warn, info (default), debug\n"
    "  --syslog                log to syslog instead of stderr\n"
    "  -f                      stay in the foreground\n"
    "  -d                      FUSE debug output (implies -f)\n"
    "  -o OPT[,OPT...]         FUSE mount options (allow_other, ...); also dest=URI,\n"
    "                          src=URI, cache_dir=DIR, no_save_on_unmount, ... (fstab)\n"
    "  --no-fuse               no FUSE: restore prev/ eagerly, save/ is a plain directory,\n"
    "                          touch MOUNTPOINT/.save to save (for pods without /dev/fuse)\n"
    "  --save-on-exit WHEN     run: success (default: upload unsaved changes when the\n"
    "                          command exited 0 or ended after SIGTERM; never after a\n"
    "                          crash, which may have torn files), always, never\n"
    "  --user UID[:GID]        run: run the command as that user (the mount stays root's;\n"
    "                          give it --uid/--gid and -o allow_other)\n"
    "  --grace SECONDS         run: after SIGTERM, the command and the save get this long\n"
    "                          in all (25)\n"
    "  --metrics FILE          write Prometheus text metrics to FILE after each save/load\n"
    "  --uid UID, --gid GID    owner of the mount's own entries (save/, prev/ and all\n"
    "                          shown there, .save, .status), for a program of that user\n"
    "                          (with -o allow_other); default: the daemon's user\n"
    "  --world N|auto          ranks saving one checkpoint together (1); auto: from the\n"
    "                          environment (CKPTFS_WORLD, GROUP_WORLD_SIZE, PET_NNODES,\n"
    "                          WORLD_SIZE)\n"
    "  --rank R                this mount's rank, 0 .. N-1 (auto: CKPTFS_RANK, GROUP_RANK,\n"
    "                          PET_NODE_RANK, NODE_RANK, RANK)\n"
    "  --world-id ID           names this run's shards (CKPTFS_WORLD_ID,\n"
    "                          TORCHELASTIC_RUN_ID); lets a rerun at the same --dest\n"
    "                          never meet an old run's shards\n"
    "  --world-timeout SECONDS rank 0 waits this long for the other ranks' shards (600)\n"
    "  -h, --help              this text\n"
    "  -V, --version           the version\n";

const char *ck_options_usage(void)
{
    return usage_text;
}

static bool is_empty_uri(const char *s)
{
    return s[0] == '\0' || strcmp(s, "\"\"") == 0 || strcmp(s, "''") == 0;
}

static ck_rc add_src(struct ck_options *o, const char *s, struct ck_err *err)
{
    if (is_empty_uri(s))
        return CK_OK;
    if (o->nsrc == CK_MAX_SRCS)
        return ck_fail(err, CK_EINVAL, "--src: at most %d sources", CK_MAX_SRCS);
    o->srcs[o->nsrc++] = s;
    return CK_OK;
}

ck_rc ck_options_push_fuse_arg(struct ck_options *o, char *arg, struct ck_err *err)
{
    char **v = realloc(o->fuse_argv, sizeof(char *) * (size_t)(o->fuse_argc + 2));
    if (!v)
        return ck_fail(err, CK_ENOMEM, "parsing the command line: out of memory");
    o->fuse_argv = v;
    v[o->fuse_argc++] = arg;
    v[o->fuse_argc] = NULL;
    return CK_OK;
}

static ck_rc parse_seconds(const char *opt, const char *s, double *out, struct ck_err *err)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= 0) || v > 1e7)
        return ck_fail(err, CK_EINVAL, "%s: '%s' is not a number of seconds", opt, s);
    *out = v;
    return CK_OK;
}

/* A count or an index: digits only, below limit. */
static ck_rc parse_uint(const char *opt, const char *s, unsigned limit, unsigned *out,
                        struct ck_err *err)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!s[0] || *end || errno || s[0] == '-' || s[0] == '+' || v >= limit)
        return ck_fail(err, CK_EINVAL, "%s: '%s' is not a number from 0 to %u", opt, s, limit - 1);
    *out = (unsigned)v;
    return CK_OK;
}

static ck_rc parse_autosave(struct ck_options *o, const char *s, struct ck_err *err)
{
    if (strncmp(s, "quiet=", 6) == 0)
        return parse_seconds("--autosave quiet", s + 6, &o->autosave_quiet_s, err);
    if (strncmp(s, "every=", 6) == 0)
        return parse_seconds("--autosave every", s + 6, &o->autosave_every_s, err);
    return ck_fail(err, CK_EINVAL, "--autosave: '%s' is neither quiet=SECONDS nor every=SECONDS",
                   s);
}

static ck_rc parse_exit_save(struct ck_options *o, const char *s, struct ck_err *err)
{
    static const char *const names[] = {"success", "always", "never"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            o->exit_save = (enum ck_exit_save)i;
            if (o->exit_save == CK_EXIT_SAVE_NEVER)
                o->save_on_unmount = false;
            return CK_OK;
        }
    return ck_fail(err, CK_EINVAL, "--save-on-exit: '%s' is not success, always or never", s);
}

/* "UID" or "UID:GID", numeric. */
static ck_rc parse_user(struct ck_options *o, const char *s, struct ck_err *err)
{
    char uid[16];
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    unsigned u, g;
    if (n == 0 || n >= sizeof(uid))
        return ck_fail(err, CK_EINVAL, "--user: '%s' is not UID or UID:GID", s);
    memcpy(uid, s, n);
    uid[n] = '\0';
    ck_rc rc = parse_uint("--user", uid, 0xfffffffeu, &u, err);
    if (!rc && colon)
        rc = parse_uint("--user (GID)", colon + 1, 0xfffffffeu, &g, err);
    if (!rc) {
        o->run_uid = u;
        o->run_gid = colon ? (long long)g : -1;
    }
    return rc;
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

/* Options that take a value: "--name VALUE" or "--name=VALUE". */
static const char *const valued[] = {
    "--dest",         "--src",       "--cache-dir",     "--autosave", "--compress",
    "--save-wait",    "--log-level", "--grace",         "--metrics",  "--world",
    "--rank",         "--world-id",  "--world-timeout", "--uid",      "--gid",
    "--save-on-exit", "--user",      "--exclude",       NULL};

ck_rc ck_options_apply(struct ck_options *o, const char *name, const char *val, struct ck_err *err)
{
    if (strcmp(name, "--dest") == 0) {
        o->dest = val;
    } else if (strcmp(name, "--src") == 0) {
        return add_src(o, val, err);
    } else if (strcmp(name, "--cache-dir") == 0) {
        o->cache_dir = val;
    } else if (strcmp(name, "--autosave") == 0) {
        return parse_autosave(o, val, err);
    } else if (strcmp(name, "--compress") == 0) {
        if (!ck_codec_parse(val, &o->codec))
            return ck_fail(err, CK_EINVAL,
                           "--compress: '%s' is not auto, store or gzip-1 .. gzip-9", val);
    } else if (strcmp(name, "--save-wait") == 0) {
        return parse_seconds("--save-wait", val, &o->save_wait_s, err);
    } else if (strcmp(name, "--log-level") == 0) {
        if (!ck_log_parse_level(val, &o->log_level))
            return ck_fail(err, CK_EINVAL, "--log-level: '%s' is not error, warn, info or debug",
                           val);
    } else if (strcmp(name, "--grace") == 0) {
        return parse_seconds("--grace", val, &o->grace_s, err);
    } else if (strcmp(name, "--metrics") == 0) {
        o->metrics_path = val;
    } else if (strcmp(name, "--world") == 0) {
        o->world_auto = strcmp(val, "auto") == 0;
        if (!o->world_auto)
            return parse_uint("--world", val, CK_MAX_WORLD + 1, &o->world, err);
    } else if (strcmp(name, "--rank") == 0) {
        o->rank_given = true;
        return parse_uint("--rank", val, CK_MAX_WORLD, &o->rank, err);
    } else if (strcmp(name, "--world-id") == 0) {
        o->world_id = val;
    } else if (strcmp(name, "--world-timeout") == 0) {
        return parse_seconds("--world-timeout", val, &o->world_timeout_s, err);
    } else if (strcmp(name, "--exclude") == 0) {
        if (o->nexclude == CK_MAX_EXCLUDES)
            return ck_fail(err, CK_EINVAL,
                           "--exclude: at most %d patterns (more go in save/.ckptfsignore)",
                           CK_MAX_EXCLUDES);
        if (!val[0])
            return ck_fail(err, CK_EINVAL, "--exclude: an empty pattern");
        o->excludes[o->nexclude++] = val;
    } else if (strcmp(name, "--save-on-exit") == 0) {
        return parse_exit_save(o, val, err);
    } else if (strcmp(name, "--user") == 0) {
        return parse_user(o, val, err);
    } else if (strcmp(name, "--uid") == 0 || strcmp(name, "--gid") == 0) {
        unsigned id;
        ck_rc rc = parse_uint(name, val, 0xfffffffeu, &id, err);
        if (!rc)
            *(name[2] == 'u' ? &o->uid : &o->gid) = id;
        return rc;
    } else {
        return ck_fail(err, CK_EINVAL, "unknown option '%s'", name);
    }
    return CK_OK;
}

bool ck_options_flag(struct ck_options *o, const char *name)
{
    if (strcmp(name, "--no-save-on-unmount") == 0)
        o->save_on_unmount = false;
    else if (strcmp(name, "--carry-forward") == 0)
        o->carry_forward = true;
    else if (strcmp(name, "--no-sign-request") == 0)
        o->no_sign_request = true;
    else if (strcmp(name, "--no-fuse") == 0)
        o->no_fuse = true;
    else
        return false;
    return true;
}

/* Handles argv[*i] if it is one of our long options; *handled tells whether it was. */
static ck_rc parse_long(struct ck_options *o, int argc, char **argv, int *i, bool *handled,
                        struct ck_err *err)
{
    const char *arg = argv[*i];
    *handled = true;
    for (int k = 0; valued[k]; k++) {
        size_t n = strlen(valued[k]);
        if (strncmp(arg, valued[k], n) != 0)
            continue;
        o->dest_flag |= k == 0; /* "--dest" */
        if (arg[n] == '=')
            return ck_options_apply(o, valued[k], arg + n + 1, err);
        if (arg[n] == '\0') {
            if (*i + 1 >= argc)
                return ck_fail(err, CK_EINVAL, "%s needs a value", valued[k]);
            return ck_options_apply(o, valued[k], argv[++*i], err);
        }
    }
    if (ck_options_flag(o, arg))
        return CK_OK;
    if (strcmp(arg, "--syslog") == 0)
        o->use_syslog = true;
    else if (strcmp(arg, "--help") == 0)
        o->show_help = true;
    else if (strcmp(arg, "--version") == 0)
        o->show_version = true;
    else
        *handled = false;
    return CK_OK;
}

static ck_rc parse_short(struct ck_options *o, int argc, char **argv, int *i, struct ck_err *err)
{
    char *arg = argv[*i];
    if (strcmp(arg, "-f") == 0) {
        o->foreground = true;
    } else if (strcmp(arg, "-d") == 0 || strcmp(arg, "--debug") == 0) {
        o->debug = o->foreground = true;
        return ck_options_push_fuse_arg(o, "-d", err);
    } else if (strcmp(arg, "-h") == 0) {
        o->show_help = true;
    } else if (strcmp(arg, "-V") == 0) {
        o->show_version = true;
    } else if (strcmp(arg, "-o") == 0) {
        if (*i + 1 >= argc)
            return ck_fail(err, CK_EINVAL, "-o needs a value");
        return ck_mount_opts_apply(o, argv[++*i], err);
    } else if (strncmp(arg, "-o", 2) == 0) {
        return ck_mount_opts_apply(o, arg + 2, err);
    } else {
        return ck_fail(err, CK_EINVAL, "unknown option '%s' (see --help)", arg);
    }
    return CK_OK;
}

static void set_defaults(struct ck_options *o)
{
    memset(o, 0, sizeof(*o));
    o->save_on_unmount = true;
    o->codec.kind = CK_CODEC_AUTO;
    o->save_wait_s = 10;
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
        bool handled = false;
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1] == '-' && arg[2] != '\0') {
            rc = parse_long(o, argc, argv, &i, &handled, err);
            if (!rc && !handled)
                rc = ck_fail(err, CK_EINVAL, "unknown option '%s' (see --help)", arg);
        } else if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            rc = parse_short(o, argc, argv, &i, err);
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
        rc = parse_uint(which, v, CK_MAX_WORLD + 1, &o->world, err);
    }
    if (!rc && !o->rank_given && (from_env || getenv_fn("CKPTFS_RANK"))) {
        v = first_env(getenv_fn, ranks, &which);
        if (v)
            rc = parse_uint(which, v, CK_MAX_WORLD, &o->rank, err);
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
    if (o->world > 1 && o->carry_forward)
        return ck_fail(err, CK_EINVAL,
                       "--carry-forward: not with --world > 1 (every rank's "
                       "shard would have to be copied)");
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
        rc = add_src(o, getenv_fn("CKPTFS_SRC"), err);
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
