/*
 * azure.h - the Azure Blob backend's shared state and its one authorised request (internal
 * to src/store/). store_azure.c opens the store and serves head/get, azure_upload.c the
 * block upload (Put Block in parallel through part_upload.c, Put Block List as the atomic
 * commit), azure_request.c builds URLs and signs every attempt. See docs/azure.md.
 */
#ifndef CK_STORE_AZURE_H
#define CK_STORE_AZURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "auth/azure_creds.h"
#include "net/http.h"
#include "store/part_upload.h"
#include "store/store.h"

#define CK_AZURE_VERSION    "2021-08-06" /* x-ms-version; bearer needs >= 2017-11-09 */
#define CK_AZURE_MAX_BLOCKS 50000u
#define CK_AZURE_MAX_BLOCK  (4000ull << 20)

struct ck_azure {
    char *container;                /* owned */
    char *key;                      /* blob name; owned */
    char *account;                  /* from the URI, or NULL; owned */
    char *uri_sas;                  /* query of a blob URL (secret), or NULL; owned */
    const char *display;            /* the store's display URI (not owned) */
    const struct ck_store_env *env; /* not owned */
    struct ck_part_cfg parts;       /* read at open */

    pthread_mutex_t lock;         /* protects creds until ready is set */
    bool ready;                   /* then creds is read-only (its token cache locks itself) */
    struct ck_azure_creds *creds; /* owned */
};

struct ck_azure_call {
    enum ck_http_method method;
    const char *query; /* "" or encoded "comp=block&blockid=..." */
    const char *label;
    const void *body;
    size_t body_len;
    const char *content_md5;   /* base64, or NULL */
    const char *content_type;  /* or NULL */
    const char *blob_type;     /* x-ms-blob-type (Put Blob), or NULL */
    const char *if_none_match; /* send (and sign) "If-None-Match: VALUE" ("*": create only) */
    const char *if_match;      /* send (and sign) "If-Match: VALUE" (a conditional replace) */
    bool has_range;
    uint64_t range_off, range_len;
    const struct ck_sink *sink;
    const atomic_bool *cancel;
};

ck_rc ck_azure_configure(struct ck_azure *az, struct ck_err *err);

/* Runs call with retries, authorised afresh on every attempt (Shared Key over that
 * attempt's headers and range, a SAS in the URL, or a bearer token). Failure messages
 * carry Azure's error code: "PUT az://c/b (block 3): HTTP 403 AuthenticationFailed: ...". */
ck_rc ck_azure_perform(struct ck_azure *az, const struct ck_azure_call *call,
                       struct ck_http_response *resp, struct ck_err *err);

/* The error code and message of a failed reply: <Error><Code> and the first line of its
 * <Message> (Azure adds RequestId and Time lines) from the len bytes of body, else the
 * x-ms-error-code header's value header_code ("" if none) without a message. The code is
 * letters, digits and '.'; false (both "") if there is none. */
bool ck_azure_error_code(const char *body, size_t len, const char *header_code, char *code,
                         size_t codesz, char *msg, size_t msgsz);

ck_rc ck_azure_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                         struct ck_store_upload **out, struct ck_err *err);

#endif
