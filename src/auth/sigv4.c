/*
 * sigv4.c - AWS Signature Version 4; see sigv4.h.
 *
 * Design: the canonical request is built in one capped buffer (method, path as given,
 * canonical query, canonical headers, signed header list, payload hash), hashed, wrapped
 * into the string to sign and signed with the key derived by the HMAC chain. All hashing
 * is OpenSSL's (EVP SHA-256, HMAC); the derived keys are wiped after use. Inputs are the
 * caller's, not the network's, but they are still checked: header names must be tokens,
 * values must not carry CR/LF, the query's percent escapes must be well formed.
 */
#include "auth/sigv4.h"

#include "util/uri_encode.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/buf.h"
#include "util/hex.h"

#define CANON_MAX     (256u * 1024) /* canonical request cap */
#define QUERY_MAX_KV  256           /* query parameters */
#define HDR_VALUE_MAX 8192          /* one header value */

void ck_sha256_hex(const void *data, size_t len, char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        hex[0] = '\0'; /* cannot happen with a working libcrypto; callers then fail to sign */
        return;
    }
    ck_hex_lower(md, 32, hex);
}

void ck_sigv4_amz_date(double t, char out[17])
{
    time_t secs = (time_t)floor(t);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- the canonical query ------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes in[0..n) into b ('+' stays '+'); CK_EINVAL on a broken escape. */
static ck_rc decode_into(struct ck_buf *b, const char *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(in[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return CK_EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (ck_buf_append(b, &c, 1))
            return CK_ENOMEM;
    }
    return CK_OK;
}

struct qpair {
    char *text; /* "name=value", both encoded; owned */
    size_t name_len;
};

static int qpair_cmp(const void *a, const void *b)
{
    const struct qpair *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->text, y->text, n);
    if (c == 0 && x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    if (c)
        return c;
    return strcmp(x->text + x->name_len + 1, y->text + y->name_len + 1);
}

/* Re-encodes one "name[=value]" item of the query into p. */
static ck_rc canon_pair(const char *item, size_t len, struct qpair *p)
{
    const char *eq = memchr(item, '=', len);
    size_t nlen = eq ? (size_t)(eq - item) : len;
    struct ck_buf raw, out;
    ck_buf_init(&raw, CANON_MAX);
    ck_buf_init(&out, CANON_MAX);
    ck_rc rc = decode_into(&raw, item, nlen);
    if (!rc)
        rc = ck_uri_encode_buf(&out, raw.data ? raw.data : "", raw.len, 0);
    p->name_len = out.len;
    if (!rc)
        rc = ck_buf_append(&out, "=", 1);
    ck_buf_reset(&raw);
    if (!rc && eq)
        rc = decode_into(&raw, eq + 1, len - nlen - 1);
    if (!rc)
        rc = ck_uri_encode_buf(&out, raw.data ? raw.data : "", raw.len, 0);
    ck_buf_free(&raw);
    p->text = rc ? NULL : ck_buf_take(&out);
    ck_buf_free(&out);
    return rc ? rc : (p->text ? CK_OK : CK_ENOMEM);
}

static void free_pairs(struct qpair *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].text);
}

/* Appends the canonical form of query to b: pairs split at '&', decoded and re-encoded,
 * sorted by name then value. Empty items ("a&&b") are dropped. */
static ck_rc canon_query(struct ck_buf *b, const char *query, struct ck_err *err)
{
    struct qpair pairs[QUERY_MAX_KV];
    size_t n = 0;
    ck_rc rc = CK_OK;
    for (const char *p = query; *p && !rc;) {
        size_t len = strcspn(p, "&");
        if (len && n == QUERY_MAX_KV)
            rc = ck_fail(err, CK_EINVAL, "sigv4: query has more than %d parameters", QUERY_MAX_KV);
        else if (len && (rc = canon_pair(p, len, &pairs[n])) == CK_OK)
            n++;
        else if (rc)
            rc = ck_fail(err, rc, "sigv4: query parameter %zu: %s", n + 1,
                         rc == CK_EINVAL ? "malformed percent escape" : "too long");
        p += len + (p[len] == '&');
    }
    if (!rc)
        qsort(pairs, n, sizeof(pairs[0]), qpair_cmp);
    for (size_t i = 0; i < n && !rc; i++)
        rc = ck_buf_printf(b, "%s%s", i ? "&" : "", pairs[i].text)
                 ? ck_fail(err, CK_ENOMEM, "sigv4: canonical request too long")
                 : CK_OK;
    free_pairs(pairs, n);
    return rc;
}

/* ---- canonical headers -------------------------------------------------------------- */

struct chdr {
    char name[128];  /* lower case */
    const char *val; /* as given; trimmed and folded when written */
    size_t order;    /* position given, to keep repeated names in order */
};

