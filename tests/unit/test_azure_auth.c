/*
 * test_azure_auth.c - Azure Shared Key signing (string to sign and signatures checked
 * against tests/tools/azblob.py, an independent implementation that Azurite accepts),
 * connection strings, the credential chain's choices and its messages (no secrets).
 * The end-to-end checks against Azurite are in tests/integration/test_azure.py.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "auth/azure_creds.h"
#include "auth/azure_sharedkey.h"
#include "testutil.h"

#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

static const char *const *test_env; /* name=value pairs, NULL-terminated; set per test */

static char *fake_getenv(const char *name)
{
    size_t n = strlen(name);
    for (const char *const *e = test_env; e && *e; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return (char *)*e + n + 1;
    }
    return NULL;
}

static const struct ck_azure_header put_hdrs[] = {
    {"x-ms-version", "2021-08-06"},
    {"x-ms-date", "Sun, 29 Nov 2026 10:00:00 GMT"},
};

START_TEST(test_string_to_sign)
{
    struct ck_azure_sign_req r = {
        .method = "PUT",
        .account = "devstoreaccount1",
        .path = "/devstoreaccount1/ckit/a%20b/c",
        .query = "comp=block&blockid=Y2twdGZzLTAx%2B%3D",
        .content_length = 5,
        .content_md5 = "XUFAKrxLKna5cZ2REBfFkg==",
        .xms = put_hdrs,
        .nxms = 2,
    };
    char *sts = NULL;
    struct ck_err err;
    ck_assert_int_eq(ck_azure_string_to_sign(&r, &sts, &err), CK_OK);
    ck_assert_str_eq(sts, "PUT\n\n\n5\nXUFAKrxLKna5cZ2REBfFkg==\n\n\n\n\n\n\n\n"
                          "x-ms-date:Sun, 29 Nov 2026 10:00:00 GMT\nx-ms-version:2021-08-06\n"
                          "/devstoreaccount1/devstoreaccount1/ckit/a%20b/c\n"
                          "blockid:Y2twdGZzLTAx+=\ncomp:block");
    free(sts);
    unsigned char key[CK_AZURE_KEY_MAX];
    size_t keylen;
    ck_assert_int_eq(ck_azure_key_decode(DEV_KEY, key, &keylen), CK_OK);
    ck_assert_uint_eq(keylen, 64);
    char auth[256];
    ck_assert_int_eq(ck_azure_sharedkey(&r, key, keylen, auth, sizeof(auth), &err), CK_OK);
    ck_assert_str_eq(auth,
                     "SharedKey devstoreaccount1:htEdepab6qjT3t+17wmkpLB6lbmgA3dtkXT/EdxzxFs=");
}
END_TEST

START_TEST(test_ranged_get_signature)
{
    struct ck_azure_sign_req r = {
        .method = "GET",
        .account = "devstoreaccount1",
        .path = "/devstoreaccount1/ckit/k",
        .query = "",
        .range = "bytes=10-",
        .xms = put_hdrs,
        .nxms = 2,
    };
    unsigned char key[CK_AZURE_KEY_MAX];
    size_t keylen;
    char auth[256];
    struct ck_err err;
    ck_assert_int_eq(ck_azure_key_decode(DEV_KEY, key, &keylen), CK_OK);
    ck_assert_int_eq(ck_azure_sharedkey(&r, key, keylen, auth, sizeof(auth), &err), CK_OK);
    ck_assert_str_eq(auth,
                     "SharedKey devstoreaccount1:7HopEnjlc8u91gUofK2NafZJAwxpLmoxZcXacS3ODbE=");
}
END_TEST

START_TEST(test_key_decode_refuses_garbage)
{
    unsigned char key[CK_AZURE_KEY_MAX];
    size_t keylen;
    ck_assert_int_eq(ck_azure_key_decode("", key, &keylen), CK_EINVAL);
    ck_assert_int_eq(ck_azure_key_decode("abc", key, &keylen), CK_EINVAL);
    ck_assert_int_eq(ck_azure_key_decode("ab$d", key, &keylen), CK_EINVAL);
    ck_assert_int_eq(ck_azure_key_decode("a=bc", key, &keylen), CK_EINVAL);
    ck_assert_int_eq(ck_azure_key_decode("YWJj", key, &keylen), CK_OK);
    ck_assert_uint_eq(keylen, 3);
}
END_TEST

static ck_rc make(const char *account, struct ck_azure_creds **c, struct ck_err *err)
{
    struct ck_azure_cfg cfg = {.getenv_fn = fake_getenv, .account = account};
    *c = NULL;
    return ck_azure_creds_new(&cfg, c, err);
}

