/*
 * test_s3_sweep.c - the sweep of stale multipart uploads after every save (s3_sweep.c,
 * shared by S3 and GCS's XML API) against a small fake server in a thread of the test,
 * which answers ListMultipartUploads in pages: moto ignores max-uploads and always answers
 * in one page, so the paging (key-marker and upload-id-marker from NextKeyMarker and
 * NextUploadIdMarker) and its bounds are only seen here. The fake also takes a single PUT
 * and a whole multipart upload; it checks no signature and no token. Every test with the
 * fake runs twice (a loop test): _i 0 saves to s3://, _i 1 to gs:// (anonymous, through
 * STORAGE_EMULATOR_HOST), so the two backends' request shapes are both checked.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/http.h"
#include "store/s3_mpu.h"
#include "store/s3_xml.h"
#include "store/store.h"

#define KEY     "sweep/obj"
#define MAXREQ  256
#define REQ_LEN 600

/* The fake server; one per forked test. */
static struct {
    int lfd, port;
    pthread_t thread;
    const char *mode;   /* which listing it serves: see list_page() */
    bool fail_complete; /* answer complete with a 400 */
    pthread_mutex_t lock;
    char reqs[MAXREQ][REQ_LEN]; /* "METHOD target", in order */
    unsigned nreq, ngets;
    atomic_int stop; /* set by the test, read by the server thread */
} F = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool gcs; /* this run saves to gs:// (the loop test's _i == 1) */

static void upload_xml(char *out, size_t outsz, const char *key, const char *id)
{
    size_t n = strlen(out);
    snprintf(out + n, outsz - n, "<Upload><Key>%s</Key><UploadId>%s</UploadId></Upload>", key, id);
}

/* Listing page `page` (1-based) of the current mode into body. */
static void list_page(unsigned page, char *body, size_t bodysz)
{
    char uploads[2048] = "", next_key[64] = "", next_id[64] = "";
    bool truncated = true;
    if (strcmp(F.mode, "paged") == 0) { /* three pages; ours are u1, mine, u2, u3 */
        if (page == 1) {
            upload_xml(uploads, sizeof(uploads), "a/other", "o1");
            upload_xml(uploads, sizeof(uploads), KEY, "u1");
            snprintf(next_id, sizeof(next_id), "u1");
        } else if (page == 2) {
            upload_xml(uploads, sizeof(uploads), KEY, "mine");
            upload_xml(uploads, sizeof(uploads), KEY, "u2");
            snprintf(next_id, sizeof(next_id), "u2");
        } else {
            upload_xml(uploads, sizeof(uploads), KEY, "u3");
            upload_xml(uploads, sizeof(uploads), "z/other", "o2");
            truncated = false;
        }
        snprintf(next_key, sizeof(next_key), "%s", truncated ? KEY : "");
    } else if (strcmp(F.mode, "past") == 0) { /* page 1 already ends past our key */
        upload_xml(uploads, sizeof(uploads), KEY, "u1");
        upload_xml(uploads, sizeof(uploads), "zz", "o3");
        snprintf(next_key, sizeof(next_key), "zz");
        snprintf(next_id, sizeof(next_id), "o3");
    } else if (strcmp(F.mode, "endless") == 0) { /* always more, keys before ours */
        snprintf(next_key, sizeof(next_key), "a/%05u", page);
        upload_xml(uploads, sizeof(uploads), next_key, "x");
        snprintf(next_id, sizeof(next_id), "x");
    } else { /* "stuck": always more, the same markers */
        upload_xml(uploads, sizeof(uploads), KEY, "u1");
        snprintf(next_key, sizeof(next_key), KEY);
        snprintf(next_id, sizeof(next_id), "u1");
    }
    snprintf(body, bodysz,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult>"
             "<Bucket>ckb</Bucket><IsTruncated>%s</IsTruncated><NextKeyMarker>%s"
             "</NextKeyMarker><NextUploadIdMarker>%s</NextUploadIdMarker>%s"
             "</ListMultipartUploadsResult>",
             truncated ? "true" : "false", next_key, next_id, uploads);
}

/* Reads one request's head into head and discards its body; false on a closed socket. */
static bool read_request(int fd, char *head, size_t headsz)
{
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len + 1 >= headsz)
            return false;
        ssize_t n = read(fd, head + len, headsz - 1 - len);
        if (n <= 0)
            return false;
        len += (size_t)n;
        head[len] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    size_t have = len - (size_t)(end + 4 - head), want = 0;
    for (char *l = strstr(head, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
            want = strtoul(l + 17, NULL, 10);
    }
    char sink[65536];
    while (have < want) {
        ssize_t n = read(fd, sink, sizeof(sink));
        if (n <= 0)
            return false;
        have += (size_t)n;
    }
    *end = '\0';
    return true;
}

