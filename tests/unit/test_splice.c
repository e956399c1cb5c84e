/*
 * test_splice.c - the splice's run logic on its own (save/splice.h): which members of a
 * new object are copied from the previous object and which are written, on file:// (whose
 * put_copy is copy_file_range). The previous object here is 24 members of 1 MiB with
 * made-up identities; the new members handed to the splice carry their own bytes, shorter
 * and different from the previous object's, so the output shows which way each went.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "archive/deflate_block.h"
#include "save/splice.h"
#include "testutil.h"

#define NPREV   24
#define PREV_SZ (1u << 20) /* bytes of each previous member in the object */
#define OWN_SZ  1000u      /* bytes of each member the gzip writer hands over */

struct fixture {
    char dir[64], prev_path[128], dest_path[128];
    unsigned char *prev; /* the previous object's bytes */
    struct ck_store *prev_store, *dest;
    struct ck_splice_src *src;
    struct ck_store_upload *u;
    struct ck_sink sink;
    struct ck_splice *sp;
    unsigned char *want; /* what the new object must hold */
    size_t want_len;
    uint64_t in_off;
};

static uint32_t id32(unsigned i)
{
    return 0x9e370000u + i;
}

static uint64_t id64(unsigned i)
{
    return 0xc0ffee0000ull * (i + 1) + i;
}

static void write_prev(struct fixture *f, unsigned char fill_base)
{
    for (unsigned i = 0; i < NPREV; i++)
        memset(f->prev + (size_t)i * PREV_SZ, fill_base + i, PREV_SZ);
    FILE *o = fopen(f->prev_path, "wb");
    ck_assert_ptr_nonnull(o);
    ck_assert_uint_eq(fwrite(f->prev, 1, (size_t)NPREV * PREV_SZ, o), (size_t)NPREV * PREV_SZ);
    fclose(o);
}

static void setup(struct fixture *f, bool with_src)
{
    struct ck_err err;
    static struct ck_store_env env;
    ck_store_env_default(&env);
    memset(f, 0, sizeof(*f));
    tu_mkdtemp(f->dir, sizeof(f->dir));
    snprintf(f->prev_path, sizeof(f->prev_path), "%s/prev.tgz", f->dir);
    snprintf(f->dest_path, sizeof(f->dest_path), "%s/new.tgz", f->dir);
    f->prev = malloc((size_t)NPREV * PREV_SZ);
    f->want = malloc((size_t)64 * PREV_SZ);
    ck_assert_ptr_nonnull(f->prev);
    ck_assert_ptr_nonnull(f->want);
    write_prev(f, 'A');
    ck_assert_int_eq(ck_store_open(f->prev_path, &env, &f->prev_store, &err), CK_OK);
    ck_assert_int_eq(ck_store_open(f->dest_path, &env, &f->dest, &err), CK_OK);
    if (with_src) {
        struct ck_store_info info;
        ck_assert_int_eq(ck_store_head(f->prev_store, &info, &err), CK_OK);
        struct ck_seek_index ix = {.member_ids = true, .nmembers = NPREV};
        ix.members = calloc(NPREV, sizeof(*ix.members));
        for (unsigned i = 0; i < NPREV; i++)
            ix.members[i] = (struct ck_ix_member){(uint64_t)i * (PREV_SZ + 7),
                                                  (uint64_t)i * PREV_SZ,
                                                  PREV_SZ + 7,
                                                  PREV_SZ,
                                                  id32(i),
                                                  id64(i)};
        const char *version = info.version[0] ? info.version : info.etag;
        ck_assert_int_eq(ck_splice_src_new(f->prev_store, version, info.size, &ix, &f->src, &err),
                         CK_OK);
    }
    ck_assert_int_eq(ck_store_put_begin(f->dest, NULL, &f->u, &err), CK_OK);
    f->sink = ck_store_upload_sink(f->u);
    struct ck_codec store = {CK_CODEC_STORE, 0};
    ck_assert_int_eq(ck_splice_new(f->u, &f->sink, &store, f->src, &f->sp, &err), CK_OK);
}

static void teardown(struct fixture *f)
{
    ck_splice_free(f->sp);
    ck_splice_src_free(f->src);
    ck_store_close(f->prev_store);
    ck_store_close(f->dest);
    free(f->prev);
    free(f->want);
    tu_rmdir(f->dir);
}

/* Hands over a member with previous member i's identity (i < 0: a new one) and its own
 * bytes; written says whether the new object must hold those bytes here. */
