/*
 * store_testutil.h - what the store suites share (header-only, like testutil.h): the
 * servers they start from tests/tools/ and the calls they make to a store.
 *
 * Servers: a tool that prints shell lines (moto-s3, rgw-s3, azurite: PORT=..., and the
 * keys) or a bare port (nginx-dav) is started with tu_tool_start and stopped with
 * tu_tool_stop; a script that prints its port and dies with the test (fake_gcs.py,
 * faultproxy.py) with tu_spawn_port. Everything listens on 127.0.0.1 only.
 */
#ifndef CK_TEST_STORE_TESTUTIL_H
#define CK_TEST_STORE_TESTUTIL_H

#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/http.h"
#include "store/store.h"
#include "testutil.h"
#include "util/buf.h"

/* tests/tools: $CK_TEST_TOOLS (set by CTest), else next to this file. */
static inline void tu_tools(char *out, size_t len)
{
    const char *env = getenv("CK_TEST_TOOLS");
    char here[512];
    snprintf(here, sizeof(here), "%s", __FILE__);
    if (env)
        snprintf(out, len, "%s", env);
    else
        snprintf(out, len, "%s/../tools", dirname(here));
}

/* Runs argv with its stdout on a pipe; it dies with this process. The port it prints
 * first, or 0. */
static inline int tu_spawn_port(char *const argv[], pid_t *pid)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    *pid = fork();
    if (*pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
        dup2(fds[1], 1);
        close(fds[0]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = "";
    FILE *f = fdopen(fds[0], "r");
    bool ok = *pid > 0 && f && fgets(line, sizeof(line), f);
    if (f)
        fclose(f);
    return ok ? (int)strtol(line, NULL, 10) : 0;
}

static inline void tu_stop_pid(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

/* tests/tools/faultproxy.py in front of 127.0.0.1:upstream, logging to log_path; its port
 * or 0. Plans are set through its /__fault/ endpoints (tu_fault_plan). */
static inline int tu_faultproxy(int upstream, const char *log_path, pid_t *pid)
{
    char tools[512], script[600], up[16];
    tu_tools(tools, sizeof(tools));
    snprintf(script, sizeof(script), "%s/faultproxy.py", tools);
    snprintf(up, sizeof(up), "%d", upstream);
    char *argv[] = {"python3", script, "--upstream", up, "--log", (char *)log_path, NULL};
    return tu_spawn_port(argv, pid);
}

/* A server run by a tools/ script with start and stop verbs. */
struct tu_server {
    char tool[64];
    char dir[600]; /* its state (data, logs) */
    int port;
    char akid[128], secret[128]; /* S3 tools: the keys it printed */
};

static inline void tu_server_line(struct tu_server *s, const char *line)
{
    if (strncmp(line, "PORT=", 5) == 0)
        s->port = (int)strtol(line + 5, NULL, 10);
    else if (line[0] >= '0' && line[0] <= '9')
        s->port = (int)strtol(line, NULL, 10);
    else if (strncmp(line, "AWS_ACCESS_KEY_ID=", 18) == 0)
        snprintf(s->akid, sizeof(s->akid), "%.127s", line + 18);
    else if (strncmp(line, "AWS_SECRET_ACCESS_KEY=", 22) == 0)
        snprintf(s->secret, sizeof(s->secret), "%.127s", line + 22);
}

/* `tools/TOOL start DIR EXTRA`; false (with a message) unless it printed a port. */
static inline bool tu_tool_start(struct tu_server *s, const char *tool, const char *dir,
                                 const char *extra)
{
    char tools[512], cmd[1800], line[512];
    tu_tools(tools, sizeof(tools));
    memset(s, 0, sizeof(*s));
    snprintf(s->tool, sizeof(s->tool), "%s", tool);
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(cmd, sizeof(cmd), "'%s/%s' start '%s' %s", tools, tool, dir, extra ? extra : "");
    FILE *p = popen(cmd, "r");
    while (p && fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = '\0';
        tu_server_line(s, line);
    }
    bool ok = p && pclose(p) == 0 && s->port > 0;
    if (!ok)
        fprintf(stderr, "%s start %s failed (bash scripts/deps.sh test installs it)\n", tool, dir);
    return ok;
}

static inline void tu_tool_stop(const struct tu_server *s)
{
    char tools[512];
    tu_tools(tools, sizeof(tools));
    if (s->port > 0 && tu_sh("'%s/%s' stop '%s'", tools, s->tool, s->dir) != 0)
        fprintf(stderr, "%s stop %s failed\n", s->tool, s->dir);
}

/* nginx-dav serving DIR/ngx/data behind faultproxy (log DIR/proxy.log): the proxy's port,
 * or 0 (with a message). Stopped with tu_nginx_proxy_stop. */
static inline int tu_nginx_proxy_start(const char *dir, struct tu_server *nginx, pid_t *proxy_pid)
{
    char ngx[300], logp[300];
    snprintf(ngx, sizeof(ngx), "%s/ngx", dir);
    snprintf(logp, sizeof(logp), "%s/proxy.log", dir);
    int port = tu_tool_start(nginx, "nginx-dav", ngx, NULL)
                   ? tu_faultproxy(nginx->port, logp, proxy_pid)
                   : 0;
    if (port <= 0)
        fprintf(stderr, "nginx-dav or faultproxy in %s failed\n", dir);
    return port;
}

/* Stops both and removes dir, or keeps it (failed: with its logs) and says where. */
static inline void tu_nginx_proxy_stop(const char *dir, const struct tu_server *nginx,
                                       pid_t proxy_pid, bool failed)
{
    tu_stop_pid(proxy_pid);
    tu_tool_stop(nginx);
    if (dir[0] && failed)
        fprintf(stderr, "failures; logs kept in %s\n", dir);
    else if (dir[0])
        tu_rmdir(dir);
}

/* ---- calls to a store --------------------------------------------------------------- */

/* Short retries and timeouts: a test fails in seconds, not minutes. */
static inline void tu_store_env(struct ck_store_env *env)
{
    ck_store_env_default(env);
    env->retry.max_attempts = 4;
    env->retry.base_delay_s = 0.01;
    env->retry.max_delay_s = 0.05;
    env->retry.deadline_s = 30;
    env->stall_timeout_s = 2;
    env->connect_timeout_s = 2;
}

static inline ck_rc tu_buf_sink_write(void *ctx, const void *p, size_t n, struct ck_err *err)
{
    return ck_buf_append(ctx, p, n) ? ck_fail(err, CK_ENOMEM, "test buffer full") : CK_OK;
}

/* n pseudo-random bytes from seed (malloc'd). */
static inline char *tu_pattern(size_t n, uint64_t seed)
{
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (char)(x >> 24);
    }
    return p;
}

/* One pass of an upload of data with opts, written in 1 MiB pieces as the save pipeline
 * does; its result (the upload is committed, or aborted after a failed write). */
static inline ck_rc tu_put_pass(struct ck_store *s, const struct ck_put_opts *opts,
                                const void *data, size_t len, struct ck_err *err)
{
    struct ck_store_upload *u;
    ck_rc rc = ck_store_put_begin(s, opts, &u, err);
    if (rc)
        return rc;
    const size_t chunk = 1 << 20;
    for (size_t off = 0; off < len && rc == CK_OK; off += chunk)
        rc = ck_store_put_write(u, (const char *)data + off, len - off < chunk ? len - off : chunk,
                                err);
    if (rc) {
        ck_store_put_abort(u);
        return rc;
    }
    return ck_store_put_commit(u, err);
}

/* An upload of data with opts (NULL: defaults) by a writer that can replay its bytes, as
 * the save pipeline can (store.h "Replays"): on CK_EREPLAY it writes them again into a new
 * upload with the next pass and their size. */
static inline ck_rc tu_put(struct ck_store *s, const struct ck_put_opts *opts, const void *data,
                           size_t len, struct ck_err *err)
{
    struct ck_put_opts o = {.size = CK_STORE_SIZE_UNKNOWN};
    if (opts)
        o = *opts;
    o.replayable = true;
    ck_rc rc = tu_put_pass(s, &o, data, len, err);
    while (rc == CK_EREPLAY && o.pass + 1 < CK_STORE_MAX_PASSES) {
        o.pass++;
        o.size = len;
        rc = tu_put_pass(s, &o, data, len, err);
    }
    return rc;
}

/* Bytes [off, off+len) of the object into out (initialised here, capped at 64 MiB). */
static inline ck_rc tu_get(struct ck_store *s, uint64_t off, uint64_t len, struct ck_buf *out,
                           struct ck_err *err)
{
    struct ck_sink sink = {tu_buf_sink_write, out};
    ck_buf_init(out, 64u << 20);
    return ck_store_get(s, off, len, &sink, err);
}

/* One plain request (a fake's or the fault proxy's control endpoint); its HTTP status. */
static inline long tu_http_call(enum ck_http_method m, int port, const char *path, const char *body,
                                const char *header, struct ck_buf *out)
{
    char url[320];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    struct ck_http_request req;
    struct ck_http_response resp;
    struct ck_err err;
    struct ck_sink sink = {tu_buf_sink_write, out};
    ck_http_request_init(&req);
    req.method = m;
    req.url = req.display_url = url;
    req.body_mem = body;
    req.body_len = body ? strlen(body) : 0;
    req.headers[0] = header;
    req.sink = out ? &sink : NULL;
    req.retry.max_attempts = 1;
    if (out)
        ck_buf_init(out, 1 << 20);
    ck_http_perform(&req, &resp, &err);
    return resp.status;
}

/* Resets the fault proxy at port and gives it plan (faultproxy.py's plan syntax). */
static inline void tu_fault_plan(int port, const char *plan)
{
    ck_assert_int_eq(tu_http_call(CK_HTTP_PUT, port, "/__fault/reset", "", NULL, NULL), 200);
    ck_assert_int_eq(tu_http_call(CK_HTTP_PUT, port, "/__fault/plan", plan, NULL, NULL), 200);
}

/* How many requests the fault proxy at port logged whose JSON line contains needle. */
static inline int tu_fault_log_count(int port, const char *needle)
{
    struct ck_buf log;
    ck_assert_int_eq(tu_http_call(CK_HTTP_GET, port, "/__fault/log", NULL, NULL, &log), 200);
    int n = 0;
    for (const char *p = log.data; p && (p = strstr(p, needle)); p++)
        n++;
    ck_buf_free(&log);
    return n;
}

/* main() of a store suite: the HTTP engine's global set-up around start, the suite, stop.
 * start false: the suite is not run and the test fails. */
static inline int tu_store_main(Suite *(*suite)(void), bool (*start)(void),
                                void (*stop)(bool failed))
{
    struct ck_err err;
    if (ck_http_global_init(&err) != CK_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int failed = 1;
    if (!start || start())
        failed = tu_run_suite(suite());
    if (stop)
        stop(failed != 0);
    ck_http_global_cleanup();
    return failed != 0;
}

#endif
