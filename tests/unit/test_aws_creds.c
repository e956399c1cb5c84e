/*
 * test_aws_creds.c - the AWS credential chain against real servers on 127.0.0.1:
 * moto_server (STS AssumeRoleWithWebIdentity, without auth mode, see FACTS.md) and
 * tests/tools/fake_aws_meta.py (IMDSv2 with token checks, container credentials with
 * Authorization checks, configurable lifetimes and faults).
 *
 * main() starts both servers before the suite and stops them after it, in the parent,
 * so they are cleaned up whatever the forked tests do (they also die with the parent
 * through PR_SET_PDEATHSIG). Every test builds its own environment in a fake getenv, so
 * the real environment (a developer's ~/.aws, an EC2 instance role) never leaks in.
 */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/aws_creds.h"
#include "util/json_read.h"
#include "auth/aws_meta.h"
#include "auth/aws_sts.h"
#include "net/http.h"
#include "util/buf.h"
#include "util/clock.h"
#include "testutil.h"

#define ROLE_ARN     "arn:aws:iam::123456789012:role/ck-test"
#define WEB_TOKEN    "eyJ-web-identity-token-SECRET-123"
#define ENV_SECRET   "env-secret-DO-NOT-PRINT"
#define FLYTE_SECRET "flyte-secret-DO-NOT-PRINT"
#define FILE_SECRET  "file-secret-DO-NOT-PRINT"
#define CONT_TOKEN   "Bearer-container-auth-SECRET"

/* Set once by main() before the suite forks its tests; read-only afterwards. */
static struct {
    char dir[256]; /* temp root: home/, files */
    char tools[512];
    int meta_port;
    int moto_port;
    pid_t meta_pid;
    pid_t moto_pid;
} T;

/* ---- the fake environment (each forked test has its own copy) ---------------------- */

#define ENV_MAX 48
static struct {
    char name[64];
    char value[1024];
} ENV[ENV_MAX];
static int NENV;

static char *fake_getenv(const char *name)
{
    for (int i = 0; i < NENV; i++)
        if (strcmp(ENV[i].name, name) == 0)
            return ENV[i].value;
    return NULL;
}

static void env_unset(const char *name)
{
    for (int i = 0; i < NENV; i++)
        if (strcmp(ENV[i].name, name) == 0) {
            ENV[i] = ENV[--NENV];
            return;
        }
}

static void env_set(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void env_set(const char *name, const char *fmt, ...)
{
    env_unset(name);
    ck_assert_int_lt(NENV, ENV_MAX);
    snprintf(ENV[NENV].name, sizeof(ENV[NENV].name), "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ENV[NENV].value, sizeof(ENV[NENV].value), fmt, ap);
    va_end(ap);
    NENV++;
}

/* A clean environment: an empty HOME, IMDS off. */
static void env_base(void)
{
    NENV = 0;
    env_set("HOME", "%s/home", T.dir);
    env_set("AWS_EC2_METADATA_DISABLED", "true");
}

static void path_in_dir(char *out, size_t outlen, const char *name)
{
    snprintf(out, outlen, "%s/%s", T.dir, name);
}

static void write_file(const char *name, const char *text)
{
    char p[512];
    path_in_dir(p, sizeof(p), name);
    tu_write(p, text);
}

/* ---- provider helpers ---------------------------------------------------------------- */

static void test_cfg(struct ck_aws_provider_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->getenv_fn = fake_getenv;
    cfg->retry.max_attempts = 2;
    cfg->retry.base_delay_s = 0.01;
    cfg->retry.max_delay_s = 0.05;
    cfg->retry.deadline_s = 5;
    cfg->connect_timeout_s = 2;
}

static void assert_no_secret(const char *msg)
{
    const char *secrets[] = {WEB_TOKEN,  ENV_SECRET, FLYTE_SECRET,    FILE_SECRET,
                             CONT_TOKEN, "-secret-", "session-token", "imds-"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        ck_assert_msg(!strstr(msg, secrets[i]), "secret '%s' in message: %s", secrets[i], msg);
}

static struct ck_aws_provider *new_ok(struct ck_aws_creds *c)
{
    struct ck_aws_provider_cfg cfg;
    test_cfg(&cfg);
    struct ck_aws_provider *p;
    struct ck_err err;
    ck_assert_msg(ck_aws_provider_new(&cfg, &p, &err) == CK_OK, "%s", err.msg);
    ck_assert_msg(ck_aws_creds_get(p, c, &err) == CK_OK, "%s", err.msg);
    return p;
}

static ck_rc new_fails(struct ck_err *err)
{
    struct ck_aws_provider_cfg cfg;
    test_cfg(&cfg);
    struct ck_aws_provider *p = (struct ck_aws_provider *)1;
    ck_rc rc = ck_aws_provider_new(&cfg, &p, err);
    ck_assert_int_ne(rc, CK_OK);
    ck_assert_ptr_null(p);
    assert_no_secret(err->msg);
    return rc;
}

static void source_is(const char *want)
{
    struct ck_aws_creds c;
    struct ck_aws_provider *p = new_ok(&c);
    ck_assert_str_eq(c.source, want);
    ck_aws_provider_free(p);
}

/* ---- fake metadata control ----------------------------------------------------------- */

static ck_rc buf_sink_write(void *ctx, const void *p, size_t n, struct ck_err *err)
{
    return ck_buf_append(ctx, p, n) ? ck_fail(err, CK_ENOMEM, "test buffer full") : CK_OK;
}

static void meta_ctl(const char *what, const char *body, struct ck_buf *out)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/__ctl/%s", T.meta_port, what);
    struct ck_http_request req;
    struct ck_http_response resp;
    struct ck_err err;
    struct ck_sink sink = {buf_sink_write, out};
    ck_http_request_init(&req);
    req.method = body ? CK_HTTP_PUT : CK_HTTP_GET;
    req.url = req.display_url = url;
    req.body_mem = body;
    req.body_len = body ? strlen(body) : 0;
    req.sink = out ? &sink : NULL;
    req.retry.max_attempts = 1;
    if (out)
        ck_buf_init(out, 1 << 16);
    ck_assert_msg(ck_http_perform(&req, &resp, &err) == CK_OK, "%s", err.msg);
}

static int meta_count(const char *key)
{
    struct ck_buf b;
    meta_ctl("counts", NULL, &b);
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    const char *at = strstr(b.data, pat);
    ck_assert_msg(at != NULL, "%s not in %s", key, b.data);
    int n = atoi(at + strlen(pat));
    ck_buf_free(&b);
    return n;
}

static void meta_reset(void)
{
    meta_ctl("reset", "", NULL);
    meta_ctl("expiry", "3600", NULL);
    meta_ctl("container-auth", CONT_TOKEN, NULL);
}

static void env_imds(void)
{
    env_unset("AWS_EC2_METADATA_DISABLED");
    env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:%d", T.meta_port);
}

static void env_container(void)
{
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:%d/container/creds",
            T.meta_port);
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONT_TOKEN);
}

