/*
 * object_reply.h - what HEAD and GET replies mean, the same for every object-store backend
 * (S3, GCS, Azure): internal to src/store/.
 */
#ifndef CK_STORE_OBJECT_REPLY_H
#define CK_STORE_OBJECT_REPLY_H

#include "net/http.h"
#include "store/store.h"

/* A HEAD's result: CK_ENOTFOUND is "no object" (exists=false, CK_OK); a success fills the
 * size (Content-Length is required), the ETag, and the version with the ETag (S3, Azure;
 * GCS replaces it with the generation). */
ck_rc ck_object_head_result(const struct ck_store *s, ck_rc rc, const struct ck_http_response *resp,
                            struct ck_store_info *info, struct ck_err *err);

/* The Range of a GET of [off, off+len), len CK_STORE_TO_END meaning "to the end". */
void ck_object_get_range(uint64_t off, uint64_t len, bool *has_range, uint64_t *range_off,
                         uint64_t *range_len);

/* A GET's result: reading "to the end" from exactly the end gets a 416, which is an empty
 * read, not an error (asked with a HEAD when the reply does not give the size). */
ck_rc ck_object_get_result(struct ck_store *s, ck_rc rc, const struct ck_http_response *resp,
                           uint64_t off, uint64_t len, struct ck_err *err);

#endif