static void reply(int fd, const char *status, const char *etag, const char *body)
{
    char out[8192];
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %s\r\n%s%s%sContent-Type: application/xml\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     status, etag ? "ETag: \"" : "", etag ? etag : "", etag ? "\"\r\n" : "",
                     strlen(body), body);
    for (int off = 0; off < n;) {
        ssize_t w = write(fd, out + off, (size_t)(n - off));
        if (w <= 0)
            return;
        off += (int)w;
    }
}

static void serve(int fd)
{
    char head[16384], method[16], target[REQ_LEN - 20], body[8192];
    if (!read_request(fd, head, sizeof(head)) || sscanf(head, "%15s %559s", method, target) != 2)
        return;
    pthread_mutex_lock(&F.lock);
    unsigned page = strcmp(method, "GET") == 0 ? ++F.ngets : 0;
    if (F.nreq < MAXREQ)
        snprintf(F.reqs[F.nreq++], REQ_LEN, "%s %s", method, target);
    pthread_mutex_unlock(&F.lock);
    if (page) {
        list_page(page, body, sizeof(body));
        reply(fd, "200 OK", NULL, body);
    } else if (strcmp(method, "POST") == 0 && !strstr(target, "uploadId=")) {
        reply(fd, "200 OK", NULL,
              "<InitiateMultipartUploadResult><Bucket>ckb</Bucket><Key>" KEY "</Key>"
              "<UploadId>mine</UploadId></InitiateMultipartUploadResult>");
    } else if (strcmp(method, "POST") == 0 && F.fail_complete) {
        reply(fd, "400 Bad Request", NULL,
              "<Error><Code>InvalidPart</Code><Message>no.</Message></Error>");
    } else if (strcmp(method, "POST") == 0) {
        reply(fd, "200 OK", NULL,
              "<CompleteMultipartUploadResult><ETag>\"c0ffee-2\"</ETag>"
              "</CompleteMultipartUploadResult>");
    } else if (strcmp(method, "PUT") == 0) {
        reply(fd, "200 OK", "e7a9", "");
    } else {
        reply(fd, "204 No Content", NULL, "");
    }
}

static void *server_main(void *arg)
{
    (void)arg;
    while (!F.stop) {
        int fd = accept(F.lfd, NULL, NULL);
        if (fd < 0)
            break;
        serve(fd);
        close(fd);
    }
    return NULL;
}

