/*
 * gcp_jwt.c - the service-account source: an RS256 JWT signed with OpenSSL, exchanged at
 * the key file's token_uri for an access token (RFC 7523 jwt-bearer grant); see
 * gcp_creds.h.
 *
 * The private key is parsed once when the source is made (a bad key fails the mount, not
 * the first save) and kept as an EVP_PKEY; the PEM text is zeroed.
 */
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_read.h"
#include "auth/gcp_creds.h"
#include "util/buf.h"
#include "util/clock.h"

struct sa {
    char email[256];
    char kid[128];
    char token_uri[512];
    char *pem; /* owned, zeroed on free */
    struct ck_gcp_cfg cfg;
};

/* base64url without padding of n bytes appended to b. */
static ck_rc b64url(struct ck_buf *b, const void *data, size_t n)
{
    size_t cap = 4 * ((n + 2) / 3) + 1;
    unsigned char *tmp = malloc(cap);
    if (!tmp)
        return CK_ENOMEM;
    int len = EVP_EncodeBlock(tmp, data, (int)n);
    while (len > 0 && tmp[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++)
        tmp[i] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
    ck_rc rc = ck_buf_append(b, tmp, (size_t)len);
    free(tmp);
    return rc;
}

/* An encrypted key is refused: without a callback OpenSSL would ask for its passphrase on
 * the terminal (or read it from stdin). Google's key files hold unencrypted keys. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static ck_rc sign_rs256(const char *pem, const char *data, size_t n, struct ck_buf *out,
                        struct ck_err *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    if (!key)
        return ck_fail(err, CK_EINVAL,
                       "service account: private_key is not an unencrypted PEM private key");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    ck_rc rc = CK_OK;
    if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) /* an EC key would sign, but not RS256 */
        rc = ck_fail(err, CK_EINVAL, "service account: private_key is not an RSA key");
    else if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
             EVP_DigestSign(md, sig, &siglen, (const unsigned char *)data, n) != 1)
        rc = ck_fail(err, CK_EINVAL, "service account: RS256 signing failed");
    else
        rc = b64url(out, sig, siglen);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return rc;
}

/* A JSON string value: the fields are checked printable without quotes or backslashes. */
static bool plain(const char *s)
{
    for (; *s; s++) {
        if (*s < 0x20 || *s >= 0x7f || *s == '"' || *s == '\\')
            return false;
    }
    return true;
}

ck_rc ck_gcp_jwt(const char *pem, const char *kid, const char *email, const char *aud,
                 const char *scope, long now, char **out, struct ck_err *err)
{
    *out = NULL;
    if (!plain(kid) || !plain(email) || !plain(aud) || !plain(scope))
        return ck_fail(err, CK_EINVAL, "service account: a field holds unusual characters");
    char header[256], claims[2048];
    snprintf(header, sizeof(header), "{\"alg\":\"RS256\",\"typ\":\"JWT\"%s%s%s}",
             kid[0] ? ",\"kid\":\"" : "", kid, kid[0] ? "\"" : "");
    int n = snprintf(claims, sizeof(claims),
                     "{\"iss\":\"%s\",\"scope\":\"%s\",\"aud\":\"%s\",\"iat\":%ld,\"exp\":%ld}",
                     email, scope, aud, now, now + 3600);
    if (n < 0 || (size_t)n >= sizeof(claims))
        return ck_fail(err, CK_EINVAL, "service account: JWT claims too long");
    struct ck_buf b;
    ck_buf_init(&b, 16384);
    ck_rc rc = b64url(&b, header, strlen(header));
    if (!rc)
        rc = ck_buf_puts(&b, ".");
    if (!rc)
        rc = b64url(&b, claims, strlen(claims));
    if (rc) {
        ck_buf_free(&b);
        return ck_fail(err, rc, "service account: JWT too long");
    }
    size_t signed_len = b.len;
    rc = ck_buf_puts(&b, ".");
    if (!rc)
        rc = sign_rs256(pem, b.data, signed_len, &b, err);
    if (rc) {
        ck_buf_free(&b);
        return rc;
    }
    *out = ck_buf_take(&b);
    return CK_OK;
}

