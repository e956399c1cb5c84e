/* test_exclude.c - --exclude patterns and save/.ckptfsignore (archive/exclude.h). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "archive/exclude.h"
#include "archive_testutil.h"
#include "testutil.h"

START_TEST(test_base_names_and_anchored_names)
{
    const char *globs[] = {"*.log", "/scratch", "runs/*/events.*", "tmp"};
    struct ck_exclude *ex;
    struct ck_err err;
    ck_assert_int_eq(ck_exclude_new(globs, 4, -1, &ex, &err), CK_OK);
    ck_assert_uint_eq(ck_exclude_count(ex), 4);
    ck_assert(ck_exclude_match(ex, "train.log"));
    ck_assert(ck_exclude_match(ex, "a/b/c.log")); /* base name at any depth */
    ck_assert(ck_exclude_match(ex, "scratch"));   /* anchored: the top only */
    ck_assert(!ck_exclude_match(ex, "keep/scratch"));
    ck_assert(ck_exclude_match(ex, "runs/x/events.1"));
    ck_assert(ck_exclude_match(ex, "a/tmp"));
    ck_assert(!ck_exclude_match(ex, "model.pt"));
    ck_assert(!ck_exclude_match(ex, "log"));
    ck_exclude_free(ex);
    ck_assert(!ck_exclude_match(NULL, "x"));
}
END_TEST

START_TEST(test_ignore_file_lines)
{
    char dir[256], path[512];
    t_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/.ckptfsignore", dir);
    FILE *f = fopen(path, "w");
    fputs("# comment\n\n  \n*.tmp\r\n/cache \nnested/dir/*\n", f);
    fclose(f);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    struct ck_exclude *ex;
    struct ck_err err;
    ck_assert_int_eq(ck_exclude_new(NULL, 0, dfd, &ex, &err), CK_OK);
    ck_assert_uint_eq(ck_exclude_count(ex), 3);
    ck_assert(ck_exclude_match(ex, "a/b.tmp"));
    ck_assert(ck_exclude_match(ex, "cache"));
    ck_assert(!ck_exclude_match(ex, "x/cache"));
    ck_assert(ck_exclude_match(ex, "nested/dir/f"));
    ck_assert(!ck_exclude_match(ex, "# comment"));
    ck_exclude_free(ex);
    /* no file: only the patterns given */
    unlink(path);
    ck_assert_int_eq(ck_exclude_new(NULL, 0, dfd, &ex, &err), CK_OK);
    ck_assert_uint_eq(ck_exclude_count(ex), 0);
    ck_exclude_free(ex);
    close(dfd);
    t_rm_rf(dir);
}
END_TEST

START_TEST(test_bad_patterns_name_where)
{
    char dir[256], path[512];
    t_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/.ckptfsignore", dir);
    FILE *f = fopen(path, "w");
    fputs("ok\n", f);
    for (int i = 0; i < 1100; i++)
        fprintf(f, "p%d\n", i);
    fclose(f);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    struct ck_exclude *ex = NULL;
    struct ck_err err;
    ck_assert_int_eq(ck_exclude_new(NULL, 0, dfd, &ex, &err), CK_EINVAL);
    ck_assert_msg(strstr(err.msg, "save/.ckptfsignore line 1025"), "%s", err.msg);
    close(dfd);
    t_rm_rf(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("exclude");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_base_names_and_anchored_names);
    tcase_add_test(tc, test_ignore_file_lines);
    tcase_add_test(tc, test_bad_patterns_name_where);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
