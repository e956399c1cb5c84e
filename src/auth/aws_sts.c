/*
 * aws_sts.c - STS AssumeRoleWithWebIdentity; see aws_sts.h.
 */
#include "auth/aws_sts.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xml.h"
#include "auth/ini.h"
#include "util/uri_encode.h"
#include "net/http.h"
#include "util/buf.h"
#include "util/clock.h"

static const char *env_or_empty(char *(*getenv_fn)(const char *), const char *name)
{
    const char *v = getenv_fn(name);
    return v ? v : "";
}

ck_rc ck_aws_sts_endpoint(char *(*getenv_fn)(const char *), const char *region, char *out,
                          size_t outlen, struct ck_err *err)
{
    const char *src = "AWS_ENDPOINT_URL_STS";
    const char *v = env_or_empty(getenv_fn, src);
    if (!v[0])
        v = env_or_empty(getenv_fn, src = "AWS_ENDPOINT_URL");
    int n = v[0] ? snprintf(out, outlen, "%s", v)
                 : snprintf(out, outlen, "https://sts.%s.amazonaws.com%s", region,
                            strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
    if (n < 0 || (size_t)n >= outlen)
        return ck_fail(err, CK_EINVAL, "web identity: STS endpoint from %s is too long", src);
    if ((strncmp(out, "http://", 7) != 0 && strncmp(out, "https://", 8) != 0) ||
        strpbrk(out, " ?#\r\n"))
        return ck_fail(err, CK_EINVAL, "web identity: %s is not an http(s) URL without query", src);
    size_t len = strlen(out);
    while (len > 8 && out[len - 1] == '/')
        out[--len] = '\0';
    return CK_OK;
}

void ck_aws_default_session_name(char *out, size_t outlen)
{
    snprintf(out, outlen, "ckptfs-%.0f", ck_wall_now());
}

ck_rc ck_aws_web_identity_from_env(char *(*getenv_fn)(const char *), const char *region,
                                   struct ck_aws_web_identity *w, struct ck_err *err)
{
    const char *arn = env_or_empty(getenv_fn, "AWS_ROLE_ARN");
    const char *file = env_or_empty(getenv_fn, "AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *name = env_or_empty(getenv_fn, "AWS_ROLE_SESSION_NAME");
    if (!arn[0] || !file[0])
        return CK_ENOTFOUND;
    memset(w, 0, sizeof(*w));
    if (strlen(arn) >= sizeof(w->role_arn) || strlen(file) >= sizeof(w->token_file) ||
        strlen(name) >= sizeof(w->session_name))
        return ck_fail(err, CK_EINVAL,
                       "web identity: AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE or "
                       "AWS_ROLE_SESSION_NAME is too long");
    snprintf(w->role_arn, sizeof(w->role_arn), "%s", arn); /* lengths checked above */
    snprintf(w->token_file, sizeof(w->token_file), "%s", file);
    if (name[0])
        snprintf(w->session_name, sizeof(w->session_name), "%s", name);
    else
        ck_aws_default_session_name(w->session_name, sizeof(w->session_name));
    return ck_aws_sts_endpoint(getenv_fn, region, w->endpoint, sizeof(w->endpoint), err);
}

/* ---- the reply ---------------------------------------------------------------------- */

/* Text of the child element name of parent into out: a token (util/xml.h). */
static ck_rc child_text(const xmlNode *parent, const char *name, char *out, size_t outlen,
                        struct ck_err *err)
{
    const xmlNode *c = ck_xml_child(parent, name);
    const char *why = "is missing";
    if (c && ck_xml_token(c, out, outlen, &why))
        return CK_OK;
    return ck_fail(err, CK_ECORRUPT, "web identity: STS reply <%s> %s", name, why);
}

static ck_rc read_creds(const xmlDoc *doc, struct ck_aws_creds *out, struct ck_err *err)
{
    const xmlNode *cr = ck_xml_find(xmlDocGetRootElement((xmlDoc *)doc), "Credentials", 8);
    if (!cr)
        return ck_fail(err, CK_ECORRUPT, "web identity: STS reply has no <Credentials>");
    char exp[64];
    ck_rc rc = child_text(cr, "AccessKeyId", out->access_key, sizeof(out->access_key), err);
    if (!rc)
        rc = child_text(cr, "SecretAccessKey", out->secret_key, sizeof(out->secret_key), err);
    if (!rc)
        rc = child_text(cr, "SessionToken", out->session_token, sizeof(out->session_token), err);
    if (!rc)
        rc = child_text(cr, "Expiration", exp, sizeof(exp), err);
    if (!rc && ck_parse_iso8601(exp, &out->expires_wall) != CK_OK)
        rc = ck_fail(err, CK_ECORRUPT, "web identity: STS reply <Expiration> is not ISO 8601");
    return rc;
}

ck_rc ck_aws_sts_parse(const char *xml, size_t len, struct ck_aws_creds *out, struct ck_err *err)
{
    xmlDoc *doc;
    ck_rc rc = ck_xml_parse(xml, len, CK_AWS_STS_REPLY_MAX, false, &doc);
    if (rc == CK_EHOSTILE)
        return ck_fail(err, rc, "web identity: STS reply over %d bytes or carrying a DTD; refused",
                       CK_AWS_STS_REPLY_MAX);
    if (rc)
        return ck_fail(err, rc, "web identity: STS reply is not well-formed XML");
    struct ck_aws_creds c;
    memset(&c, 0, sizeof(c));
    rc = read_creds(doc, &c, err);
    xmlFreeDoc(doc);
    if (!rc) {
        memcpy(out->access_key, c.access_key, sizeof(c.access_key));
        memcpy(out->secret_key, c.secret_key, sizeof(c.secret_key));
        memcpy(out->session_token, c.session_token, sizeof(c.session_token));
        out->expires_wall = c.expires_wall;
    }
    memset(&c, 0, sizeof(c));
    return rc;
}

/* ---- the request -------------------------------------------------------------------- */

static ck_rc read_token(const char *path, char **out, struct ck_err *err)
{
    ck_rc rc = ck_ini_read(path, out, err);
    if (rc) {
        ck_err_prefix(err, "web identity: token file");
        return rc;
    }
    char *t = *out;
    size_t n = strlen(t);
    while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
        t[--n] = '\0';
    if (n == 0 || n > CK_AWS_TOKEN_FILE_MAX) {
        free(t);
        *out = NULL;
        return ck_fail(err, CK_EINVAL, "web identity: token file %s is empty or too big", path);
    }
    return CK_OK;
}

static ck_rc append_param(struct ck_buf *b, const char *name, const char *value)
{
    size_t cap = strlen(value) * 3 + 1;
    char *enc = malloc(cap);
    ck_rc rc = enc ? ck_uri_encode(value, 0, enc, cap) : CK_ENOMEM;
    if (!rc)
        rc = ck_buf_printf(b, "&%s=%s", name, enc);
    free(enc);
    return rc;
}

/* The form body: the token travels in the body, never in a URL a proxy might log. */
static ck_rc build_body(const struct ck_aws_web_identity *w, const char *token, struct ck_buf *b)
{
    ck_rc rc = ck_buf_puts(b, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15");
    if (!rc)
        rc = append_param(b, "RoleArn", w->role_arn);
    if (!rc)
        rc = append_param(b, "RoleSessionName", w->session_name);
    if (!rc)
        rc = append_param(b, "WebIdentityToken", token);
    return rc;
}

static ck_rc post(const struct ck_aws_web_identity *w, const struct ck_aws_provider_cfg *cfg,
                  const struct ck_buf *body, struct ck_buf *reply, struct ck_err *err)
{
    char url[1100], disp[1100];
    snprintf(url, sizeof(url), "%s/", w->endpoint);
    snprintf(disp, sizeof(disp), "%s/ (AssumeRoleWithWebIdentity)", w->endpoint);
    struct ck_http_request req;
    struct ck_http_response resp;
    ck_http_request_init(&req);
    req.method = CK_HTTP_POST;
    req.url = url;
    req.display_url = disp;
    req.headers[0] = "Content-Type: application/x-www-form-urlencoded; charset=utf-8";
    req.headers[1] = "Accept: application/xml";
    req.body_mem = body->data;
    req.body_len = body->len;
    req.reply_body = reply;                /* capped at CK_AWS_STS_REPLY_MAX */
    req.ca_file = getenv("AWS_CA_BUNDLE"); /* as for S3 (http.h, TLS) */
    req.retry = cfg->retry;
    if (cfg->connect_timeout_s > 0)
        req.connect_timeout_s = cfg->connect_timeout_s;
    ck_rc rc = ck_http_perform(&req, &resp, err);
    if (rc)
        ck_err_prefix(err, "web identity (role %s)", w->role_arn);
    return rc;
}

ck_rc ck_aws_web_identity_fetch(const struct ck_aws_web_identity *w,
                                const struct ck_aws_provider_cfg *cfg, struct ck_aws_creds *out,
                                struct ck_err *err)
{
    char *token = NULL;
    ck_rc rc = read_token(w->token_file, &token, err);
    if (rc)
        return rc;
    struct ck_buf body, reply;
    ck_buf_init(&body, 3 * CK_AWS_TOKEN_FILE_MAX + 16384);
    ck_buf_init(&reply, CK_AWS_STS_REPLY_MAX);
    rc = build_body(w, token, &body);
    memset(token, 0, strlen(token));
    free(token);
    if (rc)
        rc = ck_fail(err, rc, "web identity: request to %s/ does not fit", w->endpoint);
    else
        rc = post(w, cfg, &body, &reply, err);
    if (body.data)
        memset(body.data, 0, body.len);
    ck_buf_free(&body);
    if (!rc)
        rc = ck_aws_sts_parse(reply.data ? reply.data : "", reply.len, out, err);
    ck_buf_free(&reply);
    return rc;
}
