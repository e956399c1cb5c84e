/* test_status.c - the .status document of a daemon (no mount needed), checked by Python's
 * json module for syntax and by content for the SPEC 2 fields. */
#include <check.h>

#include "daemon/daemon.h"
#include "testutil.h"

static void render(struct ck_daemon *d, const char *dir, char *path, size_t len)
{
    struct ck_buf b;
    ck_buf_init(&b, 1 << 20);
    ck_assert_int_eq(ck_daemon_status_json(d, &b), CK_OK);
    snprintf(path, len, "%s/status.json", dir);
    tu_write(path, b.data);
    ck_buf_free(&b);
}

/* Runs a Python expression over the parsed document `s`; returns its exit status. */
static int pycheck(const char *path, const char *expr)
{
    return tu_sh("python3 -c 'import json,sys; s=json.load(open(\"%s\")); "
                 "sys.exit(0 if (%s) else 1)'",
                 path, expr);
}

START_TEST(test_status_fields)
{
    char dir[64], dest[128], cache[128], secret_src[256], path[160];
    tu_mkdtemp(dir, sizeof(dir));
    snprintf(dest, sizeof(dest), "%s/out/ck.tgz", dir);
    snprintf(cache, sizeof(cache), "%s/cache", dir);
    snprintf(secret_src, sizeof(secret_src), "http://127.0.0.1:9/ck?X-Amz-Signature=SECRET");
    struct ck_options o;
    char *argv[] = {"ckptfs", "--dest", dest, "--src", secret_src, "--cache-dir", cache, "/mnt"};
    struct ck_err err;
    ck_assert_int_eq(ck_options_parse(8, argv, getenv, &o, &err), CK_OK);
    struct ck_daemon d;
    ck_assert_int_eq(ck_daemon_init(&d, &o, &err), CK_OK);
    ck_assert_int_eq(ck_daemon_start(&d, &err), CK_OK);
    render(&d, dir, path, sizeof(path));
    ck_assert_int_eq(pycheck(path,
                             "s[\"state\"]==\"idle\" and s[\"prev\"][\"state\"]=="
                             "\"not_loaded\" and s[\"save\"][\"last\"] is None and "
                             "s[\"last_error\"] is None and s[\"dest\"].endswith(\"ck.tgz\")"),
                     0);
    char file[192];
    snprintf(file, sizeof(file), "%s/save/f", cache);
    tu_write(file, "x");
    ck_assert_int_eq(ck_saver_save_sync(d.saver, CK_TRIGGER_CONTROL, &err), CK_OK);
    render(&d, dir, path, sizeof(path));
    ck_assert_int_eq(pycheck(path,
                             "all(k in s[\"save\"][\"last\"] for k in (\"generation\",\"trigger\","
                             "\"bytes\",\"compressed_bytes\",\"seconds\",\"mb_per_s\",\"result\","
                             "\"error\")) and s[\"save\"][\"last\"][\"result\"]==\"ok\" and "
                             "s[\"save\"][\"last\"][\"generation\"]==1"),
                     0);
    ck_assert_int_eq(tu_sh("! grep -q SECRET %s", path), 0);
    ck_assert_int_eq(ck_daemon_finish(&d, &err), CK_OK);
    ck_daemon_destroy(&d);
    ck_options_free(&o);
    tu_rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("status");
    TCase *tc = tcase_create("status");
    tcase_add_test(tc, test_status_fields);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
