/* test_seek_index.c - the parallel block writer and the seek index: round trip, member
 * table, what every reader sees, and refusal of damaged or hostile indexes. */
#include <check.h>
#include <isa-l/crc.h>
#include <fcntl.h>
#include <zlib.h>

#include "archive/deflate_block.h"
#include "archive/gzip_writer.h"
#include "archive/pack.h"
#include "archive/seek_index.h"
#include "testutil.h"

struct mem {
    unsigned char *p;
    size_t len, cap;
};

static ck_rc mem_write(void *ctx, const void *buf, size_t n, struct ck_err *err)
{
    struct mem *m = ctx;
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->p = realloc(m->p, m->cap);
    }
    memcpy(m->p + m->len, buf, n);
    m->len += n;
    return CK_OK;
}

/* Writes an archive of dir with small blocks (many members) into m. */
static void write_archive(const char *dir, const char *codec, size_t block, struct mem *m,
                          struct ck_ix_builder **ixp)
{
    struct ck_err err;
    struct ck_sink out = {mem_write, m};
    struct ck_gzw_opts o = {.threads = 2, .block_size = block};
    ck_assert(ck_codec_parse(codec, &o.codec));
    struct ck_gzw *gz;
    ck_assert_int_eq(ck_gzw_new_opts(&o, &out, &gz, &err), CK_OK);
    struct ck_ix_builder *ix;
    ck_assert_int_eq(ck_ix_builder_new(&ix, &err), CK_OK);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    struct ck_sink in = ck_gzw_sink(gz);
    struct ck_pack_stats st;
    struct ck_pack_opts po = {.observe = ck_ix_builder_add, .observe_ctx = ix};
    ck_assert_int_eq(ck_pack_tar_ex(fd, &in, &po, &st, &err), CK_OK);
    close(fd);
    ck_assert_int_eq(ck_gzw_finish(gz, &err), CK_OK);
    size_t n;
    const struct ck_gzw_member *mem = ck_gzw_members(gz, &n);
    ck_assert_uint_gt(n, 3);
    ck_assert_int_eq(
        ck_ix_builder_write(ix, mem, n, st.tar_bytes, ck_gzw_bytes_out(gz), &out, &err), CK_OK);
    ck_gzw_free(gz);
    if (ixp)
        *ixp = ix;
    else
        ck_ix_builder_free(ix);
}

static void make_tree(char *dir, size_t len)
{
    tu_mkdtemp(dir, len);
    ck_assert_int_eq(tu_sh("cd %s && mkdir -p src/sub && head -c 300000 /dev/urandom > src/rnd && "
                           "yes 'checkpoint step 1200' | head -c 200000 > src/sub/text && "
                           "echo '{}' > src/a.json && ln -s sub/text src/link && : > src/empty",
                           dir),
                     0);
}

static ck_rc decode(const struct mem *m, struct ck_seek_index *ix, struct ck_err *err)
{
    struct ck_ix_locator loc;
    ck_rc rc = ck_ix_parse_locator(m->p, m->len, m->len, &loc, err);
    if (rc)
        return rc;
    return ck_ix_decode(m->p + loc.index_off, (size_t)loc.index_len, &loc, ix, err);
}

/* Inflates member i of m into out (in_len bytes). */
static void inflate_member(const struct mem *m, const struct ck_ix_member *mb, unsigned char *out)
{
    z_stream zs = {0};
    ck_assert_int_eq(inflateInit2(&zs, 31), Z_OK);
    zs.next_in = m->p + mb->out_off;
    zs.avail_in = mb->out_len;
    zs.next_out = out;
    zs.avail_out = mb->in_len;
    ck_assert_int_eq(inflate(&zs, Z_FINISH), Z_STREAM_END);
    ck_assert_uint_eq(zs.total_out, mb->in_len);
    ck_assert_uint_eq(zs.avail_in, 0);
    inflateEnd(&zs);
}

/* CRC-64/XZ, bit by bit (ECMA-182 polynomial, reflected, init and final xor all ones): the
 * member identity docs/format.md names, computed apart from ISA-L. */
static uint64_t crc64_xz(const unsigned char *p, size_t n)
{
    uint64_t c = ~(uint64_t)0;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0xC96C5795D7870F42ull : c >> 1;
    }
    return ~c;
}

