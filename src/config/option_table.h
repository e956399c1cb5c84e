/*
 * option_table.h - every daemon option once: its long name, short alias, -o key, kind,
 * field and help. The command line parser (options.c), the -o lists of mount.fuse3 and
 * fstab (mount_opts.c) and the --help text all read this one table.
 */
#ifndef CK_CONFIG_OPTION_TABLE_H
#define CK_CONFIG_OPTION_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/options.h"

enum ck_opt_kind {
    CK_OPT_STRING,    /* const char * field = the value (not copied) */
    CK_OPT_SECONDS,   /* double field = a number of seconds */
    CK_OPT_ID,        /* long long field = a numeric uid or gid */
    CK_OPT_SET_TRUE,  /* bool field = true; takes no value */
    CK_OPT_SET_FALSE, /* bool field = false; takes no value */
    CK_OPT_CALL,      /* set(o, name, value): a value with its own syntax */
    CK_OPT_CALL_FLAG, /* set(o, name, NULL); takes no value */
    CK_OPT_LIST,      /* -o: a comma-separated list (mount_opts.c) */
};

struct ck_opt_def {
    const char *name;  /* "--dest"; NULL for an -o key alone */
    const char *alias; /* "-h", "--debug", or NULL */
    const char *key;   /* the -o key ("cache_dir"), or NULL */
    enum ck_opt_kind kind;
    size_t field; /* offsetof(struct ck_options, ...) for STRING, SECONDS, ID, SET_* */
    ck_rc (*set)(struct ck_options *o, const char *name, const char *val, struct ck_err *err);
    const char *arg;  /* the value's name in --help ("URI"), or NULL */
    const char *help; /* --help text, '\n' between lines; NULL: not listed */
};

/* The definition of a command-line option ("--dest", "-h"), or NULL. */
const struct ck_opt_def *ck_opt_by_name(const char *name);
/* The definition of an -o key ("cache_dir"), or NULL. */
const struct ck_opt_def *ck_opt_by_key(const char *key, size_t len);

/* Whether the option takes a value. */
bool ck_opt_valued(const struct ck_opt_def *d);

/* Applies the option to o; shown is how the user spelled it (for messages). */
ck_rc ck_opt_apply(struct ck_options *o, const struct ck_opt_def *d, const char *shown,
                   const char *val, struct ck_err *err);

/* A count or an index: digits only, below limit; errors name opt. */
ck_rc ck_opt_parse_uint(const char *opt, const char *s, unsigned limit, unsigned *out,
                        struct ck_err *err);

/* Appends arg (not copied) to o->fuse_argv. */
ck_rc ck_options_push_fuse_arg(struct ck_options *o, char *arg, struct ck_err *err);

/* Writes the --help text, made from the table, to f. */
void ck_options_print_usage(FILE *f);

#endif
