/*
 * gcs_upload.c - the GCS store's put_*: one PUT for a small object, else an XML API
 * multipart upload (initiate, parts in parallel through part_upload.c, complete; abort on
 * any failure), the same protocol as S3's, whose initiate, complete and abort requests it
 * shares (s3_mpu.c). Every part and single PUT carries Content-MD5, which GCS verifies.
 * The object appears at complete only.
 *
 * After every save, whatever its outcome (single PUT, complete, or abort), ck_mpu_sweep
 * (s3_sweep.c, shared with S3) lists the key's open uploads (prefix=KEY) and aborts those
 * that are not this save's: an upload left by a daemon killed mid-save, or by a retried
 * initiate whose first reply was lost.
 *
 * Create-only puts (store.h): one PUT with "x-goog-if-generation-match: 0", the XML API's
 * form of the JSON API's ifGenerationMatch=0 (the XML API takes it as a header, not as a
 * query parameter), never a multipart upload (part_upload.c's single_only: a larger
 * object fails its commit with CK_EUNSUPPORTED), and no sweep. GCS answers 412
 * PreconditionFailed when a live object is there: CK_EEXIST; a 412 after a retry or a
 * lost reply is settled by reading the object back (create_only.h).
 *
 * The single PUT and the initiate (whose metadata the completed object gets) set the
 * object's metadata x-goog-meta-ckptfs-upload to the upload's mark (cloud.h). A commit
 * (the single PUT or the complete) that fails in a way that may have been applied (a lost
 * reply, a timeout, a 5xx after the write; a retried complete then meets NoSuchUpload) is
 * settled by one HEAD: the object carrying our mark, or a single PUT's MD5 as its ETag,
 * means the commit happened (settle.h).
 *
 * Conditional replaces (store.h): the single PUT or the complete carries
 * x-goog-if-generation-match: GENERATION (0 for "no object"); a failed one is settled by
 * cond_put.c's HEAD, which also knows our object by its mark.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cond_put.h"
#include "store/create_only.h"
#include "store/digest.h"
#include "store/gcs/gcs.h"
#include "store/s3_mpu.h"
#include "store/settle.h"

struct part_result {
    char etag[128]; /* first: see ck_mpu_complete */
};

static const char *const step_labels[CK_MPU_STEPS] = {
    "initiate multipart upload", "complete multipart upload", "abort multipart upload",
    "list multipart uploads", "abort a stale multipart upload"};

/* A conditional replace's precondition value, or NULL. */
static const char *cond_value(const struct ck_cond *cond)
{
    return !cond->on ? NULL : cond->version[0] ? cond->version : "0";
}

/* x-goog-if-generation-match: value (0: no live object), when value is not NULL. */
static void set_generation(struct ck_cloud_call *c, const char *value)
{
    if (value)
        ck_cloud_add_header(c, "x-goog-if-generation-match", value);
}

/* The object's metadata: the upload's mark. */
static void set_mark(struct ck_cloud_call *c, const struct ck_mpu_up *u)
{
    ck_cloud_add_header(c, u->up.c->ops->mark_header, u->up.mark);
}

/* GCS's own part of the multipart requests: the initiate names the object's metadata,
 * the complete carries a conditional replace's precondition. */
static void mpu_adjust(void *ctx, enum ck_mpu_step step, struct ck_cloud_call *c)
{
    struct ck_mpu_up *u = ctx;
    if (step == CK_MPU_INITIATE)
        set_mark(c, u);
    if (step == CK_MPU_COMPLETE)
        set_generation(c, cond_value(&u->up.cond));
}

static ck_rc send_part(void *ctx, unsigned number, const struct ck_part_body *body, void *result,
                       const atomic_bool *cancel, struct ck_err *err)
{
    struct ck_mpu_up *u = ctx;
    struct part_result *r = result;
    char query[sizeof(u->mpu.id_query) + 32], label[32];
    snprintf(query, sizeof(query), "partNumber=%u&%s", number, u->mpu.id_query);
    snprintf(label, sizeof(label), "part %u", number);
    struct ck_cloud_call c = {.query = query, .label = label, .cancel = cancel};
    struct ck_http_response resp;
    ck_rc rc = ck_cloud_put_md5(u->up.c, &c, body, &resp, err);
    if (!rc && !resp.etag[0])
        rc = ck_fail(err, CK_ECORRUPT, "PUT %s (%s): reply has no ETag", u->up.c->display, label);
    if (!rc)
        memcpy(r->etag, resp.etag, sizeof(r->etag));
    return rc;
}

/* A failed commit request (single PUT, complete) settled at the destination; etag is the
 * new object's if known. */
static ck_rc settle(struct ck_mpu_up *u, const char *etag, ck_rc rc, struct ck_err *err)
{
    struct ck_commit_id id = {.etag = etag, .mark = u->up.mark};
    if (rc && u->up.cond.on)
        return ck_cond_settle(u->up.store, &u->up.cond, true, &id, false, rc, err);
    return ck_commit_settle(u->up.store, &id, rc, err);
}

/* Complete, then the sweep; on failure part_upload.c calls ck_mpu_up_abort next, which sweeps. */
static ck_rc complete(void *ctx, unsigned n, const void *results, struct ck_err *err)
{
    struct ck_mpu_up *u = ctx;
    ck_rc rc = ck_mpu_complete(&u->mpu, n, results, sizeof(struct part_result), 0, NULL, 0, err);
    rc = settle(u, NULL, rc, err);
    if (!rc)
        ck_mpu_sweep(&u->mpu);
    return rc;
}

/* The whole object in one PUT, then the sweep for leftovers of an interrupted save. */
static ck_rc single(void *ctx, const char *data, size_t len, struct ck_err *err)
{
    struct ck_mpu_up *u = ctx;
    struct ck_cloud_call c = {.content_type = "application/octet-stream"};
    set_generation(&c, u->up.if_absent ? "0" : cond_value(&u->up.cond));
    set_mark(&c, u);
    struct ck_http_response resp;
    struct ck_part_body body = ck_part_body_mem(data, len);
    ck_rc rc = ck_cloud_put_md5(u->up.c, &c, &body, &resp, err);
    char want[CK_ETAG_MD5_MAX];
    if (rc && !u->up.if_absent)
        rc = settle(u, ck_s3_etag_md5(data, len, want) ? want : NULL, rc, err);
    if (u->up.if_absent) {
        struct ck_create_reply r = {.rc = rc,
                                    .exists = rc && resp.status == 412,
                                    .attempts = resp.attempts,
                                    .condition = "x-goog-if-generation-match: 0"};
        return ck_create_only_result(u->up.store, data, len, &r, err);
    }
    ck_mpu_sweep(&u->mpu);
    return rc;
}

static const struct ck_part_ops gcs_part_ops = {CK_MPU_PART_OPS, .send = send_part,
                                                .complete = complete, .single = single};

const struct ck_mpu_proto ck_gcs_mpu_proto = {.labels = step_labels,
                                              .initiate_query = "uploads",
                                              .list_prefix = true,
                                              .adjust = mpu_adjust,
                                              .part_ops = &gcs_part_ops,
                                              .result_size = sizeof(struct part_result)};
