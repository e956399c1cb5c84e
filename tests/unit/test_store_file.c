/* test_store_file.c - the local-file backend: atomic put, ranged get, head, failures, and
 * create-only puts (link(2) at commit). */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "util/buf.h"

static char root[256];
static struct ck_store_env env;

static void setup(void)
{
    snprintf(root, sizeof(root), "/tmp/ck-store-file-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    ck_store_env_default(&env);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}

static ck_rc buf_sink_write(void *ctx, const void *p, size_t n, struct ck_err *err)
{
    return ck_buf_append(ctx, p, n) ? ck_fail(err, CK_ENOMEM, "test buffer full") : CK_OK;
}

static struct ck_store *open_store(const char *rel)
{
    char uri[512];
    snprintf(uri, sizeof(uri), "%s/%s", root, rel);
    struct ck_store *s;
    struct ck_err err;
    ck_assert_msg(ck_store_open(uri, &env, &s, &err) == CK_OK, "%s", err.msg);
    ck_assert_str_eq(s->ops->name, "file");
    return s;
}

static void put_all(struct ck_store *s, const void *data, size_t len)
{
    struct ck_store_upload *u;
    struct ck_err err;
    ck_assert_msg(ck_store_put_begin(s, NULL, &u, &err) == CK_OK, "%s", err.msg);
    struct ck_sink sink = ck_store_upload_sink(u);
    for (size_t off = 0; off < len; off += 1000) {
        size_t n = len - off < 1000 ? len - off : 1000;
        ck_assert_int_eq(ck_sink_write(&sink, (const char *)data + off, n, &err), CK_OK);
    }
    ck_assert_uint_eq(u->bytes, len);
    ck_assert_msg(ck_store_put_commit(u, &err) == CK_OK, "%s", err.msg);
}

static void get_range(struct ck_store *s, uint64_t off, uint64_t len, struct ck_buf *out)
{
    struct ck_sink sink = {buf_sink_write, out};
    struct ck_err err;
    ck_buf_init(out, 1 << 24);
    ck_assert_msg(ck_store_get(s, off, len, &sink, &err) == CK_OK, "%s", err.msg);
}

static char *pattern(size_t n)
{
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(i * 7 + i / 251);
    return p;
}

/* Counts entries of dir whose name starts with ".". */
static int hidden_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

START_TEST(test_roundtrip_and_ranges)
{
    struct ck_store *s = open_store("a/b/c/ckpt.tar.gz"); /* parents are created on put */
    size_t n = 700 * 1000 + 3;
    char *data = pattern(n);
    put_all(s, data, n);
    struct ck_store_info info;
    struct ck_err err;
    ck_assert_int_eq(ck_store_head(s, &info, &err), CK_OK);
    ck_assert(info.exists);
    ck_assert_uint_eq(info.size, n);
    ck_assert(info.etag[0]);
    struct ck_buf b;
    get_range(s, 0, CK_STORE_TO_END, &b);
    ck_assert_uint_eq(b.len, n);
    ck_assert_mem_eq(b.data, data, n);
    ck_buf_free(&b);
    get_range(s, 300000, 5, &b);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_mem_eq(b.data, data + 300000, 5);
    ck_buf_free(&b);
    get_range(s, n - 10, CK_STORE_TO_END, &b);
    ck_assert_uint_eq(b.len, 10);
    ck_assert_mem_eq(b.data, data + n - 10, 10);
    ck_buf_free(&b);
    get_range(s, n, CK_STORE_TO_END, &b);
    ck_assert_uint_eq(b.len, 0);
    ck_buf_free(&b);
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/a/b/c", root);
    ck_assert_int_eq(hidden_entries(dir), 0); /* no temp file left */
    struct stat st;
    snprintf(dir, sizeof(dir), "%s/a/b/c/ckpt.tar.gz", root);
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    free(data);
    ck_store_close(s);
}
END_TEST

START_TEST(test_range_past_end_refused)
{
    struct ck_store *s = open_store("obj");
    put_all(s, "0123456789", 10);
    struct ck_buf b;
    ck_buf_init(&b, 100);
    struct ck_sink sink = {buf_sink_write, &b};
    struct ck_err err;
    ck_assert_int_eq(ck_store_get(s, 5, 6, &sink, &err), CK_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, "10 bytes"));
    ck_assert_int_eq(ck_store_get(s, 11, CK_STORE_TO_END, &sink, &err), CK_ECORRUPT);
    ck_assert_uint_eq(b.len, 0);
    ck_buf_free(&b);
    ck_store_close(s);
}
END_TEST

START_TEST(test_missing)
{
    struct ck_store *s = open_store("nope/obj");
    struct ck_store_info info;
    struct ck_err err;
    ck_assert_int_eq(ck_store_head(s, &info, &err), CK_OK);
    ck_assert(!info.exists);
    struct ck_buf b;
    ck_buf_init(&b, 100);
    struct ck_sink sink = {buf_sink_write, &b};
    ck_assert_int_eq(ck_store_get(s, 0, CK_STORE_TO_END, &sink, &err), CK_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "nope/obj"));
    ck_buf_free(&b);
    ck_store_close(s);
}
END_TEST

