/*
 * azure_creds.c - the Azure credential chain, connection strings, account and endpoint;
 * see azure_creds.h. The bearer sources are in azure_token.c, signing in
 * azure_sharedkey.c.
 */
#include "auth/azure_creds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/azure_token.h"
#include "util/log.h"

#define SAS_MAX 4096

struct ck_azure_creds {
    enum ck_azure_auth kind;
    char source[32];
    char account[64];
    char endpoint[512];
    unsigned char key[CK_AZURE_KEY_MAX];
    size_t keylen;
    char sas[SAS_MAX];
    struct ck_azure_wi wi;
    struct ck_azure_imds imds;
    struct ck_oauth_cache cache; /* CK_AZURE_BEARER */
    bool cache_init;
};

/* The fields of a connection string we use; values point into a private copy. */
struct connstr {
    char text[8192];
    const char *account, *key, *sas, *endpoint, *protocol, *suffix;
    bool dev;
};

static const char *env(const struct ck_azure_cfg *cfg, const char *name)
{
    const char *v = cfg->getenv_fn ? cfg->getenv_fn(name) : getenv(name);
    return v && v[0] ? v : NULL;
}

static void set_field(struct connstr *cs, const char *k, const char *v)
{
    if (strcasecmp(k, "AccountName") == 0)
        cs->account = v;
    else if (strcasecmp(k, "AccountKey") == 0)
        cs->key = v;
    else if (strcasecmp(k, "SharedAccessSignature") == 0)
        cs->sas = v;
    else if (strcasecmp(k, "BlobEndpoint") == 0)
        cs->endpoint = v;
    else if (strcasecmp(k, "DefaultEndpointsProtocol") == 0)
        cs->protocol = v;
    else if (strcasecmp(k, "EndpointSuffix") == 0)
        cs->suffix = v;
    else if (strcasecmp(k, "UseDevelopmentStorage") == 0)
        cs->dev = strcasecmp(v, "true") == 0;
}

/* "Key=Value;Key=Value" (values may contain '=', as base64 keys do). */
static ck_rc parse_connstr(const char *s, struct connstr *cs, struct ck_err *err)
{
    memset(cs, 0, sizeof(*cs));
    if (strlen(s) >= sizeof(cs->text))
        return ck_fail(err, CK_EINVAL, "AZURE_STORAGE_CONNECTION_STRING: too long");
    snprintf(cs->text, sizeof(cs->text), "%s", s); /* length checked above */
    for (char *p = cs->text; *p;) {
        char *end = p + strcspn(p, ";");
        bool last = *end == '\0';
        *end = '\0';
        char *eq = strchr(p, '=');
        if (eq) {
            *eq = '\0';
            set_field(cs, p, eq + 1);
        } else if (p[0]) {
            return ck_fail(err, CK_EINVAL,
                           "AZURE_STORAGE_CONNECTION_STRING: an item is not Key=Value");
        }
        p = last ? end : end + 1;
    }
    if (cs->dev) {
        cs->account = cs->account ? cs->account : "devstoreaccount1";
        cs->key = cs->key ? cs->key
                          : "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPT"
                            "Otr/KBHBeksoGMGw==";
        cs->endpoint = cs->endpoint ? cs->endpoint : "http://127.0.0.1:10000/devstoreaccount1";
    }
    return CK_OK;
}

static ck_rc set_endpoint(struct ck_azure_creds *c, const char *ep, const char *what,
                          struct ck_err *err)
{
    size_t n = strlen(ep);
    while (n && ep[n - 1] == '/')
        n--;
    if ((strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) ||
        strpbrk(ep, " ?#@") || n >= sizeof(c->endpoint))
        return ck_fail(err, CK_EINVAL, "%s: blob endpoint is not an http(s) URL", what);
    snprintf(c->endpoint, sizeof(c->endpoint), "%.*s", (int)n, ep);
    return CK_OK;
}

static ck_rc set_account(struct ck_azure_creds *c, const char *uri_acc, const char *acc,
                         const char *what, struct ck_err *err)
{
    if (uri_acc && acc && strcmp(uri_acc, acc) != 0)
        return ck_fail(err, CK_EINVAL, "%s is for storage account '%.64s', the URI names '%s'",
                       what, acc, uri_acc);
    const char *a = uri_acc ? uri_acc : acc;
    if (!a)
        return ck_fail(err, CK_EINVAL,
                       "no storage account: use abfs://container@ACCOUNT.dfs.core.windows.net/..., "
                       "or set AZURE_STORAGE_ACCOUNT");
    if (strlen(a) >= sizeof(c->account) || strpbrk(a, "/?#@ :"))
        return ck_fail(err, CK_EINVAL, "%s: malformed storage account name", what);
    snprintf(c->account, sizeof(c->account), "%s", a);
    return CK_OK;
}