START_TEST(test_connection_strings)
{
    static const char *const dev[] = {"AZURE_STORAGE_CONNECTION_STRING=UseDevelopmentStorage=true",
                                      NULL};
    struct ck_azure_creds *c;
    struct ck_err err;
    test_env = dev;
    ck_assert_int_eq(make(NULL, &c, &err), CK_OK);
    ck_assert_int_eq(ck_azure_auth_kind(c), CK_AZURE_SHARED_KEY);
    ck_assert_str_eq(ck_azure_account(c), "devstoreaccount1");
    ck_assert_str_eq(ck_azure_endpoint(c), "http://127.0.0.1:10000/devstoreaccount1");
    ck_azure_creds_free(c);

    static const char *const suffix[] = {
        "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=acct1;"
        "SharedAccessSignature=sv=2019-12-12&sig=SECRETSIG;EndpointSuffix=core.chinacloudapi.cn",
        NULL};
    test_env = suffix;
    ck_assert_int_eq(make(NULL, &c, &err), CK_OK);
    ck_assert_int_eq(ck_azure_auth_kind(c), CK_AZURE_SAS);
    ck_assert_str_eq(ck_azure_endpoint(c), "https://acct1.blob.core.chinacloudapi.cn");
    ck_assert_str_eq(ck_azure_sas(c), "sv=2019-12-12&sig=SECRETSIG");
    ck_azure_creds_free(c);
    /* The URI names another account: refused, without the secret. */
    ck_assert_int_eq(make("other", &c, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "'acct1'"));
    ck_assert_ptr_null(strstr(err.msg, "SECRETSIG"));

    static const char *const badkey[] = {
        "AZURE_STORAGE_CONNECTION_STRING=AccountName=acct1;AccountKey=SECRET$KEY", NULL};
    test_env = badkey;
    ck_assert_int_eq(make(NULL, &c, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "not base64"));
    ck_assert_ptr_null(strstr(err.msg, "SECRET"));
}
END_TEST

START_TEST(test_chain_order_and_messages)
{
    static const char *const key_env[] = {
        "AZURE_STORAGE_KEY=" DEV_KEY, "AZURE_STORAGE_SAS_TOKEN=?sv=1&sig=X",
        "CKPTFS_AZURE_BLOB_ENDPOINT=http://127.0.0.1:1/acct1/", NULL};
    struct ck_azure_creds *c;
    struct ck_err err;
    test_env = key_env;
    ck_assert_int_eq(make("acct1", &c, &err), CK_OK);
    ck_assert_int_eq(ck_azure_auth_kind(c), CK_AZURE_SHARED_KEY);
    ck_assert_str_eq(ck_azure_endpoint(c), "http://127.0.0.1:1/acct1");
    ck_azure_creds_free(c);
    /* No account anywhere. */
    ck_assert_int_eq(make(NULL, &c, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "AZURE_STORAGE_ACCOUNT"));

    static const char *const sas_env[] = {"AZURE_STORAGE_ACCOUNT=acct1",
                                          "AZURE_STORAGE_SAS_TOKEN=?sv=1&sig=X", NULL};
    test_env = sas_env;
    ck_assert_int_eq(make(NULL, &c, &err), CK_OK);
    ck_assert_int_eq(ck_azure_auth_kind(c), CK_AZURE_SAS);
    ck_assert_str_eq(ck_azure_sas(c), "sv=1&sig=X");
    ck_assert_str_eq(ck_azure_endpoint(c), "https://acct1.blob.core.windows.net");
    ck_azure_creds_free(c);

    static const char *const half_wi[] = {"AZURE_FEDERATED_TOKEN_FILE=/nonexistent", NULL};
    test_env = half_wi;
    ck_assert_int_eq(make("acct1", &c, &err), CK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "AZURE_CLIENT_ID"));

    /* Nothing configured and no IMDS (a closed port): the message lists what was tried. */
    static const char *const none[] = {"AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:9",
                                       NULL};
    test_env = none;
    ck_assert_int_eq(make("acct1", &c, &err), CK_EAUTH);
    ck_assert_ptr_nonnull(strstr(err.msg, "no Azure credentials found"));
    ck_assert_ptr_nonnull(strstr(err.msg, "managed identity"));
}
END_TEST

static Suite *azure_auth_suite(void)
{
    Suite *s = suite_create("azure_auth");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_string_to_sign);
    tcase_add_test(tc, test_ranged_get_signature);
    tcase_add_test(tc, test_key_decode_refuses_garbage);
    tcase_add_test(tc, test_connection_strings);
    tcase_add_test(tc, test_chain_order_and_messages);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(azure_auth_suite());
}
