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
ck_rc ck_store_s3_open(const struct ck_uri *uri, const struct ck_store_env *env,
                       struct ck_store **out, struct ck_err *err);

ck_rc ck_store_gcs_open(const struct ck_uri *uri, const struct ck_store_env *env,
                        struct ck_store **out, struct ck_err *err);
ck_rc ck_store_azure_open(const struct ck_uri *uri, const struct ck_store_env *env,
                          struct ck_store **out, struct ck_err *err);

#endif
