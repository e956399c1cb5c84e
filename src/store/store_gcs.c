/*
 * store_gcs.c - the gs:// backend: opening, HEAD and (ranged) GET over GCS's XML API;
 * uploads are in gcs_upload.c, requests and credentials in gcs_request.c. See docs/gcs.md.
 *
 * A missing object (404) is "does not exist", never an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/object_reply.h"
#include "store/backend.h"
#include "store/gcs.h"

static ck_rc gcs_head(struct ck_store *s, struct ck_store_info *info, struct ck_err *err)
{
    struct ck_gcs_call c = {.method = CK_HTTP_HEAD, .capture_header = "x-goog-generation"};
    struct ck_http_response resp;
    ck_rc rc = ck_gcs_perform(s->priv, &c, &resp, err);
    rc = ck_object_head_result(s, rc, &resp, info, err);
    if (!rc && info->exists) /* preconditions name the generation (x-goog-if-generation-match) */
        snprintf(info->version, sizeof(info->version), "%.*s", (int)sizeof(info->version) - 1,
                 resp.captured);
    return rc;
}

static ck_rc gcs_get(struct ck_store *s, uint64_t off, uint64_t len, const struct ck_sink *sink,
                     struct ck_err *err)
{
    if (len == 0)
        return CK_OK;
    struct ck_gcs_call c = {.method = CK_HTTP_GET, .sink = sink};
    ck_object_get_range(off, len, &c.has_range, &c.range_off, &c.range_len);
    struct ck_http_response resp;
    ck_rc rc = ck_gcs_perform(s->priv, &c, &resp, err);
    return ck_object_get_result(s, rc, &resp, off, len, err);
}

static void gcs_destroy(struct ck_store *s)
{
    struct ck_gcs *g = s->priv;
    if (g) {
        ck_gcp_provider_free(g->prov);
        pthread_mutex_destroy(&g->lock);
        free(g->bucket);
        free(g->key);
        free(g);
    }
    free(s->display_uri);
    free(s);
}

static const struct ck_store_ops gcs_ops = {
    .name = "gcs",
    .conditional = true,
    .head = gcs_head,
    .get = gcs_get,
    .put_begin = ck_gcs_put_begin,
    .copy_from = ck_gcs_copy_from,
    .del = ck_gcs_delete,
    .put_write = ck_part_upload_write,
    .put_commit = ck_part_upload_commit,
    .put_abort = ck_part_upload_abort,
    .destroy = gcs_destroy,
};

ck_rc ck_store_gcs_open(const struct ck_uri *uri, const struct ck_store_env *env,
                        struct ck_store **out, struct ck_err *err)
{
    struct ck_store *s = calloc(1, sizeof(*s));
    struct ck_gcs *g = calloc(1, sizeof(*g));
    if (!s || !g) {
        free(s);
        free(g);
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    pthread_mutex_init(&g->lock, NULL);
    s->ops = &gcs_ops;
    s->env = env;
    s->priv = g;
    s->display_uri = strdup(uri->display);
    g->bucket = strdup(uri->bucket);
    g->key = strdup(uri->key);
    g->display = s->display_uri;
    g->env = env;
    if (!s->display_uri || !g->bucket || !g->key) {
        gcs_destroy(s);
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    ck_rc rc = ck_gcs_configure(g, err);
    if (rc) {
        ck_err_prefix(err, "%s", uri->display);
        gcs_destroy(s);
        return rc;
    }
    *out = s;
    return CK_OK;
}