static ck_rc sa_fetch(void *ctx, struct ck_oauth_token *out, struct ck_err *err)
{
    struct sa *s = ctx;
    double now = ck_wall_now();
    char *jwt = NULL;
    ck_rc rc =
        ck_gcp_jwt(s->pem, s->kid, s->email, s->token_uri, CK_GCP_SCOPE, (long)now, &jwt, err);
    if (rc)
        return rc;
    struct ck_buf body;
    ck_buf_init(&body, 32768);
    rc = ck_oauth_form_add(&body, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
    if (!rc)
        rc = ck_oauth_form_add(&body, "assertion", jwt);
    ck_oauth_secret_free(jwt);
    char what[400];
    snprintf(what, sizeof(what), "service account %s: token request", s->email);
    return ck_oauth_post_form(s->token_uri, &body, rc, what, &s->cfg.retry,
                              s->cfg.connect_timeout_s, now, out, err);
}

static void sa_free(void *ctx)
{
    struct sa *s = ctx;
    if (s) {
        ck_oauth_secret_free(s->pem);
        free(s);
    }
}

/* private_key: a JSON string whose decoded text has newlines, which the strict string
 * reader refuses as control characters; its raw text is decoded here (\n, \r, \/, \\
 * only: a PEM has nothing else). */
static ck_rc pem_field(const char *json, size_t len, const char *path, char *out, size_t outlen,
                       struct ck_err *err)
{
    ck_rc rc = ck_json_get_raw(json, len, "private_key", out, outlen);
    size_t n = rc ? 0 : strlen(out), j = 0;
    if (rc || n < 2 || out[0] != '"' || out[n - 1] != '"')
        return ck_fail(err, CK_EINVAL, "credentials file %s: no usable \"private_key\"", path);
    for (size_t i = 1; i + 1 < n; i++) {
        char c = out[i];
        if (c == '\\') {
            char e = out[++i];
            c = e == 'n' ? '\n' : e == 'r' ? '\r' : e == '/' ? '/' : e == '\\' ? '\\' : 0;
        }
        if (!c || ((unsigned char)c < 0x20 && c != '\n' && c != '\r'))
            return ck_fail(err, CK_EINVAL,
                           "credentials file %s: unusual characters in "
                           "\"private_key\"",
                           path);
        out[j++] = c;
    }
    out[j] = '\0';
    return CK_OK;
}

/* A required string member that must fit; names the file and the member otherwise. */
static ck_rc field(const char *json, size_t len, const char *path, const char *key, char *out,
                   size_t outlen, struct ck_err *err)
{
    ck_rc rc = ck_json_get_string(json, len, key, out, outlen);
    if (rc == CK_ECORRUPT)
        return ck_fail(err, rc, "credentials file %s: not a well-formed JSON object", path);
    if (rc || !out[0])
        return ck_fail(err, CK_EINVAL, "credentials file %s: no usable \"%s\"", path, key);
    return CK_OK;
}

ck_rc ck_gcp_service_account(const char *json, size_t len, const char *path,
                             const struct ck_gcp_cfg *cfg, struct ck_gcp_source *out,
                             struct ck_err *err)
{
    struct sa *s = calloc(1, sizeof(*s));
    char *pem = malloc(CK_GCP_FILE_MAX);
    if (!s || !pem) {
        free(s);
        free(pem);
        return ck_fail(err, CK_ENOMEM, "credentials file %s: out of memory", path);
    }
    s->pem = pem;
    s->cfg = *cfg;
    ck_rc rc = field(json, len, path, "client_email", s->email, sizeof(s->email), err);
    if (!rc)
        rc = pem_field(json, len, path, s->pem, CK_GCP_FILE_MAX, err);
    if (!rc && ck_json_get_string(json, len, "private_key_id", s->kid, sizeof(s->kid)) != CK_OK)
        s->kid[0] = '\0';
    if (!rc &&
        ck_json_get_string(json, len, "token_uri", s->token_uri, sizeof(s->token_uri)) != CK_OK)
        snprintf(s->token_uri, sizeof(s->token_uri), "%s", CK_GCP_TOKEN_URI);
    if (!rc && (!plain(s->email) || !plain(s->kid) || !plain(s->token_uri)))
        rc = ck_fail(err, CK_EINVAL, "credentials file %s: unusual characters in a field", path);
    if (!rc) { /* check the key now, so a broken file fails early */
        char *jwt = NULL;
        rc = ck_gcp_jwt(s->pem, s->kid, s->email, s->token_uri, CK_GCP_SCOPE, 0, &jwt, err);
        ck_oauth_secret_free(jwt);
        if (rc)
            ck_err_prefix(err, "credentials file %s", path);
    }
    return ck_gcp_source_set(out, rc, "service-account", sa_fetch, s, sa_free);
}