static void env_web_identity(void)
{
    char tok[512];
    path_in_dir(tok, sizeof(tok), "web-token");
    tu_write(tok, WEB_TOKEN "\n");
    env_set("AWS_ROLE_ARN", ROLE_ARN);
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", "%s", tok);
    env_set("AWS_ROLE_SESSION_NAME", "ck-session");
    env_set("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:%d", T.moto_port);
}

/* ---- environment providers ----------------------------------------------------------- */

START_TEST(test_env_static)
{
    env_base();
    env_set("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE");
    env_set("AWS_SECRET_ACCESS_KEY", ENV_SECRET);
    env_set("AWS_SESSION_TOKEN", "env-token");
    struct ck_aws_creds c;
    struct ck_aws_provider *p = new_ok(&c);
    ck_assert_str_eq(c.source, "env");
    ck_assert_str_eq(c.access_key, "AKIAENVEXAMPLE");
    ck_assert_str_eq(c.secret_key, ENV_SECRET);
    ck_assert_str_eq(c.session_token, "env-token");
    ck_assert(c.expires_wall == 0);
    ck_assert(!ck_aws_provider_anonymous(p));
    ck_assert_str_eq(ck_aws_provider_region(p), "us-east-1");
    ck_aws_provider_free(p);
}
END_TEST

START_TEST(test_env_partial_is_an_error)
{
    struct ck_err err;
    env_base();
    env_set("AWS_SECRET_ACCESS_KEY", ENV_SECRET);
    ck_assert_int_eq(new_fails(&err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "AWS_ACCESS_KEY_ID"), "%s", err.msg);
    env_base();
    env_set("FLYTE_AWS_ACCESS_KEY_ID", "AKIAFLYTE");
    ck_assert_int_eq(new_fails(&err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "FLYTE_AWS_SECRET_ACCESS_KEY"), "%s", err.msg);
}
END_TEST

START_TEST(test_flyte_env)
{
    env_base();
    env_set("FLYTE_AWS_ACCESS_KEY_ID", "AKIAFLYTE");
    env_set("FLYTE_AWS_SECRET_ACCESS_KEY", FLYTE_SECRET);
    struct ck_aws_creds c;
    struct ck_aws_provider *p = new_ok(&c);
    ck_assert_str_eq(c.source, "flyte-env");
    ck_assert_str_eq(c.access_key, "AKIAFLYTE");
    ck_assert_str_eq(c.secret_key, FLYTE_SECRET);
    ck_assert_str_eq(c.session_token, "");
    ck_aws_provider_free(p);
}
END_TEST

/* ---- web identity (moto STS) --------------------------------------------------------- */

static void assert_sts_creds(const struct ck_aws_creds *c)
{
    ck_assert_msg(strncmp(c->access_key, "ASIA", 4) == 0, "%s", c->access_key);
    ck_assert_uint_gt(strlen(c->secret_key), 10);
    ck_assert_uint_gt(strlen(c->session_token), 10);
    ck_assert(c->expires_wall > ck_wall_now() + 600);
}

