/*
 * test_extract.c - objects into trees: round trips, archives written by other tools, the
 * tar/payload/none decision, and every hostile fixture of tests/tools/mkarchives.py.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "archive/extract.h"
#include "archive_testutil.h"

static const struct ck_extract_limits big_limits = {
    .max_entry_size = (uint64_t)1 << 40,
    .max_total_size = (uint64_t)1 << 41,
    .max_entries = 1000000,
};

/* A scratch area: root/{src,dest,sentinel,fx}; fx holds the mkarchives.py fixtures. */
struct area {
    char root[256], src[512], dest[512], sentinel[512], fx[512];
};

static void area_make(struct area *a, int fixtures)
{
    t_tmpdir(a->root, sizeof(a->root));
    snprintf(a->src, sizeof(a->src), "%s/src", a->root);
    snprintf(a->dest, sizeof(a->dest), "%s/dest", a->root);
    snprintf(a->sentinel, sizeof(a->sentinel), "%s/sentinel", a->root);
    snprintf(a->fx, sizeof(a->fx), "%s/fx", a->root);
    ck_assert_int_eq(mkdir(a->src, 0755), 0);
    ck_assert_int_eq(mkdir(a->dest, 0755), 0);
    ck_assert_int_eq(mkdir(a->sentinel, 0755), 0);
    if (fixtures)
        ck_assert_int_eq(t_sh("python3 '%s/mkarchives.py' '%s'", t_tools(), a->fx), 0);
}

/* Extracts the object at path into a->dest. */
static ck_rc extract_path(struct area *a, const char *path, const struct ck_extract_limits *lim,
                          enum ck_object_kind *kind, struct ck_extract_stats *st,
                          struct ck_err *err)
{
    int ofd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(ofd >= 0, "open %s", path);
    int dfd = open(a->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dfd, 0);
    ck_err_clear(err);
    ck_rc rc = ck_extract_object(ofd, dfd, lim, kind, st, err);
    close(dfd);
    close(ofd);
    return rc;
}

static ck_rc extract_fixture(struct area *a, const char *name, enum ck_object_kind *kind,
                             struct ck_err *err)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", a->fx, name);
    return extract_path(a, path, &big_limits, kind, NULL, err);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Open descriptors of this process, to prove that no error path leaks one. */
static int count_fds(void)
{
    return count_entries("/proc/self/fd") - 1; /* minus opendir's own */
}

static void read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "open %s", path);
    ssize_t n = read(fd, buf, cap - 1);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    close(fd);
}

/* ---- round trips and other writers ------------------------------------------------------ */

