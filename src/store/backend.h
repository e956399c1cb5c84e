/*
 * backend.h - how store.c reaches the backends (internal to src/store/).
 *
 * Each backend's open function takes the parsed URI (borrowed: it copies what it keeps,
 * the display form included) and allocates a struct ck_store with its ops and private
 * state; ops->destroy frees all of it. Opening does no I/O.
 */
#ifndef CK_STORE_BACKEND_H
#define CK_STORE_BACKEND_H

#include "store/store.h"
#include "store/uri.h"

ck_rc ck_store_file_open(const struct ck_uri *uri, const struct ck_store_env *env,
                         struct ck_store **out, struct ck_err *err);
ck_rc ck_store_http_open(const struct ck_uri *uri, const struct ck_store_env *env,
                         struct ck_store **out, struct ck_err *err);

/* The clouds, opened with ck_cloud_open (cloud.h): s3/s3_request.c, gcs/gcs_request.c,
 * azure/azure_request.c. */
struct ck_cloud_ops;
extern const struct ck_cloud_ops ck_s3_cloud_ops;
extern const struct ck_cloud_ops ck_gcs_cloud_ops;
extern const struct ck_cloud_ops ck_azure_cloud_ops;

#endif
