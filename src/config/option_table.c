/* option_table.c - the daemon's options, once; see option_table.h. */
#include "config/option_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/size.h"

#define F(member) offsetof(struct ck_options, member)

/* ---------- values with their own syntax ---------- */

static bool is_empty_uri(const char *s)
{
    return s[0] == '\0' || strcmp(s, "\"\"") == 0 || strcmp(s, "''") == 0;
}

static ck_rc set_src(struct ck_options *o, const char *name, const char *s, struct ck_err *err)
{
    if (is_empty_uri(s))
        return CK_OK;
    if (o->nsrc == CK_MAX_SRCS)
        return ck_fail(err, CK_EINVAL, "%s: at most %d sources", name, CK_MAX_SRCS);
    o->srcs[o->nsrc++] = s;
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

ck_rc ck_opt_parse_uint(const char *opt, const char *s, unsigned limit, unsigned *out,
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

static ck_rc set_autosave(struct ck_options *o, const char *name, const char *s, struct ck_err *err)
{
    if (strncmp(s, "quiet=", 6) == 0)
        return parse_seconds("--autosave quiet", s + 6, &o->autosave_quiet_s, err);
    if (strncmp(s, "every=", 6) == 0)
        return parse_seconds("--autosave every", s + 6, &o->autosave_every_s, err);
    return ck_fail(err, CK_EINVAL, "%s: '%s' is neither quiet=SECONDS nor every=SECONDS", name, s);
}

static ck_rc set_compress(struct ck_options *o, const char *name, const char *s, struct ck_err *err)
{
    if (!ck_codec_parse(s, &o->codec))
        return ck_fail(err, CK_EINVAL, "%s: '%s' is not auto, store or gzip-1 .. gzip-9", name, s);
    return CK_OK;
}

static ck_rc set_cache_limit(struct ck_options *o, const char *name, const char *s,
                             struct ck_err *err)
{
    if (!ck_parse_size(s, &o->cache_limit) || o->cache_limit == 0)
        return ck_fail(err, CK_EINVAL, "%s: '%s' is not a size above 0 (512M, 4G, ...)", name, s);
    return CK_OK;
}

static ck_rc set_memory_limit(struct ck_options *o, const char *name, const char *s,
                              struct ck_err *err)
{
    if (!ck_parse_size(s, &o->memory_limit) || o->memory_limit < CK_MEMORY_MIN)
        return ck_fail(err, CK_EINVAL, "%s: '%s' is not a size of 32M or more (256M, 1G, ...)",
                       name, s);
    return CK_OK;
}

static ck_rc set_log_level(struct ck_options *o, const char *name, const char *s,
                           struct ck_err *err)
{
    if (!ck_log_parse_level(s, &o->log_level))
        return ck_fail(err, CK_EINVAL, "%s: '%s' is not error, warn, info or debug", name, s);
    return CK_OK;
}

static ck_rc set_world(struct ck_options *o, const char *name, const char *s, struct ck_err *err)
{
    o->world_auto = strcmp(s, "auto") == 0;
    return o->world_auto ? CK_OK : ck_opt_parse_uint(name, s, CK_MAX_WORLD + 1, &o->world, err);
}

static ck_rc set_rank(struct ck_options *o, const char *name, const char *s, struct ck_err *err)
{
    o->rank_given = true;
    return ck_opt_parse_uint(name, s, CK_MAX_WORLD, &o->rank, err);
}

static ck_rc set_retries(struct ck_options *o, const char *name, const char *s, struct ck_err *err)
{
    ck_rc rc = ck_opt_parse_uint(name, s, CK_MAX_RETRIES + 1, &o->retries, err);
    if (!rc && o->retries == 0)
        rc = ck_fail(err, CK_EINVAL, "%s: at least 1 (one attempt, no retry)", name);
    return rc;
}

static ck_rc set_exclude(struct ck_options *o, const char *name, const char *s, struct ck_err *err)
{
    if (o->nexclude == CK_MAX_EXCLUDES)
        return ck_fail(err, CK_EINVAL, "%s: at most %d patterns (more go in save/.ckptfsignore)",
                       name, CK_MAX_EXCLUDES);
    if (!s[0])
        return ck_fail(err, CK_EINVAL, "%s: an empty pattern", name);
    o->excludes[o->nexclude++] = s;
    return CK_OK;
}

static ck_rc set_exit_save(struct ck_options *o, const char *name, const char *s,
                           struct ck_err *err)
{
    static const char *const names[] = {"success", "always", "never"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            o->exit_save = (enum ck_exit_save)i;
            if (o->exit_save == CK_EXIT_SAVE_NEVER)
                o->save_on_unmount = false;
            return CK_OK;
        }
    return ck_fail(err, CK_EINVAL, "%s: '%s' is not success, always or never", name, s);
}

/* "UID" or "UID:GID", numeric. */
static ck_rc set_user(struct ck_options *o, const char *name, const char *s, struct ck_err *err)
{
    char uid[16];
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    unsigned u, g;
    if (n == 0 || n >= sizeof(uid))
        return ck_fail(err, CK_EINVAL, "%s: '%s' is not UID or UID:GID", name, s);
    memcpy(uid, s, n);
    uid[n] = '\0';
    ck_rc rc = ck_opt_parse_uint(name, uid, 0xfffffffeu, &u, err);
    if (!rc && colon)
        rc = ck_opt_parse_uint("--user (GID)", colon + 1, 0xfffffffeu, &g, err);
    if (!rc) {
        o->run_uid = u;
        o->run_gid = colon ? (long long)g : -1;
    }
    return rc;
}

static ck_rc set_debug(struct ck_options *o, const char *name, const char *s, struct ck_err *err)
{
    o->debug = o->foreground = true;
    return ck_options_push_fuse_arg(o, "-d", err);
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

/* ---------- the table ---------- */

static const struct ck_opt_def table[] = {
    {"--dest", NULL, "dest", CK_OPT_STRING, F(dest), NULL, "URI",
     "where saves go (env CKPTFS_DEST): a path, file://, http(s)://,\n"
     "s3://bucket/key, gs://bucket/key, az://account/container/blob"},
    {"--src", NULL, "src", CK_OPT_CALL, 0, set_src, "URI",
     "previous checkpoint (env CKPTFS_SRC); repeatable, the first\n"
     "that exists and is non-empty wins; \"\" means none"},
    {"--cache-dir", NULL, "cache_dir", CK_OPT_STRING, F(cache_dir), NULL, "DIR",
     "local disk for save/ and prev/ (default: a new folder\n"
     "under $TMPDIR or /var/tmp); reuse it to re-attach save/"},
    {"--cache-limit", NULL, "cache_limit", CK_OPT_CALL, 0, set_cache_limit, "SIZE",
     "keep at most SIZE (512M, 4G) of prev/'s data on the cache\n"
     "disk; more is evicted and fetched again when read again\n"
     "(default: none if it fits the free space, else half of it)"},
    {"--memory-limit", NULL, "memory_limit", CK_OPT_CALL, 0, set_memory_limit, "SIZE",
     "memory budget (256M, at least 32M): half of it for upload\n"
     "part buffers; larger parts go through the cache disk"},
    {"--no-save-on-unmount", NULL, "no_save_on_unmount", CK_OPT_SET_FALSE, F(save_on_unmount), NULL,
     NULL, "do not save unsaved changes when unmounted"},
    {"--carry-forward", NULL, "carry_forward", CK_OPT_SET_TRUE, F(carry_forward), NULL, NULL,
     "when unmounted without a save of its own, copy the\n"
     "previous checkpoint (--src) to --dest, so the chain holds"},
    {"--autosave", NULL, NULL, CK_OPT_CALL, 0, set_autosave, "quiet=N|every=N",
     "quiet=N: save when changed and no file was open for\n"
     "writing for N s; every=N: save changes at most every N s\n"
     "(-o autosave_quiet=N, autosave_every=N)"},
    {NULL, NULL, "autosave_quiet", CK_OPT_SECONDS, F(autosave_quiet_s), NULL, NULL, NULL},
    {NULL, NULL, "autosave_every", CK_OPT_SECONDS, F(autosave_every_s), NULL, NULL, NULL},
    {"--compress", NULL, "compress", CK_OPT_CALL, 0, set_compress, "POLICY",
     "auto (default), store, gzip-1 .. gzip-9"},
    {"--save-wait", NULL, "save_wait", CK_OPT_SECONDS, F(save_wait_s), NULL, "SECONDS",
     "how long a save waits for files open for writing (10)"},
    {"--exclude", NULL, "exclude", CK_OPT_CALL, 0, set_exclude, "GLOB",
     "leave matching files out of every save (repeatable; a\n"
     "GLOB without '/' matches base names: '*.log'); also the\n"
     "lines of save/.ckptfsignore"},
    {"--no-sign-request", NULL, "no_sign_request", CK_OPT_SET_TRUE, F(no_sign_request), NULL, NULL,
     "s3: send unsigned requests (public buckets)"},
    {"--retries", NULL, "retries", CK_OPT_CALL, 0, set_retries, "N",
     "try a request that fails transiently (5xx, 429, a reset,\n"
     "a stall) at most N times in all, with backoff, within\n"
     "120 s (8)"},
    {"--log-level", NULL, "log_level", CK_OPT_CALL, 0, set_log_level, "LEVEL",
     "error, warn, info (default), debug"},
    {"--syslog", NULL, NULL, CK_OPT_SET_TRUE, F(use_syslog), NULL, NULL,
     "log to syslog instead of stderr"},
    {"-f", NULL, NULL, CK_OPT_SET_TRUE, F(foreground), NULL, NULL, "stay in the foreground"},
    {"-d", "--debug", NULL, CK_OPT_CALL_FLAG, 0, set_debug, NULL, "FUSE debug output (implies -f)"},
    {"-o", NULL, NULL, CK_OPT_LIST, 0, NULL, "OPT[,OPT...]",
     "FUSE mount options (allow_other, ...), and these ckptfs\n"
     "options as KEY or KEY=VALUE (mount -t fuse.ckptfs, fstab):"},
    {"--no-fuse", NULL, "no_fuse", CK_OPT_SET_TRUE, F(no_fuse), NULL, NULL,
     "no FUSE: restore prev/ eagerly, save/ is a plain directory,\n"
     "touch MOUNTPOINT/.save to save (for pods without /dev/fuse)"},
    {"--save-on-exit", NULL, "save_on_exit", CK_OPT_CALL, 0, set_exit_save, "WHEN",
     "run: success (default: upload unsaved changes when the\n"
     "command exited 0 or ended after SIGTERM; never after a\n"
     "crash, which may have torn files), always, never"},
    {"--user", NULL, NULL, CK_OPT_CALL, 0, set_user, "UID[:GID]",
     "run: run the command as that user (the mount stays root's;\n"
     "give it --uid/--gid and -o allow_other)"},
    {"--grace", NULL, "grace", CK_OPT_SECONDS, F(grace_s), NULL, "SECONDS",
     "run: after SIGTERM, the command and the save get this long\n"
     "in all (25)"},
    {"--metrics", NULL, "metrics", CK_OPT_STRING, F(metrics_path), NULL, "FILE",
     "write Prometheus text metrics to FILE after each save/load"},
    {"--uid", NULL, "uid", CK_OPT_ID, F(uid), NULL, "UID",
     "owner of the mount's own entries (save/, prev/ and all\n"
     "shown there, .save, .status), for a program of that user\n"
     "(with -o allow_other); default: the daemon's user"},
    {"--gid", NULL, "gid", CK_OPT_ID, F(gid), NULL, "GID", "their group (with --uid)"},
    {"--world", NULL, "world", CK_OPT_CALL, 0, set_world, "N|auto",
     "ranks saving one checkpoint together (1); auto: from the\n"
     "environment (CKPTFS_WORLD, GROUP_WORLD_SIZE, PET_NNODES,\n"
     "WORLD_SIZE)"},
    {"--rank", NULL, "rank", CK_OPT_CALL, 0, set_rank, "R",
     "this mount's rank, 0 .. N-1 (auto: CKPTFS_RANK, GROUP_RANK,\n"
     "PET_NODE_RANK, NODE_RANK, RANK)"},
    {"--world-id", NULL, "world_id", CK_OPT_STRING, F(world_id), NULL, "ID",
     "names this run's shards (CKPTFS_WORLD_ID,\n"
     "TORCHELASTIC_RUN_ID); lets a rerun at the same --dest\n"
     "never meet an old run's shards"},
    {"--world-timeout", NULL, "world_timeout", CK_OPT_SECONDS, F(world_timeout_s), NULL, "SECONDS",
     "rank 0 waits this long for the other ranks' shards (600)"},
    {"--help", "-h", NULL, CK_OPT_SET_TRUE, F(show_help), NULL, NULL, "this text"},
    {"--version", "-V", NULL, CK_OPT_SET_TRUE, F(show_version), NULL, NULL, "the version"},
};

#define NDEFS (sizeof(table) / sizeof(table[0]))

const struct ck_opt_def *ck_opt_by_name(const char *name)
{
    for (size_t i = 0; i < NDEFS; i++) {
        const struct ck_opt_def *d = &table[i];
        if ((d->name && strcmp(d->name, name) == 0) || (d->alias && strcmp(d->alias, name) == 0))
            return d;
    }
    return NULL;
}

const struct ck_opt_def *ck_opt_by_key(const char *key, size_t len)
{
    for (size_t i = 0; i < NDEFS; i++)
        if (table[i].key && strlen(table[i].key) == len && strncmp(table[i].key, key, len) == 0)
            return &table[i];
    return NULL;
}

bool ck_opt_valued(const struct ck_opt_def *d)
{
    return d->kind != CK_OPT_SET_TRUE && d->kind != CK_OPT_SET_FALSE && d->kind != CK_OPT_CALL_FLAG;
}

ck_rc ck_opt_apply(struct ck_options *o, const struct ck_opt_def *d, const char *shown,
                   const char *val, struct ck_err *err)
{
    char *field = (char *)o + d->field;
    unsigned id;
    ck_rc rc = CK_OK;
    switch (d->kind) {
    case CK_OPT_STRING:
        *(const char **)(void *)field = val;
        break;
    case CK_OPT_SECONDS:
        rc = parse_seconds(shown, val, (double *)(void *)field, err);
        break;
    case CK_OPT_ID:
        rc = ck_opt_parse_uint(shown, val, 0xfffffffeu, &id, err);
        if (!rc)
            *(long long *)(void *)field = id;
        break;
    case CK_OPT_SET_TRUE:
    case CK_OPT_SET_FALSE:
        *(bool *)(void *)field = d->kind == CK_OPT_SET_TRUE;
        break;
    case CK_OPT_CALL:
    case CK_OPT_CALL_FLAG:
        rc = d->set(o, shown, val, err);
        break;
    case CK_OPT_LIST:
        rc = ck_fail(err, CK_EINVAL, "%s: not inside an option list", shown);
        break;
    }
    return rc;
}

/* ---------- --help ---------- */

#define USAGE_COL  26 /* where help text starts */
#define USAGE_WRAP 86 /* the -o key list wraps before this column */

static const char usage_head[] =
    "usage: ckptfs [OPTIONS] MOUNTPOINT\n"
    "       ckptfs run [OPTIONS] MOUNTPOINT -- COMMAND [ARGS...]\n"
    "       ckptfs save [--async] MOUNTPOINT | status [--json] MOUNTPOINT\n"
    "       ckptfs wait [--timeout SECONDS] [--committed] MOUNTPOINT\n"
    "       ckptfs ls URI | get URI DIR | put [--memory-limit SIZE] DIR URI\n"
    "       ckptfs SOURCE MOUNTPOINT -o dest=URI,... (mount -t fuse.ckptfs, fstab)\n"
    "\n"
    "Mounts a checkpoint filesystem: MOUNTPOINT/prev/ shows the previous checkpoint\n"
    "(read-only, fetched on first access), MOUNTPOINT/save/ is the writable save area,\n"
    "touch MOUNTPOINT/.save saves it to --dest, MOUNTPOINT/.status reports progress.\n"
    "\n";

/* "  -h, --help" or "  --dest URI": the left column of an entry; returns its width. */
static int put_left(FILE *f, const struct ck_opt_def *d)
{
    bool short_first = d->alias && d->alias[1] != '-';
    const char *first = short_first ? d->alias : d->name;
    const char *second = short_first ? d->name : d->alias;
    return fprintf(f, "  %s%s%s%s%s", first, second ? ", " : "", second ? second : "",
                   d->arg ? " " : "", d->arg ? d->arg : "");
}

/* One entry: the left column, then the help's lines from USAGE_COL on. */
static void put_def(FILE *f, const struct ck_opt_def *d)
{
    int used = put_left(f, d);
    for (const char *line = d->help; *line;) {
        int n = (int)strcspn(line, "\n");
        if (used >= USAGE_COL) { /* a long left column: the help starts on the next line */
            fputc('\n', f);
            used = 0;
        }
        fprintf(f, "%*s%.*s\n", USAGE_COL - used, "", n, line);
        used = 0;
        line += n + (line[n] == '\n');
    }
}

/* The -o keys, wrapped under the -o entry. */
static void put_keys(FILE *f)
{
    int col = fprintf(f, "%*skeys:", USAGE_COL, "");
    for (size_t i = 0; i < NDEFS; i++) {
        if (!table[i].key)
            continue;
        if (col + 1 + (int)strlen(table[i].key) > USAGE_WRAP)
            col = fprintf(f, "\n%*s", USAGE_COL + 5, "") - 1;
        col += fprintf(f, " %s", table[i].key);
    }
    fputc('\n', f);
}

void ck_options_print_usage(FILE *f)
{
    fputs(usage_head, f);
    for (size_t i = 0; i < NDEFS; i++) {
        if (!table[i].help)
            continue;
        put_def(f, &table[i]);
        if (table[i].kind == CK_OPT_LIST)
            put_keys(f);
    }
}
