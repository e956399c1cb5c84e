/* test_options.c - the command line and environment (SPEC 1). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/option_table.h"
#include "config/options.h"
#include "testutil.h"

static const char *env_dest, *env_src;

static char *fake_getenv(const char *name)
{
    if (strcmp(name, "CKPTFS_DEST") == 0)
        return (char *)env_dest;
    if (strcmp(name, "CKPTFS_SRC") == 0)
        return (char *)env_src;
    return NULL;
}

static ck_rc parse(struct ck_options *o, struct ck_err *err, int argc, char **argv)
{
    ck_err_clear(err);
    return ck_options_parse(argc, argv, fake_getenv, o, err);
}

START_TEST(test_full_command_line)
{
    char *argv[] = {"ckptfs",
                    "--dest",
                    "s3://b/k",
                    "--src",
                    "file:///a",
                    "--src=/b",
                    "--cache-dir",
                    "/c",
                    "-f",
                    "-o",
                    "allow_other",
                    "--compress",
                    "gzip-6",
                    "--autosave",
                    "quiet=30",
                    "--autosave=every=600",
                    "--no-save-on-unmount",
                    "--save-wait",
                    "2.5",
                    "/mnt"};
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, 20, argv), CK_OK);
    ck_assert_str_eq(o.dest, "s3://b/k");
    ck_assert_uint_eq(o.nsrc, 2);
    ck_assert_str_eq(o.srcs[0], "file:///a");
    ck_assert_str_eq(o.srcs[1], "/b");
    ck_assert_str_eq(o.cache_dir, "/c");
    ck_assert_str_eq(o.mountpoint, "/mnt");
    ck_assert(o.foreground);
    ck_assert(!o.save_on_unmount);
    ck_assert_int_eq(o.codec.kind, CK_CODEC_GZIP);
    ck_assert_int_eq(o.codec.level, 6);
    ck_assert_double_eq(o.autosave_quiet_s, 30);
    ck_assert_double_eq(o.autosave_every_s, 600);
    ck_assert_double_eq(o.save_wait_s, 2.5);
    ck_assert_int_eq(o.fuse_argc, 3);
    ck_assert_str_eq(o.fuse_argv[1], "-o");
    ck_assert_str_eq(o.fuse_argv[2], "allow_other");
    ck_assert_ptr_null(o.fuse_argv[3]);
    ck_options_free(&o);
}
END_TEST

START_TEST(test_defaults_and_environment)
{
    env_dest = "/env/dest";
    env_src = "/env/src";
    char *argv[] = {"ckptfs", "/mnt"};
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, 2, argv), CK_OK);
    ck_assert_str_eq(o.dest, "/env/dest");
    ck_assert_uint_eq(o.nsrc, 1);
    ck_assert_str_eq(o.srcs[0], "/env/src");
    ck_assert(o.save_on_unmount);
    ck_assert(!o.foreground);
    ck_assert_int_eq(o.codec.kind, CK_CODEC_AUTO);
    ck_assert_ptr_null(o.cache_dir);
    ck_options_free(&o);
    env_dest = env_src = NULL;
}
END_TEST

START_TEST(test_command_line_beats_environment)
{
    env_dest = "/env/dest";
    env_src = "/env/src";
    char *argv[] = {"ckptfs", "--dest", "/cli", "--src", "/cli-src", "/mnt"};
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, 6, argv), CK_OK);
    ck_assert_str_eq(o.dest, "/cli");
    ck_assert_uint_eq(o.nsrc, 1);
    ck_assert_str_eq(o.srcs[0], "/cli-src");
    ck_options_free(&o);
    env_dest = env_src = NULL;
}
END_TEST

START_TEST(test_flyte_empty_prev_means_none)
{
    env_src = "\"\"";
    char *argv[] = {"ckptfs", "--dest", "/d", "--src", "", "--src", "\"\"", "/mnt"};
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, 8, argv), CK_OK);
    ck_assert_uint_eq(o.nsrc, 0);
    ck_options_free(&o);
    char *argv2[] = {"ckptfs", "--dest", "/d", "/mnt"};
    ck_assert_int_eq(parse(&o, &err, 4, argv2), CK_OK);
    ck_assert_uint_eq(o.nsrc, 0);
    ck_options_free(&o);
    env_src = NULL;
}
END_TEST

static void expect_error(int argc, char **argv, const char *needle)
{
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, argc, argv), CK_EINVAL);
    ck_assert_msg(strstr(err.msg, needle), "'%s' not in '%s'", needle, err.msg);
    ck_options_free(&o);
}

START_TEST(test_errors_name_the_argument)
{
    char *a1[] = {"ckptfs", "/mnt"};
    expect_error(2, a1, "--dest");
    char *a2[] = {"ckptfs", "--dest", "/d"};
    expect_error(3, a2, "MOUNTPOINT");
    char *a3[] = {"ckptfs", "--dest", "/d", "--compress", "zstd", "/mnt"};
    expect_error(6, a3, "zstd");
    char *a4[] = {"ckptfs", "--dest", "/d", "--autosave", "sometimes", "/mnt"};
    expect_error(6, a4, "sometimes");
    char *a5[] = {"ckptfs", "--dest", "/d", "--bogus", "/mnt"};
    expect_error(5, a5, "--bogus");
    char *a6[] = {"ckptfs", "--dest", "/d", "/mnt", "/other"};
    expect_error(5, a6, "/other");
    char *a7[] = {"ckptfs", "--dest"};
    expect_error(2, a7, "--dest needs a value");
    char *a8[] = {"ckptfs", "--dest", "/d", "--save-wait", "-1", "/mnt"};
    expect_error(6, a8, "-1");
    char *a9[] = {"ckptfs", "--dest", "/d", "--retries", "0", "/mnt"};
    expect_error(6, a9, "--retries: at least 1");
    char *a10[] = {"ckptfs", "--dest", "/d", "--retries", "101", "/mnt"};
    expect_error(6, a10, "--retries: '101' is not a number from 0 to 100");
}
END_TEST

START_TEST(test_help_and_version)
{
    char *argv[] = {"ckptfs", "--help"};
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, 2, argv), CK_OK);
    ck_assert(o.show_help);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_options_print_usage(f);
    fclose(f);
    /* every option of the table, the -o keys, and help lines aligned */
    const char *want[] = {"  --dest URI              where saves go",
                          "  -h, --help              this text",
                          "  -d, --debug             FUSE debug output",
                          "  --world-timeout SECONDS rank 0 waits",
                          " autosave_every ",
                          " memory_limit",
                          "gs://bucket/key"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(text, want[i]), "'%s' not in:\n%s", want[i], text);
    free(text);
    ck_options_free(&o);
    char *argv2[] = {"ckptfs", "-V"};
    ck_assert_int_eq(parse(&o, &err, 2, argv2), CK_OK);
    ck_assert(o.show_version);
    ck_options_free(&o);
}
END_TEST

