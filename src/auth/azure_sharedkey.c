/*
 * azure_sharedkey.c - Shared Key signing; see azure_sharedkey.h.
 */
#include "auth/azure_sharedkey.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define STS_MAX    (64 * 1024)
#define MAX_PARAMS 32

ck_rc ck_azure_key_decode(const char *b64, unsigned char *key, size_t *keylen)
{
    size_t n = strlen(b64);
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > CK_AZURE_KEY_MAX)
        return CK_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)b64[i]) && b64[i] != '+' && b64[i] != '/' &&
            !(b64[i] == '=' && i >= n - 2))
            return CK_EINVAL;
    }
    int len = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)n);
    if (len < 0)
        return CK_EINVAL;
    len -= (b64[n - 1] == '=') + (b64[n - 2] == '=');
    *keylen = (size_t)len;
    return CK_OK;
}

static int hexval(char c)
{
    return isdigit((unsigned char)c)    ? c - '0'
           : isxdigit((unsigned char)c) ? tolower((unsigned char)c) - 'a' + 10
                                        : -1;
}

/* Appends s[0..n) percent-decoded ('+' stays '+', as Azure's SDKs sign it). */
static ck_rc put_decoded(struct ck_buf *b, const char *s, size_t n)
{
    ck_rc rc = CK_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        rc = ck_buf_append(b, &c, 1);
    }
    return rc;
}

struct param {
    const char *name, *value;
    size_t nlen, vlen;
};

static int cmp_param(const void *a, const void *b)
{
    const struct param *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = strncasecmp(x->name, y->name, n);
    return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

static ck_rc put_resource(struct ck_buf *b, const struct ck_azure_sign_req *r)
{
    struct param p[MAX_PARAMS];
    size_t np = 0;
    for (const char *q = r->query; *q && np < MAX_PARAMS;) {
        size_t len = strcspn(q, "&"), nlen = strcspn(q, "=&");
        p[np++] = (struct param){q, nlen < len ? q + nlen + 1 : q + len, nlen,
                                 nlen < len ? len - nlen - 1 : 0};
        q += len + (q[len] == '&');
    }
    qsort(p, np, sizeof(p[0]), cmp_param);
    ck_rc rc = ck_buf_printf(b, "/%s%s", r->account, r->path);
    for (size_t i = 0; i < np && !rc; i++) {
        rc = ck_buf_puts(b, "\n");
        for (size_t k = 0; k < p[i].nlen && !rc; k++) {
            char c = (char)tolower((unsigned char)p[i].name[k]);
            rc = ck_buf_append(b, &c, 1);
        }
        if (!rc)
            rc = ck_buf_puts(b, ":");
        if (!rc)
            rc = put_decoded(b, p[i].value, p[i].vlen);
    }
    return rc;
}

static int cmp_header(const void *a, const void *b)
{
    return strcmp(((const struct ck_azure_header *)a)->name,
                  ((const struct ck_azure_header *)b)->name);
}

ck_rc ck_azure_string_to_sign(const struct ck_azure_sign_req *r, char **out, struct ck_err *err)
{
    struct ck_buf b;
    ck_buf_init(&b, STS_MAX);
    char len[32] = "";
    if (r->content_length)
        snprintf(len, sizeof(len), "%llu", r->content_length);
    /* VERB, Content-Encoding, -Language, -Length, -MD5, -Type, Date, If-Modified-Since,
     * If-Match, If-None-Match, If-Unmodified-Since, Range */
    ck_rc rc = ck_buf_printf(&b, "%s\n\n\n%s\n%s\n%s\n\n\n%s\n%s\n\n%s\n", r->method, len,
                             r->content_md5 ? r->content_md5 : "",
                             r->content_type ? r->content_type : "", r->if_match ? r->if_match : "",
                             r->if_none_match ? r->if_none_match : "", r->range ? r->range : "");
    struct ck_azure_header h[16];
    size_t nh = r->nxms < 16 ? r->nxms : 16;
    memcpy(h, r->xms, nh * sizeof(h[0]));
    qsort(h, nh, sizeof(h[0]), cmp_header);
    for (size_t i = 0; i < nh && !rc; i++)
        rc = ck_buf_printf(&b, "%s:%s\n", h[i].name, h[i].value);
    if (!rc)
        rc = put_resource(&b, r);
    if (rc || r->nxms > 16) {
        ck_buf_free(&b);
        return ck_fail(err, CK_EINVAL, "shared key: request too large to sign");
    }
    *out = ck_buf_take(&b);
    return CK_OK;
}

ck_rc ck_azure_sharedkey(const struct ck_azure_sign_req *r, const unsigned char *key, size_t keylen,
                         char *out, size_t outlen, struct ck_err *err)
{
    char *sts = NULL;
    ck_rc rc = ck_azure_string_to_sign(r, &sts, err);
    if (rc)
        return rc;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char sig[128];
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)sts, strlen(sts), mac,
              &maclen))
        rc = ck_fail(err, CK_EINVAL, "shared key: HMAC failed");
    free(sts);
    if (rc)
        return rc;
    EVP_EncodeBlock((unsigned char *)sig, mac, (int)maclen);
    int n = snprintf(out, outlen, "SharedKey %s:%s", r->account, sig);
    explicit_bzero(mac, sizeof(mac));
    if (n < 0 || (size_t)n >= outlen)
        return ck_fail(err, CK_EINVAL, "shared key: Authorization too long");
    return CK_OK;
}