START_TEST(test_round_trip_and_member_table)
{
    static const char *codecs[] = {"auto", "store", "gzip-1", "gzip-6"};
    char dir[64], src[128];
    make_tree(dir, sizeof(dir));
    snprintf(src, sizeof(src), "%s/src", dir);
    struct mem m = {0};
    write_archive(src, codecs[_i], 4096, &m, NULL);
    struct ck_seek_index ix;
    struct ck_err err;
    ck_assert_int_eq(decode(&m, &ix, &err), CK_OK);
    ck_assert_uint_eq(ix.nentries, 6); /* a.json empty link rnd sub sub/text */
    const struct ck_ix_entry *rnd = NULL;
    for (size_t i = 0; i < ix.nentries; i++)
        if (strcmp(ix.entries[i].name, "rnd") == 0)
            rnd = &ix.entries[i];
    ck_assert_ptr_nonnull(rnd);
    ck_assert_uint_eq(rnd->size, 300000);
    /* the members give back the file's bytes at data_off */
    unsigned char *tar = malloc(ix.tar_size);
    ck_assert(ix.member_ids);
    ck_assert_uint_eq(crc64_xz((const unsigned char *)"123456789", 9), 0x995DC9BBDF1939FAull);
    for (size_t i = 0; i < ix.nmembers; i++) {
        const struct ck_ix_member *mb = &ix.members[i];
        inflate_member(&m, mb, tar + mb->in_off);
        ck_assert_uint_eq(mb->crc32, crc32(0, tar + mb->in_off, mb->in_len));
        ck_assert_uint_eq(mb->crc64, crc64_xz(tar + mb->in_off, mb->in_len));
    }
    char p[160];
    snprintf(p, sizeof(p), "%s/rnd", src);
    FILE *f = fopen(p, "rb");
    unsigned char *want = malloc(300000);
    ck_assert_uint_eq(fread(want, 1, 300000, f), 300000);
    fclose(f);
    ck_assert_int_eq(memcmp(tar + rnd->data_off, want, 300000), 0);
    ck_assert_uint_eq(ck_ix_member_at(&ix, rnd->data_off + 5000), (rnd->data_off + 5000) / 4096);
    free(tar);
    free(want);
    ck_ix_free(&ix);
    /* every reader takes it as an ordinary tar.gz */
    snprintf(p, sizeof(p), "%s/obj.tgz", dir);
    f = fopen(p, "wb");
    fwrite(m.p, 1, m.len, f);
    fclose(f);
    ck_assert_int_eq(tu_sh("gzip -t %s/obj.tgz", dir), 0);
    ck_assert_int_eq(tu_sh("mkdir %s/g %s/b %s/p && tar -xzf %s/obj.tgz -C %s/g && "
                           "bsdtar -xf %s/obj.tgz -C %s/b && python3 -c 'import tarfile,sys; "
                           "tarfile.open(sys.argv[1]).extractall(sys.argv[2])' %s/obj.tgz %s/p && "
                           "diff -r %s/src %s/g && diff -r %s/src %s/b && diff -r %s/src %s/p",
                           dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir,
                           dir),
                     0);
    free(m.p);
    tu_rmdir(dir);
}
END_TEST

START_TEST(test_foreign_archive_has_no_index)
{
    char dir[64], p[128];
    make_tree(dir, sizeof(dir));
    ck_assert_int_eq(tu_sh("tar -czf %s/x.tgz -C %s src", dir, dir), 0);
    snprintf(p, sizeof(p), "%s/x.tgz", dir);
    FILE *f = fopen(p, "rb");
    unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    struct ck_ix_locator loc;
    struct ck_err err;
    ck_assert_int_eq(ck_ix_parse_locator(buf, n, n, &loc, &err), CK_ENOTFOUND);
    ck_assert_int_eq(ck_ix_parse_locator(buf, 10, 10, &loc, &err), CK_ENOTFOUND);
    tu_rmdir(dir);
}
END_TEST

