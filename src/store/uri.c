/*
 * uri.c - URI classification and display forms; see uri.h.
 *
 * A string is a URI only when it starts with "scheme://"; anything else ("/a", "a/b",
 * "c:d") is a plain local path. The checks are explicit because URIs come from the
 * command line and from Flyte's rendering of templates, and a typo must give a message
 * that names the URI rather than an odd error from deep inside a backend.
 */
#include "store/uri.h"

#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define URI_MAX 8192

/* Length of "scheme" if s starts with "scheme://", else 0. */
static size_t scheme_len(const char *s)
{
    if (!isalpha((unsigned char)s[0]))
        return 0;
    size_t n = 1;
    while (isalnum((unsigned char)s[n]) || s[n] == '+' || s[n] == '-' || s[n] == '.')
        n++;
    return strncmp(s + n, "://", 3) == 0 ? n : 0;
}

static bool has_control_or_space(const char *s, bool space_ok)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || (!space_ok && *p == ' '))
            return true;
    }
    return false;
}

/* Appends s[0..n) to out (capacity outsz, used *pos), replacing control bytes. */
static void put_clean(char *out, size_t outsz, size_t *pos, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *pos + 1 < outsz; i++) {
        unsigned char c = (unsigned char)s[i];
        out[(*pos)++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[*pos] = '\0';
}

void ck_uri_display(const char *uri, char *out, size_t outsz)
{
    size_t pos = 0;
    if (outsz == 0)
        return;
    out[0] = '\0';
    size_t sl = scheme_len(uri);
    if (sl == 0) {
        /* a path; or a mistyped URI ("https'://..."), whose query may still be a secret */
        size_t len = strstr(uri, "://") ? strcspn(uri, "?#") : strlen(uri);
        put_clean(out, outsz, &pos, uri, len);
        return;
    }
    put_clean(out, outsz, &pos, uri, sl + 3);
    const char *auth = uri + sl + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *host = auth;
    for (size_t i = 0; i < alen; i++) {
        if (auth[i] == '@')
            host = auth + i + 1; /* drop userinfo: it may hold a password */
    }
    put_clean(out, outsz, &pos, host, (size_t)(auth + alen - host));
    const char *path = auth + alen;
    put_clean(out, outsz, &pos, path, strcspn(path, "?#"));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Percent-decodes s into a new string; NULL on a bad escape or an encoded NUL. */
static char *percent_decode(const char *s)
{
    char *out = malloc(strlen(s) + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] != '%') {
            out[j++] = s[i];
            continue;
        }
        int hi = hexval(s[i + 1]), lo = hi < 0 ? -1 : hexval(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[j] = '\0';
    return out;
}

static ck_rc parse_file_uri(const char *uri, const char *disp, struct ck_uri *out,
                            struct ck_err *err)
{
    const char *auth = uri + strlen("file://");
    size_t alen = strcspn(auth, "/");
    if (alen != 0 && !(alen == 9 && strncasecmp(auth, "localhost", 9) == 0))
        return ck_fail(err, CK_EINVAL,
                       "file URI '%s': only local files are supported "
                       "(file:///path or file://localhost/path)",
                       disp);
    const char *path = auth + alen;
    if (path[0] != '/' || path[1] == '\0')
        return ck_fail(err, CK_EINVAL, "file URI '%s': no path", disp);
    if (strpbrk(path, "?#"))
        return ck_fail(err, CK_EINVAL, "file URI '%s': query or fragment not allowed", disp);
    out->path = percent_decode(path);
    if (!out->path)
        return ck_fail(err, CK_EINVAL, "file URI '%s': bad percent escape", disp);
    if (strlen(out->path) >= PATH_MAX)
        return ck_fail(err, CK_EINVAL, "file URI '%s': path too long", disp);
    out->kind = CK_URI_FILE;
    return CK_OK;
}

/* Checks "host[:port]" (userinfo already removed): a host, and a numeric port if any. */
static bool host_port_ok(const char *h, size_t n)
{
    size_t host_end = n;
    if (n > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', n);
        if (!close || close == h + 1)
            return false;
        host_end = (size_t)(close - h) + 1;
        if (host_end < n && h[host_end] != ':')
            return false;
    } else {
        const char *colon = memchr(h, ':', n);
        if (colon)
            host_end = (size_t)(colon - h);
    }
    if (host_end == 0)
        return false;
    if (host_end < n) {
        size_t digits = n - host_end - 1;
        if (digits == 0 || digits > 5)
            return false;
        for (size_t i = host_end + 1; i < n; i++) {
            if (!isdigit((unsigned char)h[i]))
                return false;
        }
        if (strtol(h + host_end + 1, NULL, 10) > 65535) /* at most 5 digits: checked */
            return false;
    }
    return true;
}

static ck_rc parse_http_uri(const char *uri, size_t sl, const char *disp, struct ck_uri *out,
                            struct ck_err *err)
{
    if (has_control_or_space(uri, false))
        return ck_fail(err, CK_EINVAL, "URL '%s': contains spaces or control characters", disp);
    const char *auth = uri + sl + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++) {
        if (auth[i] == '@')
            at = auth + i;
    }
    const char *host = at ? at + 1 : auth;
    if (!host_port_ok(host, (size_t)(auth + alen - host)))
        return ck_fail(err, CK_EINVAL, "URL '%s': missing or malformed host", disp);
    out->url = strdup(uri);
    if (!out->url)
        return ck_fail(err, CK_ENOMEM, "URL '%s': out of memory", disp);
    out->kind = CK_URI_HTTP;
    return CK_OK;
}

/* A bucket name as S3 and its compatibles accept it (legacy names included: upper case and
 * underscores); stricter DNS rules apply only to virtual-host addressing (s3_config.c). */
static bool bucket_ok(const char *b, size_t n)
{
    if (n < 1 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)b[i]) && b[i] != '.' && b[i] != '-' && b[i] != '_')
            return false;
    }
    return true;
}

