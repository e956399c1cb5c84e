/*
 * azure_upload.c - the Azure store's put_*: Put Blob for a small object, else Put Block
 * for each part (in parallel, through part_upload.c) and Put Block List as the atomic
 * commit. Each block carries Content-MD5, which Azure verifies.
 *
 * Block ids are base64 of "ckptfs-<upload nonce>-<number>", all the same length as Azure
 * requires; the nonce (the first 10 hex digits of the upload's mark, cloud.h) keeps two
 * saves that overlap from committing each other's blocks.
 * A failed upload leaves its blocks uncommitted: they are invisible, never part of the
 * blob, and Azure discards them (after 7 days, or at the next commit of that blob). There
 * is no call to delete uncommitted blocks alone.
 *
 * Create-only puts (store.h): one Put Blob with "If-None-Match: *" (in the Shared Key
 * string to sign), never blocks (part_upload.c's single_only: a larger object fails its
 * commit with CK_EUNSUPPORTED). Azure answers 409 BlobAlreadyExists when a blob is there
 * (412 ConditionNotMet is taken the same way): CK_EEXIST; one after a retry, or a lost
 * reply, is settled by reading the blob back (create_only.h).
 *
 * The Put Blob and the Put Block List set the blob's metadata ckptfsupload to the
 * upload's mark (Azure's metadata names are C# identifiers: no hyphen). A commit that
 * fails in a way that may have been applied (a lost reply, a timeout, a 5xx after the
 * write) is settled by one HEAD: the blob carrying our mark means the commit happened
 * (settle.h). Azure's ETags are opaque, so the mark is what recognises our blob. The Put
 * Block List is a commit request (cloud.h): a slow one is not cut by the stall timeout.
 *
 * Conditional replaces (store.h): the Put Blob or the Put Block List carries If-Match:
 * ETAG (If-None-Match: * for "no blob"), in the string to sign; Azure answers 412
 * ConditionNotMet (409 BlobAlreadyExists for "*"). A failed one is settled by
 * cond_put.c's HEAD, which also knows our blob by its mark.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/uri_encode.h"
#include "store/azure/azure.h"
#include "store/cond_put.h"
#include "store/create_only.h"
#include "store/digest.h"
#include "store/settle.h"
#include "util/buf.h"
#include "util/log.h"

#define ID_RAW_LEN 24 /* "ckptfs-" + 10 hex + "-" + 6 digits */

struct block_result {
    char id[40]; /* base64 block id */
};

static void block_id(const struct ck_cloud_up *u, unsigned n, char out[40])
{
    char raw[ID_RAW_LEN + 1];
    snprintf(raw, sizeof(raw), "ckptfs-%.10s-%06u", u->mark, n);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, ID_RAW_LEN);
}

static ck_rc begin(void *ctx, struct ck_err *err)
{
    (void)ctx;
    (void)err;
    return CK_OK; /* Put Block needs no set-up */
}

static ck_rc send_block(void *ctx, unsigned number, const struct ck_part_body *body, void *result,
                        const atomic_bool *cancel, struct ck_err *err)
{
    struct ck_cloud_up *u = ctx;
    struct block_result *r = result;
    char enc[128], query[200], label[32];
    block_id(u, number, r->id);
    ck_uri_encode(r->id, 0, enc, sizeof(enc));
    snprintf(query, sizeof(query), "comp=block&blockid=%s", enc);
    snprintf(label, sizeof(label), "block %u", number);
    struct ck_cloud_call c = {.query = query, .label = label, .cancel = cancel};
    struct ck_http_response resp;
    return ck_cloud_put_md5(u->c, &c, body, &resp, err);
}

/* A failed commit request (Put Blob, Put Block List) settled at the destination. */
static ck_rc settle(struct ck_cloud_up *u, ck_rc rc, struct ck_err *err)
{
    struct ck_commit_id id = {.mark = u->mark};
    if (rc && u->cond.on)
        return ck_cond_settle(u->store, &u->cond, false, &id, false, rc, err);
    return ck_commit_settle(u->store, &id, rc, err);
}

