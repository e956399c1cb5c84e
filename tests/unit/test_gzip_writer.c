/* test_gzip_writer.c - every codec writes a gzip stream that zlib decodes to the input. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "archive/gzip_writer.h"
#include "archive_testutil.h"

static const char *const codecs[] = {"auto", "store", "gzip-1", "gzip-6", "gzip-9"};
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

/* Compresses data in pieces of step bytes with the named codec; returns the gzip bytes. */
static struct ck_buf gz_compress(const char *codec_name, const unsigned char *data, size_t n,
                                 size_t step, struct ck_gzw **keep)
{
    struct ck_codec c;
    ck_assert(ck_codec_parse(codec_name, &c));
    struct ck_buf out;
    ck_buf_init(&out, (size_t)1 << 30);
    struct ck_sink sink = {.write = t_buf_sink_write, .ctx = &out};
    struct ck_gzw *gz;
    struct ck_err err;
    ck_assert_int_eq(ck_gzw_new(&c, &sink, &gz, &err), CK_OK);
    for (size_t off = 0; off < n; off += step) {
        size_t len = n - off < step ? n - off : step;
        ck_assert_int_eq(ck_gzw_write(gz, data + off, len, &err), CK_OK);
    }
    ck_assert_int_eq(ck_gzw_finish(gz, &err), CK_OK);
    ck_assert_uint_eq(ck_gzw_bytes_in(gz), n);
    ck_assert_uint_eq(ck_gzw_bytes_out(gz), out.len);
    if (keep)
        *keep = gz;
    else
        ck_gzw_free(gz);
    return out;
}

/* Decodes a gzip stream with zlib and checks that it is exactly data. The stream may hold
 * several members (the parallel writer makes one per block), as RFC 1952 allows. */
static void check_gunzip(const struct ck_buf *gzdata, const unsigned char *data, size_t n)
{
    unsigned char *plain = malloc(n + 1);
    ck_assert_ptr_nonnull(plain);
    z_stream zs = {0};
    ck_assert_int_eq(inflateInit2(&zs, 31), Z_OK);
    zs.next_in = (unsigned char *)gzdata->data;
    zs.avail_in = (uInt)gzdata->len;
    zs.next_out = plain;
    zs.avail_out = (uInt)(n + 1);
    size_t members = 0;
    for (;;) {
        ck_assert_int_eq(inflate(&zs, Z_NO_FLUSH), Z_STREAM_END);
        members++; /* CRC and length of this member checked */
        if (zs.avail_in == 0)
            break;
        ck_assert_int_eq(inflateReset(&zs), Z_OK);
    }
    ck_assert_uint_ge(members, 1);
    ck_assert_uint_eq((size_t)(zs.next_out - plain), n);
    ck_assert(memcmp(plain, data, n) == 0);
    inflateEnd(&zs);
    free(plain);
}

START_TEST(test_round_trip_each_codec)
{
    size_t n = 5u * 1024 * 1024 + 123;
    unsigned char *data = t_bytes(n, 3);
    for (size_t i = 0; i < NCODECS; i++) {
        struct ck_buf out = gz_compress(codecs[i], data, n, 1000003, NULL);
        check_gunzip(&out, data, n);
        ck_buf_free(&out);
    }
    free(data);
}
END_TEST

START_TEST(test_small_writes_and_empty_input)
{
    unsigned char *data = t_bytes(100000, 4);
    for (size_t i = 0; i < NCODECS; i++) {
        struct ck_buf out = gz_compress(codecs[i], data, 100000, 7, NULL);
        check_gunzip(&out, data, 100000);
        ck_buf_free(&out);
        struct ck_buf empty = gz_compress(codecs[i], data, 0, 1, NULL);
        ck_assert_uint_gt(empty.len, 10); /* header and trailer */
        check_gunzip(&empty, data, 0);
        ck_buf_free(&empty);
    }
    free(data);
}
END_TEST

static unsigned char *random_bytes(size_t n)
{
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    unsigned long long x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (unsigned char)(x >> 32);
    }
    return b;
}

START_TEST(test_store_and_auto_never_expand)
{
    size_t n = 8u * 1024 * 1024;
    unsigned char *data = random_bytes(n);
    const char *names[] = {"store", "auto"};
    for (size_t i = 0; i < 2; i++) {
        struct ck_buf out = gz_compress(names[i], data, n, 1 << 20, NULL);
        check_gunzip(&out, data, n);
        /* stored blocks: 5 bytes per 64 KiB block, plus header and trailer */
        ck_assert_msg(out.len <= n + n / 1000 + 64, "%s: %zu bytes for %zu", names[i], out.len, n);
        ck_buf_free(&out);
    }
    free(data);
}
END_TEST

