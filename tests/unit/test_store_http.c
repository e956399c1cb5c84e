/*
 * test_store_http.c - the http backend and the HTTP engine against real nginx (WebDAV),
 * with faults injected by tests/tools/faultproxy.py in front of it.
 *
 * main() starts both servers before the suite and stops them after it, in the parent
 * process, so they are cleaned up whatever the (forked) tests do. Each test resets the
 * proxy's plan and log through its control endpoint.
 */
#include <check.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/http.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"

#define BIG_SIZE (3 * 1024 * 1024 + 17)

/* Set once by main() before the suite forks its tests; read-only afterwards. */
static struct {
    char dir[256]; /* temp root: ngx/ (nginx), scratch/, proxy.log */
    char tools[512];
    int nginx_port;
    int proxy_port;
    pid_t proxy_pid;
    char *big; /* the content of ngx/data/big.bin */
} T;

/* ---- helpers ------------------------------------------------------------------------ */

static ck_rc buf_sink_write(void *ctx, const void *p, size_t n, struct ck_err *err)
{
    return ck_buf_append(ctx, p, n) ? ck_fail(err, CK_ENOMEM, "test buffer full") : CK_OK;
}

static void test_env(struct ck_store_env *env)
{
    static char scratch[300];
    ck_store_env_default(env);
    snprintf(scratch, sizeof(scratch), "%s/scratch", T.dir);
    env->scratch_dir = scratch;
    env->retry.max_attempts = 5;
    env->retry.base_delay_s = 0.01;
    env->retry.max_delay_s = 0.05;
    env->retry.deadline_s = 20;
    env->stall_timeout_s = 1;
    env->connect_timeout_s = 2;
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
    struct ck_sink sink = {buf_sink_write, out};
    ck_buf_init(out, 8u << 20);
    return ck_store_get(s, off, len, &sink, err);
}

static ck_rc put_bytes(struct ck_store *s, const void *data, size_t len, struct ck_err *err)
{
    struct ck_store_upload *u;
    ck_rc rc = ck_store_put_begin(s, &u, err);
    if (rc)
        return rc;
    for (size_t off = 0; off < len && rc == CK_OK; off += 65536)
        rc = ck_store_put_write(u, (const char *)data + off, len - off < 65536 ? len - off : 65536,
                                err);
    if (rc) {
        ck_store_put_abort(u);
        return rc;
    }
    return ck_store_put_commit(u, err);
}

/* A request to the proxy's control endpoint; the reply body goes to out if not NULL. */
static void control(enum ck_http_method m, const char *what, const char *body, struct ck_buf *out)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/__fault/%s", T.proxy_port, what);
    struct ck_http_request req;
    struct ck_http_response resp;
    struct ck_err err;
    struct ck_sink sink = {buf_sink_write, out};
    ck_http_request_init(&req);
    req.method = m;
    req.url = req.display_url = url;
    req.body_mem = body;
    req.body_len = body ? strlen(body) : 0;
    req.sink = out ? &sink : NULL;
    req.retry.max_attempts = 1;
    if (out)
        ck_buf_init(out, 1 << 20);
    ck_assert_msg(ck_http_perform(&req, &resp, &err) == CK_OK, "%s", err.msg);
}

static void set_plan(const char *plan)
{
    control(CK_HTTP_PUT, "reset", "", NULL);
    control(CK_HTTP_PUT, "plan", plan, NULL);
}