static ck_rc complete(void *ctx, unsigned n, const void *results, struct ck_err *err)
{
    struct ck_cloud_up *u = ctx;
    const struct block_result *res = results;
    struct ck_buf body;
    ck_buf_init(&body, (size_t)n * 64 + 128);
    ck_rc rc = ck_buf_puts(&body, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for (unsigned i = 0; i < n && !rc; i++)
        rc = ck_buf_printf(&body, "<Latest>%s</Latest>", res[i].id);
    if (!rc)
        rc = ck_buf_puts(&body, "</BlockList>");
    char md5[CK_MD5_B64_LEN];
    if (rc) {
        ck_buf_free(&body);
        return ck_fail(err, rc, "PUT %s (block list): %u blocks: too large", u->c->display, n);
    }
    ck_md5_b64(body.data, body.len, md5);
    struct ck_cloud_call c = {
        .method = CK_HTTP_PUT,
        .query = "comp=blocklist",
        .label = "block list",
        .body = body.data,
        .body_len = body.len,
        .content_md5 = md5,
        .content_type = "application/xml",
        .hdr = {{u->c->ops->mark_header, u->mark}},
        .commit = true,
    };
    ck_cond_values(&u->cond, &c.if_match, &c.if_none_match);
    struct ck_http_response resp;
    rc = ck_cloud_perform(u->c, &c, &resp, err);
    ck_buf_free(&body);
    return settle(u, rc, err);
}

static void abort_upload(void *ctx)
{
    struct ck_cloud_up *u = ctx;
    ck_log_info("upload of %s abandoned: its uncommitted blocks are discarded by Azure",
                u->c->display);
}

/* Whether a refused Put Blob with If-None-Match: * says that a blob is there. */
static bool blob_exists_reply(const struct ck_http_response *resp)
{
    char code[64], msg[200];
    if (resp->status == 412)
        return true;
    return resp->status == 409 &&
           ck_azure_error_code(resp->error_body, resp->error_body_len, resp->captured[0], code,
                               sizeof(code), msg, sizeof(msg)) &&
           strcmp(code, "BlobAlreadyExists") == 0;
}

static ck_rc single(void *ctx, const char *data, size_t len, struct ck_err *err)
{
    struct ck_cloud_up *u = ctx;
    struct ck_cloud_call c = {
        .content_type = "application/octet-stream",
        .hdr = {{"x-ms-blob-type", "BlockBlob"}, {u->c->ops->mark_header, u->mark}},
        .if_none_match = u->if_absent ? "*" : NULL,
    };
    ck_cond_values(&u->cond, &c.if_match, &c.if_none_match);
    struct ck_http_response resp;
    struct ck_part_body body = ck_part_body_mem(data, len);
    ck_rc rc = ck_cloud_put_md5(u->c, &c, &body, &resp, err);
    if (!u->if_absent)
        return settle(u, rc, err);
    struct ck_create_reply r = {.rc = rc,
                                .exists = rc && blob_exists_reply(&resp),
                                .attempts = resp.attempts,
                                .condition = "If-None-Match: *"};
    return ck_create_only_result(u->store, data, len, &r, err);
}

static const struct ck_part_ops azure_part_ops = {
    .begin = begin,
    .send = send_block,
    .complete = complete,
    .abort = abort_upload,
    .single = single,
    .free_ctx = free,
};

ck_rc ck_azure_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                         struct ck_store_upload **out, struct ck_err *err)
{
    struct ck_cloud_up *u;
    ck_rc rc = ck_cloud_up_new(s, opts, sizeof(*u), (void **)&u, err);
    if (rc)
        return rc;
    return ck_cloud_up_start(u, &azure_part_ops, sizeof(struct block_result), out, err);
}
