/*
 * azure_creds.h - how requests to Azure Blob Storage are authorised, found in this order:
 *   1. a SAS in the blob URL itself (https://account.blob.core.windows.net/c/b?sv=...)
 *   2. AZURE_STORAGE_CONNECTION_STRING: AccountName, AccountKey, SharedAccessSignature,
 *      BlobEndpoint, DefaultEndpointsProtocol, EndpointSuffix (UseDevelopmentStorage=true
 *      means Azurite on 127.0.0.1:10000)
 *   3. Shared Key: AZURE_STORAGE_KEY (account from the URI or AZURE_STORAGE_ACCOUNT)
 *   4. AZURE_STORAGE_SAS_TOKEN
 *   5. workload identity: AZURE_FEDERATED_TOKEN_FILE + AZURE_CLIENT_ID + AZURE_TENANT_ID
 *      (AZURE_AUTHORITY_HOST, default https://login.microsoftonline.com/): client
 *      credentials with the projected token as client_assertion
 *   6. managed identity through IMDS (http://169.254.169.254, or
 *      AZURE_POD_IDENTITY_AUTHORITY_HOST), with AZURE_CLIENT_ID for a user-assigned one
 * anonymous (--no-sign-request) skips the chain (public containers).
 * Bearer tokens (5, 6) are for https://storage.azure.com/ and refreshed before they
 * expire; their requests need x-ms-version 2017-11-09 or later.
 *
 * The account and the blob endpoint are resolved here too: the URI's account wins (a
 * connection string for another account is an error), the endpoint is
 * CKPTFS_AZURE_BLOB_ENDPOINT, else the connection string's, else
 * https://ACCOUNT.blob.core.windows.net.
 *
 * Keys, SAS tokens, assertions and bearer tokens never appear in messages or the log.
 * Thread safety: after creation everything is read-only except the bearer cache, which
 * has its own lock.
 */
#ifndef CK_AUTH_AZURE_CREDS_H
#define CK_AUTH_AZURE_CREDS_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/azure_sharedkey.h"
#include "auth/oauth.h"
#include "net/retry.h"
#include "util/err.h"

#define CK_AZURE_AUTHORITY "https://login.microsoftonline.com/"
#define CK_AZURE_IMDS      "http://169.254.169.254"
#define CK_AZURE_SCOPE     "https://storage.azure.com/.default"
#define CK_AZURE_RESOURCE  "https://storage.azure.com/"

enum ck_azure_auth {
    CK_AZURE_ANONYMOUS,
    CK_AZURE_SHARED_KEY,
    CK_AZURE_SAS,
    CK_AZURE_BEARER,
};

struct ck_azure_cfg {
    char *(*getenv_fn)(const char *name); /* NULL = getenv */
    const char *account;                  /* from the URI, or NULL (az://) */
    const char *uri_sas;                  /* the blob URL's query, or NULL */
    bool anonymous;
    struct ck_retry_policy retry;
    double connect_timeout_s;
};

struct ck_azure_creds;

/* Resolves the chain; for bearer sources fetches the first token (I/O). CK_EAUTH listing
 * what was tried when nothing is configured. */
ck_rc ck_azure_creds_new(const struct ck_azure_cfg *cfg, struct ck_azure_creds **out,
                         struct ck_err *err);
void ck_azure_creds_free(struct ck_azure_creds *c);

enum ck_azure_auth ck_azure_auth_kind(const struct ck_azure_creds *c);
const char *ck_azure_source(const struct ck_azure_creds *c); /* "shared-key", ... */
const char *ck_azure_account(const struct ck_azure_creds *c);
const char *ck_azure_endpoint(const struct ck_azure_creds *c); /* no trailing '/' */
const char *ck_azure_sas(const struct ck_azure_creds *c);      /* CK_AZURE_SAS: the token */

/* CK_AZURE_SHARED_KEY: "SharedKey account:sig" for r (r->account is set here). */
ck_rc ck_azure_sign(const struct ck_azure_creds *c, struct ck_azure_sign_req *r, char *out,
                    size_t outlen, struct ck_err *err);

/* CK_AZURE_BEARER: a token valid for more than the refresh margin. */
ck_rc ck_azure_token(struct ck_azure_creds *c, char *out, size_t outlen, struct ck_err *err);

#endif
