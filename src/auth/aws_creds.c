/*
 * aws_creds.c - the AWS credential chain and its refresh; see aws_creds.h.
 *
 * Design: ck_aws_provider_new() walks the chain once. Each step either finds nothing
 * (CK_ENOTFOUND, and a short note of why goes into the "tried" list of the final error),
 * finds credentials (the step's source is kept for refreshes), or is configured but fails
 * (the error is returned as is: a broken IRSA setup must not silently fall through to the
 * node's instance role). Instance metadata is the exception: it is the last resort and
 * any failure there means "not available".
 *
 * Locks: `lock` protects cur and next_try; `refresh_lock` lets one thread at a time fetch
 * new credentials without holding `lock` during network I/O. Order: refresh_lock, then
 * lock. While the current credentials are still valid, a thread that finds a refresh
 * under way keeps signing with them instead of waiting.
 */
#include "auth/aws_creds.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xml.h"

#include "auth/aws_meta.h"
#include "auth/aws_profile.h"
#include "auth/aws_sts.h"
#include "util/clock.h"
#include "util/log.h"

#define DEFAULT_REGION "us-east-1"
#define RETRY_FAILED_S 5.0 /* a failed refresh is retried after this long (creds valid) */
#define TRIED_MAX      400

enum source_kind { SRC_STATIC, SRC_WEB_IDENTITY, SRC_CONTAINER, SRC_IMDS, SRC_ANONYMOUS };

struct ck_aws_provider {
    struct ck_aws_provider_cfg cfg; /* read-only after creation */
    char region[64];
    enum source_kind kind;
    struct ck_aws_web_identity web; /* SRC_WEB_IDENTITY */
    struct ck_aws_container container;
    struct ck_aws_imds imds;

    pthread_mutex_t refresh_lock; /* one fetch at a time; taken before lock */
    pthread_mutex_t lock;
    struct ck_aws_creds cur; /* protected by lock */
    double next_try;         /* protected by lock: no refresh attempt before (wall time) */
};

static char *env_or_empty(const struct ck_aws_provider *p, const char *name)
{
    char *v = p->cfg.getenv_fn(name);
    return v ? v : "";
}

static void note(char *tried, const char *fmt, const char *arg)
{
    size_t n = strlen(tried);
    if (n + 4 >= TRIED_MAX)
        return;
    if (n)
        n += (size_t)snprintf(tried + n, TRIED_MAX - n, "; ");
    if (snprintf(tried + n, TRIED_MAX - n, fmt, arg) < 0) /* a long one is cut: fine */
        tried[n] = '\0';
}

static void wipe(struct ck_aws_creds *c)
{
    memset(c, 0, sizeof(*c));
}

/* ---- region --------------------------------------------------------------------------- */