START_TEST(test_web_identity_env)
{
    env_base();
    env_web_identity();
    struct ck_aws_creds c;
    struct ck_aws_provider *p = new_ok(&c);
    ck_assert_str_eq(c.source, "web-identity");
    assert_sts_creds(&c);
    ck_aws_provider_free(p);
    /* AWS_ENDPOINT_URL is the fallback endpoint, with a trailing '/' */
    env_unset("AWS_ENDPOINT_URL_STS");
    env_set("AWS_ENDPOINT_URL", "http://127.0.0.1:%d/", T.moto_port);
    p = new_ok(&c);
    assert_sts_creds(&c);
    ck_aws_provider_free(p);
}
END_TEST

START_TEST(test_web_identity_errors_hide_the_token)
{
    struct ck_err err;
    env_base();
    env_web_identity();
    env_set("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1"); /* nothing listens */
    ck_assert_int_eq(new_fails(&err), CK_ENET);
    ck_assert_msg(strstr(err.msg, "web identity") && strstr(err.msg, "127.0.0.1:1") &&
                      strstr(err.msg, ROLE_ARN),
                  "%s", err.msg);
    ck_assert_msg(!strstr(err.msg, "WebIdentityToken"), "%s", err.msg);
    /* a missing token file is named */
    env_web_identity();
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", "%s/no-such-token", T.dir);
    ck_assert_int_eq(new_fails(&err), CK_EAUTH); /* configured: no falling through */
    ck_assert_msg(strstr(err.msg, "no-such-token"), "%s", err.msg);
    /* the fake answers 404 on an unknown path: an STS that is not one */
    env_web_identity();
    env_set("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:%d/nope", T.meta_port);
    ck_assert_int_eq(new_fails(&err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "404"), "%s", err.msg);
    /* only one of the two variables: not configured, the chain goes on */
    env_base();
    env_set("AWS_ROLE_ARN", ROLE_ARN);
    ck_assert_int_eq(new_fails(&err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "no AWS credentials found"), "%s", err.msg);
}
END_TEST

/* ---- shared files ---------------------------------------------------------------------- */

START_TEST(test_profile_static_and_region)
{
    env_base();
    write_file("credentials", "# comment\n[default]\naws_access_key_id = AKIADEFAULT\n"
                              "aws_secret_access_key = " FILE_SECRET "\n\n"
                              "[other]\naws_access_key_id=AKIAOTHER  \n"
                              "aws_secret_access_key=" FILE_SECRET "2\n"
                              "aws_session_token = other-token\n");
    write_file("config", "[default]\nregion = eu-central-1\n[profile other]\nregion = ap-south-2\n"
                         "s3 =\n  addressing_style = path\n");
    env_set("AWS_SHARED_CREDENTIALS_FILE", "%s/credentials", T.dir);
    env_set("AWS_CONFIG_FILE", "%s/config", T.dir);
    struct ck_aws_creds c;
    struct ck_aws_provider *p = new_ok(&c);
    ck_assert_str_eq(c.source, "profile:default");
    ck_assert_str_eq(c.access_key, "AKIADEFAULT");
    ck_assert_str_eq(c.secret_key, FILE_SECRET);
    ck_assert_str_eq(ck_aws_provider_region(p), "eu-central-1");
    ck_aws_provider_free(p);
    env_set("AWS_PROFILE", "other");
    p = new_ok(&c);
    ck_assert_str_eq(c.source, "profile:other");
    ck_assert_str_eq(c.access_key, "AKIAOTHER");
    ck_assert_str_eq(c.secret_key, FILE_SECRET "2");
    ck_assert_str_eq(c.session_token, "other-token");
    ck_assert_str_eq(ck_aws_provider_region(p), "ap-south-2");
    ck_aws_provider_free(p);
    /* the default paths under HOME (a HOME of this test's own: the others' stays empty) */
    env_base();
    env_set("HOME", "%s/home-profile", T.dir);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s/home-profile/.aws' && cp '%s/credentials' '%s/config' "
             "'%s/home-profile/.aws/'",
             T.dir, T.dir, T.dir, T.dir);
    ck_assert_int_eq(system(cmd), 0);
    p = new_ok(&c);
    ck_assert_str_eq(c.access_key, "AKIADEFAULT");
    ck_aws_provider_free(p);
}
END_TEST

START_TEST(test_profile_errors)
{
    struct ck_err err;
    env_base();
    write_file("credentials", "[default]\naws_access_key_id = AKIADEFAULT\n"
                              "aws_secret_access_key = " FILE_SECRET "\n"
                              "[half]\naws_secret_access_key = " FILE_SECRET "\n");
    write_file("config", "[profile chained]\nrole_arn = " ROLE_ARN "\nsource_profile = default\n");
    env_set("AWS_SHARED_CREDENTIALS_FILE", "%s/credentials", T.dir);
    env_set("AWS_CONFIG_FILE", "%s/config", T.dir);
    env_set("AWS_PROFILE", "missing");
    ck_assert_int_eq(new_fails(&err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "'missing'") && strstr(err.msg, "credentials"), "%s", err.msg);
    env_set("AWS_PROFILE", "chained");
    ck_assert_int_eq(new_fails(&err), CK_EUNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "source_profile"), "%s", err.msg);
    env_set("AWS_PROFILE", "half");
    ck_assert_int_eq(new_fails(&err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "aws_access_key_id"), "%s", err.msg);
    /* an oversized file is refused, not read */
    char big[512];
    path_in_dir(big, sizeof(big), "credentials");
    ck_assert_int_eq(truncate(big, 2 * 1024 * 1024), 0);
    env_set("AWS_PROFILE", "default");
    ck_assert_int_eq(new_fails(&err), CK_EHOSTILE);
}
END_TEST

