/*
 * test_gcp_auth.c - the RS256 JWT of a service account (signed here, verified with the
 * public half of a key made for the test), key-file checks, token replies and the
 * external-account source's refusals. The token exchanges themselves run against
 * tests/tools/fake_gcs.py in tests/integration/test_gcs.py.
 */
#include <check.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/gcp_creds.h"
#include "auth/oauth.h"
#include "testutil.h"

/* A fresh RSA key as PKCS#8 PEM (malloc'd), its EVP_PKEY in *key. */
static char *make_key(EVP_PKEY **key)
{
    *key = EVP_RSA_gen(2048);
    ck_assert_ptr_nonnull(*key);
    BIO *b = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PrivateKey(b, *key, NULL, NULL, 0, NULL, NULL), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *pem = strndup(data, (size_t)n);
    BIO_free(b);
    return pem;
}

static size_t b64url_decode(const char *in, size_t n, unsigned char *out)
{
    char buf[4096] = {0};
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        buf[m++] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    while (m % 4)
        buf[m++] = '=';
    int len = EVP_DecodeBlock(out, (unsigned char *)buf, (int)m);
    size_t pad = 0;
    for (size_t i = m; i > 0 && buf[i - 1] == '='; i--)
        pad++;
    return (size_t)len - pad;
}

START_TEST(test_jwt_verifies_with_public_key)
{
    EVP_PKEY *key;
    char *pem = make_key(&key);
    char *jwt = NULL;
    struct ck_err err;
    ck_assert_int_eq(ck_gcp_jwt(pem, "kid1", "sa@p.iam.gserviceaccount.com",
                                "https://oauth2.googleapis.com/token", CK_GCP_SCOPE, 1700000000,
                                &jwt, &err),
                     CK_OK);
    char *dot1 = strchr(jwt, '.'), *dot2 = strrchr(jwt, '.');
    ck_assert_ptr_ne(dot1, dot2);
    unsigned char claims[2048], sig[1024];
    size_t cl = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), claims);
    claims[cl] = '\0';
    ck_assert_str_eq((char *)claims,
                     "{\"iss\":\"sa@p.iam.gserviceaccount.com\",\"scope\":\"" CK_GCP_SCOPE
                     "\",\"aud\":\"https://oauth2.googleapis.com/token\",\"iat\":1700000000,"
                     "\"exp\":1700003600}");
    size_t sl = b64url_decode(dot2 + 1, strlen(dot2 + 1), sig);
    ck_assert_uint_eq(sl, 256);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    ck_assert_int_eq(EVP_DigestVerify(md, sig, sl, (unsigned char *)jwt, (size_t)(dot2 - jwt)), 1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    free(jwt);
    free(pem);
}
END_TEST

START_TEST(test_jwt_refuses_bad_key_and_fields)
{
    char *jwt = NULL;
    struct ck_err err;
    ck_assert_int_eq(ck_gcp_jwt("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
                                "", "a@b", "https://x", CK_GCP_SCOPE, 1, &jwt, &err),
                     CK_EINVAL);
    ck_assert_ptr_null(jwt);
    ck_assert_ptr_nonnull(strstr(err.msg, "PEM"));
    ck_assert_int_eq(ck_gcp_jwt("x", "", "a\"b", "https://x", CK_GCP_SCOPE, 1, &jwt, &err),
                     CK_EINVAL);
}
END_TEST

static const struct ck_gcp_cfg cfg = {.getenv_fn = NULL};

START_TEST(test_service_account_file)
{
    EVP_PKEY *key;
    char *pem = make_key(&key);
    EVP_PKEY_free(key);
    /* JSON-escape the PEM's newlines. */
    char esc[8192], json[10000];
    size_t j = 0;
    for (const char *p = pem; *p; p++) {
        if (*p == '\n')
            esc[j++] = '\\', esc[j++] = 'n';
        else
            esc[j++] = *p;
    }
    esc[j] = '\0';
    snprintf(json, sizeof(json),
             "{\"type\":\"service_account\",\"client_email\":\"sa@p\",\"private_key_id\":\"k\","
             "\"private_key\":\"%s\",\"token_uri\":\"http://127.0.0.1:9/token\"}",
             esc);
    struct ck_gcp_source src;
    struct ck_err err;
    ck_assert_int_eq(ck_gcp_service_account(json, strlen(json), "sa.json", &cfg, &src, &err),
                     CK_OK);
    ck_assert_str_eq(src.name, "service-account");
    src.free_ctx(src.ctx);
    const char *no_key = "{\"type\":\"service_account\",\"client_email\":\"sa@p\"}";
    ck_assert_int_eq(ck_gcp_service_account(no_key, strlen(no_key), "sa.json", &cfg, &src, &err),
                     CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "sa.json"));
    ck_assert_ptr_nonnull(strstr(err.msg, "private_key"));
    const char *bad = "{\"type\":\"service_account\",\"client_email\":\"sa@p\",\"private_key\":"
                      "\"-----BEGIN PRIVATE KEY-----\\nSECRETBITS\\n-----END PRIVATE KEY-----\"}";
    ck_assert_int_eq(ck_gcp_service_account(bad, strlen(bad), "sa.json", &cfg, &src, &err),
                     CK_EINVAL);
    ck_assert_ptr_null(strstr(err.msg, "SECRETBITS"));
    const char *notjson = "{\"type\":\"service_account\",";
    ck_assert_int_eq(ck_gcp_service_account(notjson, strlen(notjson), "sa.json", &cfg, &src, &err),
                     CK_ECORRUPT);
    free(pem);
}
END_TEST