static ck_rc hand(struct fixture *f, int i, unsigned char fill, bool written, struct ck_err *err)
{
    unsigned char own[OWN_SZ];
    memset(own, fill, sizeof(own));
    struct ck_gzw_member m = {f->in_off, 0, PREV_SZ + 7, OWN_SZ, 0, 0};
    if (i >= 0) {
        m.crc32 = id32((unsigned)i);
        m.crc64 = id64((unsigned)i);
    } else {
        m.in_len = 999;
        m.crc32 = 1;
        m.crc64 = (uint64_t)fill;
    }
    f->in_off += m.in_len;
    if (written) {
        memcpy(f->want + f->want_len, own, OWN_SZ);
        f->want_len += OWN_SZ;
    }
    return ck_splice_member(f->sp, &m, own, own, err);
}

/* Hands over previous member i's identity the way the gzip writer does when its claim hook
 * took the block: no member, the block's input bytes (filled with fill). written: the new
 * object must hold them here, as the member the splice compresses (the store codec). */
static ck_rc hand_claimed(struct fixture *f, unsigned i, unsigned char fill, bool written,
                          struct ck_err *err)
{
    const uint32_t in_len = PREV_SZ + 7;
    ck_assert(ck_splice_claim(f->src, in_len, id32(i), id64(i)));
    unsigned char *raw = malloc(in_len);
    ck_assert_ptr_nonnull(raw);
    memset(raw, fill, in_len);
    struct ck_gzw_member m = {f->in_off, 0, in_len, 0, id32(i), id64(i)};
    f->in_off += in_len;
    if (written)
        f->want_len +=
            ck_block_stored(raw, in_len, id32(i), f->want + f->want_len, ck_block_bound(in_len));
    ck_rc rc = ck_splice_member(f->sp, &m, NULL, raw, err);
    free(raw);
    return rc;
}

/* Previous members first..last, each of which the new object must hold copied (the run
 * reaches CK_SPLICE_MIN) or written from the bytes handed over. */
static void hand_run(struct fixture *f, int first, int last, bool copied)
{
    struct ck_err err;
    for (int i = first; i <= last; i++)
        ck_assert_int_eq(hand(f, i, (unsigned char)('a' + i), !copied, &err), CK_OK);
    if (copied) {
        size_t len = (size_t)(last - first + 1) * PREV_SZ;
        memcpy(f->want + f->want_len, f->prev + (size_t)first * PREV_SZ, len);
        f->want_len += len;
    }
}

static void check_object(struct fixture *f)
{
    FILE *in = fopen(f->dest_path, "rb");
    ck_assert_ptr_nonnull(in);
    unsigned char *got = malloc(f->want_len + 1);
    size_t n = fread(got, 1, f->want_len + 1, in);
    fclose(in);
    ck_assert_uint_eq(n, f->want_len);
    ck_assert(memcmp(got, f->want, n) == 0);
    free(got);
}

/* Ends the splice and the upload, checks the object and returns what the splice did. */
static void finish(struct fixture *f, struct ck_splice_stats *st)
{
    struct ck_err err;
    ck_assert_int_eq(ck_splice_finish(f->sp, &err), CK_OK);
    ck_assert_int_eq(ck_store_put_commit(f->u, &err), CK_OK);
    f->u = NULL;
    check_object(f);
    ck_splice_get_stats(f->sp, st);
}

/* Blocks the gzip writer did not compress: a long run of them is copied, a short one
 * compressed by the splice and written; the member table has the written members' real
 * lengths. */
START_TEST(test_claimed_blocks_are_copied_or_compressed_late)
{
    struct fixture f;
    struct ck_err err;
    setup(&f, true);
    ck_assert(!ck_splice_claim(f.src, PREV_SZ + 7, 1, 2)); /* an identity it lacks */
    ck_assert(!ck_splice_claim(f.src, 0, id32(0), id64(0)));
    for (unsigned i = 0; i < 10; i++) /* 10 MiB: copied */
        ck_assert_int_eq(hand_claimed(&f, i, 'x', false, &err), CK_OK);
    memcpy(f.want + f.want_len, f.prev, (size_t)10 * PREV_SZ);
    f.want_len += (size_t)10 * PREV_SZ;
    ck_assert_int_eq(hand(&f, -1, 'n', true, &err), CK_OK);         /* new: written */
    ck_assert_int_eq(hand_claimed(&f, 12, 'y', true, &err), CK_OK); /* 2 MiB: written */
    ck_assert_int_eq(hand(&f, 13, 'm', true, &err), CK_OK);         /* (compressed already) */
    ck_assert_int_eq(hand_claimed(&f, 3, 'z', true, &err), CK_OK);  /* ends at finish */
    struct ck_splice_stats st;
    finish(&f, &st);
    ck_assert_uint_eq(st.copies, 1);
    ck_assert_uint_eq(st.claimed, 12);
    ck_assert_uint_eq(st.claimed_compressed, 2);
    size_t n;
    const struct ck_gzw_member *m = ck_splice_members(f.sp, &n);
    ck_assert_uint_eq(n, 14);
    uint64_t out = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(m[i].out_off, out);
        ck_assert_uint_ne(m[i].out_len, 0);
        out += m[i].out_len;
    }
    ck_assert_uint_eq(out, f.want_len);
    /* gzip header and trailer, the bytes, 5 bytes per stored block of at most 65535 */
    ck_assert_uint_eq(m[11].out_len, 18 + (PREV_SZ + 7) + 5 * ((PREV_SZ + 7 + 65534) / 65535));
    teardown(&f);
}
END_TEST