START_TEST(test_profile_web_identity)
{
    env_base();
    char tok[512], conf[1200];
    path_in_dir(tok, sizeof(tok), "profile-token");
    tu_write(tok, WEB_TOKEN);
    snprintf(conf, sizeof(conf),
             "[profile irsa]\nrole_arn = %s\nweb_identity_token_file = %s\n"
             "role_session_name = from-profile\nregion = us-west-2\n",
             ROLE_ARN, tok);
    write_file("config", conf);
    env_set("AWS_CONFIG_FILE", "%s/config", T.dir);
    env_set("AWS_PROFILE", "irsa");
    env_set("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:%d", T.moto_port);
    struct ck_aws_creds c;
    struct ck_aws_provider *p = new_ok(&c);
    ck_assert_str_eq(c.source, "profile:irsa (web identity)");
    assert_sts_creds(&c);
    ck_assert_str_eq(ck_aws_provider_region(p), "us-west-2");
    ck_aws_provider_free(p);
}
END_TEST

/* ---- region ----------------------------------------------------------------------------- */

START_TEST(test_region_order)
{
    struct ck_err err;
    env_base();
    env_set("AWS_ACCESS_KEY_ID", "AKIAENV");
    env_set("AWS_SECRET_ACCESS_KEY", ENV_SECRET);
    write_file("config", "[default]\nregion = ca-central-1\n");
    env_set("AWS_CONFIG_FILE", "%s/config", T.dir);
    struct ck_aws_creds c;
    struct ck_aws_provider *p = new_ok(&c);
    ck_assert_str_eq(ck_aws_provider_region(p), "ca-central-1");
    ck_aws_provider_free(p);
    env_set("AWS_DEFAULT_REGION", "eu-north-1");
    p = new_ok(&c);
    ck_assert_str_eq(ck_aws_provider_region(p), "eu-north-1");
    ck_aws_provider_free(p);
    env_set("AWS_REGION", "sa-east-1");
    p = new_ok(&c);
    ck_assert_str_eq(ck_aws_provider_region(p), "sa-east-1");
    ck_aws_provider_free(p);
    env_set("AWS_REGION", "evil.com/x?");
    ck_assert_int_eq(new_fails(&err), CK_EINVAL);
    ck_assert_msg(strstr(err.msg, "AWS_REGION"), "%s", err.msg);
}
END_TEST

/* ---- container ---------------------------------------------------------------------------- */

START_TEST(test_container_full_uri)
{
    meta_reset();
    env_base();
    env_container();
    struct ck_aws_creds c;
    struct ck_aws_provider *p = new_ok(&c);
    ck_assert_str_eq(c.source, "container");
    ck_assert_msg(strncmp(c.access_key, "ASIACONT", 8) == 0, "%s", c.access_key);
    ck_assert_msg(strncmp(c.secret_key, "cont-secret-", 12) == 0, "%s", c.secret_key);
    ck_assert_msg(strncmp(c.session_token, "cont-session-token-", 19) == 0, "%s", c.session_token);
    ck_assert(c.expires_wall > ck_wall_now() + 3000);
    ck_assert_int_eq(meta_count("container"), 1);
    ck_aws_provider_free(p);
}
END_TEST

START_TEST(test_container_token_file_reread)
{
    meta_reset();
    meta_ctl("expiry", "120", NULL); /* under the refresh margin: every get refreshes */
    meta_ctl("container-auth", "file-token-1", NULL);
    env_base();
    env_container();
    char tokf[512];
    path_in_dir(tokf, sizeof(tokf), "cont-token");
    tu_write(tokf, "file-token-1\n");
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "%s", tokf); /* wins over the variable */
    struct ck_aws_creds c1, c2, c3;
    struct ck_err err;
    struct ck_aws_provider *p = new_ok(&c1);
    /* the token rotates: the file is read again at the refresh */
    meta_ctl("container-auth", "file-token-2", NULL);
    tu_write(tokf, "file-token-2\n");
    ck_assert_msg(ck_aws_creds_get(p, &c2, &err) == CK_OK, "%s", err.msg);
    ck_assert_str_ne(c1.access_key, c2.access_key);
    ck_assert_int_eq(meta_count("denied"), 0);
    /* a refresh that fails while the credentials are still valid keeps them */
    meta_ctl("container-auth", "file-token-3", NULL);
    ck_assert_msg(ck_aws_creds_get(p, &c3, &err) == CK_OK, "%s", err.msg);
    ck_assert_str_eq(c2.access_key, c3.access_key);
    ck_assert_int_eq(meta_count("denied"), 1);
    ck_aws_provider_free(p);
}
END_TEST

