/*
 * test_ranged.c - the ranged download of a whole object (restore/ranged.h) against real
 * nginx behind tests/tools/faultproxy.py, and its tuner (restore/tuner.h) on simulated
 * stores.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore/ranged.h"
#include "restore/tuner.h"
#include "store_testutil.h"
#include "util/clock.h"

#define MIB      (1u << 20)
#define OBJ_SIZE (40 * MIB + 123)

/* Set once by main() before the suite forks its tests; read-only afterwards. */
static struct {
    char dir[256]; /* temp root: ngx/ (nginx), proxy.log, out files */
    struct tu_server nginx;
    int proxy_port;
    pid_t proxy_pid;
    char *obj; /* the content of ngx/data/obj.bin */
} T;

/* n pseudo-random bytes from seed (malloc'd; NULL if out of memory). */
static char *pattern(size_t n, uint64_t seed)
{
    char *p = malloc(n);
    uint64_t x = seed | 1;
    for (size_t i = 0; p && i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (char)(x >> 24);
    }
    return p;
}

/* Writes ngx/data/name atomically (a new file renamed over the old one, which a GET under
 * way goes on reading). */
static bool write_file(const char *name, const char *data, size_t len)
{
    char path[400], tmp[410];
    snprintf(path, sizeof(path), "%s/ngx/data/%s", T.dir, name);
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(data, 1, len, f) == len;
    if (f)
        ok = fclose(f) == 0 && ok;
    return ok && chmod(tmp, 0644) == 0 && rename(tmp, path) == 0;
}

static struct ck_store *open_obj(struct ck_store_env *env, const char *name)
{
    tu_store_env(env);
    char uri[300];
    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/%s", T.proxy_port, name);
    struct ck_store *s;
    struct ck_err err;
    ck_assert_msg(ck_store_open(uri, env, &s, &err) == CK_OK, "%s", err.msg);
    return s;
}

/* A download of name into a new file, read in order in pieces of 1 MiB as extraction
 * does; its result. *requests: the GETs it made; *fd_out: the file (caller closes). */
static ck_rc download(const char *name, unsigned *requests, int *fd_out, struct ck_err *err)
{
    struct ck_store_env env;
    struct ck_store *s = open_obj(&env, name);
    struct ck_store_info info;
    ck_assert_msg(ck_store_head(s, &info, err) == CK_OK, "%s", err->msg);
    char path[300];
    snprintf(path, sizeof(path), "%s/out-XXXXXX", T.dir);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    struct ck_ranged_cfg cfg = {.store = s, .fd = fd, .info = &info};
    struct ck_ranged *r;
    ck_rc rc = ck_ranged_start(&cfg, &r, err);
    ck_assert_int_eq(rc, CK_OK);
    uint64_t have = 0;
    for (uint64_t off = 0; !rc && off < info.size; off += MIB) {
        rc = ck_ranged_wait(r, off, &have, err);
        ck_assert(rc || (have > off && have <= info.size));
    }
    *requests = ck_ranged_requests(r);
    ck_rc frc = ck_ranged_finish(r, rc != CK_OK, err);
    ck_store_close(s);
    *fd_out = fd;
    return rc ? rc : frc;
}

static void assert_file_is(int fd, const char *want, size_t len)
{
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_uint_eq((uint64_t)st.st_size, len);
    char *got = malloc(len);
    ck_assert_int_eq(pread(fd, got, len, 0), (ssize_t)len);
    ck_assert_msg(memcmp(got, want, len) == 0, "the downloaded bytes differ");
    free(got);
}

/* A download of name under plan that must make the first len bytes of T.obj; its GETs. */
static unsigned download_ok(const char *plan, const char *name, size_t len)
{
    tu_fault_plan(T.proxy_port, plan);
    struct ck_err err;
    unsigned requests;
    int fd;
    ck_assert_msg(download(name, &requests, &fd, &err) == CK_OK, "%s", err.msg);
    assert_file_is(fd, T.obj, len);
    close(fd);
    return requests;
}

START_TEST(test_parallel_ranges_make_the_object)
{
    unsigned requests = download_ok("", "obj.bin", OBJ_SIZE);
    ck_assert_uint_ge(requests, 3); /* 8 MiB first ranges, then larger */
    /* ranged GETs (one per range) plus the HEADs before and after */
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"range\": \"bytes="), (int)requests);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"HEAD\""), 2);
}
END_TEST

START_TEST(test_faults_in_ranges_are_survived)
{
    /* a range cut by a reset, another truncated, a 503: each resumed or retried */
    download_ok("pass*2,reset@100000,pass,truncate@5000,status=503", "obj.bin", OBJ_SIZE);
}
END_TEST

START_TEST(test_a_failed_range_fails_the_download)
{
    tu_fault_plan(T.proxy_port, "pass*2,status=403*inf");
    struct ck_err err;
    unsigned requests;
    int fd;
    ck_assert_int_eq(download("obj.bin", &requests, &fd, &err), CK_EAUTH);
    close(fd);
    ck_assert_msg(strstr(err.msg, "403"), "%s", err.msg);
}
END_TEST

