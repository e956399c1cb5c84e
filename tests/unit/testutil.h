/*
 * testutil.h - small helpers for the unit suites (header-only: each test_*.c builds alone).
 */
#ifndef CK_TEST_TESTUTIL_H
#define CK_TEST_TESTUTIL_H

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh temp folder; removed by tu_rmdir. */
static inline void tu_mkdtemp(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/ckut-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

static inline int tu_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static inline void tu_rmdir(const char *dir)
{
    tu_sh("rm -rf '%s'", dir);
}

static inline void tu_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Reads a whole small file into a static buffer (NUL-terminated). */
static inline const char *tu_read(const char *path)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static inline int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}

#endif
