/*
 * s3_config.c - S3 settings, endpoints, addressing style and request URLs; see s3_config.h.
 *
 * Everything here is a pure function of its arguments, so the URL building is tested
 * without a server. The endpoint override and the style come from the environment because
 * that is where AWS's SDKs and Flyte put them.
 */
#include "store/s3/s3_config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/part_upload.h"
#include "util/size.h"
#include "util/uri_encode.h"

static ck_rc read_style(char *(*getenv_fn)(const char *), struct ck_s3_settings *out,
                        struct ck_err *err)
{
    static const char *const vars[] = {"FLYTE_AWS_S3_ADDRESSING_STYLE", "AWS_S3_ADDRESSING_STYLE",
                                       NULL};
    out->style = CK_S3_STYLE_AUTO;
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv_fn(vars[i]);
        if (!v || !v[0])
            continue;
        if (strcasecmp(v, "path") == 0)
            out->style = CK_S3_STYLE_PATH;
        else if (strcasecmp(v, "virtual") == 0)
            out->style = CK_S3_STYLE_VIRTUAL;
        else if (strcasecmp(v, "auto") != 0)
            return ck_fail(err, CK_EINVAL, "%s='%.32s': expected path, virtual or auto", vars[i],
                           v);
        return CK_OK;
    }
    return CK_OK;
}

static ck_rc read_tuning(char *(*getenv_fn)(const char *), struct ck_s3_settings *out,
                         struct ck_err *err)
{
    const char *ps = getenv_fn("CKPTFS_S3_PART_SIZE");
    out->part_size = CK_S3_DEFAULT_PART;
    if (ps && ps[0] &&
        (!ck_parse_size(ps, &out->part_size) || out->part_size < CK_S3_MIN_PART ||
         out->part_size > CK_S3_MAX_PART))
        return ck_fail(err, CK_EINVAL, "CKPTFS_S3_PART_SIZE='%.32s': expected 5M .. 5G", ps);
    const char *pc = getenv_fn("CKPTFS_S3_CONCURRENCY");
    out->parallel = CK_S3_DEFAULT_PAR;
    if (pc && pc[0]) {
        char *end;
        long v = strtol(pc, &end, 10);
        if (*end != '\0' || v < 1 || v > (long)CK_S3_MAX_PAR)
            return ck_fail(err, CK_EINVAL, "CKPTFS_S3_CONCURRENCY='%.32s': expected 1 .. %u", pc,
                           CK_S3_MAX_PAR);
        out->parallel = (unsigned)v;
    }
    return CK_OK;
}

ck_rc ck_s3_settings_from_env(char *(*getenv_fn)(const char *), struct ck_s3_settings *out,
                              struct ck_err *err)
{
    static const char *const vars[] = {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL",
                                       "FLYTE_AWS_ENDPOINT", NULL};
    memset(out, 0, sizeof(*out));
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv_fn(vars[i]);
        if (!v || !v[0])
            continue;
        if (strlen(v) >= sizeof(out->endpoint_url))
            return ck_fail(err, CK_EINVAL, "%s: longer than %zu bytes", vars[i],
                           sizeof(out->endpoint_url) - 1);
        snprintf(out->endpoint_url, sizeof(out->endpoint_url), "%s", v);
        out->endpoint_var = vars[i];
        break;
    }
    ck_rc rc = read_style(getenv_fn, out, err);
    return rc ? rc : read_tuning(getenv_fn, out, err);
}

static bool is_ipv4(const char *h, size_t n)
{
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '.')
            dots++;
        else if (!isdigit((unsigned char)h[i]))
            return false;
    }
    return dots == 3;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

/* Fills host flags from "host[:port]". */
static void classify_host(struct ck_s3_endpoint *ep)
{
    const char *h = ep->host;
    size_t n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":");
    ep->ip = h[0] == '[' || is_ipv4(h, n);
    ep->aws = !ep->ip && ends_with(h, n, ".amazonaws.com");
}

static ck_rc parse_endpoint(const char *url, const char *var, struct ck_s3_endpoint *ep,
                            struct ck_err *err)
{
    const char *rest;
    if (strncasecmp(url, "https://", 8) == 0) {
        ep->https = true;
        rest = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else {
        return ck_fail(err, CK_EINVAL, "%s: endpoint '%.64s' is not an http(s):// URL", var, url);
    }
    size_t hlen = strcspn(rest, "/?#");
    if (hlen == 0 || hlen >= sizeof(ep->host) || memchr(rest, '@', hlen))
        return ck_fail(err, CK_EINVAL, "%s: endpoint has no usable host (or carries userinfo)",
                       var);
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)rest[i];
        if (c <= 0x20 || c >= 0x7f)
            return ck_fail(err, CK_EINVAL, "%s: endpoint host has odd characters", var);
        ep->host[i] = (char)tolower(c);
    }
    ep->host[hlen] = '\0';
    const char *path = rest + hlen;
    if (strpbrk(path, "?# "))
        return ck_fail(err, CK_EINVAL, "%s: endpoint '%.64s' has a query or fragment", var, url);
    size_t plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    if (plen >= sizeof(ep->base_path))
        return ck_fail(err, CK_EINVAL, "%s: endpoint path too long", var);
    memcpy(ep->base_path, path, plen);
    ep->base_path[plen] = '\0';
    classify_host(ep);
    return CK_OK;
}