START_TEST(test_small_object_is_one_get)
{
    ck_assert_uint_eq(download_ok("", "small.bin", 5 * MIB), 1);
    ck_assert_int_eq(tu_fault_log_count(T.proxy_port, "\"HEAD\""), 1); /* no check after */
}
END_TEST

static void *replace_object(void *arg)
{
    (void)arg;
    ck_sleep(0.3);
    char *other = pattern(OBJ_SIZE, 77);
    ck_assert(write_file("moving.bin", other, OBJ_SIZE));
    free(other);
    return NULL;
}

/* The object is replaced (same size) while a range's request is held: the ranges are of
 * two versions, so the download fails (the HEAD after the last range) instead of making a
 * mix. */
START_TEST(test_object_replaced_during_the_download_is_refused)
{
    ck_assert(write_file("moving.bin", T.obj, OBJ_SIZE));
    ck_sleep(1.1); /* nginx's ETag is made of the mtime in seconds and the size */
    /* the HEAD and the first range pass; the second range's GET reaches nginx after the
     * object was replaced: its bytes are of the new version, and no GET saw two ETags */
    tu_fault_plan(T.proxy_port, "pass*2,delay=1.5");
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, replace_object, NULL), 0);
    struct ck_err err;
    unsigned requests;
    int fd;
    ck_rc rc = download("moving.bin", &requests, &fd, &err);
    pthread_join(th, NULL);
    close(fd);
    ck_assert_int_eq(rc, CK_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "moving.bin changed during the download"), "%s", err.msg);
}
END_TEST

/* ---- the tuner on simulated stores -------------------------------------------------- */

/* A store that delivers agg(p) bytes/s in all with p requests in flight; where the
 * tuner settles after 300 requests, and the request size it chose. */
static unsigned settle(double (*agg)(unsigned), unsigned max, uint64_t *chunk)
{
    struct ck_tuner t;
    double now = 0;
    ck_tuner_init(&t, max, now);
    for (int i = 0; i < 300; i++) {
        unsigned p = t.limit;
        double secs = (double)t.chunk / (agg(p) / p); /* one request at its stream's rate */
        now += secs / p;                              /* p of them overlap */
        ck_tuner_done(&t, t.chunk, secs, now);
    }
    *chunk = t.chunk;
    return t.limit;
}

static double wan(unsigned p) /* 50 MB/s a stream up to 6 streams, then flat */
{
    return 50e6 * (p < 6 ? p : 6);
}

static double local(unsigned p) /* one stream is the line rate already */
{
    (void)p;
    return 1.2e9;
}

static double slow(unsigned p) /* 2 MB/s a stream, any number */
{
    return 2e6 * p;
}

START_TEST(test_tuner_climbs_while_it_gains)
{
    uint64_t chunk;
    unsigned n = settle(wan, CK_RANGED_MAX, &chunk);
    ck_assert_msg(n == 6 || n == 7, "settled at %u", n);
    /* about a second of one stream: 50 MB/s, or 43 MB/s when 7 share 300 MB/s */
    ck_assert_msg(chunk >= (41ull << 20) && chunk <= (48ull << 20), "chunk %llu",
                  (unsigned long long)chunk);
    n = settle(local, CK_RANGED_MAX, &chunk);
    ck_assert_uint_le(n, 3);
    ck_assert_uint_eq(chunk, CK_TUNER_CHUNK_MAX);
    n = settle(slow, CK_RANGED_MAX, &chunk);
    ck_assert_uint_ge(n, 11); /* each stream adds the same: it climbs until one adds < 10% */
    ck_assert_uint_eq(chunk, CK_TUNER_CHUNK_MIN);
    n = settle(slow, 1, &chunk);
    ck_assert_uint_eq(n, 1);
}
END_TEST

/* ---- set-up ------------------------------------------------------------------------- */

static bool start_servers(void)
{
    snprintf(T.dir, sizeof(T.dir), "/tmp/ck-ranged-XXXXXX");
    if (!mkdtemp(T.dir))
        return false;
    T.proxy_port = tu_nginx_proxy_start(T.dir, &T.nginx, &T.proxy_pid);
    T.obj = pattern(OBJ_SIZE, 1);
    return T.proxy_port > 0 && T.obj && write_file("obj.bin", T.obj, OBJ_SIZE) &&
           write_file("small.bin", T.obj, 5 * MIB);
}

static void stop_servers(bool keep)
{
    tu_nginx_proxy_stop(T.dir, &T.nginx, T.proxy_pid, keep);
    free(T.obj);
}

static Suite *ranged_suite(void)
{
    Suite *s = suite_create("ranged");
    TCase *tc = tcase_create("nginx");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_parallel_ranges_make_the_object);
    tcase_add_test(tc, test_faults_in_ranges_are_survived);
    tcase_add_test(tc, test_a_failed_range_fails_the_download);
    tcase_add_test(tc, test_small_object_is_one_get);
    tcase_add_test(tc, test_object_replaced_during_the_download_is_refused);
    tcase_add_test(tc, test_tuner_climbs_while_it_gains);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_store_main(ranged_suite, start_servers, stop_servers);
}