START_TEST(test_round_trip_each_codec)
{
    static const char *const codecs[] = {"auto", "store", "gzip-9"};
    struct area a;
    area_make(&a, 0);
    t_make_tree(a.src);
    char obj[1024];
    snprintf(obj, sizeof(obj), "%s/obj", a.root);
    struct ck_err err;
    struct ck_pack_stats ps;
    ck_assert_int_eq(t_pack_file(a.src, obj, codecs[_i], &ps, &err), CK_OK);
    enum ck_object_kind kind;
    struct ck_extract_stats st;
    ck_assert_msg(extract_path(&a, obj, &big_limits, &kind, &st, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(kind, CK_KIND_TAR);
    ck_assert_uint_eq(st.entries, ps.entries);
    ck_assert_uint_eq(st.bytes, ps.file_bytes);
    ck_assert_int_eq(t_treecmp(a.src, a.dest, "--mtime-ns"), 0);
    t_rm_rf(a.root);
}
END_TEST

/* Builds an archive of a.src with a shell command (%s = object path, then source dir),
 * extracts it and compares the trees. */
static void check_foreign(const char *make_fmt, const char *opts)
{
    struct area a;
    area_make(&a, 0);
    t_make_tree(a.src);
    char obj[1024], cmd[4096];
    snprintf(obj, sizeof(obj), "%s/obj", a.root);
    snprintf(cmd, sizeof(cmd), make_fmt, obj, a.src);
    ck_assert_msg(t_sh("%s", cmd) == 0, "failed: %s", cmd);
    enum ck_object_kind kind;
    struct ck_err err;
    ck_assert_msg(extract_path(&a, obj, &big_limits, &kind, NULL, &err) == CK_OK, "%s: %s", cmd,
                  err.msg);
    ck_assert_int_eq(kind, CK_KIND_TAR);
    ck_assert_msg(t_treecmp(a.src, a.dest, opts) == 0, "trees differ for: %s", cmd);
    t_rm_rf(a.root);
}

START_TEST(test_reads_flyte_sdk_archives)
{
    /* flyte-sdk's _tar_directory_to_file(): "w:gz" (level 9), sorted top-level children */
    check_foreign("python3 -c 'import sys,tarfile,pathlib\n"
                  "with tarfile.open(sys.argv[1], \"w:gz\") as tar:\n"
                  "    for child in sorted(pathlib.Path(sys.argv[2]).iterdir()):\n"
                  "        tar.add(child, arcname=child.name, recursive=True)' '%s' '%s'",
                  "");
}
END_TEST

START_TEST(test_reads_gnu_tar_formats)
{
    static const char *const cmds[] = {
        "tar -cjf '%s' -C '%s' .", /* bzip2, "./" prefixes */
        "tar -cJf '%s' -C '%s' .", /* xz */
        "tar -cf '%s' -C '%s' .",  /* plain */
        "tar -czf '%s' -C '%s' .", /* gzip */
        "tar --format=posix -cf '%s' -C '%s' .",
        "bsdtar -cf '%s' -C '%s' .",
    };
    check_foreign(cmds[_i], "");
}
END_TEST

/* A 64 MiB file with 5000 bytes at 1 MiB and 100 at 40 MiB, the rest holes. */
static void make_sparse(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    char a[5000], b[100];
    memset(a, 'a', sizeof(a));
    memset(b, 'b', sizeof(b));
    ck_assert_int_eq(pwrite(fd, a, sizeof(a), 1 << 20), (ssize_t)sizeof(a));
    ck_assert_int_eq(pwrite(fd, b, sizeof(b), 40 << 20), (ssize_t)sizeof(b));
    ck_assert_int_eq(ftruncate(fd, 64 << 20), 0);
    close(fd);
}

static long long allocated(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 64 << 20);
    return (long long)st.st_blocks * 512;
}

/* Holes are not read when packed, and stay holes when extracted (the archive itself still
 * stores their zeros); a pax sparse entry (GNU tar -S) extracts sparse too. */
START_TEST(test_sparse_files_stay_sparse)
{
    struct area a;
    area_make(&a, 0);
    make_sparse(a.src, "sparse.bin");
    ck_assert_int_lt(allocated(a.src, "sparse.bin"), 1 << 20);
    char obj[1024];
    snprintf(obj, sizeof(obj), "%s/obj", a.root);
    struct ck_err err;
    struct ck_pack_stats ps;
    ck_assert_int_eq(t_pack_file(a.src, obj, "auto", &ps, &err), CK_OK);
    ck_assert_uint_eq(ps.file_bytes, 64 << 20);
    enum ck_object_kind kind;
    ck_assert_msg(extract_path(&a, obj, &big_limits, &kind, NULL, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(t_treecmp(a.src, a.dest, ""), 0);
    long long got = allocated(a.dest, "sparse.bin");
    ck_assert_msg(got < 1 << 20, "extracted with %lld bytes allocated", got);
    t_rm_rf(a.dest);
    ck_assert_int_eq(mkdir(a.dest, 0755), 0);
    ck_assert_int_eq(t_sh("tar -S --format=posix -czf '%s' -C '%s' .", obj, a.src), 0);
    ck_assert_msg(extract_path(&a, obj, &big_limits, &kind, NULL, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(t_treecmp(a.src, a.dest, ""), 0);
    got = allocated(a.dest, "sparse.bin");
    ck_assert_msg(got < 1 << 20, "GNU sparse entry extracted with %lld bytes allocated", got);
    t_rm_rf(a.root);
}
END_TEST

/* ---- kind decision ---------------------------------------------------------------------- */

START_TEST(test_kind_decisions)
{
    static const struct {
        const char *fixture;
        enum ck_object_kind kind;
        int entries; /* in dest afterwards */
    } cases[] = {
        {"raw.bin", CK_KIND_PAYLOAD, 0},        {"short.bin", CK_KIND_PAYLOAD, 0},
        {"gzip_nontar.gz", CK_KIND_PAYLOAD, 0}, {"gzip_empty.gz", CK_KIND_PAYLOAD, 0},
        {"empty.tar", CK_KIND_TAR, 0},          {"zero_block.bin", CK_KIND_TAR, 0},
    };
    struct area a;
    area_make(&a, 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum ck_object_kind kind = CK_KIND_NONE;
        struct ck_err err;
        ck_assert_msg(extract_fixture(&a, cases[i].fixture, &kind, &err) == CK_OK, "%s: %s",
                      cases[i].fixture, err.msg);
        ck_assert_msg(kind == cases[i].kind, "%s: kind %s", cases[i].fixture,
                      ck_object_kind_name(kind));
        ck_assert_int_eq(count_entries(a.dest), cases[i].entries);
    }
    /* an empty object is no checkpoint at all */
    char empty[1024];
    snprintf(empty, sizeof(empty), "%s/empty.obj", a.root);
    t_write(empty, "", 0, 0644);
    enum ck_object_kind kind = CK_KIND_TAR;
    struct ck_err err;
    ck_assert_int_eq(extract_path(&a, empty, &big_limits, &kind, NULL, &err), CK_OK);
    ck_assert_int_eq(kind, CK_KIND_NONE);
    ck_assert_str_eq(ck_object_kind_name(CK_KIND_NONE), "none");
    ck_assert_str_eq(ck_object_kind_name(CK_KIND_TAR), "tar");
    ck_assert_str_eq(ck_object_kind_name(CK_KIND_PAYLOAD), "payload");
    /* Python agrees on each of these */
    ck_assert_int_eq(t_sh("cd '%s' && python3 -c 'import tarfile,sys\n"
                          "for n,w in [(\"raw.bin\",0),(\"short.bin\",0),(\"gzip_nontar.gz\",0),"
                          "(\"gzip_empty.gz\",0),(\"empty.tar\",1),(\"zero_block.bin\",1)]:\n"
                          "    sys.exit(1) if tarfile.is_tarfile(n) != bool(w) else None'",
                          a.fx),
                     0);
    t_rm_rf(a.root);
}
END_TEST

/* ---- hostile and damaged input ---------------------------------------------------------- */

static const struct {
    const char *fixture;
    ck_rc rc;
    const char *in_msg; /* must appear in the message */
} bad[] = {
    {"dotdot.tar.gz", CK_EHOSTILE, "archive entry '../evil'"},
    {"inner_dotdot.tar.gz", CK_EHOSTILE, "archive entry 'a/../../evil'"},
    {"absolute.tar.gz", CK_EHOSTILE, "archive entry '/abs/evil': absolute"},
    {"symlink_abs.tar.gz", CK_EHOSTILE, "archive entry 'link': symlink target is absolute"},
    {"symlink_up.tar.gz", CK_EHOSTILE, "archive entry 'sub/link': symlink target leaves"},
    {"symlink_chain.tar.gz", CK_EHOSTILE, "archive entry 'x': symlink target has '..' after"},
    {"dot_then_dotdot.tar.gz", CK_EHOSTILE, "archive entry 'link/../../evil'"},
    {"dot_then_through.tar.gz", CK_EHOSTILE, "archive entry 'link/evil': path goes through"},
    {"tmp_then_through.tar.gz", CK_EHOSTILE, "archive entry 'd': symlink target is absolute"},
    {"hardlink_abs.tar.gz", CK_EHOSTILE, "archive entry 'x': hard link target: absolute"},
    {"hardlink_up.tar.gz", CK_EHOSTILE, "archive entry 'x': hard link target: name has a '..'"},
    {"hardlink_missing.tar.gz", CK_EHOSTILE, "archive entry 'x': hard link target is not"},
    {"hardlink_symlink.tar.gz", CK_EHOSTILE, "archive entry 'x': hard link target is not"},
    {"chardev.tar.gz", CK_EHOSTILE, "archive entry 'tty': device"},
    {"fifo.tar.gz", CK_EHOSTILE, "archive entry 'pipe': fifo"},
    {"huge.tar.gz", CK_EHOSTILE, "archive entry 'big': entry size exceeds"},
    {"truncated.tar.gz", CK_ECORRUPT, "archive entry 'data': gzip stream truncated"},
    {"truncated.tar", CK_ECORRUPT, "archive entry 'data'"},
    {"small_cut.tar.gz", CK_ECORRUPT, "first archive entry: gzip stream truncated"},
    {"small_cut.tar.bz2", CK_ECORRUPT, "first archive entry: truncated bzip2 input"},
    {"small_cut.tar.xz", CK_ECORRUPT, "first archive entry: Lzma library error"},
    {"bitflip.tar.gz", CK_ECORRUPT, "gzip"},
    {"crcflip.tar.gz", CK_ECORRUPT, "incorrect data check"},
    {"badsum.tar", CK_ECORRUPT, "archive entry after 'a.txt'"},
    {"dup_dir_file.tar.gz", CK_EHOSTILE, "archive entry 'd': would replace a directory"},
};

START_TEST(test_hostile_fixture)
{
    struct area a;
    area_make(&a, 1);
    unlink("/tmp/evil");
    enum ck_object_kind kind;
    struct ck_err err;
    int fds = count_fds();
    ck_rc rc = extract_fixture(&a, bad[_i].fixture, &kind, &err);
    ck_assert_int_eq(count_fds(), fds);
    ck_assert_msg(rc == bad[_i].rc, "%s: rc %s, message: %s", bad[_i].fixture, ck_strerror(rc),
                  err.msg);
    ck_assert_msg(strstr(err.msg, bad[_i].in_msg), "%s: message '%s' lacks '%s'", bad[_i].fixture,
                  err.msg, bad[_i].in_msg);
    ck_assert_int_eq(kind, CK_KIND_TAR);
    /* nothing outside dest: root holds exactly src, dest, sentinel, fx, and sentinel is empty */
    ck_assert_int_eq(count_entries(a.root), 4);
    ck_assert_int_eq(count_entries(a.sentinel), 0);
    ck_assert_int_ne(access("/tmp/evil", F_OK), 0);
    ck_assert_int_ne(access("/abs", F_OK), 0);
    t_rm_rf(a.root);
}
END_TEST

/* A gzip tar cut anywhere past its magic is damaged, never a payload or a partial tree. */
START_TEST(test_every_cut_is_an_error)
{
    struct area a;
    area_make(&a, 1);
    char whole[1024], cut[1024];
    snprintf(whole, sizeof(whole), "%s/small.tar.gz", a.fx);
    snprintf(cut, sizeof(cut), "%s/cut.tar.gz", a.root);
    struct stat sb;
    ck_assert_int_eq(stat(whole, &sb), 0);
    for (off_t n = 2; n < sb.st_size; n++) {
        ck_assert_int_eq(t_sh("head -c %lld '%s' >'%s'", (long long)n, whole, cut), 0);
        enum ck_object_kind kind;
        struct ck_err err;
        ck_rc rc = extract_path(&a, cut, &big_limits, &kind, NULL, &err);
        ck_assert_msg(rc == CK_ECORRUPT, "cut at %lld: rc %s (%s)", (long long)n, ck_strerror(rc),
                      err.msg);
        ck_assert_msg(strstr(err.msg, "gzip stream truncated"), "cut at %lld: '%s'", (long long)n,
                      err.msg);
        ck_assert_int_eq(kind, CK_KIND_TAR);
        t_rm_rf(a.dest);
        ck_assert_int_eq(mkdir(a.dest, 0755), 0);
    }
    t_rm_rf(a.root);
}
END_TEST

START_TEST(test_limits)
{
    struct area a;
    area_make(&a, 0);
    t_make_tree(a.src);
    char obj[1024];
    snprintf(obj, sizeof(obj), "%s/obj", a.root);
    struct ck_err err;
    ck_assert_int_eq(t_pack_file(a.src, obj, "auto", NULL, &err), CK_OK);
    struct ck_extract_limits lim = big_limits;
    enum ck_object_kind kind;
    lim.max_entries = 3;
    ck_assert_int_eq(extract_path(&a, obj, &lim, &kind, NULL, &err), CK_EHOSTILE);
    ck_assert_msg(strstr(err.msg, "more entries than the limit"), "%s", err.msg);
    lim = big_limits;
    lim.max_entry_size = 1024 * 1024;
    ck_assert_int_eq(extract_path(&a, obj, &lim, &kind, NULL, &err), CK_EHOSTILE);
    ck_assert_msg(strstr(err.msg, "archive entry 'model.pt': entry size exceeds"), "%s", err.msg);
    lim = big_limits;
    lim.max_total_size = 3 * 1024 * 1024;
    ck_assert_int_eq(extract_path(&a, obj, &lim, &kind, NULL, &err), CK_EHOSTILE);
    ck_assert_msg(strstr(err.msg, "total size exceeds"), "%s", err.msg);
    t_rm_rf(a.root);
}
END_TEST

/* ---- accepted oddities ------------------------------------------------------------------ */

START_TEST(test_duplicates_later_wins)
{
    struct area a;
    area_make(&a, 1);
    enum ck_object_kind kind;
    struct ck_err err;
    char p[1024], buf[64];
    ck_assert_msg(extract_fixture(&a, "dup_file.tar.gz", &kind, &err) == CK_OK, "%s", err.msg);
    snprintf(p, sizeof(p), "%s/f", a.dest);
    read_file(p, buf, sizeof(buf));
    ck_assert_str_eq(buf, "second");
    ck_assert_msg(extract_fixture(&a, "dir_over_file.tar.gz", &kind, &err) == CK_OK, "%s", err.msg);
    snprintf(p, sizeof(p), "%s/d/x", a.dest);
    read_file(p, buf, sizeof(buf));
    ck_assert_str_eq(buf, "x");
    t_rm_rf(a.root);
}
END_TEST

START_TEST(test_links_names_and_trailing_data)
{
    struct area a;
    area_make(&a, 1);
    enum ck_object_kind kind;
    struct ck_err err;
    char p[1024], q[1024], buf[64];
    ck_assert_msg(extract_fixture(&a, "good_links.tar.gz", &kind, &err) == CK_OK, "%s", err.msg);
    snprintf(p, sizeof(p), "%s/sub/l3", a.dest); /* sub/l3 -> ../l2 -> sub/f */
    read_file(p, buf, sizeof(buf));
    ck_assert_str_eq(buf, "target");
    struct stat s1, s2;
    snprintf(p, sizeof(p), "%s/h", a.dest);
    snprintf(q, sizeof(q), "%s/sub/f", a.dest);
    ck_assert_int_eq(stat(p, &s1), 0);
    ck_assert_int_eq(stat(q, &s2), 0);
    ck_assert_uint_eq(s1.st_ino, s2.st_ino); /* a real hard link */
    ck_assert_msg(extract_fixture(&a, "dotslash.tar.gz", &kind, &err) == CK_OK, "%s", err.msg);
    snprintf(p, sizeof(p), "%s/a/b", a.dest);
    read_file(p, buf, sizeof(buf));
    ck_assert_str_eq(buf, "b");
    ck_assert_msg(extract_fixture(&a, "gzip_trailing.tar.gz", &kind, &err) == CK_OK, "%s", err.msg);
    snprintf(p, sizeof(p), "%s/f", a.dest);
    read_file(p, buf, sizeof(buf));
    ck_assert_str_eq(buf, "ok");
    t_rm_rf(a.root);
}
END_TEST

START_TEST(test_mode_bits_masked)
{
    struct area a;
    area_make(&a, 0);
    char obj[1024];
    snprintf(obj, sizeof(obj), "%s/obj.tar", a.root);
    ck_assert_int_eq(t_sh("python3 -c 'import io,sys,tarfile\n"
                          "with tarfile.open(sys.argv[1], \"w\") as t:\n"
                          "    for n,m,ty in [(\"ro\",0o1555,tarfile.DIRTYPE),"
                          "(\"ro/s\",0o6755,tarfile.REGTYPE)]:\n"
                          "        i=tarfile.TarInfo(n); i.mode=m; i.type=ty; i.mtime=1234567\n"
                          "        t.addfile(i, io.BytesIO(b\"\"))' '%s'",
                          obj),
                     0);
    enum ck_object_kind kind;
    struct ck_err err;
    ck_assert_msg(extract_path(&a, obj, &big_limits, &kind, NULL, &err) == CK_OK, "%s", err.msg);
    struct stat st;
    char p[1024];
    snprintf(p, sizeof(p), "%s/ro", a.dest);
    ck_assert_int_eq(lstat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0555);
    ck_assert_int_eq(st.st_mtime, 1234567); /* set after its child was created */
    snprintf(p, sizeof(p), "%s/ro/s", a.dest);
    ck_assert_int_eq(lstat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0755);
    t_sh("chmod -R u+w '%s'", a.dest);
    t_rm_rf(a.root);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("extract");
    TCase *tc = tcase_create("extract");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_round_trip_each_codec, 0, 3);
    tcase_add_test(tc, test_sparse_files_stay_sparse);
    tcase_add_test(tc, test_reads_flyte_sdk_archives);
    tcase_add_loop_test(tc, test_reads_gnu_tar_formats, 0, 6);
    tcase_add_test(tc, test_kind_decisions);
    tcase_add_loop_test(tc, test_hostile_fixture, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, test_every_cut_is_an_error);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_duplicates_later_wins);
    tcase_add_test(tc, test_links_names_and_trailing_data);
    tcase_add_test(tc, test_mode_bits_masked);
    suite_add_tcase(s, tc);
    return t_run_suite(s);
}