START_TEST(test_gzip_compresses_text)
{
    size_t n = 1u << 20;
    unsigned char *data = malloc(n);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)("all work and no play "[i % 21]);
    struct ck_buf g9 = gz_compress("gzip-9", data, n, n, NULL);
    struct ck_buf st = gz_compress("store", data, n, n, NULL);
    ck_assert_uint_lt(g9.len, n / 100);
    ck_assert_uint_gt(st.len, n); /* store really stores */
    ck_buf_free(&g9);
    ck_buf_free(&st);
    free(data);
}
END_TEST

static ck_rc refusing_sink(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    return ck_fail(err, CK_ENOSPC, "test sink: disk full");
}

START_TEST(test_sink_error_propagates)
{
    struct ck_codec c = {.kind = CK_CODEC_STORE};
    struct ck_sink sink = {.write = refusing_sink};
    struct ck_gzw *gz;
    struct ck_err err;
    ck_assert_int_eq(ck_gzw_new(&c, &sink, &gz, &err), CK_OK);
    size_t n = 8u << 20; /* several blocks */
    unsigned char *data = random_bytes(n);
    /* blocks are written by the caller's thread as they come back from the workers:
     * the sink's error shows at a write or, at the latest, at finish */
    ck_rc rc = ck_gzw_write(gz, data, n, &err);
    if (rc == CK_OK)
        rc = ck_gzw_finish(gz, &err);
    ck_assert_int_eq(rc, CK_ENOSPC);
    ck_assert_str_eq(err.msg, "test sink: disk full");
    ck_assert_int_eq(ck_gzw_write(gz, data, 1, &err), CK_EINVAL); /* only free after that */
    ck_assert_int_eq(ck_gzw_finish(gz, &err), CK_EINVAL);
    ck_gzw_free(gz);
    free(data);
}
END_TEST

START_TEST(test_write_after_finish_refused)
{
    struct ck_gzw *gz;
    struct ck_buf out = gz_compress("gzip-1", (const unsigned char *)"abc", 3, 3, &gz);
    struct ck_err err;
    ck_assert_int_eq(ck_gzw_write(gz, "x", 1, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "after finish"));
    ck_gzw_free(gz);
    ck_buf_free(&out);
}
END_TEST

/* Member boundaries where the caller asks (ck_gzw_cut_at): now, ahead of the input inside
 * a write, and refused behind the input or over a pending one. */
