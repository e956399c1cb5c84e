/*
 * store_azure.c - the Azure Blob backend (az://, abfs[s]://, https://ACCOUNT.blob.core.
 * windows.net/): its store ops. Get Blob Properties (HEAD) and ranged Get Blob are the
 * cloud core's (cloud.c); uploads are in azure_upload.c, settings, URLs and credentials in
 * azure_request.c. See docs/azure.md.
 *
 * A missing blob (404 BlobNotFound) is "does not exist", never an error; a missing
 * container is an error (404 ContainerNotFound on HEAD has no body, so it also reads as
 * "no blob": the first save then fails naming the container).
 */
#include "store/azure/azure.h"
#include "store/backend.h"

/* Delete Blob (a 404 is CK_ENOTFOUND: ck_store_delete takes it for done). Uncommitted blocks of a
 * blob expire by themselves (there is no call to remove them alone). */
static ck_rc azure_delete(struct ck_store *s, struct ck_err *err)
{
    struct ck_cloud_call c = {.method = CK_HTTP_DELETE};
    struct ck_http_response resp;
    return ck_cloud_perform(ck_cloud_of(s), &c, &resp, err);
}

static const struct ck_store_ops azure_ops = {
    .name = "azure",
    .conditional = true,
    .del = azure_delete,
    .head = ck_cloud_head,
    .get = ck_cloud_get,
    .put_begin = ck_azure_put_begin,
    .put_write = ck_part_upload_write,
    .put_commit = ck_part_upload_commit,
    .put_abort = ck_part_upload_abort,
    .destroy = ck_cloud_destroy,
};

ck_rc ck_store_azure_open(const struct ck_uri *uri, const struct ck_store_env *env,
                          struct ck_store **out, struct ck_err *err)
{
    return ck_cloud_open(&ck_azure_cloud_ops, &azure_ops, uri, env, out, err);
}
