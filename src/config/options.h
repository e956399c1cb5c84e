/*
 * options.h - the command line and environment of the ckptfs daemon (SPEC 1): what the
 * options set. Which options exist, their spellings (--name, -o key), values and help
 * are in one table (option_table.c), which the parser (options.c), the -o lists of
 * mount.fuse3 and fstab (mount_opts.c) and --help all read.
 *
 *   ckptfs [OPTIONS] MOUNTPOINT, or mount.fuse3's "ckptfs SOURCE MOUNTPOINT -o OPTS":
 *   SOURCE is the destination unless dest= is given ("ckptfs" and "none" mean nothing);
 *   -o keys of the table are ours, every other -o option goes to FUSE.
 *
 * Parsing allocates the fuse_argv array and copies of -o strings (owned); the other
 * strings point into argv or the environment. ck_options_free() releases what it owns.
 */
#ifndef CK_CONFIG_OPTIONS_H
#define CK_CONFIG_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive/codec.h"
#include "util/err.h"
#include "util/log.h"

#define CK_MAX_SRCS       16
#define CK_MAX_EXCLUDES   64
#define CK_MAX_OWNED      32
#define CK_MAX_WORLD      4096           /* ranks of one multi-rank checkpoint at most */
#define CK_MAX_RETRIES    100            /* --retries at most */
#define CK_MEMORY_DEFAULT (256ull << 20) /* --memory-limit (SPEC 5) */
#define CK_MEMORY_MIN     (32ull << 20)  /* below it the fixed costs alone would not fit */

enum ck_exit_save {
    CK_EXIT_SAVE_SUCCESS = 0, /* default */
    CK_EXIT_SAVE_ALWAYS,
    CK_EXIT_SAVE_NEVER,
};

struct ck_options {
    const char *dest;
    const char *srcs[CK_MAX_SRCS]; /* non-empty URIs only; "" and "\"\"" are dropped */
    size_t nsrc;
    const char *excludes[CK_MAX_EXCLUDES]; /* --exclude GLOB (archive/exclude.h) */
    size_t nexclude;
    const char *cache_dir; /* NULL: a fresh folder under $TMPDIR or /var/tmp */
    uint64_t cache_limit;  /* --cache-limit: prev/'s restored data on disk; 0: none */
    uint64_t memory_limit; /* --memory-limit: the daemon's memory budget (CK_MEMORY_DEFAULT) */
    const char *mountpoint;
    bool foreground;
    bool debug;
    bool save_on_unmount;
    bool carry_forward; /* --carry-forward */
    bool show_help;
    bool show_version;
    bool use_syslog;
    bool no_sign_request; /* s3: send requests unsigned */
    unsigned retries;     /* --retries N: attempts per request in all; 0: the default */
    struct ck_codec codec;
    double autosave_quiet_s; /* 0: off */
    double autosave_every_s; /* 0: off */
    double save_wait_s;
    enum ck_log_level log_level;
    bool no_fuse;                /* --no-fuse */
    double grace_s;              /* run: SIGTERM shutdown bound */
    const char *metrics_path;    /* --metrics FILE, or NULL */
    unsigned world;              /* --world N: ranks saving one checkpoint (1) */
    unsigned rank;               /* --rank R, 0 .. world-1 */
    bool world_auto;             /* --world auto: world and rank from the environment */
    bool rank_given;             /* --rank was given */
    const char *world_id;        /* --world-id, or NULL */
    double world_timeout_s;      /* --world-timeout: rank 0's wait for the shards */
    enum ck_exit_save exit_save; /* --save-on-exit */
    long long run_uid;           /* run --user: COMMAND's uid; -1: unset */
    long long run_gid;           /* run --user UID:GID: its gid; -1: the user's own group */
    int exit_decision_fd;        /* run's server: a pipe that says whether to save at exit
                                  * (ck_options_exit_save); -1: none. Not an option. */
    long long uid;               /* --uid: owner of the mount's own entries; -1: unset */
    long long gid;               /* --gid; -1: unset */
    const char *source;          /* mount.fuse3 SOURCE (the first of two positionals) */
    bool dest_flag;              /* --dest was given (then SOURCE MOUNTPOINT is refused) */
    char *owned[CK_MAX_OWNED];   /* copies of -o strings; freed by ck_options_free */
    size_t nowned;
    char **fuse_argv; /* owned array: argv[0] followed by -d / -o OPT; NULL-terminated */
    int fuse_argc;
};

/* Parses argv (argv[0] is the program) with getenv_fn for CKPTFS_DEST / CKPTFS_SRC
 * (pass getenv; tests pass their own). On error, err names the offending argument. */
ck_rc ck_options_parse(int argc, char **argv, char *(*getenv_fn)(const char *),
                       struct ck_options *o, struct ck_err *err);
void ck_options_free(struct ck_options *o);

/* Whether the save at unmount or exit should run (also when unsaved changes exist):
 * --no-save-on-unmount / --save-on-exit never say no; under `ckptfs run` the decision
 * that run sends through exit_decision_fd ('S' save, 'N' do not) wins. Reads the pipe. */
bool ck_options_exit_save(const struct ck_options *o);

#endif
