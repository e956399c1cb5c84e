/*
 * s3_copy.c - server-side copy for the S3 store (CopyObject), used by carry forward
 * (restore/chain.h) through ck_store_copy: the bytes never leave the service.
 *
 * Only between buckets on the same endpoint, and only up to CopyObject's 5 GiB limit;
 * otherwise CK_EUNSUPPORTED and the caller streams the object. CopyObject may answer
 * "200 OK" with an <Error> body after it started copying: that is a failure. The object
 * appears whole or not at all, as with every S3 write.
 */
#include <stdio.h>
#include <string.h>

#include "auth/sigv4.h"
#include "store/s3.h"
#include "util/buf.h"

#define COPY_MAX  (5ull << 30) /* CopyObject's limit */
#define REPLY_MAX (64 * 1024)

static bool same_endpoint(const struct ck_s3 *a, const struct ck_s3 *b)
{
    return a->ep.https == b->ep.https && strcmp(a->ep.host, b->ep.host) == 0 &&
           strcmp(a->ep.base_path, b->ep.base_path) == 0 && strcmp(a->region, b->region) == 0;
}

ck_rc ck_s3_copy_from(struct ck_store *dst, struct ck_store *src, uint64_t size,
                      struct ck_err *err)
{
    struct ck_s3 *d = dst->priv, *s = src->priv;
    if (size > COPY_MAX)
        return CK_EUNSUPPORTED;
    ck_rc rc = ck_s3_ready(d, err);
    if (!rc)
        rc = ck_s3_ready(s, err);
    if (rc)
        return rc;
    if (!same_endpoint(d, s))
        return CK_EUNSUPPORTED;
    char bucket[3 * 64 + 1], key[3 * 1024 + 1], source[sizeof(bucket) + sizeof(key) + 2];
    if (ck_sigv4_uri_encode(s->bucket, 0, bucket, sizeof(bucket)) != CK_OK ||
        ck_sigv4_uri_encode(s->key, 1, key, sizeof(key)) != CK_OK)
        return CK_EUNSUPPORTED; /* names too long to send as a header: stream instead */
    snprintf(source, sizeof(source), "/%s/%s", bucket, key);
    struct ck_buf reply;
    ck_buf_init(&reply, REPLY_MAX);
    struct ck_s3_call c = {
        .method = CK_HTTP_PUT,
        .label = "(copy)",
        .amz_name = "x-amz-copy-source",
        .amz_value = source,
        .reply_body = &reply,
        .error_in_2xx = true,
    };
    struct ck_http_response resp;
    rc = ck_s3_perform(d, &c, &resp, err);
    ck_buf_free(&reply);
    return rc;
}
