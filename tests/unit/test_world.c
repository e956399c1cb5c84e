/* test_world.c - multi-rank names, the manifest format and its refusals, world options. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config/options.h"
#include "layout/manifest.h"
#include "world/round.h"

START_TEST(test_shard_names)
{
    char s[CK_WORLD_SUFFIX_MAX];
    struct ck_err err;
    ck_assert_int_eq(ck_world_shard_suffix(NULL, 7, 3, 4, s, &err), CK_OK);
    ck_assert_str_eq(s, ".ranks/g7/r3-of-4");
    ck_assert_int_eq(ck_world_shard_suffix("run-1.a_b", 1, 0, 2, s, &err), CK_OK);
    ck_assert_str_eq(s, ".ranks/run-1.a_b/g1/r0-of-2");
    ck_assert_int_eq(ck_world_hint_suffix(NULL, s, &err), CK_OK);
    ck_assert_str_eq(s, ".ranks/committed");
    ck_assert_int_eq(ck_world_claim_suffix("r", 5, s, &err), CK_OK);
    ck_assert_str_eq(s, ".ranks/r/g5/commit");
    const char *bad[] = {"", ".", "..", "a/b", "a b", "x?y", "%2e"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        ck_assert_int_eq(ck_world_shard_suffix(bad[i], 1, 0, 2, s, &err), CK_EINVAL);
        ck_assert_ptr_nonnull(strstr(err.msg, "--world-id"));
    }
    char *u = ck_world_uri("https://a.blob.core.windows.net/c/k?sv=1&sig=x", ".ranks/g1/r1-of-2");
    ck_assert_str_eq(u, "https://a.blob.core.windows.net/c/k.ranks/g1/r1-of-2?sv=1&sig=x");
    free(u);
    u = ck_world_uri("s3://b/k", ".ranks/committed");
    ck_assert_str_eq(u, "s3://b/k.ranks/committed");
    free(u);
}
END_TEST

START_TEST(test_manifest_round_trip)
{
    struct ck_world_shard sh[3] = {
        {0}, {123, "\"abc-2\"", ".ranks/g9/r1-of-3"}, {0, "", ".ranks/g9/r2-of-3"}};
    struct ck_world_manifest m = {9, 3, sh}, back;
    char *text;
    size_t len;
    struct ck_err err;
    ck_assert_int_eq(ck_world_manifest_format(&m, &text, &len, &err), CK_OK);
    ck_assert_str_eq(text, "ckptfs-world 1\ngeneration 9\nworld 3\nrank 0 .\n"
                           "rank 1 123 \"abc-2\" .ranks/g9/r1-of-3\n"
                           "rank 2 0 - .ranks/g9/r2-of-3\n");
    ck_assert_uint_eq(len, strlen(text));
    ck_assert_int_eq(ck_world_manifest_parse(text, "m", &back, &err), CK_OK);
    ck_assert_uint_eq(back.generation, 9);
    ck_assert_uint_eq(back.world, 3);
    ck_assert_uint_eq(back.shards[1].size, 123);
    ck_assert_str_eq(back.shards[1].etag, "\"abc-2\"");
    ck_assert_str_eq(back.shards[2].etag, "");
    ck_assert_str_eq(back.shards[2].suffix, ".ranks/g9/r2-of-3");
    ck_world_manifest_free(&back);
    free(text);
}
END_TEST

static void expect_refused(const char *text, const char *why)
{
    struct ck_world_manifest m;
    struct ck_err err;
    ck_assert_int_eq(ck_world_manifest_parse(text, "ck/.ckptfs-world", &m, &err), CK_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, "ck/.ckptfs-world"));
    if (!strstr(err.msg, why))
        ck_abort_msg("'%s' does not say '%s'", err.msg, why);
    ck_assert_ptr_null(m.shards);
}

START_TEST(test_hostile_manifests)
{
    expect_refused("", "newline");
    expect_refused("ckptfs-world 2\ngeneration 1\nworld 1\nrank 0 .\n", "ckptfs-world 1");
    expect_refused("ckptfs-world 1\ngeneration x\nworld 1\nrank 0 .\n", "generation");
    expect_refused("ckptfs-world 1\ngeneration 1\nworld 0\nrank 0 .\n", "world");
    expect_refused("ckptfs-world 1\ngeneration 1\nworld 99999\nrank 0 .\n", "world");
    expect_refused("ckptfs-world 1\ngeneration 1\nworld 2\nrank 0 .\n", "one line per rank");
    expect_refused("ckptfs-world 1\ngeneration 1\nworld 2\nrank 0 .\nrank 1 5 e .ranks/g1/x\n"
                   "rank 2 5 e .ranks/g1/y\n",
                   "one line per rank");
    expect_refused("ckptfs-world 1\ngeneration 1\nworld 2\nrank 0 .\nrank 1 5 e ../../etc/x\n",
                   "outside");
    expect_refused("ckptfs-world 1\ngeneration 1\nworld 2\nrank 0 .\nrank 1 5 e .ranks/../x\n",
                   "outside");
    expect_refused("ckptfs-world 1\ngeneration 1\nworld 2\nrank 0 .\nrank 1 5 e .ranks/a?b\n",
                   "outside");
    expect_refused("ckptfs-world 1\ngeneration 1\nworld 3\nrank 0 .\nrank 2 5 e .ranks/a\n"
                   "rank 1 5 e .ranks/b\n",
                   "order");
    expect_refused("ckptfs-world 1\ngeneration 1\nworld 2\nrank 0 .\nrank 1 5 e .ranks/a extra\n",
                   "rank R SIZE ETAG SUFFIX");
    expect_refused("ckptfs-world 1\ngeneration 1\nworld 2\nrank 0 .\nrank 1 5 e .ranks/a",
                   "newline");
}
END_TEST

static const char *env_world, *env_rank, *env_group_rank;

static char *fake_getenv(const char *name)
{
    if (strcmp(name, "WORLD_SIZE") == 0)
        return (char *)env_world;
    if (strcmp(name, "RANK") == 0)
        return (char *)env_rank;
    if (strcmp(name, "GROUP_RANK") == 0)
        return (char *)env_group_rank;
    return NULL;
}

static ck_rc parse(int argc, char **argv, struct ck_options *o, struct ck_err *err)
{
    ck_err_clear(err);
    ck_rc rc = ck_options_parse(argc, argv, fake_getenv, o, err);
    ck_options_free(o);
    return rc;
}

START_TEST(test_world_options)
{
    struct ck_options o;
    struct ck_err err;
    char *a1[] = {"ckptfs", "--dest", "/d", "/mnt"};
    ck_assert_int_eq(parse(4, a1, &o, &err), CK_OK);
    ck_assert_uint_eq(o.world, 1);
    ck_assert_uint_eq(o.rank, 0);
    char *a2[] = {"ckptfs", "--dest", "/d", "--world", "8", "--rank", "7", "/mnt"};
    ck_assert_int_eq(parse(8, a2, &o, &err), CK_OK);
    ck_assert_uint_eq(o.world, 8);
    ck_assert_uint_eq(o.rank, 7);
    char *a3[] = {"ckptfs", "--dest", "/d", "--world", "8", "--rank", "8", "/mnt"};
    ck_assert_int_eq(parse(8, a3, &o, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "--rank 8"));
    char *a4[] = {"ckptfs", "--dest", "/d", "--world", "-2", "/mnt"};
    ck_assert_int_eq(parse(6, a4, &o, &err), CK_EINVAL);
    char *a5[] = {"ckptfs", "--dest", "/d", "--world", "2", "--carry-forward", "/mnt"};
    ck_assert_int_eq(parse(7, a5, &o, &err), CK_OK); /* rank 0 carries the world (carry.h) */
    ck_assert(o.carry_forward);
    /* auto: torchrun's variables; GROUP_RANK (the node) before RANK (the process). */
    env_world = "4";
    env_rank = "3";
    char *a6[] = {"ckptfs", "--dest", "/d", "--world", "auto", "/mnt"};
    ck_assert_int_eq(parse(6, a6, &o, &err), CK_OK);
    ck_assert_uint_eq(o.world, 4);
    ck_assert_uint_eq(o.rank, 3);
    env_group_rank = "1";
    ck_assert_int_eq(parse(6, a6, &o, &err), CK_OK);
    ck_assert_uint_eq(o.rank, 1);
    env_world = NULL;
    ck_assert_int_eq(parse(6, a6, &o, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "WORLD_SIZE"));
    env_rank = env_group_rank = NULL;
}
END_TEST