/* The proxy's log: one JSON line per proxied request. */
static int proxy_requests(struct ck_buf *log)
{
    control(CK_HTTP_GET, "log", NULL, log);
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
    set_plan("status=503,status=500,retry-after=1,status=502");
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
    set_plan("reset@100000");
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
    set_plan("truncate@200000,truncate@1");
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
    set_plan("stall=4@5000");
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
    set_plan("retry-after=1");
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

START_TEST(test_put_retried_after_5xx)
{
    struct ck_store_env env;
    test_env(&env);
    set_plan("status=503,status=500");
    struct ck_store *s = open_at(&env, true, "put/retried.bin");
    struct ck_err err;
    ck_assert_msg(put_bytes(s, T.big, BIG_SIZE, &err) == CK_OK, "%s", err.msg);
    struct ck_buf b, log;
    ck_assert_int_eq(proxy_requests(&log), 3);
    ck_assert_ptr_nonnull(strstr(log.data, "\"bytes_in\": 3145745")); /* replayed whole */
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
    set_plan("shift=7");
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
    set_plan("norange,norange");
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
    set_plan("status=405");
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
    set_plan("status=403");
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
    set_plan("");
    ck_assert_msg(put_bytes(s, "", 0, &err) == CK_OK, "%s", err.msg);
    set_plan("status=403");
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

    set_plan("status=403");
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

    set_plan("status=500*inf");
    struct ck_store *s = open_at(&env, true, "perm/obj500");
    ck_assert_int_eq(put_bytes(s, T.big, 100000, &err), CK_ENET);
    ck_assert_msg(strstr(err.msg, "HTTP 500 Internal Server Error"), "%s", err.msg);
    /* the streaming PUT, then the replayable PUT with its length: 3 attempts in all */
    ck_assert_msg(strstr(err.msg, "gave up after 2 attempts"), "%s", err.msg);
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
    set_plan("status=403*inf");
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
    set_plan("status=503,reset@1000");
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

/* ---- servers ------------------------------------------------------------------------ */

static int run_tool(const char *verb, char *out, size_t outsz)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s/nginx-dav' %s '%s/ngx'", T.tools, verb, T.dir);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    if (out && !fgets(out, (int)outsz, p))
        out[0] = '\0';
    return pclose(p);
}

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

/* Starts faultproxy.py in front of nginx and reads its port from its stdout. */
static bool start_proxy(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    char script[600], upstream[16], logp[300];
    snprintf(script, sizeof(script), "%s/faultproxy.py", T.tools);
    snprintf(upstream, sizeof(upstream), "%d", T.nginx_port);
    snprintf(logp, sizeof(logp), "%s/proxy.log", T.dir);
    T.proxy_pid = fork();
    if (T.proxy_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
        dup2(fds[1], 1);
        close(fds[0]);
        execlp("python3", "python3", script, "--upstream", upstream, "--log", logp, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = "";
    FILE *f = fdopen(fds[0], "r");
    bool ok = T.proxy_pid > 0 && f && fgets(line, sizeof(line), f);
    if (f)
        fclose(f);
    T.proxy_port = ok ? atoi(line) : 0;
    return T.proxy_port > 0;
}

static bool start_servers(void)
{
    const char *tools = getenv("CK_TEST_TOOLS");
    char here[512];
    snprintf(here, sizeof(here), "%s", __FILE__);
    snprintf(T.tools, sizeof(T.tools), "%s", tools ? tools : dirname(here));
    if (!tools) /* run by hand: tests/unit/../tools */
        strncat(T.tools, "/../tools", sizeof(T.tools) - strlen(T.tools) - 1);
    snprintf(T.dir, sizeof(T.dir), "/tmp/ck-store-http-XXXXXX");
    if (!mkdtemp(T.dir))
        return false;
    char sub[300], port[32] = "";
    snprintf(sub, sizeof(sub), "%s/scratch", T.dir);
    mkdir(sub, 0700);
    if (run_tool("start", port, sizeof(port)) != 0 || atoi(port) <= 0) {
        fprintf(stderr, "test_store_http: nginx-dav start failed (tools: %s)\n", T.tools);
        return false;
    }
    T.nginx_port = atoi(port);
    if (!write_big() || !start_proxy()) {
        fprintf(stderr, "test_store_http: test data or faultproxy failed\n");
        return false;
    }
    return true;
}

static void stop_servers(bool keep)
{
    if (T.proxy_pid > 0) {
        kill(T.proxy_pid, SIGTERM);
        waitpid(T.proxy_pid, NULL, 0);
    }
    if (T.dir[0]) {
        run_tool("stop", NULL, 0);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
        if (keep)
            fprintf(stderr, "test_store_http: failures; logs kept in %s\n", T.dir);
        else if (system(cmd) != 0)
            fprintf(stderr, "test_store_http: could not remove %s\n", T.dir);
    }
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
    int failed = 1;
    if (start_servers()) {
        SRunner *sr = srunner_create(store_http_suite());
        srunner_set_fork_status(sr, CK_FORK);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
    }
    stop_servers(failed != 0);
    ck_http_global_cleanup();
    return failed != 0;
}