static void start_fake(const char *mode, int i)
{
    gcs = i == 1;
    F.mode = mode;
    F.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    ck_assert(F.lfd >= 0 && bind(F.lfd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
              listen(F.lfd, 64) == 0 && getsockname(F.lfd, (struct sockaddr *)&a, &alen) == 0);
    F.port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&F.thread, NULL, server_main, NULL), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", F.port);
    setenv("AWS_ENDPOINT_URL", url, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDSWEEPTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "sweep-secret", 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("CKPTFS_S3_PART_SIZE", "5M", 1);
    setenv("STORAGE_EMULATOR_HOST", url, 1); /* GCS: this endpoint, anonymous */
    setenv("CKPTFS_GCS_PART_SIZE", "5M", 1);
    unsetenv("CKPTFS_GCS_ENDPOINT");
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
}

static void stop_fake(void)
{
    F.stop = 1;
    shutdown(F.lfd, SHUT_RDWR);
    pthread_join(F.thread, NULL);
    close(F.lfd);
}

/* Uploads len bytes to s3://ckb/KEY or gs://ckb/KEY through the fake (one PUT, or parts
 * past 5 MiB); the commit must succeed (ok) or fail. */
static void save_expect(size_t len, bool ok)
{
    struct ck_store_env env;
    ck_store_env_default(&env);
    env.retry.max_attempts = 2;
    env.retry.base_delay_s = 0.01;
    env.retry.max_delay_s = 0.02;
    struct ck_store *s;
    struct ck_err err;
    ck_assert_msg(ck_store_open(gcs ? "gs://ckb/" KEY : "s3://ckb/" KEY, &env, &s, &err) == CK_OK,
                  "%s", err.msg);
    char *data = calloc(1, len ? len : 1);
    ck_assert_ptr_nonnull(data);
    struct ck_store_upload *u;
    ck_assert_msg(ck_store_put_begin(s, NULL, &u, &err) == CK_OK, "%s", err.msg);
    ck_assert_msg(ck_store_put_write(u, data, len, &err) == CK_OK, "%s", err.msg);
    ck_rc rc = ck_store_put_commit(u, &err);
    if (ok)
        ck_assert_msg(rc == CK_OK, "%s", err.msg);
    else
        ck_assert_int_ne(rc, CK_OK);
    ck_store_close(s);
    free(data);
}

static void save(size_t len)
{
    save_expect(len, true);
}

/* How many recorded requests start with prefix ("DELETE /ckb/sweep/obj?uploadId=u2"). */
static unsigned count(const char *prefix)
{
    unsigned n = 0;
    for (unsigned i = 0; i < F.nreq; i++)
        n += strncmp(F.reqs[i], prefix, strlen(prefix)) == 0;
    return n;
}

/* The i-th (0-based) listing request. */
static const char *get_request(unsigned i)
{
    for (unsigned k = 0; k < F.nreq; k++) {
        if (strncmp(F.reqs[k], "GET ", 4) == 0 && i-- == 0)
            return F.reqs[k];
    }
    return "";
}

#define ABORT_OF(id) "DELETE /ckb/" KEY "?uploadId=" id

/* The first listing request of a sweep, with the backend's own query: S3 lists the whole
 * bucket ("uploads=", signed as SigV4 wants it), GCS asks for the key's prefix. */
static void assert_first_listing(const char *g1)
{
    ck_assert_msg(strncmp(g1, "GET /ckb?", 9) == 0 && strstr(g1, "max-uploads=100") &&
                      !strstr(g1, "marker"),
                  "%s", g1);
    if (gcs)
        ck_assert_msg(strstr(g1, "&uploads&") && strstr(g1, "prefix=sweep%2Fobj"), "%s", g1);
    else
        ck_assert_msg(strstr(g1, "uploads=") && !strstr(g1, "prefix"), "%s", g1);
}

START_TEST(test_single_put_sweeps_every_page)
{
    start_fake("paged", _i);
    save(100);
    stop_fake();
    ck_assert_uint_eq(count("PUT /ckb/" KEY), 1); /* one PUT, no parts */
    ck_assert_uint_eq(F.ngets, 3);
    const char *g1 = get_request(0), *g2 = get_request(1), *g3 = get_request(2);
    assert_first_listing(g1);
    ck_assert_msg(strstr(g2, "key-marker=sweep%2Fobj") && strstr(g2, "upload-id-marker=u1"), "%s",
                  g2);
    ck_assert_msg(strstr(g3, "key-marker=sweep%2Fobj") && strstr(g3, "upload-id-marker=u2"), "%s",
                  g3);
    /* Every upload of the key, on every page, is aborted (a single PUT owns none)... */
    ck_assert_uint_eq(count(ABORT_OF("u1")), 1);
    ck_assert_uint_eq(count(ABORT_OF("mine")), 1);
    ck_assert_uint_eq(count(ABORT_OF("u2")), 1);
    ck_assert_uint_eq(count(ABORT_OF("u3")), 1);
    /* ...and no other key's. */
    ck_assert_uint_eq(count("DELETE "), 4);
}
END_TEST

START_TEST(test_multipart_sweeps_every_page_but_its_own)
{
    start_fake("paged", _i);
    save(6u << 20); /* two parts */
    stop_fake();
    ck_assert_uint_eq(count("POST /ckb/" KEY "?uploads"), 1);
    ck_assert_uint_eq(count("PUT /ckb/" KEY "?partNumber="), 2);
    ck_assert_uint_eq(count("POST /ckb/" KEY "?uploadId=mine"), 1);
    ck_assert_uint_eq(F.ngets, 3);
    ck_assert_uint_eq(count(ABORT_OF("mine")), 0); /* completed: not ours to abort */
    ck_assert_uint_eq(count(ABORT_OF("u1")), 1);
    ck_assert_uint_eq(count(ABORT_OF("u2")), 1);
    ck_assert_uint_eq(count(ABORT_OF("u3")), 1);
    ck_assert_uint_eq(count("DELETE "), 3);
    assert_first_listing(get_request(0));
}
END_TEST

START_TEST(test_failed_complete_aborts_then_sweeps)
{
    F.fail_complete = true;
    start_fake("paged", _i);
    save_expect(6u << 20, false);
    stop_fake();
    ck_assert_uint_eq(count("POST /ckb/" KEY "?uploadId=mine"), 1); /* a 400: not retried */
    ck_assert_uint_eq(count(ABORT_OF("mine")), 1); /* the abort, not again by the sweep */
    ck_assert_uint_eq(F.ngets, 3);
    ck_assert_uint_eq(count(ABORT_OF("u1")), 1);
    ck_assert_uint_eq(count(ABORT_OF("u2")), 1);
    ck_assert_uint_eq(count(ABORT_OF("u3")), 1);
    ck_assert_uint_eq(count("DELETE "), 4);
    /* the abort of our own upload comes before the listing */
    for (unsigned i = 0; i < F.nreq; i++) {
        if (strncmp(F.reqs[i], "GET ", 4) == 0)
            ck_assert_msg(false, "listing before the abort: %s", F.reqs[i]);
        if (strncmp(F.reqs[i], ABORT_OF("mine"), strlen(ABORT_OF("mine"))) == 0)
            break;
    }
}
END_TEST

START_TEST(test_sweep_stops_past_the_key)
{
    start_fake("past", _i);
    save(10);
    stop_fake();
    ck_assert_uint_eq(F.ngets, 1);
    ck_assert_uint_eq(count(ABORT_OF("u1")), 1);
    ck_assert_uint_eq(count("DELETE "), 1);
}
END_TEST

START_TEST(test_sweep_pages_are_bounded)
{
    start_fake("endless", _i);
    save(10);
    stop_fake();
    ck_assert_uint_eq(F.ngets, CK_MPU_SWEEP_PAGES);
    ck_assert_uint_eq(count("DELETE "), 0);
    ck_assert_msg(strstr(get_request(1), "key-marker=a%2F00001"), "%s", get_request(1));
}
END_TEST

START_TEST(test_sweep_stops_when_markers_stand_still)
{
    start_fake("stuck", _i);
    save(10);
    stop_fake();
    ck_assert_uint_eq(F.ngets, 2);
}
END_TEST

START_TEST(test_paging_markers_parsed)
{
    bool more;
    char key[64], id[64];
    struct ck_err err;
    const char *page = "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                       "<NextKeyMarker> a/b </NextKeyMarker><NextUploadIdMarker>X.y-z"
                       "</NextUploadIdMarker></ListMultipartUploadsResult>";
    ck_assert_int_eq(
        ck_s3_xml_uploads_next(page, strlen(page), &more, key, sizeof(key), id, sizeof(id), &err),
        CK_OK);
    ck_assert(more);
    ck_assert_str_eq(key, "a/b");
    ck_assert_str_eq(id, "X.y-z");
    const char *last = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
                       "<NextKeyMarker>k</NextKeyMarker></ListMultipartUploadsResult>";
    ck_assert_int_eq(
        ck_s3_xml_uploads_next(last, strlen(last), &more, key, sizeof(key), id, sizeof(id), &err),
        CK_OK);
    ck_assert(!more && !key[0] && !id[0]);
    /* A key marker alone; a marker that does not fit or is not printable gives none. */
    const char *nokey = "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                        "<NextKeyMarker>k</NextKeyMarker></ListMultipartUploadsResult>";
    ck_assert_int_eq(
        ck_s3_xml_uploads_next(nokey, strlen(nokey), &more, key, sizeof(key), id, sizeof(id), &err),
        CK_OK);
    ck_assert(more);
    ck_assert_str_eq(key, "k");
    ck_assert_str_eq(id, "");
    const char *big = "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker>"
                      "0123456789abcdef</NextKeyMarker><NextUploadIdMarker>i</NextUploadIdMarker>"
                      "</ListMultipartUploadsResult>";
    ck_assert_int_eq(ck_s3_xml_uploads_next(big, strlen(big), &more, key, 8, id, sizeof(id), &err),
                     CK_OK);
    ck_assert(more && !key[0] && !id[0]);
    ck_assert_int_eq(
        ck_s3_xml_uploads_next("<Error/>", 8, &more, key, sizeof(key), id, sizeof(id), &err),
        CK_ECORRUPT);
    ck_assert(!more);
}
END_TEST

static Suite *s3_sweep_suite(void)
{
    Suite *s = suite_create("mpu_sweep");
    TCase *pure = tcase_create("pure");
    tcase_add_test(pure, test_paging_markers_parsed);
    suite_add_tcase(s, pure);
    TCase *tc = tcase_create("fake");
    tcase_set_timeout(tc, 60);
    /* _i 0: s3://, 1: gs:// */
    tcase_add_loop_test(tc, test_single_put_sweeps_every_page, 0, 2);
    tcase_add_loop_test(tc, test_multipart_sweeps_every_page_but_its_own, 0, 2);
    tcase_add_loop_test(tc, test_failed_complete_aborts_then_sweeps, 0, 2);
    tcase_add_loop_test(tc, test_sweep_stops_past_the_key, 0, 2);
    tcase_add_loop_test(tc, test_sweep_pages_are_bounded, 0, 2);
    tcase_add_loop_test(tc, test_sweep_stops_when_markers_stand_still, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    struct ck_err err;
    if (ck_http_global_init(&err) != CK_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    SRunner *sr = srunner_create(s3_sweep_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    ck_http_global_cleanup();
    return failed != 0;
}
