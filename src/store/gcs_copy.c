/*
 * gcs_copy.c - server-side copy for the GCS store (XML API: a PUT of the destination
 * object with x-goog-copy-source), used by carry forward (restore/chain.h) through
 * ck_store_copy: the bytes never leave the service.
 *
 * Only between buckets on the same endpoint (the same credentials apply); otherwise
 * CK_EUNSUPPORTED and the caller streams the object. An <Error> in a 2xx reply is a
 * failure. The destination appears whole or not at all, as with every GCS write.
 */
#include <stdio.h>
#include <string.h>

#include "auth/sigv4.h"
#include "store/gcs.h"
#include "util/buf.h"

#define REPLY_MAX (64 * 1024)

ck_rc ck_gcs_copy_from(struct ck_store *dst, struct ck_store *src, uint64_t size,
                       struct ck_err *err)
{
    (void)size; /* GCS copies objects of any size within a location */
    struct ck_gcs *d = dst->priv, *s = src->priv;
    if (strcmp(d->endpoint, s->endpoint) != 0 || d->anonymous != s->anonymous)
        return CK_EUNSUPPORTED;
    char bucket[3 * 222 + 1], key[3 * 1024 + 1], source[sizeof(bucket) + sizeof(key) + 2];
    if (ck_sigv4_uri_encode(s->bucket, 0, bucket, sizeof(bucket)) != CK_OK ||
        ck_sigv4_uri_encode(s->key, 1, key, sizeof(key)) != CK_OK)
        return CK_EUNSUPPORTED; /* names too long to send as a header: stream instead */
    snprintf(source, sizeof(source), "/%s/%s", bucket, key);
    struct ck_buf reply;
    ck_buf_init(&reply, REPLY_MAX);
    struct ck_gcs_call c = {
        .method = CK_HTTP_PUT,
        .query = "",
        .label = "copy",
        .copy_source = source,
        .reply_body = &reply,
        .error_in_2xx = true,
    };
    struct ck_http_response resp;
    ck_rc rc = ck_gcs_perform(d, &c, &resp, err);
    ck_buf_free(&reply);
    return rc;
}