START_TEST(test_debug_implies_foreground)
{
    char *argv[] = {"ckptfs", "--dest", "/d", "-d", "-oro", "/mnt"};
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, 6, argv), CK_OK);
    ck_assert(o.debug && o.foreground);
    ck_assert_int_eq(o.fuse_argc, 4);
    ck_assert_str_eq(o.fuse_argv[1], "-d");
    ck_assert_str_eq(o.fuse_argv[3], "ro");
    ck_options_free(&o);
}
END_TEST

START_TEST(test_mount_fuse3_convention)
{
    env_dest = env_src = NULL;
    char *argv[] = {"ckptfs", "file:///ck/next", "/mnt", "-o",
                    ("rw,src=/ck/prev,allow_other,cache_dir=/c,no_save_on_unmount,"
                     "cache_limit=64M,autosave_quiet=30,compress=gzip-1,grace=12,metrics=/m.prom,"
                     "retries=3")};
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, 5, argv), CK_OK);
    ck_assert_str_eq(o.dest, "file:///ck/next");
    ck_assert_str_eq(o.mountpoint, "/mnt");
    ck_assert_uint_eq(o.nsrc, 1);
    ck_assert_str_eq(o.srcs[0], "/ck/prev");
    ck_assert_str_eq(o.cache_dir, "/c");
    ck_assert_uint_eq(o.cache_limit, 64u << 20);
    ck_assert(!o.save_on_unmount);
    ck_assert_double_eq(o.autosave_quiet_s, 30);
    ck_assert_int_eq(o.codec.level, 1);
    ck_assert_double_eq(o.grace_s, 12);
    ck_assert_str_eq(o.metrics_path, "/m.prom");
    ck_assert_uint_eq(o.retries, 3);
    ck_assert_int_eq(o.fuse_argc, 3); /* only FUSE's own options reach FUSE, in order */
    ck_assert_str_eq(o.fuse_argv[1], "-o");
    ck_assert_str_eq(o.fuse_argv[2], "rw,allow_other");
    ck_options_free(&o);
}
END_TEST

START_TEST(test_mount_source_placeholder_and_dest_option)
{
    env_dest = "/env";
    env_src = NULL;
    char *argv[] = {"ckptfs", "ckptfs", "/mnt", "-odest=/d,no_fuse"};
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, 4, argv), CK_OK);
    ck_assert_str_eq(o.dest, "/d");
    ck_assert(o.no_fuse);
    ck_assert_int_eq(o.fuse_argc, 1); /* nothing left for FUSE */
    ck_options_free(&o);
    char *argv2[] = {"ckptfs", "none", "/mnt"};
    ck_assert_int_eq(parse(&o, &err, 3, argv2), CK_OK);
    ck_assert_str_eq(o.dest, "/env"); /* "none" is no destination */
    ck_options_free(&o);
    env_dest = NULL;
}
END_TEST

