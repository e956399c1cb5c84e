/*
 * store_s3.c - the s3:// backend: opening, HEAD and (ranged) GET; uploads are in
 * s3_upload.c and s3_multipart.c, signing in s3_request.c. See docs/s3.md.
 *
 * Opening reads the settings from the environment (endpoint override, addressing style,
 * multipart tuning) and does no I/O; credentials, region and endpoint are resolved on the
 * first request. A missing object (404, NoSuchKey) is "does not exist", never an error.
 */
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"
#include "store/s3.h"

static ck_rc s3_head(struct ck_store *s, struct ck_store_info *info, struct ck_err *err)
{
    struct ck_s3_call c = {.method = CK_HTTP_HEAD};
    struct ck_http_response resp;
    ck_rc rc = ck_s3_perform(s->priv, &c, &resp, err);
    if (rc == CK_ENOTFOUND) {
        ck_err_clear(err);
        return CK_OK;
    }
    if (rc)
        return rc;
    if (!resp.has_content_length)
        return ck_fail(err, CK_ECORRUPT, "HEAD %s: no Content-Length in reply", s->display_uri);
    info->exists = true;
    info->size = resp.content_length;
    memcpy(info->etag, resp.etag, sizeof(info->etag));
    return CK_OK;
}

static ck_rc s3_get(struct ck_store *s, uint64_t off, uint64_t len, const struct ck_sink *sink,
                    struct ck_err *err)
{
    if (len == 0)
        return CK_OK;
    struct ck_s3_call c = {
        .method = CK_HTTP_GET,
        .sink = sink,
        .has_range = off > 0 || len != CK_STORE_TO_END,
        .range_off = off,
        .range_len = len == CK_STORE_TO_END ? CK_HTTP_TO_END : len,
    };
    struct ck_http_response resp;
    ck_rc rc = ck_s3_perform(s->priv, &c, &resp, err);
    /* Reading from the very end of an object: nothing to deliver, not an error. S3 does
     * not always say the size in a 416, so ask for it. */
    if (rc && resp.status == 416 && len == CK_STORE_TO_END) {
        struct ck_store_info info = {0};
        struct ck_err herr;
        bool at_end = resp.total_known
                          ? resp.range_total == off
                          : s3_head(s, &info, &herr) == CK_OK && info.exists && info.size == off;
        if (at_end) {
            ck_err_clear(err);
            return CK_OK;
        }
    }
    return rc;
}

static void s3_destroy(struct ck_store *s)
{
    struct ck_s3 *s3 = s->priv;
    if (s3) {
        if (s3->prov)
            ck_aws_provider_free(s3->prov);
        pthread_mutex_destroy(&s3->lock);
        free(s3->bucket);
        free(s3->key);
        free(s3);
    }
    free(s->display_uri);
    free(s);
}

static const struct ck_store_ops s3_ops = {
    .name = "s3",
    .head = s3_head,
    .get = s3_get,
    .put_begin = ck_s3_put_begin,
    .put_write = ck_s3_put_write,
    .put_commit = ck_s3_put_commit,
    .put_abort = ck_s3_put_abort,
    .destroy = s3_destroy,
};

ck_rc ck_store_s3_open(const struct ck_uri *uri, const struct ck_store_env *env,
                       struct ck_store **out, struct ck_err *err)
{
    struct ck_s3_settings set;
    ck_rc rc = ck_s3_settings_from_env(getenv, &set, err);
    if (rc) {
        ck_err_prefix(err, "%s", uri->display);
        return rc;
    }
    struct ck_store *s = calloc(1, sizeof(*s));
    struct ck_s3 *s3 = calloc(1, sizeof(*s3));
    if (!s || !s3) {
        free(s);
        free(s3);
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    pthread_mutex_init(&s3->lock, NULL);
    s->ops = &s3_ops;
    s->env = env;
    s->priv = s3;
    s->display_uri = strdup(uri->display);
    s3->bucket = strdup(uri->bucket);
    s3->key = strdup(uri->key);
    s3->display = s->display_uri;
    s3->env = env;
    s3->set = set;
    if (!s->display_uri || !s3->bucket || !s3->key) {
        s3_destroy(s);
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    *out = s;
    return CK_OK;
}