static int chdr_cmp(const void *a, const void *b)
{
    const struct chdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->order < y->order ? -1 : x->order > y->order);
}

static bool token_char(unsigned char c)
{
    return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Appends value trimmed, with runs of spaces/tabs folded into one space. */
static ck_rc fold_value(struct ck_buf *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    bool pending_space = false;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            pending_space = true;
            continue;
        }
        if (pending_space && ck_buf_append(b, " ", 1))
            return CK_ENOMEM;
        pending_space = false;
        if (ck_buf_append(b, v, 1))
            return CK_ENOMEM;
    }
    return CK_OK;
}

static ck_rc check_header(const struct ck_sigv4_header *h, struct chdr *out, size_t order,
                          struct ck_err *err)
{
    size_t n = h->name ? strlen(h->name) : 0;
    if (n == 0 || n >= sizeof(out->name))
        return ck_fail(err, CK_EINVAL, "sigv4: header %zu: empty or overlong name", order + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h->name[i];
        if (!token_char(c))
            return ck_fail(err, CK_EINVAL, "sigv4: header '%s': invalid name", h->name);
        out->name[i] = (char)tolower(c);
    }
    out->name[n] = '\0';
    if (!h->value || strlen(h->value) > HDR_VALUE_MAX || strpbrk(h->value, "\r\n"))
        return ck_fail(err, CK_EINVAL, "sigv4: header '%s': missing, overlong or multi-line value",
                       out->name);
    out->val = h->value;
    out->order = order;
    return CK_OK;
}

static const struct chdr *find_hdr(const struct chdr *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* Collects, checks and sorts the headers; adds x-amz-date from amz_date if it is missing. */
static ck_rc collect_headers(const struct ck_sigv4_request *req, const struct ck_aws_creds *creds,
                             struct chdr *v, size_t *nv, struct ck_err *err)
{
    if (req->nheaders >= CK_SIGV4_MAX_HEADERS)
        return ck_fail(err, CK_EINVAL, "sigv4: more than %d headers", CK_SIGV4_MAX_HEADERS - 1);
    size_t n = 0;
    for (; n < req->nheaders; n++) {
        ck_rc rc = check_header(&req->headers[n], &v[n], n, err);
        if (rc)
            return rc;
    }
    const struct chdr *d = find_hdr(v, n, "x-amz-date");
    if (d && strcmp(d->val, req->amz_date) != 0)
        return ck_fail(err, CK_EINVAL, "sigv4: x-amz-date header differs from the signing date");
    if (!d) {
        snprintf(v[n].name, sizeof(v[n].name), "x-amz-date");
        v[n].val = req->amz_date;
        v[n].order = n;
        n++;
    }
    if (!find_hdr(v, n, "host"))
        return ck_fail(err, CK_EINVAL, "sigv4: no host header");
    if (creds->session_token[0] && !find_hdr(v, n, "x-amz-security-token"))
        return ck_fail(err, CK_EINVAL,
                       "sigv4: credentials carry a session token but no x-amz-security-token "
                       "header is sent");
    qsort(v, n, sizeof(v[0]), chdr_cmp);
    *nv = n;
    return CK_OK;
}

/* Appends "name:v1,v2\n" lines, then "\n" + the signed header list to b; the list alone
 * also goes to signed_out. */
static ck_rc write_headers(struct ck_buf *b, const struct chdr *v, size_t n, struct ck_buf *names)
{
    for (size_t i = 0; i < n; i++) {
        bool same_as_prev = i > 0 && strcmp(v[i].name, v[i - 1].name) == 0;
        bool same_as_next = i + 1 < n && strcmp(v[i].name, v[i + 1].name) == 0;
        ck_rc rc = same_as_prev ? ck_buf_append(b, ",", 1) : ck_buf_printf(b, "%s:", v[i].name);
        if (!rc)
            rc = fold_value(b, v[i].val);
        if (!rc && !same_as_next)
            rc = ck_buf_append(b, "\n", 1);
        if (!rc && !same_as_prev)
            rc = ck_buf_printf(names, "%s%s", names->len ? ";" : "", v[i].name);
        if (rc)
            return rc;
    }
    return CK_OK;
}

/* ---- signing ------------------------------------------------------------------------ */

static bool hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int len = 0;
    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len) &&
           len == 32;
}

