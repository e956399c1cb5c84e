/*
 * aws_meta.c - container credentials and IMDSv2; see aws_meta.h.
 */
#include "auth/aws_meta.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/json_read.h"
#include "util/clock.h"
#include "auth/ini.h"
#include "net/http.h"
#include "util/buf.h"

#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_V4        "http://169.254.169.254"
#define IMDS_V6        "http://[fd00:ec2::254]"

static const char *env_or_empty(char *(*getenv_fn)(const char *), const char *name)
{
    const char *v = getenv_fn(name);
    return v ? v : "";
}

/* ---- URL rules ---------------------------------------------------------------------- */

/* The host of an http(s) URL into host (brackets of IPv6 removed); false if malformed. */
static bool url_host(const char *url, bool *https, char *host, size_t hostlen)
{
    const char *p;
    if (strncasecmp(url, "http://", 7) == 0)
        p = url + 7, *https = false;
    else if (strncasecmp(url, "https://", 8) == 0)
        p = url + 8, *https = true;
    else
        return false;
    size_t alen = strcspn(p, "/?#");
    if (memchr(p, '@', alen) || alen == 0)
        return false; /* no userinfo: it could disguise the host */
    size_t hlen;
    if (*p == '[') {
        const char *close = memchr(p, ']', alen);
        if (!close)
            return false;
        p++;
        hlen = (size_t)(close - p);
    } else {
        const char *colon = memchr(p, ':', alen);
        hlen = colon ? (size_t)(colon - p) : alen;
    }
    if (hlen == 0 || hlen >= hostlen)
        return false;
    memcpy(host, p, hlen);
    host[hlen] = '\0';
    return true;
}

static bool host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

bool ck_aws_container_url_allowed(const char *url)
{
    char host[256];
    bool https;
    if (!url_host(url, &https, host, sizeof(host)) || strpbrk(url, " \r\n"))
        return false;
    if (https)
        return true;
    struct in6_addr a6, ecs6;
    if (strcmp(host, "169.254.170.2") == 0 || strcmp(host, "169.254.170.23") == 0)
        return true;
    if (inet_pton(AF_INET6, host, &a6) == 1 && inet_pton(AF_INET6, "fd00:ec2::23", &ecs6) == 1 &&
        memcmp(&a6, &ecs6, sizeof(a6)) == 0)
        return true;
    return host_is_loopback(host);
}

/* The URL without its query string, for messages. */
static void display_of(const char *url, char *out, size_t outlen)
{
    snprintf(out, outlen, "%.*s", (int)strcspn(url, "?#"), url);
}

/* ---- shared request helper ---------------------------------------------------------- */

static ck_rc buf_sink(void *ctx, const void *p, size_t n, struct ck_err *err)
{
    if (ck_buf_append(ctx, p, n))
        return ck_fail(err, CK_EHOSTILE, "metadata reply over %d bytes", CK_AWS_META_REPLY_MAX);
    return CK_OK;
}

/* One request with a short timeout and at most two attempts; the body goes to reply. */
static ck_rc meta_request(enum ck_http_method m, const char *url, const char *disp, const char *h1,
                          const char *h2, const struct ck_aws_provider_cfg *cfg,
                          struct ck_buf *reply, struct ck_err *err)
{
    struct ck_http_request req;
    struct ck_http_response resp;
    struct ck_sink sink = {buf_sink, reply};
    ck_http_request_init(&req);
    req.method = m;
    req.url = url;
    req.display_url = disp;
    req.headers[0] = h1;
    req.headers[1] = h1 ? h2 : NULL;
    if (m == CK_HTTP_GET)
        req.sink = &sink;
    else
        req.reply_body = reply; /* capped by reply's max */
    req.retry = cfg->retry;
    if (req.retry.max_attempts > CK_AWS_IMDS_ATTEMPTS || req.retry.max_attempts == 0)
        req.retry.max_attempts = CK_AWS_IMDS_ATTEMPTS;
    if (req.retry.max_delay_s > 0.5)
        req.retry.max_delay_s = 0.5;
    req.connect_timeout_s = CK_AWS_IMDS_CONNECT_S;
    req.stall_timeout_s = 5;
    ck_buf_reset(reply);
    return ck_http_perform(&req, &resp, err);
}

/* ---- container ---------------------------------------------------------------------- */

