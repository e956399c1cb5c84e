/*
 * store_s3.c - the s3:// backend: opening, HEAD and (ranged) GET; uploads are in
 * s3_upload.c (through part_upload.c) and s3_sweep.c, signing in s3_request.c. See
 * docs/s3.md.
 *
 * Opening reads the settings from the environment (endpoint override, addressing style,
 * multipart tuning) and does no I/O; credentials, region and endpoint are resolved on the
 * first request. A missing object (404, NoSuchKey) is "does not exist", never an error.
 */
#include <stdlib.h>
#include <string.h>

#include "store/object_reply.h"
#include "store/backend.h"
#include "store/s3.h"

static ck_rc s3_head(struct ck_store *s, struct ck_store_info *info, struct ck_err *err)
{
    struct ck_s3_call c = {.method = CK_HTTP_HEAD};
    struct ck_http_response resp;
    ck_rc rc = ck_s3_perform(s->priv, &c, &resp, err);
    return ck_object_head_result(s, rc, &resp, info, err);
}

static ck_rc s3_get(struct ck_store *s, uint64_t off, uint64_t len, const struct ck_sink *sink,
                    struct ck_err *err)
{
    if (len == 0)
        return CK_OK;
    struct ck_s3_call c = {.method = CK_HTTP_GET, .sink = sink};
    ck_object_get_range(off, len, &c.has_range, &c.range_off, &c.range_len);
    struct ck_http_response resp;
    ck_rc rc = ck_s3_perform(s->priv, &c, &resp, err);
    return ck_object_get_result(s, rc, &resp, off, len, err);
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
    .conditional = true,
    .head = s3_head,
    .get = s3_get,
    .put_begin = ck_s3_put_begin,
    .put_write = ck_part_upload_write,
    .put_commit = ck_part_upload_commit,
    .put_abort = ck_part_upload_abort,
    .copy_from = ck_s3_copy_from,
    .del = ck_s3_delete,
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
