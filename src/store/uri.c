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
        put_clean(out, outsz, &pos, uri, strlen(uri));
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
        if (atoi(h + host_end + 1) > 65535)
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
    if (sl == 0)
        return parse_path(uri, disp, out, err);
    if (sl == 4 && strncasecmp(uri, "file", 4) == 0)
        return parse_file_uri(uri, disp, out, err);
    if ((sl == 4 && strncasecmp(uri, "http", 4) == 0) ||
        (sl == 5 && strncasecmp(uri, "https", 5) == 0))
        return parse_http_uri(uri, sl, disp, out, err);
    if (sl == 2 && strncasecmp(uri, "s3", 2) == 0)
        return parse_s3_uri(uri, disp, out, err);
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
    free(u->display);
    memset(u, 0, sizeof(*u));
}