/* Members placed unread (a file unchanged since the previous save): they continue a
 * pending run or start one, are copied, and sit in the member table like any copied
 * member. Placed only where the run is sure to be copied: 8 MiB of their own, or with the
 * run they continue; a range past the object or of other bytes is not there to place. */
START_TEST(test_placed_members_are_copied_unread)
{
    struct fixture f;
    struct ck_err err;
    setup(&f, true);
    const uint64_t in_len = PREV_SZ + 7;
    hand_run(&f, 0, 1, true); /* held until the placed members make the run long */
    ck_assert(ck_splice_src_holds(f.src, 2, 8, 8 * in_len));
    ck_assert(!ck_splice_can_place(f.sp, 2, 1)); /* 3 MiB in all */
    ck_assert(ck_splice_can_place(f.sp, 2, 6));  /* 8 MiB with the two held */
    ck_assert(!ck_splice_can_place(f.sp, 3, 6)); /* does not continue the run */
    ck_assert_int_eq(ck_splice_place(f.sp, 2, 8, f.in_off, 8 * in_len, &err), CK_OK);
    f.in_off += 8 * in_len;
    memcpy(f.want + f.want_len, f.prev + 2 * (size_t)PREV_SZ, (size_t)8 * PREV_SZ);
    f.want_len += (size_t)8 * PREV_SZ;
    ck_assert_int_eq(hand(&f, -1, 'n', true, &err), CK_OK);
    ck_assert(!ck_splice_src_holds(f.src, 14, 9, 9 * in_len - 1)); /* not those bytes */
    ck_assert(!ck_splice_src_holds(f.src, 20, 9, 9 * in_len));     /* past the end */
    ck_assert(!ck_splice_can_place(f.sp, 12, 2));                  /* 2 MiB, a new run */
    ck_assert_int_eq(ck_splice_place(f.sp, 12, 2, f.in_off, 2 * in_len, &err), CK_EINVAL);
    ck_assert_int_eq(ck_splice_place(f.sp, 14, 9, f.in_off, 9 * in_len, &err), CK_OK);
    f.in_off += 9 * in_len;
    ck_assert(ck_splice_can_place(f.sp, 23, 1)); /* continues a run that is copied */
    ck_assert_int_eq(ck_splice_place(f.sp, 23, 1, f.in_off, in_len, &err), CK_OK);
    memcpy(f.want + f.want_len, f.prev + 14 * (size_t)PREV_SZ, (size_t)10 * PREV_SZ);
    f.want_len += (size_t)10 * PREV_SZ;
    struct ck_splice_stats st;
    finish(&f, &st);
    ck_assert_uint_eq(st.copies, 2);
    ck_assert_uint_eq(st.reused_members, 20);
    ck_assert_uint_eq(st.placed_files, 3);
    ck_assert_uint_eq(st.placed_bytes, 18 * in_len);
    size_t n;
    const struct ck_gzw_member *m = ck_splice_members(f.sp, &n);
    ck_assert_uint_eq(n, 21);
    uint64_t in = 0, out = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(m[i].in_off, in);
        ck_assert_uint_eq(m[i].out_off, out);
        in += m[i].in_len;
        out += m[i].out_len;
    }
    ck_assert_uint_eq(m[2].crc64, id64(2));
    ck_assert_uint_eq(m[11].crc64, id64(14));
    teardown(&f);
}
END_TEST