START_TEST(test_directory_is_an_error)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/adir", root);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    struct ck_store *s = open_store("adir");
    struct ck_store_info info;
    struct ck_err err;
    ck_assert_int_eq(ck_store_head(s, &info, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "directory"));
    ck_store_close(s);
}
END_TEST

START_TEST(test_abort_keeps_old)
{
    struct ck_store *s = open_store("obj");
    put_all(s, "old", 3);
    struct ck_store_upload *u;
    struct ck_err err;
    ck_assert_int_eq(ck_store_put_begin(s, NULL, &u, &err), CK_OK);
    ck_assert_int_eq(ck_store_put_write(u, "new data", 8, &err), CK_OK);
    ck_store_put_abort(u);
    struct ck_buf b;
    get_range(s, 0, CK_STORE_TO_END, &b);
    ck_assert_str_eq(b.data, "old");
    ck_buf_free(&b);
    ck_assert_int_eq(hidden_entries(root), 0);
    ck_store_close(s);
}
END_TEST

START_TEST(test_failed_commit_keeps_old)
{
    struct ck_store *s = open_store("obj");
    put_all(s, "old", 3);
    struct ck_store_upload *u;
    struct ck_err err;
    ck_assert_int_eq(ck_store_put_begin(s, NULL, &u, &err), CK_OK);
    ck_assert_int_eq(ck_store_put_write(u, "new data", 8, &err), CK_OK);
    /* Make the rename fail: remove the temp file behind the upload's back. */
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm %s/.obj.ckptfs-*", root);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_ne(ck_store_put_commit(u, &err), CK_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "PUT"));
    ck_assert_ptr_nonnull(strstr(err.msg, "obj"));
    struct ck_buf b;
    get_range(s, 0, CK_STORE_TO_END, &b);
    ck_assert_str_eq(b.data, "old");
    ck_buf_free(&b);
    ck_store_close(s);
}
END_TEST

START_TEST(test_file_uri_and_empty_object)
{
    char uri[400];
    snprintf(uri, sizeof(uri), "file://%s/empty", root);
    struct ck_store *s;
    struct ck_err err;
    ck_assert_int_eq(ck_store_open(uri, &env, &s, &err), CK_OK);
    ck_assert_str_eq(ck_store_uri(s), uri);
    put_all(s, "", 0);
    struct ck_store_info info;
    ck_assert_int_eq(ck_store_head(s, &info, &err), CK_OK);
    ck_assert(info.exists);
    ck_assert_uint_eq(info.size, 0);
    ck_store_close(s);
}
END_TEST

START_TEST(test_open_refusals)
{
    struct ck_store *s = (struct ck_store *)1;
    struct ck_err err;
    ck_assert_int_eq(ck_store_open("ftp://b/k", &env, &s, &err), CK_EUNSUPPORTED);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(ck_store_open("", &env, &s, &err), CK_EINVAL);
    ck_assert_int_eq(ck_store_open("/tmp/dir/", &env, &s, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "/tmp/dir/"));
}
END_TEST