/* s3://bucket/key: the key is taken literally (as the AWS CLI does), up to 1024 bytes. */
static ck_rc parse_s3_uri(const char *uri, const char *disp, struct ck_uri *out, struct ck_err *err)
{
    const char *b = uri + strlen("s3://");
    size_t blen = strcspn(b, "/");
    if (!bucket_ok(b, blen))
        return ck_fail(err, CK_EINVAL, "S3 URI '%s': missing or malformed bucket name", disp);
    const char *key = b + blen;
    if (key[0] != '/' || key[1] == '\0')
        return ck_fail(err, CK_EINVAL, "S3 URI '%s': no object key (s3://bucket/key)", disp);
    key++;
    if (strlen(key) > 1024)
        return ck_fail(err, CK_EINVAL, "S3 URI '%s': key longer than 1024 bytes", disp);
    if (strpbrk(key, "?#"))
        return ck_fail(err, CK_EINVAL, "S3 URI '%s': '?' and '#' are not supported in keys", disp);
    out->bucket = strndup(b, blen);
    out->key = strdup(key);
    if (!out->bucket || !out->key)
        return ck_fail(err, CK_ENOMEM, "S3 URI '%s': out of memory", disp);
    out->kind = CK_URI_S3;
    return CK_OK;
}

/* SCHEME://bucket/key for s3 and gs: the key is taken literally, up to 1024 bytes. */
static ck_rc parse_bucket_key(const char *rest, const char *what, const char *disp,
                              struct ck_uri *out, struct ck_err *err)
{
    size_t blen = strcspn(rest, "/");
    if (!bucket_ok(rest, blen))
        return ck_fail(err, CK_EINVAL, "%s URI '%s': missing or malformed bucket name", what, disp);
    const char *key = rest + blen;
    if (key[0] != '/' || key[1] == '\0')
        return ck_fail(err, CK_EINVAL, "%s URI '%s': no object key", what, disp);
    key++;
    if (strlen(key) > 1024)
        return ck_fail(err, CK_EINVAL, "%s URI '%s': key longer than 1024 bytes", what, disp);
    if (strpbrk(key, "?#"))
        return ck_fail(err, CK_EINVAL, "%s URI '%s': '?' and '#' are not supported in keys", what,
                       disp);
    out->bucket = strndup(rest, blen);
    out->key = strdup(key);
    if (!out->bucket || !out->key)
        return ck_fail(err, CK_ENOMEM, "%s URI '%s': out of memory", what, disp);
    return CK_OK;
}

/* Azure names: account 3-24 lower case letters and digits; container 3-63 of lower case,
 * digits and '-' (Azurite's "devstoreaccount1" fits the account rule). */
static bool azure_name_ok(const char *s, size_t n, size_t max, bool dash)
{
    if (n < 3 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
            !(dash && s[i] == '-'))
            return false;
    }
    return true;
}