START_TEST(test_long_runs_are_copied_short_ones_written)
{
    struct fixture f;
    struct ck_err err;
    setup(&f, true);
    ck_assert_int_eq(hand(&f, -1, 'n', true, &err), CK_OK); /* new: written */
    hand_run(&f, 0, 9, true);                               /* 10 MiB: copied */
    hand_run(&f, 12, 14, false);                            /* 3 MiB: written */
    hand_run(&f, 20, 20, false);                            /* 5 is not after 20 */
    hand_run(&f, 5, 5, false);                              /* and 15 not after 5 */
    hand_run(&f, 15, 23, true);                             /* 9 MiB, ends at finish */
    struct ck_splice_stats st;
    finish(&f, &st);
    ck_assert_uint_eq(st.copies, 2);
    ck_assert_uint_eq(st.reused_members, 19);
    ck_assert_uint_eq(st.reused_bytes, 19ull * PREV_SZ);
    /* the member table: every member in order, out offsets where the bytes now sit */
    size_t n;
    const struct ck_gzw_member *m = ck_splice_members(f.sp, &n);
    ck_assert_uint_eq(n, 25);
    uint64_t out = 0, in = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(m[i].out_off, out);
        ck_assert_uint_eq(m[i].in_off, in);
        out += m[i].out_len;
        in += m[i].in_len;
    }
    ck_assert_uint_eq(out, f.want_len);
    ck_assert_uint_eq(ck_splice_bytes_out(f.sp), f.want_len);
    ck_assert_uint_eq(m[1].out_len, PREV_SZ); /* a copied member has its old length */
    ck_assert_uint_eq(m[1].crc64, id64(0));
    ck_assert_uint_eq(m[11].out_len, OWN_SZ); /* a written one its own */
    teardown(&f);
}
END_TEST

START_TEST(test_files_are_counted_by_what_became_of_their_members)
{
    struct fixture f;
    struct ck_err err;
    setup(&f, true);
    const uint64_t l = PREV_SZ + 7, base = 999; /* matched members' tar bytes; the new one's */
    ck_assert_int_eq(hand(&f, -1, 'n', true, &err), CK_OK); /* tar [0, 999): new */
    hand_run(&f, 0, 9, true);                               /* copied */
    hand_run(&f, 12, 14, false);                            /* unchanged, run too short */
    const uint64_t files[][2] = {
        {0, 500},                   /* in the new member: changed */
        {base + 5, 2 * l},          /* in copied members: reused */
        {base + 10 * l - 100, 200}, /* copied, then short: sent again */
        {base + 11 * l, 50},        /* short */
        {base + 12 * l + 5, 10},    /* short */
        {base + 13 * l - 1, 0},     /* no data: not counted */
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        ck_assert_int_eq(ck_splice_add_file(f.sp, files[i][0], files[i][1], &err), CK_OK);
    struct ck_splice_stats st;
    finish(&f, &st);
    ck_assert_uint_eq(st.files_changed, 1);
    ck_assert_uint_eq(st.files_reused, 1);
    ck_assert_uint_eq(st.files_short, 3);
    teardown(&f);
}
END_TEST

START_TEST(test_without_a_source_every_member_is_written)
{
    struct fixture f;
    setup(&f, false);
    hand_run(&f, 0, 11, false);
    struct ck_splice_stats st;
    finish(&f, &st);
    ck_assert_uint_eq(st.copies, 0);
    teardown(&f);
}
END_TEST

START_TEST(test_a_source_that_changed_fails_the_copy)
{
    struct fixture f;
    struct ck_err err;
    setup(&f, true);
    hand_run(&f, 0, 9, true);
    sleep(1);            /* another mtime, whatever the file system's granularity */
    write_prev(&f, 'a'); /* the previous object replaced after its index was read */
    ck_rc rc = ck_splice_finish(f.sp, &err);
    ck_assert_int_eq(rc, CK_EEXIST);
    ck_assert_ptr_nonnull(strstr(err.msg, "the source changed"));
    ck_store_put_abort(f.u);
    f.u = NULL;
    teardown(&f);
}
END_TEST

START_TEST(test_an_index_without_member_identities_is_nothing_to_reuse)
{
    struct ck_err err;
    struct ck_seek_index ix = {.member_ids = false, .nmembers = 1};
    ix.members = calloc(1, sizeof(*ix.members));
    struct ck_splice_src *src = NULL;
    ck_assert_int_eq(ck_splice_src_new(NULL, "v", 100, &ix, &src, &err), CK_ENOTFOUND);
    ck_assert_ptr_null(src);
    ck_assert_ptr_null(ix.members);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("splice");
    TCase *tc = tcase_create("runs");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_long_runs_are_copied_short_ones_written);
    tcase_add_test(tc, test_placed_members_are_copied_unread);
    tcase_add_test(tc, test_claimed_blocks_are_copied_or_compressed_late);
    tcase_add_test(tc, test_files_are_counted_by_what_became_of_their_members);
    tcase_add_test(tc, test_without_a_source_every_member_is_written);
    tcase_add_test(tc, test_a_source_that_changed_fails_the_copy);
    tcase_add_test(tc, test_an_index_without_member_identities_is_nothing_to_reuse);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
