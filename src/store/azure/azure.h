/*
 * azure.h - the Azure Blob backend's own state (internal to src/store/); what it shares
 * with S3 and GCS is in cloud.h. azure_request.c holds its table of ops (store and cloud;
 * head and get are the cloud core's), azure_upload.c the block upload (Put Block in parallel
 * through part_upload.c, Put Block List as the atomic commit), azure_request.c Azure's part of the
 * cloud core: settings, URLs, the authorization of every attempt. See docs/azure.md.
 */
#ifndef CK_STORE_AZURE_AZURE_H
#define CK_STORE_AZURE_AZURE_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/azure_creds.h"
#include "store/cloud.h"

#define CK_AZURE_VERSION    "2021-08-06" /* x-ms-version; bearer needs >= 2017-11-09 */
#define CK_AZURE_MAX_BLOCKS 50000u
#define CK_AZURE_MAX_BLOCK  (4000ull << 20)

/* The Azure part of a cloud store (ck_cloud.priv). */
struct ck_azure {
    char *account;                /* from the URI, or NULL; owned */
    char *uri_sas;                /* query of a blob URL (secret), or NULL; owned */
    struct ck_azure_creds *creds; /* owned; set by ready (its token cache locks itself) */
};

/* The error code and message of a failed reply: <Error><Code> and the first line of its
 * <Message> (Azure adds RequestId and Time lines) from the len bytes of body, else the
 * x-ms-error-code header's value header_code ("" if none) without a message. The code is
 * letters, digits and '.'; false (both "") if there is none. */
bool ck_azure_error_code(const char *body, size_t len, const char *header_code, char *code,
                         size_t codesz, char *msg, size_t msgsz);

ck_rc ck_azure_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                         struct ck_store_upload **out, struct ck_err *err);

#endif