/* An index built by hand around the entries given (names may be hostile). */
static void hostile_index(const struct ck_pack_entry *ents, size_t n, uint64_t tar_size,
                          struct mem *m)
{
    struct ck_err err;
    struct ck_ix_builder *ix;
    ck_assert_int_eq(ck_ix_builder_new(&ix, &err), CK_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(ck_ix_builder_add(ix, &ents[i], &err), CK_OK);
    /* one stored member of tar_size zero bytes */
    unsigned char *zero = calloc(1, tar_size), *member = malloc(ck_block_bound(tar_size));
    size_t mlen = ck_block_stored(zero, tar_size, crc32_gzip_refl(0, zero, tar_size), member,
                                  ck_block_bound(tar_size));
    struct ck_sink out = {mem_write, m};
    mem_write(m, member, mlen, &err);
    struct ck_gzw_member gm = {0, 0, (uint32_t)tar_size, (uint32_t)mlen, 0, 0};
    ck_assert_int_eq(ck_ix_builder_write(ix, &gm, 1, tar_size, mlen, &out, &err), CK_OK);
    ck_ix_builder_free(ix);
    free(zero);
    free(member);
}

START_TEST(test_hostile_indexes_are_refused)
{
    struct ck_pack_entry cases[][2] = {
        {{"../evil", S_IFREG | 0644, 0, 0, {0, 0}, 1, NULL, 512, NULL, 0, 0, 0}},
        {{"/abs", S_IFREG | 0644, 0, 0, {0, 0}, 1, NULL, 512, NULL, 0, 0, 0}},
        {{"a/../../x", S_IFREG | 0644, 0, 0, {0, 0}, 1, NULL, 512, NULL, 0, 0, 0}},
        {{"l", S_IFLNK | 0777, 0, 0, {0, 0}, 0, "/etc/passwd", 512, NULL, 0, 0, 0}},
        {{"l", S_IFLNK | 0777, 0, 0, {0, 0}, 0, "../x", 512, NULL, 0, 0, 0}},
        {{"big", S_IFREG | 0644, 0, 0, {0, 0}, 1ull << 40, NULL, 512, NULL, 0, 0, 0}},
        {{"f", S_IFREG | 0644, 0, 0, {0, 0}, 1, NULL, 512, NULL, 0, 0, 0},
         {"f", S_IFREG | 0644, 0, 0, {0, 0}, 1, NULL, 1024, NULL, 0, 0, 0}},
    };
    ck_rc want[] = {CK_EHOSTILE, CK_EHOSTILE, CK_EHOSTILE, CK_EHOSTILE,
                    CK_EHOSTILE, CK_ECORRUPT, CK_EHOSTILE};
    for (size_t c = 0; c < sizeof(want) / sizeof(want[0]); c++) {
        struct mem m = {0};
        hostile_index(cases[c], cases[c][1].name ? 2 : 1, 4096, &m);
        struct ck_seek_index ix;
        struct ck_err err;
        ck_err_clear(&err);
        ck_assert_int_eq(decode(&m, &ix, &err), want[c]);
        ck_assert_msg(strstr(err.msg, "seek index"), "case %zu: %s", c, err.msg);
        free(m.p);
    }
}
END_TEST

/* A sparse file (pax GNU.sparse 1.0): the index lists its data segments; its stored bytes
 * sit one after the other at data_off; every reader gets the file back. */
START_TEST(test_sparse_entry_round_trip)
{
    char dir[64], src[128], p[160];
    make_tree(dir, sizeof(dir));
    snprintf(src, sizeof(src), "%s/src", dir);
    snprintf(p, sizeof(p), "%s/holes", src);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    unsigned char a[5000], b[100];
    memset(a, 'a', sizeof(a));
    memset(b, 'b', sizeof(b));
    ck_assert_int_eq(pwrite(fd, a, sizeof(a), 1 << 20), sizeof(a));
    ck_assert_int_eq(pwrite(fd, b, sizeof(b), 3 << 20), sizeof(b));
    ck_assert_int_eq(ftruncate(fd, 8 << 20), 0);
    close(fd);
    struct mem m = {0};
    write_archive(src, "auto", 4096, &m, NULL);
    struct ck_seek_index ix;
    struct ck_err err;
    ck_assert_msg(decode(&m, &ix, &err) == CK_OK, "%s", err.msg);
    const struct ck_ix_entry *e = NULL;
    for (size_t i = 0; i < ix.nentries; i++)
        if (strcmp(ix.entries[i].name, "holes") == 0)
            e = &ix.entries[i];
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->type, CK_IX_SPARSE);
    ck_assert_uint_eq(e->size, 8 << 20);
    ck_assert_uint_eq(e->nsegs, 2);
    ck_assert_uint_eq(e->segs[0].off, 1 << 20);
    ck_assert_uint_eq(e->segs[1].off, 3 << 20);
    uint64_t stored = e->segs[0].len + e->segs[1].len;
    ck_assert_uint_eq(e->stored, stored);
    ck_assert_uint_lt(stored, 64 * 1024); /* the holes are not in the archive */
    unsigned char *tar = malloc(ix.tar_size);
    ck_assert(ix.member_ids);
    ck_assert_uint_eq(crc64_xz((const unsigned char *)"123456789", 9), 0x995DC9BBDF1939FAull);
    for (size_t i = 0; i < ix.nmembers; i++) {
        const struct ck_ix_member *mb = &ix.members[i];
        inflate_member(&m, mb, tar + mb->in_off);
        ck_assert_uint_eq(mb->crc32, crc32(0, tar + mb->in_off, mb->in_len));
        ck_assert_uint_eq(mb->crc64, crc64_xz(tar + mb->in_off, mb->in_len));
    }
    ck_assert_int_eq(memcmp(tar + e->data_off, a, sizeof(a)), 0);
    ck_assert_int_eq(memcmp(tar + e->data_off + e->segs[1].at, b, sizeof(b)), 0);
    /* logical <-> stored */
    uint64_t from, to, logical, run;
    ck_ix_stored_range(e, 0, 4096, &from, &to);
    ck_assert_uint_eq(from, to); /* a hole */
    ck_ix_stored_range(e, (1 << 20) + 10, 100, &from, &to);
    ck_assert_uint_eq(from, 10);
    ck_assert_uint_eq(to, 110);
    ck_ix_stored_range(e, 0, 8 << 20, &from, &to);
    ck_assert_uint_eq(from, 0);
    ck_assert_uint_eq(to, stored);
    ck_ix_stored_range(e, (2 << 20), (1 << 20) + 50, &from, &to); /* hole, then part of b's */
    ck_assert_uint_eq(from, e->segs[1].at);
    ck_assert_uint_eq(to, e->segs[1].at + 50);
    ck_ix_logical_at(e, e->segs[1].at + 7, &logical, &run);
    ck_assert_uint_eq(logical, (3 << 20) + 7);
    ck_assert_uint_eq(run, e->segs[1].len - 7);
    free(tar);
    ck_ix_free(&ix);
    snprintf(p, sizeof(p), "%s/obj.tgz", dir);
    FILE *f = fopen(p, "wb");
    fwrite(m.p, 1, m.len, f);
    fclose(f);
    ck_assert_int_eq(tu_sh("mkdir %s/g %s/b %s/p && tar -xzf %s/obj.tgz -C %s/g && "
                           "bsdtar -xf %s/obj.tgz -C %s/b && python3 -c 'import tarfile,sys; "
                           "tarfile.open(sys.argv[1]).extractall(sys.argv[2])' %s/obj.tgz %s/p && "
                           "diff -r %s/src %s/g && diff -r %s/src %s/b && diff -r %s/src %s/p",
                           dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir,
                           dir),
                     0);
    free(m.p);
    tu_rmdir(dir);
}
END_TEST