START_TEST(test_sink_error_stops_get)
{
    struct ck_store *s = open_store("obj");
    size_t n = 1 << 20;
    char *data = pattern(n);
    put_all(s, data, n);
    struct ck_buf b;
    ck_buf_init(&b, 1000); /* too small: the sink fails */
    struct ck_sink sink = {buf_sink_write, &b};
    struct ck_err err;
    ck_assert_int_eq(ck_store_get(s, 0, CK_STORE_TO_END, &sink, &err), CK_ENOMEM);
    ck_assert_str_eq(err.msg, "test buffer full");
    ck_buf_free(&b);
    free(data);
    ck_store_close(s);
}
END_TEST

/* A create-only put of text; its result. */
static ck_rc put_if_absent(struct ck_store *s, const char *text, struct ck_err *err)
{
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN, .if_absent = true};
    struct ck_store_upload *u;
    ck_rc rc = ck_store_put_begin(s, &o, &u, err);
    if (rc)
        return rc;
    rc = ck_store_put_write(u, text, strlen(text), err);
    if (rc) {
        ck_store_put_abort(u);
        return rc;
    }
    return ck_store_put_commit(u, err);
}

static void expect_content(struct ck_store *s, const char *want)
{
    struct ck_buf b;
    get_range(s, 0, CK_STORE_TO_END, &b);
    ck_assert_uint_eq(b.len, strlen(want));
    ck_assert_mem_eq(b.data, want, b.len);
    ck_buf_free(&b);
}