START_TEST(test_container_errors)
{
    struct ck_err err;
    meta_reset();
    env_base();
    env_container();
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer-wrong-SECRET");
    ck_assert_int_eq(new_fails(&err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "container") && strstr(err.msg, "403"), "%s", err.msg);
    ck_assert_msg(!strstr(err.msg, "wrong-SECRET"), "%s", err.msg);
    /* malformed replies */
    env_container();
    const char *modes[] = {"garbage", "no-expiration", "fail-code"};
    for (size_t i = 0; i < 3; i++) {
        meta_ctl("mode", modes[i], NULL);
        ck_assert_int_ne(new_fails(&err), CK_OK);
        ck_assert_msg(strstr(err.msg, "container credentials at http://127.0.0.1"), "%s: %s",
                      modes[i], err.msg);
    }
    /* plain http to a host that is not loopback or the ECS/EKS address */
    meta_reset();
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds?sig=SECRET");
    ck_assert_int_eq(new_fails(&err), CK_EINVAL);
    ck_assert_msg(strstr(err.msg, "not allowed") && !strstr(err.msg, "sig=SECRET"), "%s", err.msg);
}
END_TEST

START_TEST(test_container_url_rules)
{
    const char *ok[] = {"http://127.0.0.1:80/x",
                        "http://127.1.2.3/x",
                        "http://localhost:9/",
                        "http://[::1]:8080/creds",
                        "http://169.254.170.2/v2/credentials/x",
                        "http://169.254.170.23/v1/credentials",
                        "http://[fd00:ec2::23]/v1/c",
                        "https://creds.example.com/x",
                        "HTTP://127.0.0.1/x"};
    const char *bad[] = {"http://example.com/x",
                         "http://169.254.169.254/x",
                         "http://127.0.0.1@evil.com/x",
                         "http://evil.com#@127.0.0.1/",
                         "ftp://127.0.0.1/x",
                         "http:///x",
                         "http://[::2]/x",
                         "http://128.0.0.1/x",
                         "127.0.0.1/x",
                         "http://[fd00:ec2::24]/"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(ck_aws_container_url_allowed(ok[i]), "refused %s", ok[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!ck_aws_container_url_allowed(bad[i]), "allowed %s", bad[i]);
    env_base();
    env_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc");
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/ignored");
    struct ck_aws_container cont;
    struct ck_err err;
    ck_assert_int_eq(ck_aws_container_from_env(fake_getenv, &cont, &err), CK_OK);
    ck_assert_str_eq(cont.url, "http://169.254.170.2/v2/credentials/abc");
    env_base();
    ck_assert_int_eq(ck_aws_container_from_env(fake_getenv, &cont, &err), CK_ENOTFOUND);
}
END_TEST

/* ---- IMDSv2 ---------------------------------------------------------------------------- */

START_TEST(test_imds)
{
    meta_reset();
    env_base();
    env_imds();
    struct ck_aws_creds c;
    struct ck_aws_provider *p = new_ok(&c);
    ck_assert_str_eq(c.source, "imds");
    ck_assert_msg(strncmp(c.access_key, "ASIAIMDS", 8) == 0, "%s", c.access_key);
    ck_assert_msg(strncmp(c.session_token, "imds-session-token-", 19) == 0, "%s", c.session_token);
    ck_assert_int_eq(meta_count("token"), 1);
    ck_assert_int_eq(meta_count("role"), 1);
    ck_assert_int_eq(meta_count("imds_creds"), 1);
    ck_assert_int_eq(meta_count("denied"), 0);
    /* long-lived: a second get does not ask again */
    struct ck_err err;
    struct ck_aws_creds c2;
    ck_assert_int_eq(ck_aws_creds_get(p, &c2, &err), CK_OK);
    ck_assert_str_eq(c.access_key, c2.access_key);
    ck_assert_int_eq(meta_count("imds_creds"), 1);
    ck_aws_provider_free(p);
}
END_TEST

START_TEST(test_refresh_near_expiry)
{
    meta_reset();
    meta_ctl("expiry", "200", NULL); /* inside CK_AWS_REFRESH_MARGIN_S (300 s) */
    env_base();
    env_imds();
    struct ck_aws_creds c1, c2;
    struct ck_err err;
    struct ck_aws_provider *p = new_ok(&c1);
    ck_assert_int_eq(ck_aws_creds_get(p, &c2, &err), CK_OK);
    ck_assert_str_ne(c1.access_key, c2.access_key);
    ck_assert_str_ne(c1.secret_key, c2.secret_key);
    ck_assert_str_ne(c1.session_token, c2.session_token);
    ck_assert_str_eq(c2.source, "imds");
    ck_assert(c2.expires_wall >= c1.expires_wall);
    /* new, the get inside new_ok(), this get: each asked anew, each with a fresh token */
    ck_assert_int_eq(meta_count("imds_creds"), 3);
    ck_assert_int_eq(meta_count("token"), 3);
    ck_aws_provider_free(p);
}
END_TEST

START_TEST(test_expired_and_unrefreshable_fails)
{
    meta_reset();
    meta_ctl("expiry", "-10", NULL); /* already expired when handed out */
    env_base();
    env_container();
    struct ck_aws_creds c;
    struct ck_err err;
    struct ck_aws_provider *p = new_ok(&c); /* each get fetches anew: works while it answers */
    meta_ctl("mode", "status=500", NULL);
    ck_assert_int_eq(ck_aws_creds_get(p, &c, &err), CK_ENET);
    ck_assert_msg(strstr(err.msg, "expired") && strstr(err.msg, "container"), "%s", err.msg);
    assert_no_secret(err.msg);
    ck_aws_provider_free(p);
}
END_TEST

struct racer {
    struct ck_aws_provider *p;
    int failures;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < 20; i++) {
        struct ck_aws_creds c;
        struct ck_err err;
        if (ck_aws_creds_get(r->p, &c, &err) != CK_OK || strncmp(c.access_key, "ASIA", 4) != 0 ||
            !c.secret_key[0])
            r->failures++;
    }
    return NULL;
}

START_TEST(test_concurrent_refresh)
{
    meta_reset();
    meta_ctl("expiry", "100", NULL);
    env_base();
    env_imds();
    struct ck_aws_creds c;
    struct ck_aws_provider *p = new_ok(&c);
    pthread_t th[4];
    struct racer r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct racer){p, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(r[i].failures, 0);
    }
    ck_assert_int_gt(meta_count("imds_creds"), 1);
    ck_aws_provider_free(p);
}
END_TEST