ck_rc ck_s3_endpoint_resolve(const struct ck_s3_settings *set, const char *region,
                             struct ck_s3_endpoint *out, struct ck_err *err)
{
    memset(out, 0, sizeof(*out));
    if (set->endpoint_url[0])
        return parse_endpoint(set->endpoint_url, set->endpoint_var ? set->endpoint_var : "endpoint",
                              out, err);
    for (const char *p = region; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-')
            return ck_fail(err, CK_EINVAL, "region '%.32s': not a region name", region);
    }
    char url[200];
    if (snprintf(url, sizeof(url), "https://s3.%s.amazonaws.com", region) >= (int)sizeof(url))
        return ck_fail(err, CK_EINVAL, "region '%.32s...': too long", region);
    return parse_endpoint(url, "AWS endpoint", out, err);
}

bool ck_s3_bucket_virtual_ok(const char *b, bool https)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]))
        return false;
    if (is_ipv4(b, n) || strstr(b, "..") || strstr(b, ".-") || strstr(b, "-."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        bool ok = islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-' || c == '.';
        if (!ok || (https && c == '.')) /* a dot breaks the wildcard TLS certificate */
            return false;
    }
    return true;
}

ck_rc ck_s3_use_virtual(enum ck_s3_style style, const struct ck_s3_endpoint *ep, const char *bucket,
                        bool *virtual_host, struct ck_err *err)
{
    bool ok = ck_s3_bucket_virtual_ok(bucket, ep->https) && !ep->ip;
    switch (style) {
    case CK_S3_STYLE_PATH:
        *virtual_host = false;
        return CK_OK;
    case CK_S3_STYLE_VIRTUAL:
        if (!ok)
            return ck_fail(err, CK_EINVAL,
                           "bucket '%.64s': virtual-host addressing needs a DNS-compatible "
                           "name and a host name endpoint",
                           bucket);
        *virtual_host = true;
        return CK_OK;
    case CK_S3_STYLE_AUTO:
        break;
    }
    *virtual_host = ok && ep->aws;
    return CK_OK;
}

/* Whether snprintf's result n fitted a buffer of size sz. */
static bool fit(int n, size_t sz)
{
    return n >= 0 && (size_t)n < sz;
}

ck_rc ck_s3_target_build(const struct ck_s3_endpoint *ep, bool virtual_host, const char *bucket,
                         const char *key, const char *query, struct ck_s3_target *t,
                         struct ck_err *err)
{
    char ekey[CK_S3_PATH_MAX], ebucket[800];
    if (ck_uri_encode(key, 1, ekey, sizeof(ekey)) != CK_OK ||
        ck_uri_encode(bucket, 0, ebucket, sizeof(ebucket)) != CK_OK)
        return ck_fail(err, CK_EINVAL, "s3://%.64s/%.64s: name too long", bucket, key);
    bool fits;
    if (virtual_host) {
        fits =
            fit(snprintf(t->host, sizeof(t->host), "%s.%s", bucket, ep->host), sizeof(t->host)) &&
            fit(snprintf(t->path, sizeof(t->path), "%s/%s", ep->base_path, ekey), sizeof(t->path));
    } else {
        fits = fit(snprintf(t->host, sizeof(t->host), "%s", ep->host), sizeof(t->host)) &&
               fit(snprintf(t->path, sizeof(t->path), "%s/%s%s%s", ep->base_path, ebucket,
                            key[0] ? "/" : "", ekey),
                   sizeof(t->path));
    }
    fits =
        fits && fit(snprintf(t->url, sizeof(t->url), "%s://%s%s%s%s", ep->https ? "https" : "http",
                             t->host, t->path, query[0] ? "?" : "", query),
                    sizeof(t->url));
    if (!fits)
        return ck_fail(err, CK_EINVAL, "s3://%.64s/%.64s: URL too long", bucket, key);
    return CK_OK;
}

uint64_t ck_s3_part_size(uint64_t base, unsigned n)
{
    return ck_part_size(base, CK_S3_MAX_PART, 0, n); /* the rule s3_upload.c's uploads follow */
}