START_TEST(test_external_account_sources)
{
    struct ck_gcp_source src;
    struct ck_err err;
    const char *aws = "{\"type\":\"external_account\",\"audience\":\"//iam/x\","
                      "\"subject_token_type\":\"urn:ietf:params:aws:token-type:aws4_request\","
                      "\"token_url\":\"https://sts.googleapis.com/v1/token\","
                      "\"credential_source\":{\"environment_id\":\"aws1\"}}";
    ck_assert_int_eq(ck_gcp_external_account(aws, strlen(aws), "ext.json", &cfg, &src, &err),
                     CK_EUNSUPPORTED);
    const char *none = "{\"type\":\"external_account\",\"audience\":\"//iam/x\","
                       "\"subject_token_type\":\"t\",\"token_url\":\"https://sts\","
                       "\"credential_source\":{}}";
    ck_assert_int_eq(ck_gcp_external_account(none, strlen(none), "ext.json", &cfg, &src, &err),
                     CK_EINVAL);
    const char *file = "{\"type\":\"external_account\",\"audience\":\"//iam/x\","
                       "\"subject_token_type\":\"t\",\"token_url\":\"https://sts\","
                       "\"credential_source\":{\"file\":\"/var/run/t\",\"format\":{\"type\":"
                       "\"json\",\"subject_token_field_name\":\"access_token\"}}}";
    ck_assert_int_eq(ck_gcp_external_account(file, strlen(file), "ext.json", &cfg, &src, &err),
                     CK_OK);
    ck_assert_str_eq(src.name, "external-account");
    src.free_ctx(src.ctx);
}
END_TEST

START_TEST(test_token_replies)
{
    struct ck_oauth_token t;
    struct ck_err err;
    const char *ok = "{\"access_token\":\"ya29.a\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
    ck_assert_int_eq(ck_oauth_parse_token(ok, strlen(ok), "t", "access_token", NULL, 100, &t, &err),
                     CK_OK);
    ck_assert_str_eq(t.value, "ya29.a");
    ck_assert(t.expires_wall == 3699);
    const char *imds = "{\"access_token\":\"x\",\"expires_in\":\"86399\"}";
    ck_assert_int_eq(
        ck_oauth_parse_token(imds, strlen(imds), "t", "access_token", NULL, 0, &t, &err), CK_OK);
    ck_assert(t.expires_wall == 86399);
    const char *imp = "{\"accessToken\":\"x\",\"expireTime\":\"2030-01-01T00:00:00Z\"}";
    ck_assert_int_eq(
        ck_oauth_parse_token(imp, strlen(imp), "t", "accessToken", "expireTime", 0, &t, &err),
        CK_OK);
    const char *bad[] = {
        "{\"access_token\":\"a b\",\"expires_in\":1}",
        "{\"access_token\":\"x\"}",
        "{\"access_token\":\"x\",\"expires_in\":-5}",
        "{\"access_token\":\"x\",\"expires_in\":\"1x\"}",
        "{\"access_token\":\"x\",\"expires_in\":1} trailing",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(ck_oauth_parse_token(bad[i], strlen(bad[i]), "t", "access_token", NULL, 0, &t,
                                           &err) != CK_OK,
                      "accepted %s", bad[i]);
}
END_TEST

/* The key-file JSON of a service account whose private_key is pem. */
static void sa_json(const char *pem, char *json, size_t len)
{
    char esc[8192];
    size_t j = 0;
    for (const char *p = pem; *p && j + 2 < sizeof(esc); p++) {
        if (*p == '\n')
            esc[j++] = '\\', esc[j++] = 'n';
        else
            esc[j++] = *p;
    }
    esc[j] = '\0';
    snprintf(json, len,
             "{\"type\":\"service_account\",\"client_email\":\"sa@p\",\"private_key\":\"%s\"}",
             esc);
}

/* Found while seeding tests/fuzz/fuzz_gcp_creds (service-account-*.json): OpenSSL asked
 * for an encrypted key's passphrase on the terminal, or read it from stdin, and used the
 * key; an EC key was taken and signed an "RS256" JWT that Google refuses. */
START_TEST(test_service_account_refuses_encrypted_and_ec_keys)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    ck_assert_ptr_nonnull(key);
    BIO *b = BIO_new(BIO_s_mem());
    ck_assert_int_eq(
        PEM_write_bio_PKCS8PrivateKey(b, key, EVP_aes_256_cbc(), "hunter22", 8, NULL, NULL), 1);
    EVP_PKEY_free(key);
    char *data, json[10000];
    long n = BIO_get_mem_data(b, &data);
    char *pem = strndup(data, (size_t)n);
    BIO_free(b);
    ck_assert_ptr_nonnull(strstr(pem, "ENCRYPTED"));
    /* no terminal, and the passphrase waiting on stdin: still refused */
    setsid();
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], "hunter22\n", 9), 9);
    close(fds[1]);
    ck_assert_int_eq(dup2(fds[0], 0), 0);
    sa_json(pem, json, sizeof(json));
    struct ck_gcp_source src;
    struct ck_err err;
    ck_assert_int_eq(ck_gcp_service_account(json, strlen(json), "sa.json", &cfg, &src, &err),
                     CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "unencrypted"));
    free(pem);

    key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(key);
    b = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
    EVP_PKEY_free(key);
    n = BIO_get_mem_data(b, &data);
    pem = strndup(data, (size_t)n);
    BIO_free(b);
    sa_json(pem, json, sizeof(json));
    ck_assert_int_eq(ck_gcp_service_account(json, strlen(json), "sa.json", &cfg, &src, &err),
                     CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "not an RSA key"));
    free(pem);
}
END_TEST