START_TEST(test_imds_garbage_falls_through)
{
    struct ck_err err;
    meta_reset();
    meta_ctl("mode", "garbage", NULL);
    env_base();
    env_imds();
    ck_assert_int_eq(new_fails(&err), CK_EAUTH);
    ck_assert_msg(strstr(err.msg, "imds") && strstr(err.msg, "well-formed"), "%s", err.msg);
}
END_TEST

/* ---- the order of the chain, and nothing at all ------------------------------------------ */

START_TEST(test_chain_order)
{
    meta_reset();
    env_base();
    env_set("AWS_ACCESS_KEY_ID", "AKIAENV");
    env_set("AWS_SECRET_ACCESS_KEY", ENV_SECRET);
    env_set("FLYTE_AWS_ACCESS_KEY_ID", "AKIAFLYTE");
    env_set("FLYTE_AWS_SECRET_ACCESS_KEY", FLYTE_SECRET);
    env_web_identity();
    write_file("credentials", "[default]\naws_access_key_id = AKIAFILE\n"
                              "aws_secret_access_key = " FILE_SECRET "\n");
    env_set("AWS_SHARED_CREDENTIALS_FILE", "%s/credentials", T.dir);
    env_container();
    env_imds();
    source_is("env");
    env_unset("AWS_ACCESS_KEY_ID");
    env_unset("AWS_SECRET_ACCESS_KEY");
    source_is("flyte-env");
    env_unset("FLYTE_AWS_ACCESS_KEY_ID");
    env_unset("FLYTE_AWS_SECRET_ACCESS_KEY");
    source_is("web-identity");
    env_unset("AWS_ROLE_ARN");
    source_is("profile:default");
    env_unset("AWS_SHARED_CREDENTIALS_FILE");
    source_is("container");
    env_unset("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    source_is("imds");
    ck_assert_int_eq(meta_count("container"), 1);
    ck_assert_int_eq(meta_count("imds_creds"), 1); /* nobody asked IMDS before */
}
END_TEST

START_TEST(test_nothing_found_lists_what_was_tried)
{
    struct ck_err err;
    env_base();
    env_unset("AWS_EC2_METADATA_DISABLED");
    env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1"); /* refused at once */
    double t0 = ck_now();
    ck_assert_int_eq(new_fails(&err), CK_EAUTH);
    ck_assert(ck_now() - t0 < 5);
    const char *want[] = {"no AWS credentials found",
                          "env (not set)",
                          "flyte-env (not set)",
                          "web identity",
                          "profile 'default'",
                          "container",
                          "imds",
                          "127.0.0.1:1"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(err.msg, want[i]), "'%s' not in: %s", want[i], err.msg);
}
END_TEST

START_TEST(test_anonymous)
{
    env_base();
    env_set("AWS_ACCESS_KEY_ID", "AKIAENV");
    env_set("AWS_SECRET_ACCESS_KEY", ENV_SECRET);
    env_set("AWS_REGION", "eu-west-1");
    struct ck_aws_provider_cfg cfg;
    test_cfg(&cfg);
    cfg.anonymous = true;
    struct ck_aws_provider *p;
    struct ck_aws_creds c;
    struct ck_err err;
    ck_assert_msg(ck_aws_provider_new(&cfg, &p, &err) == CK_OK, "%s", err.msg);
    ck_assert(ck_aws_provider_anonymous(p));
    ck_assert_int_eq(ck_aws_creds_get(p, &c, &err), CK_OK);
    ck_assert_str_eq(c.access_key, "");
    ck_assert_str_eq(c.secret_key, "");
    ck_assert_str_eq(c.source, "anonymous");
    ck_assert_str_eq(ck_aws_provider_region(p), "eu-west-1");
    ck_aws_provider_free(p);
}
END_TEST

/* ---- the reply parsers with hostile input -------------------------------------------------- */

START_TEST(test_json_parser)
{
    char v[32];
    const char *good = " {\"A\": \"x\\u00e9\\ud83d\\ude00\\/\", \"N\": [1, {\"A\": \"inner\"}],"
                       " \"B\": true, \"C\": null, \"D\": -1.5e3}\n";
    ck_assert_int_eq(ck_json_get_string(good, strlen(good), "A", v, sizeof(v)), CK_OK);
    ck_assert_str_eq(v, "x\xc3\xa9\xf0\x9f\x98\x80/");
    ck_assert_int_eq(ck_json_get_string(good, strlen(good), "B", v, sizeof(v)), CK_ENOTFOUND);
    ck_assert_int_eq(ck_json_get_string(good, strlen(good), "Z", v, sizeof(v)), CK_ENOTFOUND);
    const char *corrupt[] = {"",
                             "[]",
                             "{",
                             "{\"A\":\"x\"",
                             "{\"A\":\"x\"} trailing",
                             "{\"A\" \"x\"}",
                             "{\"A\":\"\\ud800\"}",
                             "{\"A\":\"\\q\"}",
                             "{\"A\":\"a\nb\"}",
                             "{\"A\":\"x\",}",
                             "{A:\"x\"}",
                             "{\"N\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}"};
    for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++)
        ck_assert_msg(ck_json_get_string(corrupt[i], strlen(corrupt[i]), "A", v, sizeof(v)) ==
                          CK_ECORRUPT,
                      "accepted: %s", corrupt[i]);
    const char *toolong = "{\"A\": \"0123456789012345678901234567890123456789\"}";
    ck_assert_int_eq(ck_json_get_string(toolong, strlen(toolong), "A", v, sizeof(v)), CK_EINVAL);
    const char *ctrl = "{\"A\": \"a\\nb\"}";
    ck_assert_int_eq(ck_json_get_string(ctrl, strlen(ctrl), "A", v, sizeof(v)), CK_EINVAL);
    /* a NUL inside the text is not the end of it */
    ck_assert_int_eq(ck_json_get_string("{\"A\":\"x\"}\0{", 11, "A", v, sizeof(v)), CK_ECORRUPT);
    double t;
    ck_assert_int_eq(ck_parse_iso8601("2015-08-30T12:36:00Z", &t), CK_OK);
    ck_assert(t == 1440938160.0);
    ck_assert_int_eq(ck_parse_iso8601("2015-08-30T12:36:00.123Z", &t), CK_OK);
    ck_assert(t == 1440938160.0);
    ck_assert_int_eq(ck_parse_iso8601("2015-08-30T14:36:00+02:00", &t), CK_OK);
    ck_assert(t == 1440938160.0);
    const char *badt[] = {"2015-08-30 12:36:00Z",
                          "2015-13-30T12:36:00Z",
                          "2015-08-30T12:36:00",
                          "2015-08-30T12:36:00Zjunk",
                          "1e9",
                          ""};
    for (size_t i = 0; i < sizeof(badt) / sizeof(badt[0]); i++)
        ck_assert_msg(ck_parse_iso8601(badt[i], &t) != CK_OK, "accepted %s", badt[i]);
}
END_TEST

