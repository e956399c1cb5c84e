/* test_pack.c - the tar writer: names, order, metadata, refusals, and real readers. */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "archive/pack.h"
#include "archive_testutil.h"

#define LONGNAME                                                                                   \
    "a-very-long-file-name-that-is-longer-than-the-one-hundred-bytes-of-a-ustar-name-field-"       \
    "so-it-needs-pax.bin"
#define UTF8NAME                                                                                   \
    "\xc3\xbcn\xc3\xaf"                                                                            \
    "c\xc3\xb6"                                                                                    \
    "d\xc3\xa9-\xe5\x90\x8d\xe5\x89\x8d.txt"
#define LONGDIR "sub/inner/d-with-a-long-path-component-to-push-the-full-name-past-one-hundred"

/* Packs dir into memory; returns the rc and leaves the tar in out. */
static ck_rc pack_mem(const char *dir, struct ck_buf *out, struct ck_pack_stats *st,
                      struct ck_err *err)
{
    ck_buf_init(out, (size_t)1 << 30);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dfd, 0);
    struct ck_sink sink = {.write = t_buf_sink_write, .ctx = out};
    ck_rc rc = ck_pack_tar(dfd, &sink, st, err);
    close(dfd);
    return rc;
}

static struct archive *open_tar_mem(const struct ck_buf *tar)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    ck_assert_int_eq(archive_read_open_memory(a, tar->data, tar->len), ARCHIVE_OK);
    return a;
}

START_TEST(test_names_order_and_metadata)
{
    char root[256];
    t_tmpdir(root, sizeof(root));
    t_make_tree(root);
    struct ck_buf tar;
    struct ck_pack_stats st;
    struct ck_err err;
    ck_assert_int_eq(pack_mem(root, &tar, &st, &err), CK_OK);
    static const char *const expect[] = {
        LONGNAME,      "empty",    "emptydir",  "latest", "model.pt",       "name with spaces.txt",
        "run.sh",      "sub",      "sub/inner", LONGDIR,  LONGDIR "/z.dat", "sub/inner/up",
        "sub/inner/y", "sub/link", "sub/x",     UTF8NAME};
    /* read in C.UTF-8: in the C locale libarchive cannot give a UTF-8 name in any form */
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    ck_assert(utf8 != (locale_t)0);
    locale_t saved = uselocale(utf8);
    struct archive *a = open_tar_mem(&tar);
    struct archive_entry *e;
    size_t i = 0;
    uint64_t data = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        /* directories carry the conventional trailing slash, as with GNU tar and Python */
        char name[1024];
        snprintf(name, sizeof(name), "%s", archive_entry_pathname_utf8(e));
        size_t len = strlen(name);
        ck_assert_int_eq(len > 0 && name[len - 1] == '/', archive_entry_filetype(e) == AE_IFDIR);
        if (archive_entry_filetype(e) == AE_IFDIR)
            name[len - 1] = '\0';
        ck_assert_uint_lt(i, sizeof(expect) / sizeof(expect[0]));
        ck_assert_str_eq(name, expect[i]);
        ck_assert_int_eq(archive_entry_uid(e), getuid());
        ck_assert_int_eq(archive_entry_gid(e), getgid());
        ck_assert(archive_entry_uname(e) == NULL || archive_entry_uname(e)[0] == '\0');
        if (strcmp(name, "sub") == 0) {
            ck_assert_int_eq(archive_entry_filetype(e), AE_IFDIR);
            ck_assert_int_eq(archive_entry_perm(e), 0750);
            ck_assert_int_eq(archive_entry_mtime(e), T_MTIME - 3000);
        } else if (strcmp(name, "sub/link") == 0) {
            ck_assert_int_eq(archive_entry_filetype(e), AE_IFLNK);
            ck_assert_str_eq(archive_entry_symlink(e), "x");
        } else if (strcmp(name, "sub/inner/y") == 0) {
            ck_assert_int_eq(archive_entry_perm(e), 0700);
            ck_assert_int_eq(archive_entry_size(e), 3);
            ck_assert_int_eq(archive_entry_mtime(e), T_MTIME + 3);
        } else if (strcmp(name, "model.pt") == 0) {
            ck_assert_int_eq(archive_entry_size(e), 3 * 1024 * 1024 + 17);
        }
        data += (uint64_t)archive_entry_size(e);
        i++;
    }
    ck_assert_uint_eq(i, sizeof(expect) / sizeof(expect[0]));
    ck_assert_uint_eq(st.entries, i);
    ck_assert_uint_eq(st.file_bytes, data);
    ck_assert_uint_eq(st.tar_bytes, tar.len);
    archive_read_free(a);
    uselocale(saved);
    freelocale(utf8);
    ck_buf_free(&tar);
    t_rm_rf(root);
}
END_TEST

