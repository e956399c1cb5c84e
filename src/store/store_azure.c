/*
 * store_azure.c - the Azure Blob backend (az://, abfs[s]://, https://ACCOUNT.blob.core.
 * windows.net/): opening, Get Blob Properties (HEAD) and ranged Get Blob; uploads are in
 * azure_upload.c, requests and credentials in azure_request.c. See docs/azure.md.
 *
 * A missing blob (404 BlobNotFound) is "does not exist", never an error; a missing
 * container is an error (404 ContainerNotFound on HEAD has no body, so it also reads as
 * "no blob": the first save then fails naming the container).
 */
#include <stdlib.h>
#include <string.h>

#include "store/object_reply.h"
#include "store/azure.h"
#include "store/backend.h"

static ck_rc az_head(struct ck_store *s, struct ck_store_info *info, struct ck_err *err)
{
    struct ck_azure_call c = {.method = CK_HTTP_HEAD};
    struct ck_http_response resp;
    ck_rc rc = ck_azure_perform(s->priv, &c, &resp, err);
    return ck_object_head_result(s, rc, &resp, info, err);
}

static ck_rc az_get(struct ck_store *s, uint64_t off, uint64_t len, const struct ck_sink *sink,
                    struct ck_err *err)
{
    if (len == 0)
        return CK_OK;
    struct ck_azure_call c = {.method = CK_HTTP_GET, .sink = sink};
    ck_object_get_range(off, len, &c.has_range, &c.range_off, &c.range_len);
    struct ck_http_response resp;
    ck_rc rc = ck_azure_perform(s->priv, &c, &resp, err);
    return ck_object_get_result(s, rc, &resp, off, len, err);
}

/* Delete Blob (a 404 is CK_ENOTFOUND: ck_store_delete takes it for done). Uncommitted blocks of a
 * blob expire by themselves (there is no call to remove them alone). */
static ck_rc azure_delete(struct ck_store *s, struct ck_err *err)
{
    struct ck_azure_call c = {.method = CK_HTTP_DELETE};
    struct ck_http_response resp;
    return ck_azure_perform(s->priv, &c, &resp, err);
}

static void az_destroy(struct ck_store *s)
{
    struct ck_azure *az = s->priv;
    if (az) {
        ck_azure_creds_free(az->creds);
        pthread_mutex_destroy(&az->lock);
        free(az->container);
        free(az->key);
        free(az->account);
        if (az->uri_sas)
            explicit_bzero(az->uri_sas, strlen(az->uri_sas));
        free(az->uri_sas);
        free(az);
    }
    free(s->display_uri);
    free(s);
}

static const struct ck_store_ops azure_ops = {
    .name = "azure",
    .conditional = true,
    .del = azure_delete,
    .head = az_head,
    .get = az_get,
    .put_begin = ck_azure_put_begin,
    .put_write = ck_part_upload_write,
    .put_commit = ck_part_upload_commit,
    .put_abort = ck_part_upload_abort,
    .destroy = az_destroy,
};

static char *dup_or_null(const char *s, bool *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = true;
    return d;
}

ck_rc ck_store_azure_open(const struct ck_uri *uri, const struct ck_store_env *env,
                          struct ck_store **out, struct ck_err *err)
{
    struct ck_store *s = calloc(1, sizeof(*s));
    struct ck_azure *az = calloc(1, sizeof(*az));
    if (!s || !az) {
        free(s);
        free(az);
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    pthread_mutex_init(&az->lock, NULL);
    s->ops = &azure_ops;
    s->env = env;
    s->priv = az;
    bool oom = false;
    s->display_uri = dup_or_null(uri->display, &oom);
    az->container = dup_or_null(uri->bucket, &oom);
    az->key = dup_or_null(uri->key, &oom);
    az->account = dup_or_null(uri->account, &oom);
    az->uri_sas = dup_or_null(uri->sas, &oom);
    az->display = s->display_uri;
    az->env = env;
    if (oom) {
        az_destroy(s);
        return ck_fail(err, CK_ENOMEM, "opening %s: out of memory", uri->display);
    }
    ck_rc rc = ck_azure_configure(az, err);
    if (rc) {
        ck_err_prefix(err, "%s", uri->display);
        az_destroy(s);
        return rc;
    }
    *out = s;
    return CK_OK;
}