START_TEST(test_mount_option_errors)
{
    struct ck_options o;
    struct ck_err err;
    char *a1[] = {"ckptfs", "/d", "/mnt", "-o", "src"};
    ck_assert_int_eq(parse(&o, &err, 5, a1), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "src"));
    ck_options_free(&o);
    char *a2[] = {"ckptfs", "/d", "/mnt", "-o", "no_fuse=1"};
    ck_assert_int_eq(parse(&o, &err, 5, a2), CK_EINVAL);
    ck_options_free(&o);
    char *a3[] = {"ckptfs", "/d", "/mnt", "-o", "grace=soon"};
    ck_assert_int_eq(parse(&o, &err, 5, a3), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "grace"));
    ck_options_free(&o);
    char *a4[] = {"ckptfs", "/d", "/mnt", "/third"};
    ck_assert_int_eq(parse(&o, &err, 4, a4), CK_EINVAL);
    ck_options_free(&o);
}
END_TEST

START_TEST(test_run_options)
{
    char *argv[] = {"run", "--dest",    "/d", "--no-fuse", "--grace",
                    "7.5", "--metrics", "/m", "/mnt"};
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, 9, argv), CK_OK);
    ck_assert(o.no_fuse);
    ck_assert_double_eq(o.grace_s, 7.5);
    ck_assert_str_eq(o.metrics_path, "/m");
    ck_options_free(&o);
    char *argv2[] = {"ckptfs", "--dest", "/d", "/mnt"};
    ck_assert_int_eq(parse(&o, &err, 4, argv2), CK_OK);
    ck_assert_double_eq(o.grace_s, 25);
    ck_assert(!o.no_fuse);
    ck_assert_ptr_null(o.metrics_path);
    ck_options_free(&o);
}
END_TEST

/* --uid/--gid (and -o uid=,gid=), --save-on-exit, run --user. */
START_TEST(test_users_and_exit_save)
{
    char *argv[] = {
        "ckptfs",         "--dest", "/d",     "--uid", "1000", "-o", "gid=2000,allow_other",
        "--save-on-exit", "always", "--user", "7:8",   "/mnt"};
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, 12, argv), CK_OK);
    ck_assert_int_eq(o.uid, 1000);
    ck_assert_int_eq(o.gid, 2000);
    ck_assert_int_eq(o.exit_save, CK_EXIT_SAVE_ALWAYS);
    ck_assert(o.save_on_unmount);
    ck_assert_int_eq(o.run_uid, 7);
    ck_assert_int_eq(o.run_gid, 8);
    ck_assert_int_eq(o.exit_decision_fd, -1);
    ck_assert(ck_options_exit_save(&o)); /* no word from run: the flags decide */
    ck_options_free(&o);
    char *argv2[] = {"ckptfs", "--dest", "/d", "--save-on-exit=never", "--user", "9", "/mnt"};
    ck_assert_int_eq(parse(&o, &err, 7, argv2), CK_OK);
    ck_assert_int_eq(o.uid, -1);
    ck_assert_int_eq(o.run_uid, 9);
    ck_assert_int_eq(o.run_gid, -1);
    ck_assert(!o.save_on_unmount);
    ck_assert(!ck_options_exit_save(&o));
    ck_options_free(&o);
    const char *bad[][2] = {{"--uid", "-1"},   {"--gid", "x"},   {"--save-on-exit", "ok"},
                            {"--user", "bob"}, {"--user", ":5"}, {"--user", "5:"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *av[] = {"ckptfs", "--dest", "/d", (char *)bad[i][0], (char *)bad[i][1], "/mnt"};
        ck_assert_int_eq(parse(&o, &err, 6, av), CK_EINVAL);
        ck_assert_msg(strstr(err.msg, bad[i][0]), "%s", err.msg);
        ck_options_free(&o);
    }
}
END_TEST

/* Under `ckptfs run`, the decision run sends through the pipe wins. */
START_TEST(test_exit_decision_from_run)
{
    char *argv[] = {"ckptfs", "--dest", "/d", "/mnt"};
    struct ck_options o;
    struct ck_err err;
    ck_assert_int_eq(parse(&o, &err, 4, argv), CK_OK);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    o.exit_decision_fd = p[0];
    ck_assert_int_eq(write(p[1], "NS", 2), 2);
    ck_assert(!ck_options_exit_save(&o));
    ck_assert(ck_options_exit_save(&o));
    close(p[1]);
    ck_assert(ck_options_exit_save(&o)); /* run gone without a word: the flags decide */
    close(p[0]);
    ck_options_free(&o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_full_command_line);
    tcase_add_test(tc, test_defaults_and_environment);
    tcase_add_test(tc, test_command_line_beats_environment);
    tcase_add_test(tc, test_flyte_empty_prev_means_none);
    tcase_add_test(tc, test_errors_name_the_argument);
    tcase_add_test(tc, test_help_and_version);
    tcase_add_test(tc, test_debug_implies_foreground);
    tcase_add_test(tc, test_mount_fuse3_convention);
    tcase_add_test(tc, test_mount_source_placeholder_and_dest_option);
    tcase_add_test(tc, test_mount_option_errors);
    tcase_add_test(tc, test_run_options);
    tcase_add_test(tc, test_users_and_exit_save);
    tcase_add_test(tc, test_exit_decision_from_run);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