START_TEST(test_cut_at)
{
    const size_t n = 3 * CK_GZW_BLOCK + 5000;
    unsigned char *data = malloc(n);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 7 + i / 3);
    struct ck_codec c;
    ck_assert(ck_codec_parse("gzip-1", &c));
    struct ck_buf out;
    ck_buf_init(&out, (size_t)1 << 30);
    struct ck_sink sink = {.write = t_buf_sink_write, .ctx = &out};
    struct ck_gzw *gz;
    struct ck_err err;
    ck_assert_int_eq(ck_gzw_new(&c, &sink, &gz, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_write(gz, data, 100, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_cut_at(gz, 100, &err), CK_OK); /* now */
    ck_assert_int_eq(ck_gzw_cut_at(gz, 100, &err), CK_OK); /* nothing since: no empty member */
    ck_assert_int_eq(ck_gzw_cut_at(gz, 100 + 777, &err), CK_OK);     /* ahead */
    ck_assert_int_eq(ck_gzw_cut_at(gz, 100 + 999, &err), CK_EINVAL); /* one pending */
    ck_assert_int_eq(ck_gzw_write(gz, data + 100, n - 100, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_cut_at(gz, 5, &err), CK_EINVAL); /* behind the input */
    ck_assert_int_eq(ck_gzw_finish(gz, &err), CK_OK);
    size_t count;
    const struct ck_gzw_member *m = ck_gzw_members(gz, &count);
    ck_assert_uint_eq(count, 6); /* 100, 777, three full blocks, the rest */
    ck_assert_uint_eq(m[0].in_len, 100);
    ck_assert_uint_eq(m[1].in_off, 100);
    ck_assert_uint_eq(m[1].in_len, 777);
    ck_assert_uint_eq(m[2].in_off, 877);
    ck_assert_uint_eq(m[2].in_len, CK_GZW_BLOCK);
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        ck_assert_uint_eq(m[i].in_off, total);
        total += m[i].in_len;
    }
    ck_assert_uint_eq(total, n);
    check_gunzip(&out, data, n);
    ck_gzw_free(gz);
    ck_buf_free(&out);
    free(data);
}
END_TEST

/* The claim hook: blocks whose first byte is 'c' (4 of 6 here) reach the member hook as
 * their input with their CRCs and no member; the others compressed, in input order. */
static bool claim_c(const void *ctx, uint32_t in_len, uint32_t crc32, uint64_t crc64)
{
    (void)in_len;
    (void)crc64;
    const unsigned char *data = ctx; /* block k starts at k * CK_GZW_BLOCK */
    for (size_t k = 0; k < 6; k++)
        if (crc32 == crc32_z(0, data + k * CK_GZW_BLOCK, CK_GZW_BLOCK))
            return data[k * CK_GZW_BLOCK] == 'c';
    return false;
}

struct seen {
    size_t n, claimed;
    uint64_t in_off;
    const unsigned char *data;
};

static ck_rc see_member(void *ctx, const struct ck_gzw_member *m, const unsigned char *bytes,
                        const unsigned char *raw, struct ck_err *err)
{
    (void)err;
    struct seen *s = ctx;
    ck_assert_uint_eq(m->in_off, s->in_off);
    ck_assert(memcmp(raw, s->data + m->in_off, m->in_len) == 0);
    ck_assert_uint_eq(m->crc32, crc32_z(0, raw, m->in_len));
    if (!bytes) {
        ck_assert_int_eq(raw[0], 'c');
        ck_assert_uint_eq(m->out_len, 0);
        s->claimed++;
    } else {
        ck_assert_int_ne(raw[0], 'c');
        ck_assert_uint_gt(m->out_len, 18); /* a gzip member of its own */
        ck_assert_int_eq(bytes[0], 0x1f);
    }
    s->in_off += m->in_len;
    s->n++;
    return CK_OK;
}

START_TEST(test_claimed_blocks_are_not_compressed)
{
    const size_t n = 6 * (size_t)CK_GZW_BLOCK;
    unsigned char *data = malloc(n);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 13 + i / 5);
    const char first[6] = {'c', 'x', 'c', 'c', 'y', 'c'};
    for (size_t k = 0; k < 6; k++)
        data[k * CK_GZW_BLOCK] = (unsigned char)first[k];
    struct seen seen = {0, 0, 0, data};
    struct ck_gzw_opts o = {.codec = {CK_CODEC_GZIP, 1},
                            .member = see_member,
                            .member_ctx = &seen,
                            .claim = claim_c,
                            .claim_ctx = data};
    struct ck_buf out;
    ck_buf_init(&out, 1 << 20);
    struct ck_sink sink = {.write = t_buf_sink_write, .ctx = &out};
    struct ck_gzw *gz;
    struct ck_err err;
    ck_assert_int_eq(ck_gzw_new_opts(&o, &sink, &gz, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_write(gz, data, n, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_finish(gz, &err), CK_OK);
    ck_assert_uint_eq(seen.n, 6);
    ck_assert_uint_eq(seen.claimed, 4);
    ck_assert_uint_eq(out.len, 0); /* the member hook took everything */
    ck_gzw_free(gz);
    o.member = NULL; /* a claim hook alone is refused */
    ck_assert_int_eq(ck_gzw_new_opts(&o, &sink, &gz, &err), CK_EINVAL);
    ck_buf_free(&out);
    free(data);
}
END_TEST

/* Offsets the member hook saw, in order. */
struct offsets {
    uint64_t off[16], len[16];
    size_t n;
};

static ck_rc note_offsets(void *ctx, const struct ck_gzw_member *m, const unsigned char *bytes,
                          const unsigned char *raw, struct ck_err *err)
{
    (void)bytes;
    (void)raw;
    (void)err;
    struct offsets *o = ctx;
    ck_assert_uint_lt(o->n, 16);
    o->off[o->n] = m->in_off;
    o->len[o->n++] = m->in_len;
    return CK_OK;
}

/* ck_gzw_skip and ck_gzw_flush: every block before the skipped bytes reaches the member
 * hook before it returns; the input offset moves past them; a cut at their end is done, one inside
 * them refused, and so is a writer without a member hook. */
START_TEST(test_skip_hands_over_what_came_before)
{
    const size_t n = 3 * (size_t)CK_GZW_BLOCK;
    unsigned char *data = calloc(1, n);
    ck_assert_ptr_nonnull(data);
    struct offsets seen = {0};
    struct ck_gzw_opts o = {
        .codec = {CK_CODEC_GZIP, 1}, .member = note_offsets, .member_ctx = &seen};
    struct ck_buf out;
    ck_buf_init(&out, 1 << 20);
    struct ck_sink sink = {.write = t_buf_sink_write, .ctx = &out};
    struct ck_gzw *gz;
    struct ck_err err;
    uint64_t at = 0;
    const uint64_t before = CK_GZW_BLOCK + 100, skipped = 5 * (uint64_t)CK_GZW_BLOCK + 512;
    ck_assert_int_eq(ck_gzw_new_opts(&o, &sink, &gz, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_write(gz, data, before, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_cut_at(gz, before + 512, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_skip(gz, skipped, &at, &err), CK_EINVAL); /* the cut is inside */
    ck_gzw_free(gz);

    ck_assert_int_eq(ck_gzw_new_opts(&o, &sink, &gz, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_write(gz, data, before, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_cut_at(gz, before + skipped, &err), CK_OK); /* at its end */
    ck_assert_int_eq(ck_gzw_skip(gz, skipped, &at, &err), CK_OK);
    ck_assert_uint_eq(at, before);
    ck_assert_uint_eq(seen.n, 2); /* the full block and the 100 bytes, already handed over */
    ck_assert_uint_eq(seen.off[1], CK_GZW_BLOCK);
    ck_assert_uint_eq(seen.len[1], 100);
    ck_assert_int_eq(ck_gzw_write(gz, data, n - 10, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_flush(gz, &err), CK_OK); /* all of it handed over, cut short */
    ck_assert_uint_eq(seen.n, 5);
    ck_assert_uint_eq(seen.len[4], CK_GZW_BLOCK - 10);
    ck_assert_int_eq(ck_gzw_write(gz, data, 10, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_finish(gz, &err), CK_OK);
    ck_assert_uint_eq(seen.n, 6);
    ck_assert_uint_eq(seen.off[2], before + skipped); /* a block starts after the skip */
    ck_assert_uint_eq(seen.len[2], CK_GZW_BLOCK);
    ck_assert_uint_eq(seen.off[5], before + skipped + n - 10);
    ck_assert_uint_eq(ck_gzw_bytes_in(gz), before + skipped + n);
    ck_gzw_free(gz);

    struct ck_codec c = {CK_CODEC_GZIP, 1};
    ck_assert_int_eq(ck_gzw_new(&c, &sink, &gz, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_skip(gz, 10, &at, &err), CK_EINVAL); /* no member hook */
    ck_gzw_free(gz);
    ck_buf_free(&out);
    free(data);
}
END_TEST

START_TEST(test_sink_adapter)
{
    struct ck_codec c = {.kind = CK_CODEC_GZIP, .level = 6};
    struct ck_buf out;
    ck_buf_init(&out, 1 << 20);
    struct ck_sink sink = {.write = t_buf_sink_write, .ctx = &out};
    struct ck_gzw *gz;
    struct ck_err err;
    ck_assert_int_eq(ck_gzw_new(&c, &sink, &gz, &err), CK_OK);
    struct ck_sink in = ck_gzw_sink(gz);
    ck_assert_int_eq(ck_sink_write(&in, "hello, ", 7, &err), CK_OK);
    ck_assert_int_eq(ck_sink_write(&in, "world", 5, &err), CK_OK);
    ck_assert_int_eq(ck_gzw_finish(gz, &err), CK_OK);
    check_gunzip(&out, (const unsigned char *)"hello, world", 12);
    ck_gzw_free(gz);
    ck_buf_free(&out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gzip_writer");
    TCase *tc = tcase_create("gzip_writer");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_trip_each_codec);
    tcase_add_test(tc, test_small_writes_and_empty_input);
    tcase_add_test(tc, test_store_and_auto_never_expand);
    tcase_add_test(tc, test_gzip_compresses_text);
    tcase_add_test(tc, test_sink_error_propagates);
    tcase_add_test(tc, test_write_after_finish_refused);
    tcase_add_test(tc, test_sink_adapter);
    tcase_add_test(tc, test_cut_at);
    tcase_add_test(tc, test_claimed_blocks_are_not_compressed);
    tcase_add_test(tc, test_skip_hands_over_what_came_before);
    suite_add_tcase(s, tc);
    return t_run_suite(s);
}