START_TEST(test_create_only_on_missing_key)
{
    struct ck_store *s = open_store("claims/rank-0"); /* the folder is created too */
    struct ck_err err;
    ck_assert_msg(put_if_absent(s, "mine", &err) == CK_OK, "%s", err.msg);
    expect_content(s, "mine");
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/claims", root);
    ck_assert_int_eq(hidden_entries(dir), 0); /* the temp name is gone */
    struct stat st;
    snprintf(dir, sizeof(dir), "%s/claims/rank-0", root);
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_nlink, 1);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_on_existing_key)
{
    struct ck_store *s = open_store("claim");
    put_all(s, "old", 3);
    struct ck_err err;
    ck_assert_int_eq(put_if_absent(s, "new", &err), CK_EEXIST);
    char want[400];
    snprintf(want, sizeof(want), "PUT %s/claim: an object is already there", root);
    ck_assert_str_eq(err.msg, want);
    expect_content(s, "old");
    ck_assert_int_eq(hidden_entries(root), 0);
    /* Created create-only, then refused the same way. */
    struct ck_store *t = open_store("claim2");
    ck_assert_msg(put_if_absent(t, "first", &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(put_if_absent(t, "second", &err), CK_EEXIST);
    expect_content(t, "first");
    ck_store_close(t);
    ck_store_close(s);
}
END_TEST

START_TEST(test_plain_put_still_overwrites)
{
    struct ck_store *s = open_store("claim");
    struct ck_err err;
    ck_assert_msg(put_if_absent(s, "first", &err) == CK_OK, "%s", err.msg);
    put_all(s, "overwritten", 11);
    expect_content(s, "overwritten");
    ck_assert_int_eq(hidden_entries(root), 0);
    ck_store_close(s);
}
END_TEST

START_TEST(test_create_only_refuses_any_entry)
{
    /* A directory or a dangling symlink at the path is "something there" too. */
    char p[300];
    snprintf(p, sizeof(p), "%s/adir", root);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/dangling", root);
    ck_assert_int_eq(symlink("/nonexistent/target", p), 0);
    struct ck_err err;
    struct ck_store *s = open_store("adir");
    ck_assert_int_eq(put_if_absent(s, "x", &err), CK_EEXIST);
    ck_store_close(s);
    s = open_store("dangling");
    ck_assert_int_eq(put_if_absent(s, "x", &err), CK_EEXIST);
    struct stat st;
    ck_assert_int_eq(lstat(p, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(hidden_entries(root), 0);
    ck_store_close(s);
}
END_TEST

/* Begins a conditional replace of s with text written, expecting version. */
static struct ck_store_upload *begin_if_match(struct ck_store *s, const char *version,
                                              const char *text)
{
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN, .if_match = version};
    struct ck_store_upload *u;
    struct ck_err err;
    ck_assert_msg(ck_store_put_begin(s, &o, &u, &err) == CK_OK, "%s", err.msg);
    ck_assert_msg(ck_store_put_write(u, text, strlen(text), &err) == CK_OK, "%s", err.msg);
    return u;
}

static void version_of(struct ck_store *s, char out[128])
{
    struct ck_store_info info;
    struct ck_err err;
    ck_assert_msg(ck_store_head(s, &info, &err) == CK_OK, "%s", err.msg);
    ck_assert(info.exists);
    ck_assert_str_eq(info.version, info.etag);
    memcpy(out, info.version, 128);
}

START_TEST(test_conditional_replace)
{
    struct ck_store *s = open_store("dest");
    struct ck_err err;
    /* "": only where nothing is. */
    ck_assert_msg(ck_store_put_commit(begin_if_match(s, "", "gen 1"), &err) == CK_OK, "%s",
                  err.msg);
    ck_assert_int_eq(ck_store_put_commit(begin_if_match(s, "", "gen x"), &err), CK_EEXIST);
    expect_content(s, "gen 1");
    /* Two writers read the same version: the first commit wins, the second (a stale rank 0)
     * is refused and leaves nothing behind. */
    char v1[128];
    version_of(s, v1);
    struct ck_store_upload *a = begin_if_match(s, v1, "gen 3 (new rank 0)");
    struct ck_store_upload *b = begin_if_match(s, v1, "gen 2 (stale rank 0)");
    ck_assert_msg(ck_store_put_commit(a, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(ck_store_put_commit(b, &err), CK_EEXIST);
    char want[700];
    snprintf(want, sizeof(want), "PUT %s/dest: the object changed since it was read (If-Match: %s)",
             root, v1);
    ck_assert_str_eq(err.msg, want);
    expect_content(s, "gen 3 (new rank 0)");
    ck_assert_int_eq(hidden_entries(root), 0);
    /* The current version replaces; a deleted object is a change too. */
    char v3[128];
    version_of(s, v3);
    ck_assert_str_ne(v1, v3);
    ck_assert_msg(ck_store_put_commit(begin_if_match(s, v3, "gen 4"), &err) == CK_OK, "%s",
                  err.msg);
    expect_content(s, "gen 4");
    char v4[128];
    version_of(s, v4);
    char p[300];
    snprintf(p, sizeof(p), "%s/dest", root);
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(ck_store_put_commit(begin_if_match(s, v4, "gen 5"), &err), CK_EEXIST);
    ck_assert_int_eq(access(p, F_OK), -1);
    ck_assert_int_eq(hidden_entries(root), 0);
    ck_store_close(s);
}
END_TEST

START_TEST(test_delete)
{
    struct ck_store *s = open_store("gone");
    put_all(s, "shard", 5);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s/.gone.ckptfs-AbC123", root); /* a killed writer's */
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    char other[300];
    snprintf(other, sizeof(other), "%s/.gone2.ckptfs-AbC123", root); /* another key's */
    f = fopen(other, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    struct ck_err err;
    ck_assert_msg(ck_store_delete(s, &err) == CK_OK, "%s", err.msg);
    struct ck_store_info info;
    ck_assert_msg(ck_store_head(s, &info, &err) == CK_OK, "%s", err.msg);
    ck_assert(!info.exists);
    ck_assert_int_eq(access(tmp, F_OK), -1);
    ck_assert_int_eq(access(other, F_OK), 0);
    ck_assert_msg(ck_store_delete(s, &err) == CK_OK, "%s", err.msg);
    ck_store_close(s);
}
END_TEST

static Suite *store_file_suite(void)
{
    Suite *s = suite_create("store_file");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip_and_ranges);
    tcase_add_test(tc, test_range_past_end_refused);
    tcase_add_test(tc, test_missing);
    tcase_add_test(tc, test_directory_is_an_error);
    tcase_add_test(tc, test_abort_keeps_old);
    tcase_add_test(tc, test_failed_commit_keeps_old);
    tcase_add_test(tc, test_file_uri_and_empty_object);
    tcase_add_test(tc, test_open_refusals);
    tcase_add_test(tc, test_sink_error_stops_get);
    tcase_add_test(tc, test_create_only_on_missing_key);
    tcase_add_test(tc, test_create_only_on_existing_key);
    tcase_add_test(tc, test_plain_put_still_overwrites);
    tcase_add_test(tc, test_create_only_refuses_any_entry);
    tcase_add_test(tc, test_conditional_replace);
    tcase_add_test(tc, test_delete);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_file_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