/* signature = HMAC(kSigning, string_to_sign) with the documented key chain. */
static bool signature_hex(const char *secret, const char *date, const char *region,
                          const char *service, const char *to_sign, char hex[65])
{
    char k0[4 + sizeof(((struct ck_aws_creds *)0)->secret_key)];
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    snprintf(k0, sizeof(k0), "AWS4%s", secret);
    bool ok = hmac(k0, strlen(k0), date, k1) && hmac(k1, 32, region, k2) &&
              hmac(k2, 32, service, k3) && hmac(k3, 32, "aws4_request", k4) &&
              hmac(k4, 32, to_sign, sig);
    if (ok)
        ck_hex_lower(sig, 32, hex);
    OPENSSL_cleanse(k0, sizeof(k0));
    OPENSSL_cleanse(k1, 32);
    OPENSSL_cleanse(k2, 32);
    OPENSSL_cleanse(k3, 32);
    OPENSSL_cleanse(k4, 32);
    return ok;
}

static bool scope_part_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static ck_rc check_request(const struct ck_sigv4_request *req, const struct ck_aws_creds *creds,
                           struct ck_err *err)
{
    if (!req->method || !req->method[0] || strpbrk(req->method, " \r\n"))
        return ck_fail(err, CK_EINVAL, "sigv4: bad method");
    if (!req->path || req->path[0] != '/' || strpbrk(req->path, " ?#\r\n"))
        return ck_fail(err, CK_EINVAL, "sigv4: path must be encoded and start with '/'");
    if (!req->payload_hash || !req->payload_hash[0] || strpbrk(req->payload_hash, "\r\n"))
        return ck_fail(err, CK_EINVAL, "sigv4: no payload hash");
    if (!req->amz_date || strlen(req->amz_date) != 16 || req->amz_date[8] != 'T' ||
        req->amz_date[15] != 'Z')
        return ck_fail(err, CK_EINVAL, "sigv4: amz_date must be YYYYMMDDTHHMMSSZ");
    if (!scope_part_ok(req->region, 63) || !scope_part_ok(req->service, 63))
        return ck_fail(err, CK_EINVAL, "sigv4: bad region or service name");
    if (!creds->access_key[0] || !creds->secret_key[0] || strpbrk(creds->access_key, "/, \r\n"))
        return ck_fail(err, CK_EINVAL, "sigv4: no usable credentials (%s)",
                       creds->source[0] ? creds->source : "none");
    if (req->nheaders && !req->headers)
        return ck_fail(err, CK_EINVAL, "sigv4: header list missing");
    return CK_OK;
}

/* Builds the canonical request into canon and the signed header list into names. */
static ck_rc canonical_request(const struct ck_sigv4_request *req, const struct ck_aws_creds *creds,
                               struct ck_buf *canon, struct ck_buf *names, struct ck_err *err)
{
    struct chdr hv[CK_SIGV4_MAX_HEADERS];
    size_t nh = 0;
    ck_rc rc = collect_headers(req, creds, hv, &nh, err);
    if (rc)
        return rc;
    if (ck_buf_printf(canon, "%s\n%s\n", req->method, req->path))
        return ck_fail(err, CK_ENOMEM, "sigv4: canonical request too long");
    rc = canon_query(canon, req->query ? req->query : "", err);
    if (rc)
        return rc;
    if (ck_buf_append(canon, "\n", 1) || write_headers(canon, hv, nh, names) ||
        ck_buf_printf(canon, "\n%s\n%s", names->data, req->payload_hash))
        return ck_fail(err, CK_ENOMEM, "sigv4: canonical request too long");
    return CK_OK;
}

ck_rc ck_sigv4_sign(const struct ck_sigv4_request *req, const struct ck_aws_creds *creds, char *out,
                    size_t outlen, struct ck_err *err)
{
    ck_rc rc = check_request(req, creds, err);
    if (rc)
        return rc;
    struct ck_buf canon, names;
    ck_buf_init(&canon, CANON_MAX);
    ck_buf_init(&names, 4096);
    rc = canonical_request(req, creds, &canon, &names, err);
    char date[9], scope[256], creq_hash[CK_SHA256_HEX_LEN + 1], to_sign[512], sig[65];
    if (!rc) {
        memcpy(date, req->amz_date, 8);
        date[8] = '\0';
        snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, req->region, req->service);
        ck_sha256_hex(canon.data, canon.len, creq_hash);
        snprintf(to_sign, sizeof(to_sign), "AWS4-HMAC-SHA256\n%s\n%s\n%s", req->amz_date, scope,
                 creq_hash);
        if (!creq_hash[0] ||
            !signature_hex(creds->secret_key, date, req->region, req->service, to_sign, sig))
            rc = ck_fail(err, CK_EIO, "sigv4: OpenSSL HMAC-SHA256 failed");
    }
    if (!rc) {
        int n = snprintf(out, outlen,
                         "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                         creds->access_key, scope, names.data, sig);
        if (n < 0 || (size_t)n >= outlen)
            rc = ck_fail(err, CK_EINVAL, "sigv4: Authorization header does not fit in %zu bytes",
                         outlen);
    }
    ck_buf_free(&canon);
    ck_buf_free(&names);
    return rc;
}