#define STS_OK                                                                                     \
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"      \
    "<AssumeRoleWithWebIdentityResult><Credentials>"                                               \
    "<SessionToken>tok</SessionToken><SecretAccessKey>sec</SecretAccessKey>"                       \
    "<Expiration>2030-01-02T03:04:05Z</Expiration><AccessKeyId>ASIAX</AccessKeyId>"                \
    "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"

START_TEST(test_sts_parser)
{
    struct ck_aws_creds c;
    struct ck_err err;
    memset(&c, 0, sizeof(c));
    ck_assert_msg(ck_aws_sts_parse(STS_OK, strlen(STS_OK), &c, &err) == CK_OK, "%s", err.msg);
    ck_assert_str_eq(c.access_key, "ASIAX");
    ck_assert_str_eq(c.secret_key, "sec");
    ck_assert_str_eq(c.session_token, "tok");
    ck_assert(c.expires_wall == 1893553445.0);
    const char *laughs =
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\">"
        "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c "
        "\"&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>"
        "<r><Credentials><AccessKeyId>&c;</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
        "<SessionToken>t</SessionToken><Expiration>2030-01-02T03:04:05Z</Expiration>"
        "</Credentials></r>";
    ck_assert_int_ne(ck_aws_sts_parse(laughs, strlen(laughs), &c, &err), CK_OK);
    const char *xxe =
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
        "<r><Credentials><AccessKeyId>&x;</AccessKeyId></Credentials></r>";
    ck_assert_int_ne(ck_aws_sts_parse(xxe, strlen(xxe), &c, &err), CK_OK);
    ck_assert_msg(!strstr(err.msg, "root:"), "%s", err.msg);
    const char *bad[] = {
        "not xml",
        "<r/>",
        "<r><Credentials><AccessKeyId>A</AccessKeyId></Credentials></r>",
        ("<r><Credentials><AccessKeyId>A B</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
         "<SessionToken>t</SessionToken><Expiration>2030-01-02T03:04:05Z</Expiration>"
         "</Credentials></r>"),
        ("<r><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
         "<SessionToken>t</SessionToken><Expiration>soon</Expiration></Credentials></r>"),
        "<r><Credentials><AccessKeyId><b>A</b></AccessKeyId></Credentials></r>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(ck_aws_sts_parse(bad[i], strlen(bad[i]), &c, &err) != CK_OK, "accepted %s",
                      bad[i]);
    static char huge[CK_AWS_STS_REPLY_MAX + 2];
    memset(huge, ' ', sizeof(huge) - 1);
    ck_assert_int_eq(ck_aws_sts_parse(huge, sizeof(huge) - 1, &c, &err), CK_EHOSTILE);
}
END_TEST