static ck_rc set_key(struct ck_azure_creds *c, const char *b64, const char *what,
                     struct ck_err *err)
{
    if (ck_azure_key_decode(b64, c->key, &c->keylen) != CK_OK)
        return ck_fail(err, CK_EINVAL, "%s: the account key is not base64", what);
    c->kind = CK_AZURE_SHARED_KEY;
    snprintf(c->source, sizeof(c->source), "shared-key");
    return CK_OK;
}

static ck_rc set_sas(struct ck_azure_creds *c, const char *sas, const char *what,
                     struct ck_err *err)
{
    if (sas[0] == '?')
        sas++;
    if (strlen(sas) >= sizeof(c->sas) || strpbrk(sas, " #\r\n"))
        return ck_fail(err, CK_EINVAL, "%s: malformed SAS token", what);
    snprintf(c->sas, sizeof(c->sas), "%s", sas);
    c->kind = CK_AZURE_SAS;
    snprintf(c->source, sizeof(c->source), "sas");
    return CK_OK;
}

static ck_rc from_connstr(struct ck_azure_creds *c, const struct ck_azure_cfg *cfg, const char *s,
                          struct ck_err *err)
{
    const char *what = "AZURE_STORAGE_CONNECTION_STRING";
    struct connstr *cs = malloc(sizeof(*cs));
    if (!cs)
        return ck_fail(err, CK_ENOMEM, "%s: out of memory", what);
    ck_rc rc = parse_connstr(s, cs, err);
    if (!rc)
        rc = set_account(c, cfg->account, cs->account, what, err);
    if (!rc && cs->endpoint)
        rc = set_endpoint(c, cs->endpoint, what, err);
    else if (!rc && cs->suffix)
        snprintf(c->endpoint, sizeof(c->endpoint), "%s://%s.blob.%s",
                 cs->protocol ? cs->protocol : "https", c->account, cs->suffix);
    if (!rc && cs->key)
        rc = set_key(c, cs->key, what, err);
    else if (!rc && cs->sas)
        rc = set_sas(c, cs->sas, what, err);
    else if (!rc)
        rc = ck_fail(err, CK_EINVAL, "%s: has neither AccountKey nor SharedAccessSignature", what);
    if (!rc)
        snprintf(c->source, sizeof(c->source), "connection-string");
    explicit_bzero(cs, sizeof(*cs));
    free(cs);
    return rc;
}

static ck_rc bearer(struct ck_azure_creds *c, ck_oauth_fetch_fn fetch, void *ctx, const char *name,
                    struct ck_err *err)
{
    c->kind = CK_AZURE_BEARER;
    snprintf(c->source, sizeof(c->source), "%s", name);
    ck_oauth_cache_init(&c->cache, fetch, ctx);
    c->cache_init = true;
    char tok[CK_OAUTH_TOKEN_MAX];
    ck_rc rc = ck_oauth_cache_get(&c->cache, tok, sizeof(tok), err);
    explicit_bzero(tok, sizeof(tok));
    return rc;
}

static ck_rc from_identity(struct ck_azure_creds *c, const struct ck_azure_cfg *cfg,
                           struct ck_err *err)
{
    const char *file = env(cfg, "AZURE_FEDERATED_TOKEN_FILE");
    const char *client = env(cfg, "AZURE_CLIENT_ID"), *tenant = env(cfg, "AZURE_TENANT_ID");
    c->wi.retry = c->imds.retry = cfg->retry;
    c->wi.connect_timeout_s = cfg->connect_timeout_s;
    if (file) {
        if (!client || !tenant)
            return ck_fail(err, CK_EINVAL,
                           "workload identity: AZURE_FEDERATED_TOKEN_FILE is set "
                           "but AZURE_CLIENT_ID or AZURE_TENANT_ID is not");
        const char *auth = env(cfg, "AZURE_AUTHORITY_HOST");
        ck_rc rc =
            ck_azure_wi_init(auth ? auth : CK_AZURE_AUTHORITY, tenant, client, file, &c->wi, err);
        return rc ? rc : bearer(c, ck_azure_wi_fetch, &c->wi, "workload-identity", err);
    }
    const char *base = env(cfg, "AZURE_POD_IDENTITY_AUTHORITY_HOST");
    ck_rc rc = ck_azure_imds_init(base ? base : CK_AZURE_IMDS, client, &c->imds, err);
    if (!rc)
        rc = bearer(c, ck_azure_imds_fetch, &c->imds, "managed-identity", err);
    if (rc) {
        ck_err_prefix(err, "no Azure credentials found; tried: URL SAS (none); "
                           "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY, "
                           "AZURE_STORAGE_SAS_TOKEN, AZURE_FEDERATED_TOKEN_FILE (not set)");
        err->rc = rc = CK_EAUTH;
    }
    return rc;
}