START_TEST(test_hostile_sparse_maps_are_refused)
{
    static const struct ck_pack_seg overlap[] = {{0, 100}, {50, 100}};
    static const struct ck_pack_seg outside[] = {{4000, 200}};
    static const struct ck_pack_seg empty[] = {{10, 0}};
    static const struct ck_pack_seg ok[] = {{10, 20}, {100, 20}};
    static const struct {
        const struct ck_pack_seg *segs;
        size_t n;
        uint64_t size, data_off;
        ck_rc want;
    } cases[] = {
        {overlap, 2, 4096, 512, CK_ECORRUPT},
        {outside, 1, 4096, 512, CK_ECORRUPT},
        {empty, 1, 4096, 512, CK_ECORRUPT},
        {ok, 2, 1ull << 40, 512, CK_OK},       /* a large logical size: only 40 bytes stored */
        {ok, 2, 4096, 4096 - 30, CK_ECORRUPT}, /* stored bytes beyond the archive */
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct ck_pack_entry e = {"s",           S_IFREG | 0644, 0,    0,
                                  {0, 0},        cases[c].size,  NULL, cases[c].data_off,
                                  cases[c].segs, cases[c].n,     0,    0};
        struct mem m = {0};
        hostile_index(&e, 1, 4096, &m);
        struct ck_seek_index ix;
        struct ck_err err;
        ck_err_clear(&err);
        ck_assert_msg(decode(&m, &ix, &err) == cases[c].want, "case %zu: %s", c, err.msg);
        if (cases[c].want == CK_OK)
            ck_ix_free(&ix);
        free(m.p);
    }
}
END_TEST

