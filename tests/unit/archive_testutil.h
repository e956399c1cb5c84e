/*
 * archive_testutil.h - helpers shared by the archive unit tests (header-only, because
 * tests/CMakeLists.txt builds each test_*.c on its own).
 *
 * Test trees, sinks into memory and files, running shell commands (python3, tar, bsdtar)
 * and comparing trees with tests/tools/treecmp.py. Failures abort the test through
 * check's ck_assert macros.
 */
#ifndef CK_TEST_ARCHIVE_TESTUTIL_H
#define CK_TEST_ARCHIVE_TESTUTIL_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive/codec.h"
#include "archive/gzip_writer.h"
#include "archive/pack.h"
#include "util/buf.h"
#include "util/sink.h"

#define T_MTIME 1600000000 /* a fixed mtime for test entries */

/* tests/tools: $CK_TEST_TOOLS (set by tests/CMakeLists.txt), else next to this header. */
static inline const char *t_tools(void)
{
    static char fallback[4096];
    const char *t = getenv("CK_TEST_TOOLS");
    if (t && *t)
        return t;
    snprintf(fallback, sizeof(fallback), "%s", __FILE__);
    char *slash = strrchr(fallback, '/');
    if (slash)
        snprintf(slash, sizeof(fallback) - (size_t)(slash - fallback), "/../tools");
    return fallback;
}

/* Runs a shell command built from fmt; returns its exit status (-1 if it did not exit). */
static inline int t_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int t_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Makes a fresh temporary directory; path receives its name. */
static inline void t_tmpdir(char *path, size_t n)
{
    const char *base = getenv("TMPDIR");
    snprintf(path, n, "%s/ckt-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(path));
}

static inline void t_rm_rf(const char *path)
{
    t_sh("rm -rf '%s'", path);
}

static inline void t_write(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    close(fd);
}

static inline void t_mtime(const char *path, time_t sec, long nsec)
{
    struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static inline void t_file(const char *root, const char *rel, const void *data, size_t n,
                          mode_t mode)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    t_write(p, data, n, mode);
    t_mtime(p, T_MTIME + (time_t)n % 1000, 0);
}

static inline void t_dir(const char *root, const char *rel, mode_t mode)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    ck_assert_int_eq(chmod(p, mode), 0);
}

static inline void t_symlink(const char *root, const char *rel, const char *target)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    ck_assert_int_eq(symlink(target, p), 0);
    t_mtime(p, T_MTIME, 0);
}

/* Deterministic bytes: half pseudo-random, half text, so codecs have work to do. */
static inline unsigned char *t_bytes(size_t n, unsigned seed)
{
    unsigned char *b = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(b);
    unsigned x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (i / 4096) % 2 ? (unsigned char)(x >> 16) : (unsigned char)("checkpoint "[i % 11]);
    }
    return b;
}

/*
 * The standard test tree: nested dirs with modes, files with modes and mtimes, an empty
 * file, a 3 MiB file, names with spaces, UTF-8 and more than 100 bytes, symlinks inside the
 * tree, an empty directory. File modes are ones Python's "data" filter keeps unchanged.
 */
static inline void t_make_tree(const char *root)
{
    static const char longname[] =
        "a-very-long-file-name-that-is-longer-than-the-one-hundred-bytes-of-a-ustar-name-field-"
        "so-it-needs-pax.bin";
    size_t big = 3u * 1024 * 1024 + 17;
    unsigned char *b = t_bytes(big, 1);
    t_file(root, "model.pt", b, big, 0644);
    free(b);
    t_file(root, "empty", "", 0, 0600);
    t_file(root, "run.sh", "#!/bin/sh\necho hi\n", 18, 0755);
    t_file(root, "name with spaces.txt", "spaces\n", 7, 0640);
    t_file(root,
           "\xc3\xbcn\xc3\xaf"
           "c\xc3\xb6"
           "d\xc3\xa9-\xe5\x90\x8d\xe5\x89\x8d.txt",
           "utf8\n", 5, 0644);
    t_file(root, longname, "long\n", 5, 0644);
    t_dir(root, "sub", 0750);
    t_file(root, "sub/x", "x\n", 2, 0600);
    t_dir(root, "sub/inner", 0755);
    t_file(root, "sub/inner/y", "yy\n", 3, 0700);
    t_dir(root, "sub/inner/d-with-a-long-path-component-to-push-the-full-name-past-one-hundred",
          0755);
    t_file(root,
           "sub/inner/d-with-a-long-path-component-to-push-the-full-name-past-one-hundred/z.dat",
           "zzz\n", 4, 0644);
    t_symlink(root, "sub/link", "x");
    t_symlink(root, "sub/inner/up", "../x");
    t_symlink(root, "latest", "sub/x");
    t_dir(root, "emptydir", 0700);
    char p[4096];
    const char *dirs[] = {
        "sub/inner/d-with-a-long-path-component-to-push-the-full-name-past-one-hundred",
        "sub/inner", "sub", "emptydir"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
        t_mtime(p, T_MTIME - 1000 * (time_t)(i + 1), 0);
    }
}

static inline ck_rc t_fd_sink_write(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    int fd = *(int *)ctx;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0)
            return ck_fail_errno(err, errno, "test sink write");
        p += n;
        len -= (size_t)n;
    }
    return CK_OK;
}

static inline ck_rc t_buf_sink_write(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    ck_rc rc = ck_buf_append(ctx, buf, len);
    return rc ? ck_fail(err, rc, "test buffer sink full") : CK_OK;
}

/* Packs dir into out_path as a gzip tar with codec (a save's object). Returns the rc. */
static inline ck_rc t_pack_file(const char *dir, const char *out_path, const char *codec_name,
                                struct ck_pack_stats *st, struct ck_err *err)
{
    struct ck_codec codec;
    ck_assert(ck_codec_parse(codec_name, &codec));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dfd, 0);
    int ofd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(ofd, 0);
    struct ck_sink file_sink = {.write = t_fd_sink_write, .ctx = &ofd};
    struct ck_gzw *gz;
    ck_rc rc = ck_gzw_new(&codec, &file_sink, &gz, err);
    ck_assert_int_eq(rc, CK_OK);
    struct ck_sink gz_sink = ck_gzw_sink(gz);
    rc = ck_pack_tar(dfd, &gz_sink, st, err);
    if (!rc)
        rc = ck_gzw_finish(gz, err);
    ck_gzw_free(gz);
    close(ofd);
    close(dfd);
    return rc;
}

/* Compares two trees with treecmp.py; opts are its flags. Returns its exit status. */
static inline int t_treecmp(const char *expected, const char *actual, const char *opts)
{
    return t_sh("python3 '%s/treecmp.py' '%s' '%s' %s", t_tools(), expected, actual, opts);
}

/* Runs suite s in fork mode and returns the process exit status. */
static inline int t_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

#endif
