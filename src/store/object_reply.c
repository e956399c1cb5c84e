/* object_reply.c - see object_reply.h. */
#include "store/object_reply.h"

#include <string.h>

ck_rc ck_object_head_result(const struct ck_store *s, ck_rc rc, const struct ck_http_response *resp,
                            struct ck_store_info *info, struct ck_err *err)
{
    if (rc == CK_ENOTFOUND) {
        ck_err_clear(err);
        return CK_OK;
    }
    if (rc)
        return rc;
    if (!resp->has_content_length)
        return ck_fail(err, CK_ECORRUPT, "HEAD %s: no Content-Length in reply", s->display_uri);
    info->exists = true;
    info->size = resp->content_length;
    memcpy(info->etag, resp->etag, sizeof(info->etag));
    memcpy(info->version, resp->etag, sizeof(info->version)); /* GCS: its caller sets it */
    return CK_OK;
}

void ck_object_get_range(uint64_t off, uint64_t len, bool *has_range, uint64_t *range_off,
                         uint64_t *range_len)
{
    *has_range = off > 0 || len != CK_STORE_TO_END;
    *range_off = off;
    *range_len = len == CK_STORE_TO_END ? CK_HTTP_TO_END : len;
}

ck_rc ck_object_get_result(struct ck_store *s, ck_rc rc, const struct ck_http_response *resp,
                           uint64_t off, uint64_t len, struct ck_err *err)
{
    if (!rc || resp->status != 416 || len != CK_STORE_TO_END)
        return rc;
    struct ck_store_info info = {0};
    struct ck_err herr;
    bool at_end = resp->total_known
                      ? resp->range_total == off
                      : ck_store_head(s, &info, &herr) == CK_OK && info.exists && info.size == off;
    if (!at_end)
        return rc;
    ck_err_clear(err);
    return CK_OK;
}