/* ---- servers --------------------------------------------------------------------------------- */

static pid_t spawn(char *const argv[], int *out_fd)
{
    int fds[2];
    if (out_fd && pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
        if (out_fd) {
            dup2(fds[1], 1);
            close(fds[0]);
        } else {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    if (out_fd) {
        close(fds[1]);
        *out_fd = fds[0];
    }
    return pid;
}

static bool start_meta(void)
{
    char script[600];
    snprintf(script, sizeof(script), "%s/fake_aws_meta.py", T.tools);
    int fd = -1;
    char *argv[] = {"python3", script, "--container-auth", CONT_TOKEN, NULL};
    T.meta_pid = spawn(argv, &fd);
    char line[32] = "";
    FILE *f = fdopen(fd, "r");
    bool ok = T.meta_pid > 0 && f && fgets(line, sizeof(line), f);
    if (f)
        fclose(f);
    T.meta_port = ok ? atoi(line) : 0;
    return T.meta_port > 0;
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = 0;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

static bool port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (s >= 0)
        close(s);
    return ok;
}

/* moto_server without auth mode; readiness by a TCP connect (FACTS.md). */
static bool start_moto(void)
{
    T.moto_port = free_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", T.moto_port);
    char *argv[] = {"moto_server", "-H", "127.0.0.1", "-p", port, NULL};
    T.moto_pid = spawn(argv, NULL);
    for (double t0 = ck_now(); T.moto_pid > 0 && ck_now() - t0 < 30; ck_sleep(0.1)) {
        if (port_open(T.moto_port))
            return true;
        if (waitpid(T.moto_pid, NULL, WNOHANG) == T.moto_pid) {
            T.moto_pid = 0;
            break;
        }
    }
    fprintf(stderr, "test_aws_creds: moto_server did not start on port %d\n", T.moto_port);
    return false;
}

static bool start_servers(void)
{
    const char *tools = getenv("CK_TEST_TOOLS");
    char here[512];
    snprintf(here, sizeof(here), "%s", __FILE__);
    snprintf(T.tools, sizeof(T.tools), "%s", tools ? tools : dirname(here));
    if (!tools) /* run by hand: tests/unit/../tools */
        strncat(T.tools, "/../tools", sizeof(T.tools) - strlen(T.tools) - 1);
    snprintf(T.dir, sizeof(T.dir), "/tmp/ck-aws-creds-XXXXXX");
    if (!mkdtemp(T.dir))
        return false;
    char home[300];
    snprintf(home, sizeof(home), "%s/home", T.dir);
    mkdir(home, 0700);
    if (!start_meta()) {
        fprintf(stderr, "test_aws_creds: fake_aws_meta.py failed (tools: %s)\n", T.tools);
        return false;
    }
    return start_moto();
}

static void stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

static void stop_servers(void)
{
    stop(T.meta_pid);
    stop(T.moto_pid);
    if (T.dir[0])
        tu_rmdir(T.dir);
}

static Suite *aws_creds_suite(void)
{
    Suite *s = suite_create("aws_creds");
    TCase *tc = tcase_create("chain");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_env_static);
    tcase_add_test(tc, test_env_partial_is_an_error);
    tcase_add_test(tc, test_flyte_env);
    tcase_add_test(tc, test_web_identity_env);
    tcase_add_test(tc, test_web_identity_errors_hide_the_token);
    tcase_add_test(tc, test_profile_static_and_region);
    tcase_add_test(tc, test_profile_errors);
    tcase_add_test(tc, test_profile_web_identity);
    tcase_add_test(tc, test_region_order);
    tcase_add_test(tc, test_container_full_uri);
    tcase_add_test(tc, test_container_token_file_reread);
    tcase_add_test(tc, test_container_errors);
    tcase_add_test(tc, test_container_url_rules);
    tcase_add_test(tc, test_imds);
    tcase_add_test(tc, test_refresh_near_expiry);
    tcase_add_test(tc, test_expired_and_unrefreshable_fails);
    tcase_add_test(tc, test_concurrent_refresh);
    tcase_add_test(tc, test_imds_garbage_falls_through);
    tcase_add_test(tc, test_chain_order);
    tcase_add_test(tc, test_nothing_found_lists_what_was_tried);
    tcase_add_test(tc, test_anonymous);
    tcase_add_test(tc, test_json_parser);
    tcase_add_test(tc, test_sts_parser);
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
    if (start_servers())
        failed = tu_run_suite(aws_creds_suite());
    stop_servers();
    ck_http_global_cleanup();
    return failed != 0;
}