START_TEST(test_nanoseconds_kept_in_pax_entries)
{
    char root[256];
    t_tmpdir(root, sizeof(root));
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, LONGNAME);
    t_write(p, "n", 1, 0644);
    t_mtime(p, T_MTIME, 123456789);
    struct ck_buf tar;
    struct ck_err err;
    ck_assert_int_eq(pack_mem(root, &tar, NULL, &err), CK_OK);
    struct archive *a = open_tar_mem(&tar);
    struct archive_entry *e;
    ck_assert_int_eq(archive_read_next_header(a, &e), ARCHIVE_OK);
    ck_assert_int_eq(archive_entry_mtime(e), T_MTIME);
    ck_assert_int_eq(archive_entry_mtime_nsec(e), 123456789);
    archive_read_free(a);
    ck_buf_free(&tar);
    t_rm_rf(root);
}
END_TEST

START_TEST(test_empty_tree_has_no_entries)
{
    char root[256];
    t_tmpdir(root, sizeof(root));
    struct ck_buf tar;
    struct ck_pack_stats st;
    struct ck_err err;
    ck_assert_int_eq(pack_mem(root, &tar, &st, &err), CK_OK);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_ge(tar.len, 1024); /* the end-of-archive marker */
    struct archive *a = open_tar_mem(&tar);
    struct archive_entry *e;
    ck_assert_int_eq(archive_read_next_header(a, &e), ARCHIVE_EOF);
    archive_read_free(a);
    /* Python agrees: a tar with no members */
    char path[512];
    snprintf(path, sizeof(path), "%s.tar", root);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_eq(write(fd, tar.data, tar.len), (ssize_t)tar.len);
    close(fd);
    ck_assert_int_eq(t_sh("python3 -c 'import sys,tarfile; t=tarfile.open(sys.argv[1]); "
                          "sys.exit(len(t.getmembers()))' '%s'",
                          path),
                     0);
    unlink(path);
    ck_buf_free(&tar);
    t_rm_rf(root);
}
END_TEST

static void note_skip(void *ctx, const char *name, const char *why)
{
    struct ck_buf *b = ctx;
    ck_assert_int_eq(ck_buf_printf(b, "%s: %s\n", name, why), 0);
}

/* What readers refuse is left out with its reason: a fifo, an absolute symlink, one that
 * climbs out of the tree; a symlink that climbs but stays inside is kept. */
START_TEST(test_unarchivable_entries_are_left_out_and_named)
{
    char root[256], p[512];
    t_tmpdir(root, sizeof(root));
    t_dir(root, "sub", 0755);
    t_file(root, "sub/w", "w", 1, 0644);
    snprintf(p, sizeof(p), "%s/sub/fifo", root);
    ck_assert_int_eq(mkfifo(p, 0644), 0);
    snprintf(p, sizeof(p), "%s/abs", root);
    ck_assert_int_eq(symlink("/etc/hostname", p), 0);
    snprintf(p, sizeof(p), "%s/sub/out", root);
    ck_assert_int_eq(symlink("../../etc/passwd", p), 0);
    snprintf(p, sizeof(p), "%s/sub/in", root);
    ck_assert_int_eq(symlink("../sub/w", p), 0);
    struct ck_buf tar, notes;
    ck_buf_init(&tar, (size_t)1 << 30);
    ck_buf_init(&notes, 1 << 20);
    int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct ck_sink sink = {.write = t_buf_sink_write, .ctx = &tar};
    struct ck_pack_opts opts = {.skipped = note_skip, .skipped_ctx = &notes};
    struct ck_pack_stats st;
    struct ck_err err;
    ck_assert_int_eq(ck_pack_tar_ex(dfd, &sink, &opts, &st, &err), CK_OK);
    close(dfd);
    ck_assert_uint_eq(st.skipped, 3);
    ck_assert_uint_eq(st.entries, 3); /* sub, sub/in, sub/w */
    ck_assert_msg(strstr(notes.data, "abs: a symlink to '/etc/hostname'") &&
                      strstr(notes.data, "sub/fifo: a fifo") &&
                      strstr(notes.data, "sub/out: a symlink to '../../etc/passwd'"),
                  "%s", notes.data);
    struct archive *a = open_tar_mem(&tar);
    struct archive_entry *e;
    const char *want[] = {"sub/", "sub/in", "sub/w"}; /* libarchive shows dirs with "/" */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(archive_read_next_header(a, &e), ARCHIVE_OK);
        ck_assert_str_eq(archive_entry_pathname(e), want[i]);
    }
    ck_assert_int_eq(archive_read_next_header(a, &e), ARCHIVE_EOF);
    archive_read_free(a);
    ck_buf_free(&tar);
    ck_buf_free(&notes);
    t_rm_rf(root);
}
END_TEST