static ck_rc pick(struct ck_azure_creds *c, const struct ck_azure_cfg *cfg, struct ck_err *err)
{
    const char *cs = env(cfg, "AZURE_STORAGE_CONNECTION_STRING");
    const char *acc = env(cfg, "AZURE_STORAGE_ACCOUNT");
    if (cfg->uri_sas && !cs)
        return set_sas(c, cfg->uri_sas, "blob URL", err);
    if (cs)
        return from_connstr(c, cfg, cs, err);
    ck_rc rc = set_account(c, cfg->account, acc, "AZURE_STORAGE_ACCOUNT", err);
    if (rc || cfg->anonymous)
        return rc;
    const char *key = env(cfg, "AZURE_STORAGE_KEY"), *sas = env(cfg, "AZURE_STORAGE_SAS_TOKEN");
    if (key)
        return set_key(c, key, "AZURE_STORAGE_KEY", err);
    if (sas)
        return set_sas(c, sas, "AZURE_STORAGE_SAS_TOKEN", err);
    return from_identity(c, cfg, err);
}

ck_rc ck_azure_creds_new(const struct ck_azure_cfg *cfg, struct ck_azure_creds **out,
                         struct ck_err *err)
{
    struct ck_azure_creds *c = calloc(1, sizeof(*c));
    if (!c)
        return ck_fail(err, CK_ENOMEM, "azure credentials: out of memory");
    snprintf(c->source, sizeof(c->source), "anonymous");
    ck_rc rc = pick(c, cfg, err);
    const char *ep = env(cfg, "CKPTFS_AZURE_BLOB_ENDPOINT");
    if (!rc && ep)
        rc = set_endpoint(c, ep, "CKPTFS_AZURE_BLOB_ENDPOINT", err);
    if (!rc && !c->endpoint[0])
        snprintf(c->endpoint, sizeof(c->endpoint), "https://%s.blob.core.windows.net", c->account);
    if (rc) {
        ck_azure_creds_free(c);
        return rc;
    }
    ck_log_info("azure credentials: %s, account %s", c->source, c->account);
    *out = c;
    return CK_OK;
}

void ck_azure_creds_free(struct ck_azure_creds *c)
{
    if (!c)
        return;
    if (c->cache_init)
        ck_oauth_cache_destroy(&c->cache);
    explicit_bzero(c, sizeof(*c));
    free(c);
}

enum ck_azure_auth ck_azure_auth_kind(const struct ck_azure_creds *c)
{
    return c->kind;
}

const char *ck_azure_source(const struct ck_azure_creds *c)
{
    return c->source;
}

const char *ck_azure_account(const struct ck_azure_creds *c)
{
    return c->account;
}

const char *ck_azure_endpoint(const struct ck_azure_creds *c)
{
    return c->endpoint;
}

const char *ck_azure_sas(const struct ck_azure_creds *c)
{
    return c->sas;
}

ck_rc ck_azure_sign(const struct ck_azure_creds *c, struct ck_azure_sign_req *r, char *out,
                    size_t outlen, struct ck_err *err)
{
    r->account = c->account;
    return ck_azure_sharedkey(r, c->key, c->keylen, out, outlen, err);
}

ck_rc ck_azure_token(struct ck_azure_creds *c, char *out, size_t outlen, struct ck_err *err)
{
    ck_rc rc = ck_oauth_cache_get(&c->cache, out, outlen, err);
    if (rc)
        ck_err_prefix(err, "azure credentials (%s)", c->source);
    return rc;
}