static bool region_ok(const char *r)
{
    size_t n = strlen(r);
    return n > 0 && n < 64 &&
           strspn(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

static ck_rc resolve_region(struct ck_aws_provider *p, const struct ck_aws_profile *prof,
                            struct ck_err *err)
{
    const char *src = "AWS_REGION";
    const char *r = env_or_empty(p, src);
    if (!r[0])
        r = env_or_empty(p, src = "AWS_DEFAULT_REGION");
    if (!r[0]) {
        r = prof->region;
        src = "the config file";
    }
    if (!r[0])
        r = DEFAULT_REGION;
    if (!region_ok(r))
        return ck_fail(err, CK_EINVAL, "region from %s is not a valid region name", src);
    snprintf(p->region, sizeof(p->region), "%s", r);
    return CK_OK;
}

/* ---- the steps of the chain ----------------------------------------------------------- */

static ck_rc set_static(struct ck_aws_provider *p, const char *ak, const char *sk, const char *tok,
                        const char *source, struct ck_err *err)
{
    struct ck_aws_creds *c = &p->cur;
    if (strlen(ak) >= sizeof(c->access_key) || strlen(sk) >= sizeof(c->secret_key) ||
        strlen(tok) >= sizeof(c->session_token) || strpbrk(ak, " ,/\r\n") || strpbrk(sk, "\r\n") ||
        strpbrk(tok, "\r\n"))
        return ck_fail(err, CK_EINVAL,
                       "%s: access key, secret key or session token is too long "
                       "or malformed",
                       source);
    snprintf(c->access_key, sizeof(c->access_key), "%s", ak);
    snprintf(c->secret_key, sizeof(c->secret_key), "%s", sk);
    snprintf(c->session_token, sizeof(c->session_token), "%s", tok);
    snprintf(c->source, sizeof(c->source), "%s", source);
    c->expires_wall = 0;
    p->kind = SRC_STATIC;
    return CK_OK;
}

static ck_rc try_env(struct ck_aws_provider *p, const char *prefix, const char *source, char *tried,
                     struct ck_err *err)
{
    char ak_name[64], sk_name[64], tok_name[64];
    snprintf(ak_name, sizeof(ak_name), "%sAWS_ACCESS_KEY_ID", prefix);
    snprintf(sk_name, sizeof(sk_name), "%sAWS_SECRET_ACCESS_KEY", prefix);
    snprintf(tok_name, sizeof(tok_name), "%sAWS_SESSION_TOKEN", prefix);
    const char *ak = env_or_empty(p, ak_name), *sk = env_or_empty(p, sk_name);
    if (!ak[0] && !sk[0]) {
        note(tried, "%s (not set)", source);
        return CK_ENOTFOUND;
    }
    if (!ak[0] || !sk[0])
        return ck_fail(err, CK_EAUTH, "%s: %s is set but %s is not", source,
                       ak[0] ? ak_name : sk_name, ak[0] ? sk_name : ak_name);
    return set_static(p, ak, sk, env_or_empty(p, tok_name), source, err);
}

static ck_rc fetch_now(struct ck_aws_provider *p, struct ck_aws_creds *out, struct ck_err *err);

static ck_rc start_web_identity(struct ck_aws_provider *p, const char *source, struct ck_err *err)
{
    p->kind = SRC_WEB_IDENTITY;
    snprintf(p->cur.source, sizeof(p->cur.source), "%s", source);
    return fetch_now(p, &p->cur, err);
}

static ck_rc try_web_identity_env(struct ck_aws_provider *p, char *tried, struct ck_err *err)
{
    ck_rc rc = ck_aws_web_identity_from_env(p->cfg.getenv_fn, p->region, &p->web, err);
    if (rc == CK_ENOTFOUND)
        note(tried, "%s", "web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE not set)");
    return rc ? rc : start_web_identity(p, "web-identity", err);
}

static ck_rc profile_web_identity(struct ck_aws_provider *p, const struct ck_aws_profile *prof,
                                  struct ck_err *err)
{
    struct ck_aws_web_identity *w = &p->web;
    memset(w, 0, sizeof(*w));
    snprintf(w->role_arn, sizeof(w->role_arn), "%s", prof->role_arn);
    snprintf(w->token_file, sizeof(w->token_file), "%s", prof->web_identity_token_file);
    if (prof->role_session_name[0])
        snprintf(w->session_name, sizeof(w->session_name), "%s", prof->role_session_name);
    else
        ck_aws_default_session_name(w->session_name, sizeof(w->session_name));
    ck_rc rc =
        ck_aws_sts_endpoint(p->cfg.getenv_fn, p->region, w->endpoint, sizeof(w->endpoint), err);
    if (rc)
        return rc;
    char source[64];
    snprintf(source, sizeof(source), "profile:%.40s (web identity)", prof->name);
    return start_web_identity(p, source, err);
}

static ck_rc try_profile(struct ck_aws_provider *p, const struct ck_aws_profile *prof, char *tried,
                         struct ck_err *err)
{
    char source[64];
    snprintf(source, sizeof(source), "profile:%.50s", prof->name);
    if (prof->role_arn[0] && prof->web_identity_token_file[0])
        return profile_web_identity(p, prof, err);
    if (prof->role_arn[0] || (prof->unsupported[0] && !prof->access_key[0]))
        return ck_fail(err, CK_EUNSUPPORTED,
                       "profile '%s' (%s, %s): %s is not supported; use static keys or "
                       "role_arn with web_identity_token_file",
                       prof->name, prof->cred_path, prof->conf_path,
                       prof->unsupported[0] ? prof->unsupported
                                            : "role_arn without "
                                              "web_identity_token_file");
    if (prof->access_key[0] || prof->secret_key[0]) {
        if (!prof->access_key[0] || !prof->secret_key[0])
            return ck_fail(err, CK_EAUTH,
                           "profile '%s' (%s, %s): aws_access_key_id and aws_secret_access_key "
                           "must both be set",
                           prof->name, prof->cred_path, prof->conf_path);
        return set_static(p, prof->access_key, prof->secret_key, prof->session_token, source, err);
    }
    if (prof->explicit_name && !prof->found)
        return ck_fail(err, CK_EAUTH, "profile '%s' (AWS_PROFILE) is in neither %s nor %s",
                       prof->name, prof->cred_path[0] ? prof->cred_path : "(no credentials file)",
                       prof->conf_path[0] ? prof->conf_path : "(no config file)");
    note(tried, "profile '%s' (no keys)", prof->name);
    return CK_ENOTFOUND;
}

static ck_rc try_container(struct ck_aws_provider *p, char *tried, struct ck_err *err)
{
    ck_rc rc = ck_aws_container_from_env(p->cfg.getenv_fn, &p->container, err);
    if (rc == CK_ENOTFOUND)
        note(tried, "%s", "container (AWS_CONTAINER_CREDENTIALS_*_URI not set)");
    if (rc)
        return rc;
    p->kind = SRC_CONTAINER;
    snprintf(p->cur.source, sizeof(p->cur.source), "container");
    return fetch_now(p, &p->cur, err);
}

static ck_rc try_imds(struct ck_aws_provider *p, char *tried, struct ck_err *err)
{
    ck_rc rc = ck_aws_imds_from_env(p->cfg.getenv_fn, &p->imds, err);
    if (rc == CK_ENOTFOUND)
        note(tried, "%s", "imds (AWS_EC2_METADATA_DISABLED)");
    if (rc)
        return rc;
    p->kind = SRC_IMDS;
    snprintf(p->cur.source, sizeof(p->cur.source), "imds");
    rc = fetch_now(p, &p->cur, err);
    if (rc) {
        note(tried, "%s", err->msg);
        return CK_ENOTFOUND;
    }
    return CK_OK;
}

static ck_rc run_chain(struct ck_aws_provider *p, const struct ck_aws_profile *prof,
                       struct ck_err *err)
{
    char tried[TRIED_MAX] = "";
    ck_rc rc = try_env(p, "", "env", tried, err);
    if (rc == CK_ENOTFOUND)
        rc = try_env(p, "FLYTE_", "flyte-env", tried, err);
    if (rc == CK_ENOTFOUND)
        rc = try_web_identity_env(p, tried, err);
    if (rc == CK_ENOTFOUND)
        rc = try_profile(p, prof, tried, err);
    if (rc == CK_ENOTFOUND)
        rc = try_container(p, tried, err);
    if (rc == CK_ENOTFOUND)
        rc = try_imds(p, tried, err);
    if (rc == CK_ENOTFOUND)
        return ck_fail(err, CK_EAUTH, "no AWS credentials found; tried: %s", tried);
    return rc;
}

/* ---- fetching and refreshing ---------------------------------------------------------- */

/* Fetches from the source into out (keeps out->source). No lock needed: the source
 * descriptions are read-only after creation. Never returns CK_ENOTFOUND, which means
 * "not configured" to the chain and "nothing to do" to refresh(): a missing token file or
 * a 404 from the endpoint is CK_EAUTH. */
static ck_rc fetch_now(struct ck_aws_provider *p, struct ck_aws_creds *out, struct ck_err *err)
{
    struct ck_aws_creds c;
    memset(&c, 0, sizeof(c));
    ck_rc rc;
    switch (p->kind) {
    case SRC_WEB_IDENTITY:
        rc = ck_aws_web_identity_fetch(&p->web, &p->cfg, &c, err);
        break;
    case SRC_CONTAINER:
        rc = ck_aws_container_fetch(&p->container, &p->cfg, &c, err);
        break;
    case SRC_IMDS:
        rc = ck_aws_imds_fetch(&p->imds, &p->cfg, &c, err);
        break;
    default:
        return CK_OK; /* static and anonymous never change */
    }
    if (!rc) {
        snprintf(c.source, sizeof(c.source), "%s", out->source);
        *out = c;
    }
    wipe(&c);
    if (rc == CK_ENOTFOUND) /* a configured source that fails is no "not configured" */
        rc = err ? (err->rc = CK_EAUTH) : CK_EAUTH;
    return rc;
}

static bool needs_refresh(const struct ck_aws_creds *c, double now)
{
    return c->expires_wall != 0 && now + CK_AWS_REFRESH_MARGIN_S >= c->expires_wall;
}

/* Called with refresh_lock held. */
static ck_rc refresh(struct ck_aws_provider *p, struct ck_aws_creds *out, struct ck_err *err)
{
    double now = ck_wall_now();
    pthread_mutex_lock(&p->lock);
    bool due = needs_refresh(&p->cur, now);
    bool valid = p->cur.expires_wall == 0 || now < p->cur.expires_wall;
    bool wait = valid && now < p->next_try;
    struct ck_aws_creds fresh = p->cur; /* keeps the source name */
    pthread_mutex_unlock(&p->lock);
    if (!due || wait) {
        wipe(&fresh);
        return CK_ENOTFOUND; /* another thread refreshed, or a failure is recent: use cur */
    }
    ck_rc rc = fetch_now(p, &fresh, err);
    pthread_mutex_lock(&p->lock);
    if (!rc) {
        p->cur = fresh;
        p->next_try = 0;
    } else {
        p->next_try = now + RETRY_FAILED_S;
    }
    *out = p->cur;
    pthread_mutex_unlock(&p->lock);
    wipe(&fresh);
    if (rc && valid) {
        ck_log_warn("aws credentials (%s): refresh failed, the current ones stay valid for "
                    "%.0f s: %s",
                    out->source, out->expires_wall - now, err ? err->msg : "");
        return CK_OK;
    }
    if (rc)
        ck_err_prefix(err, "aws credentials (%s) expired and could not be refreshed", out->source);
    return rc;
}

ck_rc ck_aws_creds_get(struct ck_aws_provider *p, struct ck_aws_creds *out, struct ck_err *err)
{
    double now = ck_wall_now();
    pthread_mutex_lock(&p->lock);
    *out = p->cur;
    pthread_mutex_unlock(&p->lock);
    if (!needs_refresh(out, now))
        return CK_OK;
    bool valid = now < out->expires_wall;
    if (valid && pthread_mutex_trylock(&p->refresh_lock) != 0)
        return CK_OK; /* another thread is refreshing; these still work */
    if (!valid)
        pthread_mutex_lock(&p->refresh_lock);
    ck_rc rc = refresh(p, out, err);
    pthread_mutex_unlock(&p->refresh_lock);
    if (rc == CK_ENOTFOUND) {
        pthread_mutex_lock(&p->lock);
        *out = p->cur;
        pthread_mutex_unlock(&p->lock);
        return CK_OK;
    }
    return rc;
}

/* ---- lifetime ------------------------------------------------------------------------- */

ck_rc ck_aws_provider_new(const struct ck_aws_provider_cfg *cfg, struct ck_aws_provider **out,
                          struct ck_err *err)
{
    *out = NULL;
    struct ck_aws_provider *p = calloc(1, sizeof(*p));
    if (!p)
        return ck_fail(err, CK_ENOMEM, "aws credentials: out of memory");
    p->cfg = *cfg;
    if (!p->cfg.getenv_fn)
        p->cfg.getenv_fn = getenv;
    if (p->cfg.retry.max_attempts == 0)
        ck_retry_policy_default(&p->cfg.retry);
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->refresh_lock, NULL);
    ck_xml_init(); /* libxml2 wants this before threads use it */
    struct ck_aws_profile *prof = malloc(sizeof(*prof));
    ck_rc rc = prof ? ck_aws_profile_load(p->cfg.getenv_fn, prof, err)
                    : ck_fail(err, CK_ENOMEM, "aws credentials: out of memory");
    if (!rc)
        rc = resolve_region(p, prof, err);
    if (!rc && p->cfg.anonymous) {
        p->kind = SRC_ANONYMOUS;
        snprintf(p->cur.source, sizeof(p->cur.source), "anonymous");
    } else if (!rc) {
        rc = run_chain(p, prof, err);
    }
    if (prof) {
        memset(prof, 0, sizeof(*prof));
        free(prof);
    }
    if (rc) {
        ck_aws_provider_free(p);
        return rc;
    }
    ck_log_info("aws credentials: %s, region %s", p->cur.source, p->region);
    *out = p;
    return CK_OK;
}

bool ck_aws_provider_anonymous(const struct ck_aws_provider *p)
{
    return p->kind == SRC_ANONYMOUS;
}

const char *ck_aws_provider_region(const struct ck_aws_provider *p)
{
    return p->region[0] ? p->region : DEFAULT_REGION;
}

void ck_aws_provider_free(struct ck_aws_provider *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->refresh_lock);
    memset(p, 0, sizeof(*p)); /* secrets and tokens */
    free(p);
}