START_TEST(test_hard_links_become_regular_files)
{
    char root[256], a[512], b[512];
    t_tmpdir(root, sizeof(root));
    t_file(root, "a", "shared\n", 7, 0644);
    snprintf(a, sizeof(a), "%s/a", root);
    snprintf(b, sizeof(b), "%s/b", root);
    ck_assert_int_eq(link(a, b), 0);
    struct ck_buf tar;
    struct ck_err err;
    ck_assert_int_eq(pack_mem(root, &tar, NULL, &err), CK_OK);
    struct archive *ar = open_tar_mem(&tar);
    struct archive_entry *e;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(archive_read_next_header(ar, &e), ARCHIVE_OK);
        ck_assert_int_eq(archive_entry_filetype(e), AE_IFREG);
        ck_assert_ptr_null(archive_entry_hardlink(e));
        ck_assert_int_eq(archive_entry_size(e), 7);
    }
    archive_read_free(ar);
    ck_buf_free(&tar);
    t_rm_rf(root);
}
END_TEST

/* skip_data: leaves out "b", after checking the inode it names. */
struct skip_b {
    uint64_t data_off;
    ino_t ino;
    unsigned asked;
};

static ck_rc skip_b(void *ctx, const struct ck_pack_entry *e, bool *skip, struct ck_err *err)
{
    (void)err;
    struct skip_b *k = ctx;
    k->asked++;
    *skip = strcmp(e->name, "b") == 0;
    if (*skip) {
        ck_assert_uint_eq(e->ino, k->ino);
        k->data_off = e->data_off;
    }
    return CK_OK;
}

/* A file the caller has already (skip_data) is not read: its data and padding are left
 * out of what the sink receives, and the tar offsets count them as if they were there. */
START_TEST(test_skipped_data_never_reaches_the_sink)
{
    char root[256], path[512];
    t_tmpdir(root, sizeof(root));
    char data[5000];
    memset(data, 'a', sizeof(data));
    t_file(root, "a", data, 3000, 0644);
    memset(data, 'b', sizeof(data));
    t_file(root, "b", data, 5000, 0644);
    t_file(root, "c", "cc", 2, 0644);
    snprintf(path, sizeof(path), "%s/b", root);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    struct ck_buf full, part;
    struct ck_pack_stats st_full, st_part;
    struct ck_err err;
    ck_assert_int_eq(pack_mem(root, &full, &st_full, &err), CK_OK);
    ck_buf_init(&part, (size_t)1 << 30);
    struct skip_b k = {0, sb.st_ino, 0};
    struct ck_pack_opts po = {.skip_data = skip_b, .skip_ctx = &k};
    struct ck_sink sink = {.write = t_buf_sink_write, .ctx = &part};
    int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_eq(ck_pack_tar_ex(dfd, &sink, &po, &st_part, &err), CK_OK);
    close(dfd);
    ck_assert_uint_eq(k.asked, 3);
    ck_assert_uint_eq(st_part.tar_bytes, st_full.tar_bytes);
    ck_assert_uint_eq(part.len, full.len - 5120); /* 5000 bytes padded to 512 */
    ck_assert(memcmp(part.data, full.data, k.data_off) == 0);
    ck_assert(memcmp(part.data + k.data_off, full.data + k.data_off + 5120,
                     full.len - k.data_off - 5120) == 0);
    ck_buf_free(&full);
    ck_buf_free(&part);
    t_rm_rf(root);
}
END_TEST

struct limited {
    size_t left;
};

static ck_rc limited_sink(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    struct limited *l = ctx;
    if (len > l->left)
        return ck_fail(err, CK_ENOSPC, "test sink: full");
    l->left -= len;
    return CK_OK;
}