/* container + "/" + blob (taken literally, up to 1024 bytes) from rest. */
static ck_rc azure_container_blob(const char *rest, const char *disp, struct ck_uri *out,
                                  struct ck_err *err)
{
    size_t clen = strcspn(rest, "/?#");
    if (!azure_name_ok(rest, clen, 63, true))
        return ck_fail(err, CK_EINVAL, "Azure URI '%s': missing or malformed container name", disp);
    const char *blob = rest + clen;
    if (blob[0] != '/' || blob[1] == '\0' || blob[1] == '?' || blob[1] == '#')
        return ck_fail(err, CK_EINVAL, "Azure URI '%s': no blob name", disp);
    blob++;
    size_t blen = strcspn(blob, "?#");
    if (blen > 1024)
        return ck_fail(err, CK_EINVAL, "Azure URI '%s': blob name longer than 1024 bytes", disp);
    out->bucket = strndup(rest, clen);
    out->key = strndup(blob, blen);
    if (!out->bucket || !out->key)
        return ck_fail(err, CK_ENOMEM, "Azure URI '%s': out of memory", disp);
    out->kind = CK_URI_AZURE;
    return CK_OK;
}

static ck_rc set_account(struct ck_uri *out, const char *a, size_t n, const char *disp,
                         struct ck_err *err)
{
    if (!azure_name_ok(a, n, 24, false))
        return ck_fail(err, CK_EINVAL, "Azure URI '%s': malformed storage account name", disp);
    out->account = strndup(a, n);
    return out->account ? CK_OK : ck_fail(err, CK_ENOMEM, "Azure URI '%s': out of memory", disp);
}

/* az://container/blob */
static ck_rc parse_az_uri(const char *rest, const char *disp, struct ck_uri *out,
                          struct ck_err *err)
{
    if (strpbrk(rest, "?#"))
        return ck_fail(err, CK_EINVAL, "Azure URI '%s': '?' and '#' are not supported", disp);
    return azure_container_blob(rest, disp, out, err);
}

/* abfs[s]://container@account.dfs.core.windows.net/blob (blob.core.windows.net too). */
static ck_rc parse_abfs_uri(const char *rest, const char *disp, struct ck_uri *out,
                            struct ck_err *err)
{
    if (strpbrk(rest, "?#"))
        return ck_fail(err, CK_EINVAL, "Azure URI '%s': '?' and '#' are not supported", disp);
    const char *at = strchr(rest, '@');
    size_t alen = strcspn(rest, "/");
    if (!at || at > rest + alen)
        return ck_fail(
            err, CK_EINVAL,
            "Azure URI '%s': expected abfs://container@account.dfs.core.windows.net/path", disp);
    const char *host = at + 1;
    size_t hlen = (size_t)(rest + alen - host), acc = strcspn(host, ".");
    const char *suffix = host + acc;
    size_t slen = hlen - acc;
    static const char dfs[] = ".dfs.core.windows.net", blob[] = ".blob.core.windows.net";
    if (!((slen == sizeof(dfs) - 1 && strncasecmp(suffix, dfs, slen) == 0) ||
          (slen == sizeof(blob) - 1 && strncasecmp(suffix, blob, slen) == 0)))
        return ck_fail(err, CK_EINVAL,
                       "Azure URI '%s': host must be ACCOUNT.dfs.core.windows.net or "
                       "ACCOUNT.blob.core.windows.net",
                       disp);
    ck_rc rc = set_account(out, host, acc, disp, err);
    if (rc)
        return rc;
    /* container@host/blob -> "container" + "/blob" */
    size_t clen = (size_t)(at - rest);
    size_t tail = strlen(rest + alen);
    char *joined = malloc(clen + tail + 1);
    if (!joined)
        return ck_fail(err, CK_ENOMEM, "Azure URI '%s': out of memory", disp);
    memcpy(joined, rest, clen);
    memcpy(joined + clen, rest + alen, tail + 1);
    rc = azure_container_blob(joined, disp, out, err);
    free(joined);
    return rc;
}

/* https://account.blob.core.windows.net/container/blob[?sas]: true if uri is one. */
static bool is_blob_url(const char *uri)
{
    if (strncasecmp(uri, "https://", 8) != 0)
        return false;
    const char *host = uri + 8;
    size_t hlen = strcspn(host, "/?#");
    static const char sfx[] = ".blob.core.windows.net";
    return hlen > sizeof(sfx) - 1 && memchr(host, '@', hlen) == NULL &&
           strncasecmp(host + hlen - (sizeof(sfx) - 1), sfx, sizeof(sfx) - 1) == 0;
}

