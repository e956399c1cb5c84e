/*
 * test_store_http.c - the http backend and the HTTP engine against real nginx (WebDAV),
 * with faults injected by tests/tools/faultproxy.py in front of it, and the upload's
 * window and replays against a scripted server in the test process (faultproxy reads only
 * Content-Length bodies, so it cannot pass a chunked PUT on).
 *
 * main() starts both servers before the suite and stops them after it, in the parent
 * process, so they are cleaned up whatever the (forked) tests do. Each test resets the
 * proxy's plan and log through its control endpoint.
 */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/http.h"
#include "store/store.h"
#include "store_testutil.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"

#define BIG_SIZE (3 * 1024 * 1024 + 17)

/* Set once by main() before the suite forks its tests; read-only afterwards. */
static struct {
    char dir[256]; /* temp root: ngx/ (nginx), proxy.log */
    char tools[512];
    struct tu_server nginx;
    int nginx_port;
    int proxy_port;
    pid_t proxy_pid;
    char *big; /* the content of ngx/data/big.bin */
} T;

/* ---- helpers ------------------------------------------------------------------------ */

/* tu_store_env with one more attempt and a shorter stall: the stall tests run in seconds. */
static void test_env(struct ck_store_env *env)
{
    tu_store_env(env);
    env->retry.max_attempts = 5;
    env->retry.deadline_s = 20;
    env->stall_timeout_s = 1;
}

/* Opens http://127.0.0.1:PORT/path through the proxy (via_proxy) or straight to nginx. */
static struct ck_store *open_at(const struct ck_store_env *env, bool via_proxy, const char *path)
{
    char uri[512];
    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/%s", via_proxy ? T.proxy_port : T.nginx_port,
             path);
    struct ck_store *s;
    struct ck_err err;
    ck_assert_msg(ck_store_open(uri, env, &s, &err) == CK_OK, "%s", err.msg);
    ck_assert_str_eq(s->ops->name, "http");
    return s;
}

static ck_rc get_into(struct ck_store *s, uint64_t off, uint64_t len, struct ck_buf *out,
                      struct ck_err *err)
{
    struct ck_sink sink = {tu_buf_sink_write, out};
    ck_buf_init(out, 8u << 20);
    return ck_store_get(s, off, len, &sink, err);
}

/* One pass: a new upload with opts o of data[0, len) in pieces of 64 KiB. *accepted: the
 * bytes put_write took (all of them when the pass failed only at commit). */
static ck_rc put_pass(struct ck_store *s, const struct ck_put_opts *o, const void *data, size_t len,
                      size_t *accepted, struct ck_err *err)
{
    struct ck_store_upload *u;
    *accepted = 0;
    ck_rc rc = ck_store_put_begin(s, o, &u, err);
    if (rc)
        return rc;
    ck_assert(u->may_replay);
    for (size_t off = 0; off < len && rc == CK_OK; off += 65536) {
        size_t n = len - off < 65536 ? len - off : 65536;
        rc = ck_store_put_write(u, (const char *)data + off, n, err);
        if (rc == CK_OK)
            *accepted += n;
    }
    if (rc) {
        ck_store_put_abort(u);
        return rc;
    }
    return ck_store_put_commit(u, err);
}

/* Passes like the save pipeline's until one is not CK_EREPLAY: pass n + 1 has .size set
 * when pass n accepted every byte. *passes tells how many ran (may be NULL). */
static ck_rc put_passes(struct ck_store *s, const void *data, size_t len, unsigned *passes,
                        struct ck_err *err)
{
    struct ck_put_opts o = {.replayable = true, .size = CK_STORE_SIZE_UNKNOWN, .pass = 0};
    for (;; o.pass++) {
        size_t accepted;
        ck_rc rc = put_pass(s, &o, data, len, &accepted, err);
        if (passes)
            *passes = o.pass + 1;
        if (rc != CK_EREPLAY)
            return rc;
        ck_assert_msg(o.pass < 20, "endless replays");
        o.size = accepted == len ? len : CK_STORE_SIZE_UNKNOWN;
    }
}

static ck_rc put_bytes(struct ck_store *s, const void *data, size_t len, struct ck_err *err)
{
    return put_passes(s, data, len, NULL, err);
}

/* A request to the proxy's control endpoint; the reply body goes to out if not NULL. */
/* The proxy's log: one JSON line per proxied request. */
static int proxy_requests(struct ck_buf *log)
{
    ck_assert_int_eq(tu_http_call(CK_HTTP_GET, T.proxy_port, "/__fault/log", NULL, NULL, log), 200);
    int n = 0;
    for (size_t i = 0; i < log->len; i++)
        n += log->data[i] == '\n';
    return n;
}