START_TEST(test_sink_error_stops_the_walk)
{
    char root[256];
    t_tmpdir(root, sizeof(root));
    t_make_tree(root);
    int dfd = open(root, O_RDONLY | O_DIRECTORY);
    struct limited l = {.left = 100000};
    struct ck_sink sink = {.write = limited_sink, .ctx = &l};
    struct ck_err err;
    ck_assert_int_eq(ck_pack_tar(dfd, &sink, NULL, &err), CK_ENOSPC);
    ck_assert_str_eq(err.msg, "test sink: full");
    close(dfd);
    t_rm_rf(root);
}
END_TEST

/* pack + gzip with codec, then extract with a real reader and compare with the source. */
static void check_reader(const char *codec, const char *reader_fmt, const char *cmp_opts)
{
    char root[256], src[512], out[512], file[512];
    t_tmpdir(root, sizeof(root));
    snprintf(src, sizeof(src), "%s/src", root);
    snprintf(out, sizeof(out), "%s/out", root);
    snprintf(file, sizeof(file), "%s/ckpt.tar.gz", root);
    ck_assert_int_eq(mkdir(src, 0755), 0);
    ck_assert_int_eq(mkdir(out, 0755), 0);
    t_make_tree(src);
    struct ck_err err;
    ck_assert_int_eq(t_pack_file(src, file, codec, NULL, &err), CK_OK);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), reader_fmt, file, out);
    ck_assert_msg(t_sh("%s", cmd) == 0, "reader failed: %s", cmd);
    ck_assert_msg(t_treecmp(src, out, cmp_opts) == 0, "trees differ after: %s", cmd);
    t_rm_rf(root);
}

START_TEST(test_python_data_filter_reads_it)
{
    static const char *const codecs[] = {"auto", "store", "gzip-9"};
    /* Python < 3.11.4 has no data filter: read with plain extractall() there (see
     * tests/CMakeLists.txt; CI requires the filter). */
    const char *filter = getenv("CK_PY_DATA_FILTER");
    bool with_filter = !filter || strcmp(filter, "0") != 0;
    check_reader(codecs[_i],
                 with_filter ? "python3 -c 'import sys,tarfile; tarfile.open(sys.argv[1], \"r:*\")"
                               ".extractall(sys.argv[2], filter=\"data\")' '%s' '%s'"
                             : "python3 -c 'import sys,tarfile; tarfile.open(sys.argv[1], \"r:*\")"
                               ".extractall(sys.argv[2])' '%s' '%s'",
                 "--no-dir-modes");
}
END_TEST

START_TEST(test_gnu_tar_reads_it)
{
    check_reader("auto", "tar -xzf '%s' -C '%s'", "");
}
END_TEST

START_TEST(test_bsdtar_reads_it)
{
    check_reader("gzip-6", "bsdtar -xpf '%s' -C '%s'", "");
}
END_TEST

START_TEST(test_gzip_t_accepts_it)
{
    char root[256], src[512], file[512];
    t_tmpdir(root, sizeof(root));
    snprintf(src, sizeof(src), "%s/src", root);
    snprintf(file, sizeof(file), "%s/ckpt.tar.gz", root);
    ck_assert_int_eq(mkdir(src, 0755), 0);
    t_make_tree(src);
    struct ck_err err;
    ck_assert_int_eq(t_pack_file(src, file, "store", NULL, &err), CK_OK);
    ck_assert_int_eq(t_sh("gzip -t '%s'", file), 0);
    t_rm_rf(root);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pack");
    TCase *tc = tcase_create("pack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_names_order_and_metadata);
    tcase_add_test(tc, test_nanoseconds_kept_in_pax_entries);
    tcase_add_test(tc, test_empty_tree_has_no_entries);
    tcase_add_test(tc, test_unarchivable_entries_are_left_out_and_named);
    tcase_add_test(tc, test_hard_links_become_regular_files);
    tcase_add_test(tc, test_sink_error_stops_the_walk);
    tcase_add_loop_test(tc, test_python_data_filter_reads_it, 0, 3);
    tcase_add_test(tc, test_gnu_tar_reads_it);
    tcase_add_test(tc, test_bsdtar_reads_it);
    tcase_add_test(tc, test_gzip_t_accepts_it);
    tcase_add_test(tc, test_skipped_data_never_reaches_the_sink);
    suite_add_tcase(s, tc);
    return t_run_suite(s);
}
