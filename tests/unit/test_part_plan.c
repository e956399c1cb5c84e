/* test_part_plan.c - the part plan of uploads in parts (store/part_upload.h) from one byte
 * to each store's largest object: every object fits the store's part count, and the parts
 * in memory never take more than the memory budget (--memory-limit); larger ones are
 * spooled to the cache disk, a bounded number at a time. */
#include <check.h>
#include <stdint.h>

#include "store/azure/azure.h"
#include "store/gcs/gcs.h"
#include "store/part_upload.h"
#include "store/s3/s3_config.h"
#include "testutil.h"

#define MiB (1ull << 20)
#define TiB (1ull << 40)

struct store_limits {
    const char *name;
    uint64_t min_part, max_part, largest; /* the store's largest object */
    unsigned max_parts;
};

static const struct store_limits stores[] = {
    {"s3", CK_S3_MIN_PART, CK_S3_MAX_PART, 5 * TiB, CK_S3_MAX_PARTS},
    {"gcs", CK_GCS_MIN_PART, CK_GCS_MAX_PART, 5 * TiB, CK_GCS_MAX_PARTS},
    /* Azure's largest block blob is 50,000 blocks of 4000 MiB (190.7 TiB); doubling every
     * 1,000 blocks from 8 MiB reaches 4000 MiB at block 9,001: 156 TiB. */
    {"azure", 64 << 10, CK_AZURE_MAX_BLOCK, 150 * TiB, CK_AZURE_MAX_BLOCKS},
};

/* Walks the parts of objects up to s's largest under memory; checks each part. */
static void check_store(const struct store_limits *s, uint64_t memory, uint64_t first)
{
    struct ck_part_cfg c = {.part_size = first,
                            .max_part = s->max_part,
                            .parallel = 8,
                            .max_parts = s->max_parts,
                            .min_part = s->min_part,
                            .memory = memory,
                            .spool_dir = "/spool"};
    uint64_t total = 0;
    bool spooled_seen = false;
    for (unsigned n = 1; n <= s->max_parts; n++) { /* plain ifs: ck_assert marks each */
        struct ck_part_plan p;
        ck_part_plan(&c, n, &p);
        if (p.size < s->min_part || p.size > s->max_part)
            ck_abort_msg("%s part %u: %llu bytes", s->name, n, (unsigned long long)p.size);
        if (p.spooled && (n == 1 || p.buffers > CK_PART_SPOOLED || p.size <= memory / 2))
            ck_abort_msg("%s part %u: spooled, %u buffers of %llu", s->name, n, p.buffers,
                         (unsigned long long)p.size);
        if (!p.spooled && (p.buffers < 2 || p.buffers * p.size > memory))
            ck_abort_msg("%s part %u: %u x %llu bytes in memory, budget %llu", s->name, n,
                         p.buffers, (unsigned long long)p.size, (unsigned long long)memory);
        spooled_seen |= p.spooled;
        total += p.size;
    }
    ck_assert_msg(total >= s->largest, "%s: %llu bytes in %u parts", s->name,
                  (unsigned long long)total, s->max_parts);
    ck_assert(spooled_seen);
}

START_TEST(test_every_store_every_budget)
{
    const uint64_t budgets[] = {16 * MiB, 32 * MiB, 128 * MiB, 512 * MiB};
    for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]); i++)
        for (size_t b = 0; b < sizeof(budgets) / sizeof(budgets[0]); b++) {
            check_store(&stores[i], budgets[b], 8 * MiB);
            check_store(&stores[i], budgets[b], 64 * MiB); /* a first part over the budget */
        }
}
END_TEST

START_TEST(test_small_objects_take_one_part_in_memory)
{
    struct ck_part_cfg c = {.part_size = 8 * MiB,
                            .max_part = CK_S3_MAX_PART,
                            .parallel = 4,
                            .max_parts = CK_S3_MAX_PARTS,
                            .min_part = CK_S3_MIN_PART,
                            .memory = 16 * MiB,
                            .spool_dir = "/spool"};
    struct ck_part_plan p;
    ck_part_plan(&c, 1, &p); /* 1 byte .. 8 MiB: the first part holds it, in memory */
    ck_assert_uint_eq(p.size, 8 * MiB);
    ck_assert(!p.spooled);
    ck_assert_uint_eq(p.buffers, 2);
    c.memory = 128 * MiB;
    ck_part_plan(&c, 1, &p);
    ck_assert_uint_eq(p.buffers, 5); /* parallel + 1 when they fit */
}
END_TEST

START_TEST(test_without_a_spool_dir_parts_stay_in_memory)
{
    /* ckptfs put and other uploads without a cache dir: parts grow in memory (two at most
     * once they pass the budget), as before the budget existed */
    struct ck_part_cfg c = {.part_size = 8 * MiB,
                            .max_part = CK_S3_MAX_PART,
                            .parallel = 8,
                            .max_parts = CK_S3_MAX_PARTS,
                            .min_part = CK_S3_MIN_PART};
    struct ck_part_plan p;
    ck_part_plan(&c, 9001, &p);
    ck_assert_uint_eq(p.size, 4096 * MiB);
    ck_assert(!p.spooled);
    ck_assert_uint_eq(p.buffers, 2);
}
END_TEST

START_TEST(test_growth_knob)
{
    ck_assert_uint_eq(ck_part_size(5 * MiB, CK_S3_MAX_PART, 2, 1), 5 * MiB);
    ck_assert_uint_eq(ck_part_size(5 * MiB, CK_S3_MAX_PART, 2, 3), 10 * MiB);
    ck_assert_uint_eq(ck_part_size(5 * MiB, CK_S3_MAX_PART, 2, 7), 40 * MiB);
    ck_assert_uint_eq(ck_part_size(8 * MiB, CK_S3_MAX_PART, 0, 1001), 16 * MiB);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("part_plan");
    TCase *tc = tcase_create("part_plan");
    tcase_add_test(tc, test_every_store_every_budget);
    tcase_add_test(tc, test_small_objects_take_one_part_in_memory);
    tcase_add_test(tc, test_without_a_spool_dir_parts_stay_in_memory);
    tcase_add_test(tc, test_growth_knob);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