/* The Range header of the n-th (1-based) logged request, "" if none. */
static void logged_range(const struct ck_buf *log, int n, char *out, size_t outsz)
{
    const char *line = log->data;
    for (int i = 1; i < n && line; i++) {
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    ck_assert_ptr_nonnull(line);
    const char *r = strstr(line, "\"range\": \"");
    const char *eol = strchr(line, '\n');
    out[0] = '\0';
    if (r && (!eol || r < eol)) {
        r += 10;
        size_t k = strcspn(r, "\"");
        snprintf(out, outsz, "%.*s", (int)k, r);
    }
}

static void assert_big(const struct ck_buf *b, uint64_t off, uint64_t len)
{
    ck_assert_uint_eq(b->len, len);
    ck_assert_msg(memcmp(b->data, T.big + off, len) == 0, "bytes differ");
}

static void assert_remote_is(const char *path, const char *want)
{
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *s = open_at(&env, false, path);
    struct ck_buf b;
    struct ck_err err;
    ck_assert_msg(get_into(s, 0, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    ck_assert_str_eq(b.data ? b.data : "", want);
    ck_buf_free(&b);
    ck_store_close(s);
}

/* ---- tests against nginx directly -------------------------------------------------- */

START_TEST(test_head_and_get)
{
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *s = open_at(&env, false, "big.bin");
    struct ck_store_info info;
    struct ck_err err;
    ck_assert_int_eq(ck_store_head(s, &info, &err), CK_OK);
    ck_assert(info.exists);
    ck_assert_uint_eq(info.size, BIG_SIZE);
    ck_assert(info.etag[0] == '"');
    struct ck_buf b;
    ck_assert_int_eq(get_into(s, 0, CK_STORE_TO_END, &b, &err), CK_OK);
    assert_big(&b, 0, BIG_SIZE);
    ck_buf_free(&b);
    ck_assert_int_eq(get_into(s, 1000, 12345, &b, &err), CK_OK);
    assert_big(&b, 1000, 12345);
    ck_buf_free(&b);
    ck_assert_int_eq(get_into(s, BIG_SIZE - 100, CK_STORE_TO_END, &b, &err), CK_OK);
    assert_big(&b, BIG_SIZE - 100, 100);
    ck_buf_free(&b);
    ck_assert_int_eq(get_into(s, BIG_SIZE, CK_STORE_TO_END, &b, &err), CK_OK);
    ck_assert_uint_eq(b.len, 0);
    ck_buf_free(&b);
    ck_assert_int_eq(get_into(s, BIG_SIZE - 10, 11, &b, &err), CK_ECORRUPT);
    ck_buf_free(&b);
    ck_store_close(s);
}
END_TEST

START_TEST(test_missing_object)
{
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *s = open_at(&env, false, "no/such/object");
    struct ck_store_info info;
    struct ck_err err;
    ck_assert_int_eq(ck_store_head(s, &info, &err), CK_OK);
    ck_assert(!info.exists);
    struct ck_buf b;
    ck_assert_int_eq(get_into(s, 0, CK_STORE_TO_END, &b, &err), CK_ENOTFOUND);
    char want[200];
    snprintf(want, sizeof(want), "GET http://127.0.0.1:%d/no/such/object: HTTP 404 Not Found",
             T.nginx_port);
    ck_assert_str_eq(err.msg, want);
    ck_buf_free(&b);
    ck_store_close(s);
}
END_TEST

START_TEST(test_put_roundtrip)
{
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *s = open_at(&env, false, "new/dir/ckpt.tgz");
    struct ck_err err;
    ck_assert_msg(put_bytes(s, T.big, BIG_SIZE, &err) == CK_OK, "%s", err.msg);
    struct ck_buf b;
    ck_assert_int_eq(get_into(s, 0, CK_STORE_TO_END, &b, &err), CK_OK);
    assert_big(&b, 0, BIG_SIZE);
    ck_buf_free(&b);
    ck_assert_msg(put_bytes(s, "", 0, &err) == CK_OK, "%s", err.msg);
    struct ck_store_info info;
    ck_assert_int_eq(ck_store_head(s, &info, &err), CK_OK);
    ck_assert(info.exists);
    ck_assert_uint_eq(info.size, 0);
    ck_store_close(s);
}
END_TEST

/* ---- transient faults: retried, data byte-identical --------------------------------- */

START_TEST(test_get_retries_transient_statuses)
{
    struct ck_store_env env;
    test_env(&env);
    tu_fault_plan(T.proxy_port, "status=503,status=500,retry-after=1,status=502");
    struct ck_store *s = open_at(&env, true, "big.bin");
    struct ck_buf b, log;
    struct ck_err err;
    ck_assert_msg(get_into(s, 0, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    assert_big(&b, 0, BIG_SIZE);
    ck_assert_int_eq(proxy_requests(&log), 5);
    ck_buf_free(&b);
    ck_buf_free(&log);
    ck_store_close(s);
}
END_TEST

START_TEST(test_get_resumes_after_reset)
{
    struct ck_store_env env;
    test_env(&env);
    tu_fault_plan(T.proxy_port, "reset@100000");
    struct ck_store *s = open_at(&env, true, "big.bin");
    struct ck_buf b, log;
    struct ck_err err;
    ck_assert_msg(get_into(s, 0, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    assert_big(&b, 0, BIG_SIZE);
    ck_assert_int_eq(proxy_requests(&log), 2);
    char range[64];
    logged_range(&log, 1, range, sizeof(range));
    ck_assert_str_eq(range, ""); /* a whole-object GET */
    logged_range(&log, 2, range, sizeof(range));
    unsigned long from;
    ck_assert_int_eq(sscanf(range, "bytes=%lu-", &from), 1);
    ck_assert(from <= 100000);
    ck_assert(range[strlen(range) - 1] == '-');
    ck_buf_free(&b);
    ck_buf_free(&log);
    ck_store_close(s);
}
END_TEST

START_TEST(test_ranged_get_resumes_after_truncation)
{
    struct ck_store_env env;
    test_env(&env);
    tu_fault_plan(T.proxy_port, "truncate@200000,truncate@1");
    struct ck_store *s = open_at(&env, true, "big.bin");
    struct ck_buf b, log;
    struct ck_err err;
    uint64_t off = 1000, len = 1 << 20;
    ck_assert_msg(get_into(s, off, len, &b, &err) == CK_OK, "%s", err.msg);
    assert_big(&b, off, len);
    ck_assert_int_eq(proxy_requests(&log), 3);
    char range[64];
    logged_range(&log, 1, range, sizeof(range));
    ck_assert_str_eq(range, "bytes=1000-1049575");
    logged_range(&log, 2, range, sizeof(range));
    ck_assert_str_eq(range, "bytes=201000-1049575"); /* from the first byte not delivered */
    logged_range(&log, 3, range, sizeof(range));
    ck_assert_str_eq(range, "bytes=201001-1049575");
    ck_buf_free(&b);
    ck_buf_free(&log);
    ck_store_close(s);
}
END_TEST

START_TEST(test_get_resumes_after_stall)
{
    struct ck_store_env env;
    test_env(&env);
    tu_fault_plan(T.proxy_port, "stall=4@5000");
    struct ck_store *s = open_at(&env, true, "big.bin");
    struct ck_buf b, log;
    struct ck_err err;
    double t0 = ck_now();
    ck_assert_msg(get_into(s, 0, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    ck_assert(ck_now() - t0 < 3.5); /* cut by the 1 s stall timeout, not the 4 s stall */
    assert_big(&b, 0, BIG_SIZE);
    ck_assert_int_eq(proxy_requests(&log), 2);
    ck_buf_free(&b);
    ck_buf_free(&log);
    ck_store_close(s);
}
END_TEST

START_TEST(test_retry_after_is_honoured)
{
    struct ck_store_env env;
    test_env(&env);
    env.retry.max_delay_s = 0.6; /* Retry-After: 1 is honoured up to this */
    tu_fault_plan(T.proxy_port, "retry-after=1");
    struct ck_store *s = open_at(&env, true, "big.bin");
    struct ck_buf b;
    struct ck_err err;
    double t0 = ck_now();
    ck_assert_msg(get_into(s, 0, 100, &b, &err) == CK_OK, "%s", err.msg);
    double took = ck_now() - t0;
    ck_assert_msg(took >= 0.55 && took < 1.0, "took %.3f s", took);
    assert_big(&b, 0, 100);
    ck_buf_free(&b);
    ck_store_close(s);
}
END_TEST

/* An object within the window (3 MiB of the default 32 MiB) is sent from memory with its
 * length at commit; 5xx are retried there, without another pass. */
START_TEST(test_put_retried_after_5xx)
{
    struct ck_store_env env;
    test_env(&env);
    tu_fault_plan(T.proxy_port, "status=503,status=500");
    struct ck_store *s = open_at(&env, true, "put/retried.bin");
    struct ck_err err;
    unsigned passes = 0;
    ck_assert_msg(put_passes(s, T.big, BIG_SIZE, &passes, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(passes, 1); /* no CK_EREPLAY */
    struct ck_buf b, log;
    ck_assert_int_eq(proxy_requests(&log), 3);
    const char *p = log.data;
    for (int i = 0; i < 3; i++) { /* each attempt sent the whole object with its length */
        p = strstr(p, "\"bytes_in\": 3145745");
        ck_assert_ptr_nonnull(p);
        p++;
    }
    ck_buf_free(&log);
    ck_assert_int_eq(get_into(s, 0, CK_STORE_TO_END, &b, &err), CK_OK);
    assert_big(&b, 0, BIG_SIZE);
    ck_buf_free(&b);
    ck_store_close(s);
}
END_TEST

/* ---- replies that must be refused or handled -------------------------------------- */

START_TEST(test_wrong_range_refused)
{
    struct ck_store_env env;
    test_env(&env);
    tu_fault_plan(T.proxy_port, "shift=7");
    struct ck_store *s = open_at(&env, true, "big.bin");
    struct ck_buf b;
    struct ck_err err;
    ck_assert_int_eq(get_into(s, 5000, 1000, &b, &err), CK_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "wrong range"), "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "GET http://127.0.0.1:"), "%s", err.msg);
    ck_assert_uint_eq(b.len, 0); /* nothing of the wrong bytes reached the sink */
    ck_buf_free(&b);
    ck_store_close(s);
}
END_TEST

START_TEST(test_full_reply_to_range_is_cut_to_the_range)
{
    struct ck_store_env env;
    test_env(&env);
    tu_fault_plan(T.proxy_port, "norange,norange");
    struct ck_store *s = open_at(&env, true, "big.bin");
    struct ck_buf b;
    struct ck_err err;
    ck_assert_msg(get_into(s, 777, 5000, &b, &err) == CK_OK, "%s", err.msg);
    assert_big(&b, 777, 5000);
    ck_buf_free(&b);
    ck_assert_msg(get_into(s, BIG_SIZE - 3000, CK_STORE_TO_END, &b, &err) == CK_OK, "%s", err.msg);
    assert_big(&b, BIG_SIZE - 3000, 3000);
    ck_buf_free(&b);
    ck_store_close(s);
}
END_TEST

START_TEST(test_head_refused_falls_back_to_range)
{
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *s = open_at(&env, true, "big.bin");
    struct ck_store_info info;
    struct ck_err err;
    tu_fault_plan(T.proxy_port, "status=405");
    ck_assert_msg(ck_store_head(s, &info, &err) == CK_OK, "%s", err.msg);
    ck_assert(info.exists);
    ck_assert_uint_eq(info.size, BIG_SIZE);
    struct ck_buf log;
    ck_assert_int_eq(proxy_requests(&log), 2);
    ck_assert_ptr_nonnull(strstr(log.data, "\"method\": \"HEAD\""));
    ck_assert_ptr_nonnull(strstr(log.data, "\"range\": \"bytes=0-0\""));
    ck_buf_free(&log);
    ck_store_close(s);

    s = open_at(&env, true, "no/such/object");
    tu_fault_plan(T.proxy_port, "status=403");
    ck_assert_int_eq(ck_store_head(s, &info, &err), CK_OK);
    ck_assert(!info.exists);
    ck_store_close(s);
}
END_TEST

START_TEST(test_head_fallback_on_empty_object)
{
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *s = open_at(&env, true, "empty/obj");
    struct ck_err err;
    tu_fault_plan(T.proxy_port, "");
    ck_assert_msg(put_bytes(s, "", 0, &err) == CK_OK, "%s", err.msg);
    tu_fault_plan(T.proxy_port, "status=403");
    struct ck_store_info info;
    ck_assert_msg(ck_store_head(s, &info, &err) == CK_OK, "%s", err.msg);
    ck_assert(info.exists);
    ck_assert_uint_eq(info.size, 0);
    ck_store_close(s);
}
END_TEST

/* ---- permanent faults: clear errors, old object untouched -------------------------- */

START_TEST(test_put_403_keeps_old_object)
{
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *direct = open_at(&env, false, "perm/obj");
    struct ck_err err;
    ck_assert_msg(put_bytes(direct, "old", 3, &err) == CK_OK, "%s", err.msg);
    ck_store_close(direct);

    tu_fault_plan(T.proxy_port, "status=403");
    struct ck_store *s = open_at(&env, true, "perm/obj?X-Amz-Signature=SECRET&sig=SECRET");
    ck_assert_int_eq(put_bytes(s, "new contents", 12, &err), CK_EAUTH);
    char want[200];
    snprintf(want, sizeof(want), "PUT http://127.0.0.1:%d/perm/obj: HTTP 403 Forbidden",
             T.proxy_port);
    ck_assert_str_eq(err.msg, want);
    struct ck_buf log;
    ck_assert_int_eq(proxy_requests(&log), 1); /* a 403 is not retried */
    ck_buf_free(&log);
    ck_store_close(s);
    assert_remote_is("perm/obj", "old");
}
END_TEST

START_TEST(test_put_500_forever_gives_up)
{
    struct ck_store_env env;
    test_env(&env);
    env.retry.max_attempts = 3;
    struct ck_store *direct = open_at(&env, false, "perm/obj500");
    struct ck_err err;
    ck_assert_msg(put_bytes(direct, "old", 3, &err) == CK_OK, "%s", err.msg);
    ck_store_close(direct);

    tu_fault_plan(T.proxy_port, "status=500*inf");
    struct ck_store *s = open_at(&env, true, "perm/obj500");
    unsigned passes = 0;
    ck_assert_int_eq(put_passes(s, T.big, 100000, &passes, &err), CK_ENET);
    ck_assert_uint_eq(passes, 1); /* retried from memory, not replayed */
    ck_assert_msg(strstr(err.msg, "HTTP 500 Internal Server Error"), "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "gave up after 3 attempts"), "%s", err.msg);
    struct ck_buf log;
    ck_assert_int_eq(proxy_requests(&log), 3);
    ck_buf_free(&log);
    ck_store_close(s);
    assert_remote_is("perm/obj500", "old");
}
END_TEST

START_TEST(test_get_403_not_retried)
{
    struct ck_store_env env;
    test_env(&env);
    tu_fault_plan(T.proxy_port, "status=403*inf");
    struct ck_store *s = open_at(&env, true, "big.bin");
    struct ck_buf b, log;
    struct ck_err err;
    ck_assert_int_eq(get_into(s, 0, 10, &b, &err), CK_EAUTH);
    ck_assert_int_eq(proxy_requests(&log), 1);
    ck_buf_free(&b);
    ck_buf_free(&log);
    ck_store_close(s);
}
END_TEST

START_TEST(test_connection_refused_gives_up)
{
    struct ck_store_env env;
    test_env(&env);
    env.retry.max_attempts = 2;
    struct ck_store *s;
    struct ck_err err;
    /* port 1 on loopback: nothing listens there */
    ck_assert_int_eq(ck_store_open("http://127.0.0.1:1/x?sig=SECRET", &env, &s, &err), CK_OK);
    struct ck_store_info info;
    ck_assert_int_eq(ck_store_head(s, &info, &err), CK_ENET);
    ck_assert_msg(strstr(err.msg, "HEAD http://127.0.0.1:1/x: "), "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "gave up after 2 attempts"), "%s", err.msg);
    ck_assert(!strstr(err.msg, "SECRET"));
    ck_store_close(s);
}
END_TEST

START_TEST(test_no_secret_in_logs)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/log-XXXXXX", T.dir);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    int saved = dup(2);
    dup2(fd, 2);
    ck_log_init(CK_LOG_DEBUG, false);

    struct ck_store_env env;
    test_env(&env);
    tu_fault_plan(T.proxy_port, "status=503,reset@1000");
    struct ck_store *s = open_at(&env, true, "big.bin?X-Amz-Signature=SECRET");
    struct ck_buf b;
    struct ck_err err;
    ck_rc rc = get_into(s, 0, 50000, &b, &err);
    fflush(stderr);
    dup2(saved, 2);
    ck_assert_msg(rc == CK_OK, "%s", err.msg);
    assert_big(&b, 0, 50000);
    ck_buf_free(&b);
    ck_store_close(s);

    char text[8192] = "";
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    ck_assert_int_gt(n, 0);
    text[n] = '\0';
    close(fd);
    ck_assert_msg(strstr(text, "HTTP 503"), "%s", text);
    ck_assert_msg(strstr(text, "retry 2 of 4"), "%s", text);
    ck_assert_msg(!strstr(text, "SECRET"), "%s", text);
}
END_TEST

/* ---- a scripted in-process server: what exactly the PUT protocol sends ---------------
 *
 * Runs as a thread of the (forked) test. One request per connection ("Connection:
 * close"); it reads Content-Length and chunked bodies, keeps one object in memory (stored
 * only once its whole body arrived, like an atomic server), answers HEAD with its size,
 * and logs every request. Each PUT takes the next step of its plan (then SRV_STORE); with
 * no_chunked, a chunked PUT is answered 411 at once instead. */

enum srv_kind {
    SRV_STORE, /* read the body, store it, 201 */
    SRV_EARLY, /* answer arg right after the headers (no 100 Continue), then drain */
    SRV_AFTER, /* read the whole body, then answer arg */
    SRV_RESET, /* read arg bytes of the body, then reset the connection */
    SRV_DROP,  /* read the body, store none of it (a proxy that drops chunked bodies), 201 */
};

struct srv_step {
    enum srv_kind kind;
    long arg;
    int count; /* -1: forever */
};

struct srv_rec {
    char method[8];
    bool chunked;
    int64_t clen; /* Content-Length, -1 if none */
    uint64_t got; /* body bytes read so far */
    int status;   /* answered; 0 while running or after a reset */
};

#define SRV_LOG_MAX 64

struct srv {
    int lfd, port;
    pthread_t thread;
    pthread_mutex_t lock;
    atomic_bool stop;
    bool no_chunked;
    struct srv_step plan[8];
    int nplan;
    struct srv_rec log[SRV_LOG_MAX]; /* lock */
    int nlog;                        /* lock */
    struct ck_buf obj;               /* lock */
    bool exists;                     /* lock */
};

struct srv_conn {
    int fd;
    size_t len, pos;
    char buf[65536];
};

static int conn_getc(struct srv_conn *c)
{
    if (c->pos == c->len) {
        ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);
        if (n <= 0)
            return -1;
        c->len = (size_t)n;
        c->pos = 0;
    }
    return (unsigned char)c->buf[c->pos++];
}

static bool conn_line(struct srv_conn *c, char *out, size_t outsz)
{
    size_t n = 0;
    for (;;) {
        int ch = conn_getc(c);
        if (ch < 0)
            return false;
        if (ch == '\n')
            break;
        if (n + 1 < outsz)
            out[n++] = (char)ch;
    }
    if (n && out[n - 1] == '\r')
        n--;
    out[n] = '\0';
    return true;
}

/* Reads n body bytes (fewer at stop_at) into out (may be NULL), counting them in r. */
static bool conn_body(struct srv *sv, struct srv_conn *c, struct srv_rec *r, uint64_t n,
                      uint64_t stop_at, struct ck_buf *out)
{
    while (n > 0) {
        if (r->got >= stop_at)
            return false;
        int ch = conn_getc(c);
        if (ch < 0)
            return false;
        c->pos--;
        size_t k = c->len - c->pos;
        if (k > n)
            k = (size_t)n;
        if (k > stop_at - r->got)
            k = (size_t)(stop_at - r->got);
        if (out)
            ck_buf_append(out, c->buf + c->pos, k);
        c->pos += k;
        n -= k;
        pthread_mutex_lock(&sv->lock);
        r->got += k;
        pthread_mutex_unlock(&sv->lock);
    }
    return true;
}

/* The whole body (chunked or Content-Length); false if cut or stopped at stop_at. */
static bool read_body(struct srv *sv, struct srv_conn *c, struct srv_rec *r, uint64_t stop_at,
                      struct ck_buf *out)
{
    if (!r->chunked)
        return conn_body(sv, c, r, r->clen > 0 ? (uint64_t)r->clen : 0, stop_at, out);
    char line[256];
    for (;;) {
        if (!conn_line(c, line, sizeof(line)))
            return false;
        unsigned long long size = strtoull(line, NULL, 16);
        if (size == 0)
            break;
        if (!conn_body(sv, c, r, size, stop_at, out) || !conn_line(c, line, sizeof(line)))
            return false;
    }
    while (conn_line(c, line, sizeof(line)) && line[0]) /* trailers */
        ;
    return true;
}

static void srv_send(int fd, int status, uint64_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Length: %llu\r\nConnection: close\r\n\r\n", status,
                     status == 100 ? "Continue" : "X", (unsigned long long)len);
    if (status == 100)
        n = snprintf(head, sizeof(head), "HTTP/1.1 100 Continue\r\n\r\n");
    ssize_t w = send(fd, head, (size_t)n, MSG_NOSIGNAL);
    (void)w;
}

static struct srv_step srv_next(struct srv *sv)
{
    struct srv_step st = {SRV_STORE, 0, -1};
    pthread_mutex_lock(&sv->lock);
    for (int i = 0; i < sv->nplan; i++) {
        if (sv->plan[i].count == 0)
            continue;
        st = sv->plan[i];
        if (sv->plan[i].count > 0)
            sv->plan[i].count--;
        break;
    }
    pthread_mutex_unlock(&sv->lock);
    return st;
}

static void srv_status(struct srv *sv, struct srv_rec *r, int status)
{
    pthread_mutex_lock(&sv->lock);
    r->status = status;
    pthread_mutex_unlock(&sv->lock);
}

static void srv_handle(struct srv *sv, struct srv_conn *c)
{
    char line[1024], method[8] = "";
    struct srv_rec rec = {.clen = -1}, *r;
    bool expect = false;
    if (!conn_line(c, line, sizeof(line)) || sscanf(line, "%7s", method) != 1)
        return;
    snprintf(rec.method, sizeof(rec.method), "%s", method);
    while (conn_line(c, line, sizeof(line)) && line[0]) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            rec.clen = strtoll(line + 15, NULL, 10);
        else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strstr(line, "chunked"))
            rec.chunked = true;
        else if (strncasecmp(line, "Expect:", 7) == 0 && strstr(line, "100-continue"))
            expect = true;
    }
    pthread_mutex_lock(&sv->lock);
    ck_assert_int_lt(sv->nlog, SRV_LOG_MAX);
    r = &sv->log[sv->nlog++];
    *r = rec;
    uint64_t size = sv->obj.len;
    bool exists = sv->exists;
    pthread_mutex_unlock(&sv->lock);
    if (strcmp(method, "HEAD") == 0) {
        srv_status(sv, r, exists ? 200 : 404);
        srv_send(c->fd, exists ? 200 : 404, exists ? size : 0);
        return;
    }
    struct srv_step st = srv_next(sv);
    if (sv->no_chunked && rec.chunked)
        st = (struct srv_step){SRV_EARLY, 411, 1};
    if (st.kind == SRV_EARLY) {
        srv_status(sv, r, (int)st.arg);
        srv_send(c->fd, (int)st.arg, 0);
        shutdown(c->fd, SHUT_WR);
        read_body(sv, c, r, UINT64_MAX, NULL); /* drain: no reset that could hide the answer */
        return;
    }
    if (expect)
        srv_send(c->fd, 100, 0);
    struct ck_buf body;
    ck_buf_init(&body, 64u << 20);
    bool whole = read_body(sv, c, r, st.kind == SRV_RESET ? (uint64_t)st.arg : UINT64_MAX,
                           st.kind == SRV_STORE ? &body : NULL);
    if (st.kind == SRV_DROP)
        st.kind = SRV_STORE; /* an empty object */
    if (st.kind == SRV_RESET) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    } else if (whole) {
        int code = st.kind == SRV_AFTER ? (int)st.arg : 201;
        if (st.kind == SRV_STORE) {
            pthread_mutex_lock(&sv->lock);
            ck_buf_free(&sv->obj);
            sv->obj = body;
            sv->exists = true;
            pthread_mutex_unlock(&sv->lock);
            ck_buf_init(&body, 0);
        }
        srv_status(sv, r, code);
        srv_send(c->fd, code, 0);
    }
    ck_buf_free(&body);
}

static void *srv_main(void *arg)
{
    struct srv *sv = arg;
    struct srv_conn *c = malloc(sizeof(*c));
    ck_assert_ptr_nonnull(c);
    while (!atomic_load(&sv->stop)) {
        struct pollfd p = {.fd = sv->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(sv->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct timeval tv = {2, 0}; /* a client gone quiet ends the request */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        c->fd = fd;
        c->len = c->pos = 0;
        srv_handle(sv, c);
        close(fd);
    }
    free(c);
    return NULL;
}

/* Starts a server holding old (may be NULL: no object) with the given plan. */
static struct srv *srv_start(const char *old, const struct srv_step *plan, int nplan)
{
    struct srv *sv = calloc(1, sizeof(*sv));
    ck_assert_ptr_nonnull(sv);
    pthread_mutex_init(&sv->lock, NULL);
    ck_buf_init(&sv->obj, 64u << 20);
    if (old) {
        ck_buf_append(&sv->obj, old, strlen(old));
        sv->exists = true;
    }
    ck_assert_int_le(nplan, 8);
    for (int i = 0; i < nplan; i++)
        sv->plan[i] = plan[i];
    sv->nplan = nplan;
    sv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 32 << 10; /* little in flight: a cut is seen while the writer still writes */
    setsockopt(sv->lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    ck_assert_int_eq(bind(sv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(sv->lfd, 16), 0);
    ck_assert_int_eq(getsockname(sv->lfd, (struct sockaddr *)&a, &alen), 0);
    sv->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&sv->thread, NULL, srv_main, sv), 0);
    return sv;
}

static void srv_stop(struct srv *sv)
{
    atomic_store(&sv->stop, true);
    pthread_join(sv->thread, NULL);
    close(sv->lfd);
    ck_buf_free(&sv->obj);
    pthread_mutex_destroy(&sv->lock);
    free(sv);
}

static struct ck_store *srv_open(const struct ck_store_env *env, const struct srv *sv)
{
    char uri[128];
    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/obj?sig=SECRET", sv->port);
    struct ck_store *s;
    struct ck_err err;
    ck_assert_msg(ck_store_open(uri, env, &s, &err) == CK_OK, "%s", err.msg);
    return s;
}

static struct srv_rec srv_rec(struct srv *sv, int i)
{
    pthread_mutex_lock(&sv->lock);
    ck_assert_int_lt(i, sv->nlog);
    struct srv_rec r = sv->log[i];
    pthread_mutex_unlock(&sv->lock);
    return r;
}

static int srv_count(struct srv *sv)
{
    pthread_mutex_lock(&sv->lock);
    int n = sv->nlog;
    pthread_mutex_unlock(&sv->lock);
    return n;
}

/* Waits (a little) until the server has answered request i: the client may see the
 * answer before the server thread has logged its end. */
static struct srv_rec srv_wait(struct srv *sv, int i)
{
    for (int k = 0; k < 200 && (srv_count(sv) <= i || srv_rec(sv, i).status == 0); k++)
        ck_sleep(0.01);
    return srv_rec(sv, i);
}

static void assert_srv_obj(struct srv *sv, const void *want, size_t len)
{
    pthread_mutex_lock(&sv->lock);
    bool ok =
        sv->exists && sv->obj.len == len && (len == 0 || memcmp(sv->obj.data, want, len) == 0);
    size_t have = sv->obj.len;
    pthread_mutex_unlock(&sv->lock);
    ck_assert_msg(ok, "server object: %zu bytes, want %zu", have, len);
}

#define WIN (64 * 1024)

static void small_window(void)
{
    ck_assert_int_eq(setenv("CKPTFS_HTTP_WINDOW", "64K", 1), 0);
}

/* ---- the bounded window and replays (store.h "Replays") ----------------------------- */

START_TEST(test_put_needs_replayable)
{
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *s = open_at(&env, false, "replayable/obj");
    struct ck_store_upload *u;
    struct ck_err err;
    ck_assert_int_eq(ck_store_put_begin(s, NULL, &u, &err), CK_EUNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "PUT http://127.0.0.1:") && strstr(err.msg, "replayable"), "%s",
                  err.msg);
    struct ck_put_opts o = {.replayable = false, .size = 3, .pass = 0};
    ck_assert_int_eq(ck_store_put_begin(s, &o, &u, &err), CK_EUNSUPPORTED);
    ck_store_close(s);

    ck_assert_int_eq(setenv("CKPTFS_HTTP_WINDOW", "1K", 1), 0); /* below 64 KiB */
    ck_assert_int_eq(ck_store_open("http://127.0.0.1:1/x", &env, &s, &err), CK_EINVAL);
    ck_assert_msg(strstr(err.msg, "CKPTFS_HTTP_WINDOW"), "%s", err.msg);
}
END_TEST

/* Create-only puts: a plain http(s) PUT cannot check and write in one step. */
START_TEST(test_put_create_only_unsupported)
{
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *s = open_at(&env, false, "create-only/obj");
    struct ck_store_upload *u = (struct ck_store_upload *)1;
    struct ck_err err;
    struct ck_put_opts o = {.replayable = true, .size = CK_STORE_SIZE_UNKNOWN, .if_absent = true};
    ck_assert_int_eq(ck_store_put_begin(s, &o, &u, &err), CK_EUNSUPPORTED);
    ck_assert_ptr_null(u);
    ck_assert_msg(strstr(err.msg, "PUT http://127.0.0.1:") && strstr(err.msg, "create-only"), "%s",
                  err.msg);
    struct ck_store_info info;
    ck_assert_int_eq(ck_store_head(s, &info, &err), CK_OK);
    ck_assert(!info.exists); /* nothing was sent */
    ck_store_close(s);
}
END_TEST

/* Far more than the window, size unknown: one chunked PUT fed while the writer writes,
 * against real nginx and against the scripted server (which shows the request). */
START_TEST(test_put_streams_beyond_window)
{
    small_window();
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *s = open_at(&env, false, "stream/big.bin");
    struct ck_err err;
    struct ck_put_opts o = {.replayable = true, .size = CK_STORE_SIZE_UNKNOWN, .pass = 0};
    struct ck_store_upload *u;
    ck_assert_int_eq(ck_store_put_begin(s, &o, &u, &err), CK_OK);
    ck_assert_int_eq(ck_store_put_write(u, T.big, 1 << 20, &err), CK_OK);
    ck_sleep(1.5); /* a writer slower than the 1 s stall timeout: waiting for it is no stall */
    ck_assert_int_eq(ck_store_put_write(u, T.big + (1 << 20), BIG_SIZE - (1 << 20), &err), CK_OK);
    ck_assert_msg(ck_store_put_commit(u, &err) == CK_OK, "%s", err.msg);
    struct ck_buf b;
    ck_assert_int_eq(get_into(s, 0, CK_STORE_TO_END, &b, &err), CK_OK);
    assert_big(&b, 0, BIG_SIZE);
    ck_buf_free(&b);
    ck_store_close(s);

    struct srv *sv = srv_start(NULL, NULL, 0);
    s = srv_open(&env, sv);
    ck_assert_int_eq(ck_store_put_begin(s, &o, &u, &err), CK_OK);
    size_t half = BIG_SIZE / 2, off = 0;
    for (; off + 4096 <= half; off += 4096)
        ck_assert_int_eq(ck_store_put_write(u, T.big + off, 4096, &err), CK_OK);
    /* half the object written through a 64 KiB window: the PUT is under way already,
     * its body arriving while the writer writes */
    for (int k = 0; k < 200 && srv_count(sv) == 1 && srv_rec(sv, 0).got == 0; k++)
        ck_sleep(0.01);
    ck_assert_int_eq(srv_count(sv), 1);
    struct srv_rec r = srv_rec(sv, 0);
    ck_assert_str_eq(r.method, "PUT");
    ck_assert(r.chunked);
    ck_assert_int_eq(r.clen, -1);
    ck_assert_uint_gt(r.got, 0);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(ck_store_put_write(u, T.big + off, BIG_SIZE - off, &err), CK_OK);
    ck_assert_msg(ck_store_put_commit(u, &err) == CK_OK, "%s", err.msg);
    assert_srv_obj(sv, T.big, BIG_SIZE);
    ck_assert_int_eq(srv_count(sv), 2); /* the PUT, then the HEAD that confirms its size */
    ck_assert_uint_eq(srv_rec(sv, 0).got, BIG_SIZE);
    ck_assert_int_eq(srv_rec(sv, 0).status, 201);
    ck_assert_str_eq(srv_rec(sv, 1).method, "HEAD");
    ck_store_close(s);
    srv_stop(sv);
}
END_TEST

/* A server that wants a length: the chunked PUT gets 411, the rest of that pass only
 * counts, the next pass sends Content-Length; later uploads count first without trying
 * chunked, and objects within the window go from memory at once. */
START_TEST(test_put_411_counts_then_sends_length)
{
    small_window();
    struct ck_store_env env;
    test_env(&env);
    struct srv *sv = srv_start("old", NULL, 0);
    sv->no_chunked = true;
    struct ck_store *s = srv_open(&env, sv);
    struct ck_put_opts o = {.replayable = true, .size = CK_STORE_SIZE_UNKNOWN, .pass = 0};
    struct ck_err err;
    size_t accepted;
    ck_assert_int_eq(put_pass(s, &o, T.big, BIG_SIZE, &accepted, &err), CK_EREPLAY);
    ck_assert_uint_eq(accepted, BIG_SIZE); /* counted to the end: the size is known now */
    ck_assert_int_eq(srv_count(sv), 1);
    struct srv_rec r = srv_wait(sv, 0);
    ck_assert(r.chunked);
    ck_assert_int_eq(r.status, 411);
    assert_srv_obj(sv, "old", 3);

    o.pass = 1;
    o.size = BIG_SIZE;
    ck_assert_msg(put_pass(s, &o, T.big, BIG_SIZE, &accepted, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(srv_count(sv), 2);
    r = srv_rec(sv, 1);
    ck_assert(!r.chunked);
    ck_assert_int_eq(r.clen, BIG_SIZE);
    assert_srv_obj(sv, T.big, BIG_SIZE);

    /* the store remembers: a new upload of unknown size is a counting pass, nothing sent */
    const char *other = T.big + 1000;
    size_t olen = BIG_SIZE - 5000;
    o.pass = 0;
    o.size = CK_STORE_SIZE_UNKNOWN;
    ck_assert_int_eq(put_pass(s, &o, other, olen, &accepted, &err), CK_EREPLAY);
    ck_assert_uint_eq(accepted, olen);
    ck_assert_int_eq(srv_count(sv), 2);
    o.pass = 1;
    o.size = olen;
    ck_assert_msg(put_pass(s, &o, other, olen, &accepted, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(srv_count(sv), 3);
    ck_assert_int_eq(srv_rec(sv, 2).clen, (int64_t)olen);
    assert_srv_obj(sv, other, olen);

    /* within the window: from memory with its length, no second pass */
    unsigned passes = 0;
    ck_assert_msg(put_passes(s, T.big, WIN, &passes, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(passes, 1);
    ck_assert_int_eq(srv_count(sv), 4);
    ck_assert_int_eq(srv_rec(sv, 3).clen, WIN);
    assert_srv_obj(sv, T.big, WIN);
    ck_store_close(s);
    srv_stop(sv);
}
END_TEST

/* The connection is reset in the middle of a streamed body: put_write stops the writer
 * with CK_EREPLAY (the window has moved on), and a second pass with the size succeeds. */
START_TEST(test_put_reset_mid_stream_replays)
{
    small_window();
    struct ck_store_env env;
    test_env(&env);
    struct srv_step plan[] = {{SRV_RESET, 200000, 1}};
    struct srv *sv = srv_start("old", plan, 1);
    struct ck_store *s = srv_open(&env, sv);
    struct ck_put_opts o = {.replayable = true, .size = CK_STORE_SIZE_UNKNOWN, .pass = 0};
    struct ck_err err;
    size_t accepted;
    ck_assert_int_eq(put_pass(s, &o, T.big, BIG_SIZE, &accepted, &err), CK_EREPLAY);
    ck_assert_msg(accepted < BIG_SIZE, "the writer was not stopped early (%zu bytes)", accepted);
    ck_assert(!strstr(err.msg, "SECRET"));
    struct srv_rec r = srv_rec(sv, 0);
    ck_assert(r.chunked);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.got, 200000);
    assert_srv_obj(sv, "old", 3);

    o.pass = 1;
    o.size = BIG_SIZE;
    ck_assert_msg(put_pass(s, &o, T.big, BIG_SIZE, &accepted, &err) == CK_OK, "%s", err.msg);
    ck_assert_int_eq(srv_count(sv), 2);
    r = srv_rec(sv, 1);
    ck_assert_int_eq(r.clen, BIG_SIZE);
    ck_assert_int_eq(r.status, 201);
    assert_srv_obj(sv, T.big, BIG_SIZE);
    ck_store_close(s);
    srv_stop(sv);
}
END_TEST

/* Every pass fails (503 after the body): passes until retry.max_attempts, then the real
 * error naming the URL and the failure; the old object stays. */
START_TEST(test_put_transient_every_pass_gives_up)
{
    small_window();
    struct ck_store_env env;
    test_env(&env);
    env.retry.max_attempts = 3;
    struct srv_step plan[] = {{SRV_AFTER, 503, -1}};
    struct srv *sv = srv_start("old", plan, 1);
    struct ck_store *s = srv_open(&env, sv);
    struct ck_err err;
    unsigned passes = 0;
    ck_assert_int_eq(put_passes(s, T.big, BIG_SIZE, &passes, &err), CK_ENET);
    ck_assert_uint_eq(passes, 3);
    char want[200];
    snprintf(want, sizeof(want),
             "PUT http://127.0.0.1:%d/obj: HTTP 503 X (gave up after 3 attempts)", sv->port);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(srv_count(sv), 3);
    ck_assert(srv_rec(sv, 0).chunked);               /* pass 1: size unknown */
    ck_assert_int_eq(srv_rec(sv, 1).clen, BIG_SIZE); /* then with the size learnt */
    ck_assert_int_eq(srv_rec(sv, 2).clen, BIG_SIZE);
    assert_srv_obj(sv, "old", 3);
    ck_store_close(s);
    srv_stop(sv);
}
END_TEST

/* A permanent refusal ends the upload at once: no replay, no retry. */
START_TEST(test_put_403_streamed_fails_at_once)
{
    small_window();
    struct ck_store_env env;
    test_env(&env);
    struct srv_step plan[] = {{SRV_EARLY, 403, -1}};
    struct srv *sv = srv_start("old", plan, 1);
    struct ck_store *s = srv_open(&env, sv);
    struct ck_err err;
    unsigned passes = 0;
    ck_assert_int_eq(put_passes(s, T.big, BIG_SIZE, &passes, &err), CK_EAUTH);
    ck_assert_uint_eq(passes, 1);
    char want[200];
    snprintf(want, sizeof(want), "PUT http://127.0.0.1:%d/obj: HTTP 403 X", sv->port);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(srv_count(sv), 1);
    assert_srv_obj(sv, "old", 3);
    ck_store_close(s);
    srv_stop(sv);
}
END_TEST

/* put_abort in the middle of a streamed PUT cuts it: nginx keeps the old object. */
START_TEST(test_put_abort_mid_stream_keeps_old_object)
{
    small_window();
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *s = open_at(&env, false, "abort/obj");
    struct ck_err err;
    ck_assert_msg(put_bytes(s, "old", 3, &err) == CK_OK, "%s", err.msg);
    struct ck_put_opts o = {.replayable = true, .size = CK_STORE_SIZE_UNKNOWN, .pass = 0};
    struct ck_store_upload *u;
    ck_assert_int_eq(ck_store_put_begin(s, &o, &u, &err), CK_OK);
    for (size_t off = 0; off < (1u << 20); off += 65536)
        ck_assert_int_eq(ck_store_put_write(u, T.big + off, 65536, &err), CK_OK);
    double t0 = ck_now();
    ck_store_put_abort(u);
    ck_assert(ck_now() - t0 < 1.5);
    ck_store_close(s);
    assert_remote_is("abort/obj", "old");

    /* the same with a known size: the PUT is cut before its last byte */
    s = open_at(&env, false, "abort/obj");
    o.size = BIG_SIZE;
    o.pass = 1;
    ck_assert_int_eq(ck_store_put_begin(s, &o, &u, &err), CK_OK);
    ck_assert_int_eq(ck_store_put_write(u, T.big, BIG_SIZE - 1, &err), CK_OK);
    ck_store_put_abort(u);
    ck_store_close(s);
    assert_remote_is("abort/obj", "old");
}
END_TEST

/* A replay that does not bring the bytes of the last pass is refused, and the sized PUT
 * never completes: nginx keeps the old object. */
START_TEST(test_put_sized_pass_that_differs)
{
    small_window();
    struct ck_store_env env;
    test_env(&env);
    struct ck_store *s = open_at(&env, false, "differs/obj");
    struct ck_err err;
    ck_assert_msg(put_bytes(s, "old", 3, &err) == CK_OK, "%s", err.msg);
    struct ck_put_opts o = {.replayable = true, .size = BIG_SIZE, .pass = 1};
    size_t accepted;
    /* fewer bytes: commit refuses */
    ck_assert_int_eq(put_pass(s, &o, T.big, BIG_SIZE - 1000, &accepted, &err), CK_ECORRUPT);
    ck_assert_uint_eq(accepted, BIG_SIZE - 1000);
    ck_assert_msg(strstr(err.msg, "archive differs between passes"), "%s", err.msg);
    assert_remote_is("differs/obj", "old");
    /* more bytes: all the last pass had, then one more, which put_write refuses; the PUT
     * holds its last byte back until commit, so it never completed meanwhile */
    o.size = 1 << 20;
    struct ck_store_upload *u;
    ck_assert_int_eq(ck_store_put_begin(s, &o, &u, &err), CK_OK);
    ck_assert_int_eq(ck_store_put_write(u, T.big, 1 << 20, &err), CK_OK);
    ck_sleep(0.3);
    ck_assert_int_eq(ck_store_put_write(u, T.big + (1 << 20), 1, &err), CK_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "archive differs between passes"), "%s", err.msg);
    ck_store_put_abort(u);
    assert_remote_is("differs/obj", "old");
    /* within the window: refused before anything is sent */
    o.size = 1000;
    ck_assert_int_eq(put_pass(s, &o, T.big, 999, &accepted, &err), CK_ECORRUPT);
    assert_remote_is("differs/obj", "old");
    ck_store_close(s);
}
END_TEST

/* Something between us and the server drops chunked bodies (the object is stored empty
 * with a 201): the HEAD after the PUT sees it, the object is sent again with its length,
 * and the store sends lengths from then on. */
START_TEST(test_put_chunked_stored_wrong_is_sent_again)
{
    small_window();
    struct ck_store_env env;
    test_env(&env);
    struct srv_step plan[] = {{SRV_DROP, 0, 1}};
    struct srv *sv = srv_start("old", plan, 1);
    struct ck_store *s = srv_open(&env, sv);
    struct ck_err err;
    unsigned passes = 0;
    ck_assert_msg(put_passes(s, T.big, BIG_SIZE, &passes, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(passes, 2);
    ck_assert_int_eq(srv_count(sv), 3); /* chunked PUT, HEAD (0 bytes), PUT with length */
    ck_assert(srv_rec(sv, 0).chunked);
    ck_assert_str_eq(srv_rec(sv, 1).method, "HEAD");
    ck_assert_int_eq(srv_rec(sv, 2).clen, BIG_SIZE);
    assert_srv_obj(sv, T.big, BIG_SIZE);
    /* the store learnt it: the next upload counts first instead of trying chunked */
    ck_assert_msg(put_passes(s, T.big + 7, BIG_SIZE - 7, &passes, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(passes, 2);
    ck_assert_int_eq(srv_count(sv), 4);
    ck_assert_int_eq(srv_rec(sv, 3).clen, BIG_SIZE - 7);
    assert_srv_obj(sv, T.big + 7, BIG_SIZE - 7);
    ck_store_close(s);
    srv_stop(sv);

    /* a success reply before the chunked body was read (a server that took an empty
     * body): the same lesson, learnt in the same pass, which goes on counting */
    struct srv_step early[] = {{SRV_EARLY, 201, 1}};
    sv = srv_start("old", early, 1);
    s = srv_open(&env, sv);
    ck_assert_msg(put_passes(s, T.big, BIG_SIZE, &passes, &err) == CK_OK, "%s", err.msg);
    ck_assert_uint_eq(passes, 2);
    ck_assert_int_eq(srv_count(sv), 2);
    ck_assert(srv_rec(sv, 0).chunked);
    ck_assert_int_eq(srv_rec(sv, 1).clen, BIG_SIZE);
    assert_srv_obj(sv, T.big, BIG_SIZE);
    ck_store_close(s);
    srv_stop(sv);
}
END_TEST

/* Every attempt stalls: once the retries are spent the result says it timed out
 * (CK_ETIMEDOUT, ETIMEDOUT at the mount), not a plain network failure. */
START_TEST(test_http_stalls_to_the_end_are_a_timeout)
{
    tu_fault_plan(T.proxy_port, "stall=20@100*inf");
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/big.bin", T.proxy_port);
    struct ck_http_request req;
    struct ck_http_response resp;
    struct ck_err err;
    ck_http_request_init(&req);
    req.url = req.display_url = url;
    req.stall_timeout_s = 1;
    req.retry.max_attempts = 2;
    req.retry.base_delay_s = 0.01;
    ck_assert_int_eq(ck_http_perform(&req, &resp, &err), CK_ETIMEDOUT);
    tu_http_call(CK_HTTP_PUT, T.proxy_port, "/__fault/release", "", NULL, NULL);
    ck_assert_msg(strstr(err.msg, "no progress for 1 s") && strstr(err.msg, "gave up after 2"),
                  "%s", err.msg);
}
END_TEST

static void *set_after(void *arg)
{
    ck_sleep(0.3);
    atomic_store((atomic_bool *)arg, true);
    return NULL;
}

/* The engine's cancel flag cuts a transfer that is stuck (here a stalled GET, stall
 * timeout far away) within about a second. */
START_TEST(test_http_cancel_cuts_a_stalled_transfer)
{
    tu_fault_plan(T.proxy_port, "stall=20@5000");
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/big.bin", T.proxy_port);
    atomic_bool cancel;
    atomic_init(&cancel, false);
    struct ck_http_request req;
    struct ck_http_response resp;
    struct ck_err err;
    ck_http_request_init(&req);
    req.url = req.display_url = url;
    req.stall_timeout_s = 30;
    req.cancel = &cancel;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, set_after, &cancel), 0);
    double t0 = ck_now();
    ck_assert_int_eq(ck_http_perform(&req, &resp, &err), CK_ECANCELED);
    double took = ck_now() - t0;
    pthread_join(t, NULL);
    tu_http_call(CK_HTTP_PUT, T.proxy_port, "/__fault/release", "", NULL, NULL);
    ck_assert_msg(took < 2.0, "took %.2f s", took);
    ck_assert_msg(strstr(err.msg, "cancelled"), "%s", err.msg);
}
END_TEST

/* ---- servers ------------------------------------------------------------------------ */

static bool write_big(void)
{
    T.big = malloc(BIG_SIZE);
    if (!T.big)
        return false;
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (size_t i = 0; i < BIG_SIZE; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        T.big[i] = (char)(x >> 24);
    }
    char path[400];
    snprintf(path, sizeof(path), "%s/ngx/data/big.bin", T.dir);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(T.big, 1, BIG_SIZE, f) == BIG_SIZE;
    if (f)
        ok = fclose(f) == 0 && ok;
    return ok && chmod(path, 0644) == 0;
}

static bool start_servers(void)
{
    tu_tools(T.tools, sizeof(T.tools));
    snprintf(T.dir, sizeof(T.dir), "/tmp/ck-store-http-XXXXXX");
    if (!mkdtemp(T.dir))
        return false;
    T.proxy_port = tu_nginx_proxy_start(T.dir, &T.nginx, &T.proxy_pid);
    T.nginx_port = T.nginx.port;
    if (T.proxy_port > 0 && !write_big()) {
        fprintf(stderr, "test_store_http: writing the test data failed\n");
        return false;
    }
    return T.proxy_port > 0;
}

static void stop_servers(bool keep)
{
    tu_nginx_proxy_stop(T.dir, &T.nginx, T.proxy_pid, keep);
    free(T.big);
}

static Suite *store_http_suite(void)
{
    Suite *s = suite_create("store_http");
    TCase *tc = tcase_create("nginx");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_head_and_get);
    tcase_add_test(tc, test_missing_object);
    tcase_add_test(tc, test_put_roundtrip);
    tcase_add_test(tc, test_get_retries_transient_statuses);
    tcase_add_test(tc, test_get_resumes_after_reset);
    tcase_add_test(tc, test_ranged_get_resumes_after_truncation);
    tcase_add_test(tc, test_get_resumes_after_stall);
    tcase_add_test(tc, test_http_stalls_to_the_end_are_a_timeout);
    tcase_add_test(tc, test_retry_after_is_honoured);
    tcase_add_test(tc, test_put_retried_after_5xx);
    tcase_add_test(tc, test_wrong_range_refused);
    tcase_add_test(tc, test_full_reply_to_range_is_cut_to_the_range);
    tcase_add_test(tc, test_head_refused_falls_back_to_range);
    tcase_add_test(tc, test_head_fallback_on_empty_object);
    tcase_add_test(tc, test_put_403_keeps_old_object);
    tcase_add_test(tc, test_put_500_forever_gives_up);
    tcase_add_test(tc, test_get_403_not_retried);
    tcase_add_test(tc, test_connection_refused_gives_up);
    tcase_add_test(tc, test_no_secret_in_logs);
    tcase_add_test(tc, test_put_needs_replayable);
    tcase_add_test(tc, test_put_create_only_unsupported);
    tcase_add_test(tc, test_put_streams_beyond_window);
    tcase_add_test(tc, test_put_411_counts_then_sends_length);
    tcase_add_test(tc, test_put_reset_mid_stream_replays);
    tcase_add_test(tc, test_put_transient_every_pass_gives_up);
    tcase_add_test(tc, test_put_403_streamed_fails_at_once);
    tcase_add_test(tc, test_put_abort_mid_stream_keeps_old_object);
    tcase_add_test(tc, test_put_sized_pass_that_differs);
    tcase_add_test(tc, test_put_chunked_stored_wrong_is_sent_again);
    tcase_add_test(tc, test_http_cancel_cuts_a_stalled_transfer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_store_main(store_http_suite, start_servers, stop_servers);
}
