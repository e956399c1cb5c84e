/*
 * uri.h - what a --src/--dest string names, and how it may be shown.
 *
 * ck_uri_parse() classifies a URI as a local file (file:///abs, file://localhost/abs, or a
 * plain absolute or relative path), an HTTP(S) URL, an S3 object (s3://bucket/key), a GCS
 * object (gs://bucket/key) or an Azure blob (az://container/key,
 * abfs[s]://container@account.dfs.core.windows.net/key, and
 * https://account.blob.core.windows.net/container/key; other https:// URLs stay HTTP).
 * Other schemes give CK_EUNSUPPORTED; empty strings, control characters, a
 * missing host and other garbage give CK_EINVAL. Error messages name the URI by its display form
 * only.
 *
 * The display form is what may be logged or shown in .status: the URI without its query
 * string, fragment and userinfo, so presigned URL signatures and passwords never leak.
 */
#ifndef CK_STORE_URI_H
#define CK_STORE_URI_H

#include <stddef.h>

#include "util/err.h"

enum ck_uri_kind {
    CK_URI_FILE,  /* file:// or a plain path; path is set */
    CK_URI_HTTP,  /* http:// or https://; url is set */
    CK_URI_S3,    /* s3://bucket/key; bucket and key are set (key taken literally) */
    CK_URI_GCS,   /* gs://bucket/key; bucket and key are set (key taken literally) */
    CK_URI_AZURE, /* bucket = container, key = blob name; account set unless az:// */
};

struct ck_uri {
    enum ck_uri_kind kind;
    char *path;    /* CK_URI_FILE: local path, percent-decoded for file://; owned, else NULL */
    char *url;     /* CK_URI_HTTP: the URL exactly as given (may hold secrets); owned */
    char *bucket;  /* CK_URI_S3: the bucket name; owned, else NULL */
    char *key;     /* CK_URI_S3: the object key, not percent-decoded; owned, else NULL */
    char *account; /* CK_URI_AZURE: the storage account from the URI, or NULL (az://) */
    char *sas;     /* CK_URI_AZURE: the query of a blob URL (a SAS token; a secret), or NULL */
    char *display; /* owned; safe to log */
};

/* Parses uri into out (zeroed first). On success the caller frees out with ck_uri_free();
 * on failure nothing is left to free. */
ck_rc ck_uri_parse(const char *uri, struct ck_uri *out, struct ck_err *err);
void ck_uri_free(struct ck_uri *u);

/* Writes the display form of any string (query, fragment and userinfo removed, control
 * characters replaced by '?') into out, truncated to outsz. Never fails. */
void ck_uri_display(const char *uri, char *out, size_t outsz);

#endif