START_TEST(test_damaged_indexes_are_corrupt)
{
    char dir[64], src[128];
    make_tree(dir, sizeof(dir));
    snprintf(src, sizeof(src), "%s/src", dir);
    struct mem m = {0};
    write_archive(src, "auto", 4096, &m, NULL);
    struct ck_ix_locator loc;
    struct ck_err err;
    ck_assert_int_eq(ck_ix_parse_locator(m.p, m.len, m.len, &loc, &err), CK_OK);
    /* a flipped byte in the compressed index */
    m.p[loc.index_off + 20] ^= 1;
    struct ck_seek_index ix;
    ck_assert_int_eq(ck_ix_decode(m.p + loc.index_off, (size_t)loc.index_len, &loc, &ix, &err),
                     CK_ECORRUPT);
    m.p[loc.index_off + 20] ^= 1;
    /* a locator whose offsets do not add up */
    ck_assert_int_eq(ck_ix_parse_locator(m.p, m.len, m.len + 1, &loc, &err), CK_ECORRUPT);
    /* the wrong region */
    ck_assert_int_eq(ck_ix_parse_locator(m.p, m.len, m.len, &loc, &err), CK_OK);
    ck_assert_int_eq(ck_ix_decode(m.p, (size_t)loc.index_len, &loc, &ix, &err), CK_ECORRUPT);
    free(m.p);
    tu_rmdir(dir);
}
END_TEST

START_TEST(test_auto_never_expands_and_compresses_text)
{
    unsigned char *rnd = malloc(1 << 20), *txt = malloc(1 << 20);
    unsigned char *out = malloc(ck_block_bound(1 << 20));
    FILE *f = fopen("/dev/urandom", "rb");
    ck_assert_uint_eq(fread(rnd, 1, 1 << 20, f), 1 << 20);
    fclose(f);
    for (size_t i = 0; i < (1u << 20); i++)
        txt[i] = "loss=0.1234 step=99\n"[i % 20];
    struct ck_block_state *st;
    struct ck_err err;
    ck_assert_int_eq(ck_block_state_new(&st, &err), CK_OK);
    struct ck_codec a = {CK_CODEC_AUTO, 0};
    size_t r = ck_block_compress(st, &a, rnd, 1 << 20, crc32_gzip_refl(0, rnd, 1 << 20), out,
                                 ck_block_bound(1 << 20));
    ck_assert_uint_le(r, (1u << 20) + 18 + 5 * 17); /* stored: framing only */
    size_t t = ck_block_compress(st, &a, txt, 1 << 20, crc32_gzip_refl(0, txt, 1 << 20), out,
                                 ck_block_bound(1 << 20));
    ck_assert_uint_lt(t, (1u << 20) / 20);
    ck_block_state_free(st);
    free(rnd);
    free(txt);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("seek_index");
    TCase *tc = tcase_create("seek_index");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_round_trip_and_member_table, 0, 4);
    tcase_add_test(tc, test_foreign_archive_has_no_index);
    tcase_add_test(tc, test_hostile_indexes_are_refused);
    tcase_add_test(tc, test_damaged_indexes_are_corrupt);
    tcase_add_test(tc, test_sparse_entry_round_trip);
    tcase_add_test(tc, test_hostile_sparse_maps_are_refused);
    tcase_add_test(tc, test_auto_never_expands_and_compresses_text);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