ck_rc ck_aws_container_from_env(char *(*getenv_fn)(const char *), struct ck_aws_container *c,
                                struct ck_err *err)
{
    const char *full = env_or_empty(getenv_fn, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *rel = env_or_empty(getenv_fn, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *tok = env_or_empty(getenv_fn, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *tokf = env_or_empty(getenv_fn, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (!full[0] && !rel[0])
        return CK_ENOTFOUND;
    memset(c, 0, sizeof(*c));
    int n = rel[0] ? snprintf(c->url, sizeof(c->url), "%s%s%s", CONTAINER_HOST,
                              rel[0] == '/' ? "" : "/", rel)
                   : snprintf(c->url, sizeof(c->url), "%s", full);
    const char *var =
        rel[0] ? "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" : "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    if (n < 0 || (size_t)n >= sizeof(c->url))
        return ck_fail(err, CK_EINVAL, "container credentials: %s is too long", var);
    if (!ck_aws_container_url_allowed(c->url)) {
        char disp[256];
        display_of(c->url, disp, sizeof(disp));
        return ck_fail(err, CK_EINVAL,
                       "container credentials: %s=%s is not allowed (plain http only to "
                       "loopback, 169.254.170.2, 169.254.170.23 or fd00:ec2::23)",
                       var, disp);
    }
    if (strlen(tok) >= sizeof(c->token) || strlen(tokf) >= sizeof(c->token_file))
        return ck_fail(err, CK_EINVAL,
                       "container credentials: AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) too long");
    snprintf(c->token, sizeof(c->token), "%s", tok); /* lengths checked above */
    snprintf(c->token_file, sizeof(c->token_file), "%s", tokf);
    return CK_OK;
}

/* The Authorization header "Authorization: TOKEN" (or "" without a token) into hdr. */
static ck_rc auth_header(const struct ck_aws_container *c, char *hdr, size_t hdrlen,
                         struct ck_err *err)
{
    char *file_tok = NULL;
    const char *tok = c->token;
    if (c->token_file[0]) {
        ck_rc rc = ck_ini_read(c->token_file, &file_tok, err);
        if (rc) {
            ck_err_prefix(err, "container credentials: authorization token file");
            return rc;
        }
        size_t n = strlen(file_tok);
        while (n && (file_tok[n - 1] == '\n' || file_tok[n - 1] == '\r' || file_tok[n - 1] == ' '))
            file_tok[--n] = '\0';
        tok = file_tok;
    }
    ck_rc rc = CK_OK;
    if (strpbrk(tok, "\r\n") || strlen(tok) + 16 > hdrlen)
        rc = ck_fail(err, CK_EINVAL,
                     "container credentials: authorization token %s%s is multi-line or too long",
                     c->token_file[0] ? "in " : "from AWS_CONTAINER_AUTHORIZATION_TOKEN",
                     c->token_file);
    else
        snprintf(hdr, hdrlen, "%s%s", tok[0] ? "Authorization: " : "", tok);
    if (file_tok) {
        memset(file_tok, 0, strlen(file_tok));
        free(file_tok);
    }
    return rc;
}

ck_rc ck_aws_container_fetch(const struct ck_aws_container *c,
                             const struct ck_aws_provider_cfg *cfg, struct ck_aws_creds *out,
                             struct ck_err *err)
{
    char hdr[4200], disp[2048], what[2100];
    ck_rc rc = auth_header(c, hdr, sizeof(hdr), err);
    if (rc)
        return rc;
    display_of(c->url, disp, sizeof(disp));
    snprintf(what, sizeof(what), "container credentials at %s", disp);
    struct ck_buf reply;
    ck_buf_init(&reply, CK_AWS_META_REPLY_MAX);
    rc = meta_request(CK_HTTP_GET, c->url, disp, hdr[0] ? hdr : NULL, NULL, cfg, &reply, err);
    if (rc)
        ck_err_prefix(err, "container credentials");
    else
        rc = ck_aws_meta_creds(reply.data ? reply.data : "", reply.len, what, out, err);
    memset(hdr, 0, sizeof(hdr));
    if (reply.data)
        memset(reply.data, 0, reply.len);
    ck_buf_free(&reply);
    return rc;
}

/* ---- IMDSv2 ------------------------------------------------------------------------- */

ck_rc ck_aws_imds_from_env(char *(*getenv_fn)(const char *), struct ck_aws_imds *m,
                           struct ck_err *err)
{
    if (strcasecmp(env_or_empty(getenv_fn, "AWS_EC2_METADATA_DISABLED"), "true") == 0)
        return CK_ENOTFOUND;
    const char *ep = env_or_empty(getenv_fn, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = env_or_empty(getenv_fn, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    if (!ep[0])
        ep = strcasecmp(mode, "IPv6") == 0 ? IMDS_V6 : IMDS_V4;
    bool https;
    char host[256];
    if (strlen(ep) >= sizeof(m->endpoint) || !url_host(ep, &https, host, sizeof(host)) ||
        strpbrk(ep, "?# \r\n"))
        return ck_fail(err, CK_EINVAL,
                       "imds: AWS_EC2_METADATA_SERVICE_ENDPOINT is not an http(s) URL");
    snprintf(m->endpoint, sizeof(m->endpoint), "%s", ep);
    size_t n = strlen(m->endpoint);
    while (n && m->endpoint[n - 1] == '/')
        m->endpoint[--n] = '\0';
    return CK_OK;
}

/* Trims a line reply and checks it holds only chars from allowed. */
static bool clean_line(struct ck_buf *b, const char *allowed, size_t max)
{
    if (!b->data)
        return false;
    size_t n = strcspn(b->data, "\r\n");
    b->data[n] = '\0';
    b->len = n;
    return n > 0 && n <= max && strspn(b->data, allowed) == n;
}

#define TOKEN_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-."
#define ROLE_CHARS  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=,.@_-"

static ck_rc imds_token(const struct ck_aws_imds *m, const struct ck_aws_provider_cfg *cfg,
                        struct ck_buf *reply, char *hdr, size_t hdrlen, struct ck_err *err)
{
    char url[1100];
    snprintf(url, sizeof(url), "%s/latest/api/token", m->endpoint);
    ck_rc rc = meta_request(CK_HTTP_PUT, url, url, "X-aws-ec2-metadata-token-ttl-seconds: 21600",
                            NULL, cfg, reply, err);
    if (rc)
        return rc;
    if (!clean_line(reply, TOKEN_CHARS, 1024))
        return ck_fail(err, CK_ECORRUPT, "imds: PUT %s: the token is empty or malformed", url);
    snprintf(hdr, hdrlen, "X-aws-ec2-metadata-token: %s", reply->data);
    return CK_OK;
}

ck_rc ck_aws_imds_fetch(const struct ck_aws_imds *m, const struct ck_aws_provider_cfg *cfg,
                        struct ck_aws_creds *out, struct ck_err *err)
{
    struct ck_buf reply;
    ck_buf_init(&reply, CK_AWS_META_REPLY_MAX);
    char hdr[1100], url[1300], role[129];
    ck_rc rc = imds_token(m, cfg, &reply, hdr, sizeof(hdr), err);
    snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/", m->endpoint);
    if (!rc)
        rc = meta_request(CK_HTTP_GET, url, url, hdr, NULL, cfg, &reply, err);
    if (!rc && !clean_line(&reply, ROLE_CHARS, 128))
        rc = ck_fail(err, CK_ECORRUPT, "imds: GET %s: no valid role name", url);
    if (!rc) {
        snprintf(role, sizeof(role), "%s", reply.data);
        snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s", m->endpoint,
                 role);
        rc = meta_request(CK_HTTP_GET, url, url, hdr, NULL, cfg, &reply, err);
    }
    if (!rc) {
        char what[1400];
        snprintf(what, sizeof(what), "imds: credentials at %s", url);
        rc = ck_aws_meta_creds(reply.data ? reply.data : "", reply.len, what, out, err);
    } else if (err && strncmp(err->msg, "imds", 4) != 0) {
        ck_err_prefix(err, "imds");
    }
    memset(hdr, 0, sizeof(hdr));
    if (reply.data)
        memset(reply.data, 0, reply.len);
    ck_buf_free(&reply);
    return rc;
}

static ck_rc member(const char *text, size_t len, const char *what, const char *key, char *out,
                    size_t outlen, struct ck_err *err)
{
    ck_rc rc = ck_json_get_string(text, len, key, out, outlen);
    switch (rc) {
    case CK_OK:
        return out[0] ? CK_OK : ck_fail(err, CK_ECORRUPT, "%s: empty \"%s\"", what, key);
    case CK_ENOTFOUND:
        return ck_fail(err, CK_ECORRUPT, "%s: no \"%s\" string in the reply", what, key);
    case CK_EINVAL:
        return ck_fail(err, CK_ECORRUPT, "%s: \"%s\" is too long or holds control characters", what,
                       key);
    default:
        return ck_fail(err, CK_ECORRUPT, "%s: the reply is not a well-formed JSON object", what);
    }
}

ck_rc ck_aws_meta_creds(const char *text, size_t len, const char *what, struct ck_aws_creds *out,
                        struct ck_err *err)
{
    char code[64], exp[64];
    ck_rc rc = ck_json_get_string(text, len, "Code", code, sizeof(code));
    if (rc == CK_OK && strcmp(code, "Success") != 0)
        return ck_fail(err, CK_EAUTH, "%s: Code is \"%s\", not \"Success\"", what, code);
    if (rc != CK_OK && rc != CK_ENOTFOUND)
        return member(text, len, what, "Code", code, sizeof(code), err);
    rc = member(text, len, what, "AccessKeyId", out->access_key, sizeof(out->access_key), err);
    if (!rc)
        rc = member(text, len, what, "SecretAccessKey", out->secret_key, sizeof(out->secret_key),
                    err);
    if (!rc)
        rc = member(text, len, what, "Token", out->session_token, sizeof(out->session_token), err);
    if (!rc)
        rc = member(text, len, what, "Expiration", exp, sizeof(exp), err);
    if (!rc && ck_parse_iso8601(exp, &out->expires_wall) != CK_OK)
        rc = ck_fail(err, CK_ECORRUPT, "%s: Expiration is not an ISO 8601 time", what);
    return rc;
}