/* Found by tests/fuzz/fuzz_oauth_json: a reply malformed after its access_token (trailing
 * bytes, a cut-off body) was refused with the token left decoded in out. */
START_TEST(test_refused_token_reply_is_wiped)
{
    struct ck_oauth_token t;
    struct ck_err err;
    const char *bad[] = {
        "{\"access_token\":\"ya29.secret\",\"expires_in\":3599} trailing",
        "{\"access_token\":\"ya29.secret\",\"expires_in\":35",
        "{\"access_token\":\"ya29.secret\",\"expires_in\":-1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&t, 'X', sizeof(t));
        ck_assert_int_ne(
            ck_oauth_parse_token(bad[i], strlen(bad[i]), "t", "access_token", NULL, 0, &t, &err),
            CK_OK);
        for (size_t k = 0; k < sizeof(t.value); k++)
            ck_assert_msg(t.value[k] == 0, "%s: token byte %zu left", bad[i], k);
        ck_assert_ptr_null(strstr(err.msg, "secret"));
    }
}
END_TEST

START_TEST(test_error_names)
{
    char name[64];
    const char *google = "{\"error\":\"invalid_grant\",\"error_description\":\"Bad JWT\"}";
    ck_oauth_error_name(google, strlen(google), name, sizeof(name));
    ck_assert_str_eq(name, "invalid_grant");
    const char *iam = "{\"error\":{\"code\":403,\"message\":\"no\",\"status\":"
                      "\"PERMISSION_DENIED\"}}";
    ck_oauth_error_name(iam, strlen(iam), name, sizeof(name));
    ck_assert_str_eq(name, "PERMISSION_DENIED");
    const char *odd = "{\"error\":\"two words\"}";
    ck_oauth_error_name(odd, strlen(odd), name, sizeof(name));
    ck_assert_str_eq(name, "");
    ck_oauth_error_name("<html>", 6, name, sizeof(name));
    ck_assert_str_eq(name, "");
}
END_TEST

static Suite *gcp_auth_suite(void)
{
    Suite *s = suite_create("gcp_auth");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_jwt_verifies_with_public_key);
    tcase_add_test(tc, test_jwt_refuses_bad_key_and_fields);
    tcase_add_test(tc, test_service_account_file);
    tcase_add_test(tc, test_external_account_sources);
    tcase_add_test(tc, test_token_replies);
    tcase_add_test(tc, test_service_account_refuses_encrypted_and_ec_keys);
    tcase_add_test(tc, test_refused_token_reply_is_wiped);
    tcase_add_test(tc, test_error_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(gcp_auth_suite());
}