static ck_rc parse_blob_url(const char *uri, const char *disp, struct ck_uri *out,
                            struct ck_err *err)
{
    const char *host = uri + 8;
    size_t acc = strcspn(host, ".");
    ck_rc rc = set_account(out, host, acc, disp, err);
    const char *path = host + strcspn(host, "/?#");
    if (!rc && path[0] != '/')
        rc = ck_fail(err, CK_EINVAL, "Azure URL '%s': no container", disp);
    if (!rc)
        rc = azure_container_blob(path + 1, disp, out, err);
    const char *q = strchr(uri, '?');
    if (!rc && q && q[1]) {
        out->sas = strndup(q + 1, strcspn(q + 1, "#"));
        if (!out->sas)
            rc = ck_fail(err, CK_ENOMEM, "Azure URL '%s': out of memory", disp);
    }
    return rc;
}

static ck_rc parse_path(const char *uri, const char *disp, struct ck_uri *out, struct ck_err *err)
{
    if (strlen(uri) >= PATH_MAX)
        return ck_fail(err, CK_EINVAL, "path '%.64s...': too long", disp);
    out->path = strdup(uri);
    if (!out->path)
        return ck_fail(err, CK_ENOMEM, "path '%s': out of memory", disp);
    out->kind = CK_URI_FILE;
    return CK_OK;
}

static ck_rc parse_checked(const char *uri, const char *disp, struct ck_uri *out,
                           struct ck_err *err)
{
    if (uri[0] == '\0')
        return ck_fail(err, CK_EINVAL, "empty URI");
    if (strlen(uri) > URI_MAX)
        return ck_fail(err, CK_EINVAL, "URI '%.64s...': longer than %d bytes", disp, URI_MAX);
    if (has_control_or_space(uri, true))
        return ck_fail(err, CK_EINVAL, "URI '%s': contains control characters", disp);
    size_t sl = scheme_len(uri);
    const char *sep = strstr(uri, "://");
    if (sl == 0 && sep && !memchr(uri, '/', (size_t)(sep - uri)))
        /* "https'://h/k", "1http://h/k": a mistyped scheme, not a local folder that would
         * silently take the checkpoint (and log a presigned query as a path) */
        return ck_fail(err, CK_EINVAL, "URI '%s': '%.*s' is not a valid scheme", disp,
                       (int)(sep - uri < 32 ? sep - uri : 32), uri);
    if (sl == 0)
        return parse_path(uri, disp, out, err);
    if (sl == 4 && strncasecmp(uri, "file", 4) == 0)
        return parse_file_uri(uri, disp, out, err);
    if (is_blob_url(uri))
        return parse_blob_url(uri, disp, out, err);
    if ((sl == 4 && strncasecmp(uri, "http", 4) == 0) ||
        (sl == 5 && strncasecmp(uri, "https", 5) == 0))
        return parse_http_uri(uri, sl, disp, out, err);
    if (sl == 2 && strncasecmp(uri, "s3", 2) == 0)
        return parse_s3_uri(uri, disp, out, err);
    if (sl == 2 && strncasecmp(uri, "gs", 2) == 0) {
        out->kind = CK_URI_GCS;
        return parse_bucket_key(uri + 5, "GCS", disp, out, err);
    }
    if (sl == 2 && strncasecmp(uri, "az", 2) == 0)
        return parse_az_uri(uri + 5, disp, out, err);
    if ((sl == 4 && strncasecmp(uri, "abfs", 4) == 0) ||
        (sl == 5 && strncasecmp(uri, "abfss", 5) == 0))
        return parse_abfs_uri(uri + sl + 3, disp, out, err);
    return ck_fail(err, CK_EUNSUPPORTED, "URI '%s': scheme '%.*s' is not supported yet", disp,
                   (int)sl, uri);
}

ck_rc ck_uri_parse(const char *uri, struct ck_uri *out, struct ck_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!uri)
        return ck_fail(err, CK_EINVAL, "no URI given");
    char disp[256];
    ck_uri_display(uri, disp, sizeof(disp));
    ck_rc rc = parse_checked(uri, disp, out, err);
    if (rc == CK_OK) {
        size_t need = strlen(uri) + 1;
        out->display = malloc(need);
        if (!out->display)
            rc = ck_fail(err, CK_ENOMEM, "URI '%s': out of memory", disp);
        else if (out->kind == CK_URI_AZURE && strncasecmp(uri, "abfs", 4) == 0)
            memcpy(out->display, uri, need); /* container@account is no userinfo; no query */
        else
            ck_uri_display(uri, out->display, need);
    }
    if (rc != CK_OK)
        ck_uri_free(out);
    return rc;
}

void ck_uri_free(struct ck_uri *u)
{
    free(u->path);
    free(u->url);
    free(u->bucket);
    free(u->key);
    free(u->account);
    if (u->sas)
        explicit_bzero(u->sas, strlen(u->sas));
    free(u->sas);
    free(u->display);
    memset(u, 0, sizeof(*u));
}