/* The round object (round.h): "G STATE", nothing else. */
START_TEST(test_round_text)
{
    struct ck_round r;
    ck_assert(ck_round_parse("7 waiting\n", &r));
    ck_assert_uint_eq(r.gen, 7);
    ck_assert_int_eq(r.state, CK_ROUND_WAITING);
    ck_assert(ck_round_parse("12 committed", &r));
    ck_assert_int_eq(r.state, CK_ROUND_COMMITTED);
    ck_assert(ck_round_parse("3 failed\n", &r));
    ck_assert_int_eq(r.state, CK_ROUND_FAILED);
    const char *bad[] = {"",          "7",         "0 waiting",     "7 waiting extra", "7 none",
                         "x waiting", "7 Waiting", "7 waiting\n\n", "-1 failed"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        ck_assert_msg(!ck_round_parse(bad[k], &r), "accepted '%s'", bad[k]);
    char sfx[CK_WORLD_SUFFIX_MAX];
    struct ck_err err;
    ck_assert_int_eq(ck_world_round_suffix("run-1", sfx, &err), CK_OK);
    ck_assert_str_eq(sfx, ".ranks/run-1/round");
    ck_assert_int_eq(ck_world_round_suffix(NULL, sfx, &err), CK_OK);
    ck_assert_str_eq(sfx, ".ranks/round");
}
END_TEST

static Suite *world_suite(void)
{
    Suite *s = suite_create("world");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_shard_names);
    tcase_add_test(tc, test_manifest_round_trip);
    tcase_add_test(tc, test_hostile_manifests);
    tcase_add_test(tc, test_world_options);
    tcase_add_test(tc, test_round_text);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(world_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
