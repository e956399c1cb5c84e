/*
 * s3_upload.c - the S3 store's put_*: one PUT for a small object, else a multipart upload
 * (CreateMultipartUpload, UploadPart in parallel through part_upload.c,
 * CompleteMultipartUpload; AbortMultipartUpload on any failure). This file supplies the
 * S3 requests (struct ck_part_ops); part_upload.c does the buffering, the parts in flight,
 * the back-pressure and the checks that the parts are 1..N and add up to the bytes
 * written. Part n has ck_s3_part_size(base, n) bytes (the last one fewer).
 *
 * Integrity: every part and the single PUT are signed by their SHA-256 (the payload hash,
 * which S3 verifies). The single PUT carries it as x-amz-checksum-sha256 too. A multipart
 * upload asks for CRC32 checksums of type FULL_OBJECT (S3 has that type for CRC32, CRC32C
 * and CRC64NVME, not SHA-256): each part carries x-amz-checksum-crc32, a checksum the
 * server returns must equal the one sent (checked per part and again before Complete),
 * Complete lists each part's ETag and ChecksumCRC32 and names the whole object's CRC-32
 * (x-amz-checksum-crc32, joined from the parts' without reading anything again), which S3
 * checks against what it assembled; where a copied part's CRC-32 is not given by the
 * service (moto, radosgw) the whole object's is unknown and not named. After Complete, a
 * HEAD asks for the object's checksum (x-amz-checksum-mode): a store that reports a
 * FULL_OBJECT CRC-32 other than the one of the bytes sent fails the save (radosgw reports
 * none). A "200 OK" carrying <Error> is a failure and a multipart ETag "...-N" must name
 * the number of parts sent.
 *
 * Ambiguous commits: a CompleteMultipartUpload (or single PUT) whose reply is lost, cut,
 * or an error may still have been applied (a retry then meets a finished upload and gets
 * 404 NoSuchUpload or 500). Before such a commit is called failed (and the upload
 * aborted), the key is HEADed: if its ETag is the one S3 computes for exactly the bytes
 * sent (the MD5 of the part MD5s and "-N", or the MD5 of a single PUT's body), the commit
 * happened and the save succeeded; otherwise the old object is still there and the
 * failure stands. A Complete is never cut by the short no-progress timeout
 * (CK_COMMIT_STALL_S).
 *
 * After every save, whatever its outcome (single PUT, Complete, or abort), ck_mpu_sweep
 * (s3_sweep.c, shared with GCS) aborts any other open upload of the key. The object
 * appears at commit only; abort and every failure leave the old object untouched.
 *
 * Create-only puts (store.h): one PUT with "If-None-Match: *" (signed), never a multipart
 * upload (part_upload.c's single_only: a larger object fails its commit with
 * CK_EUNSUPPORTED), and no sweep (a create-only put starts no multipart upload, and the
 * key may be another writer's to upload). S3 answers 412 PreconditionFailed when an
 * object is there: CK_EEXIST. 409 ConditionalRequestConflict (a conflicting write of the
 * key was in progress; nothing of ours was applied) is sent again after a backoff under
 * the store's retry policy, so that the answer says who won; when the budget is spent the
 * 409 is the failure (CK_EREMOTE). The ambiguous cases (a 412 after a retry, a lost
 * reply) are settled by reading the object back, not by its ETag (create_only.h): a 412
 * is never taken for success unless the object there holds exactly our bytes, after a
 * retry. The store must honour If-None-Match on PUT (AWS since 2024, moto, radosgw; see
 * docs/s3.md): one that ignores it overwrites.
 *
 * The single PUT and CreateMultipartUpload set the object's metadata
 * x-amz-meta-ckptfs-upload to the upload's mark (cloud.h). A commit that fails in a way
 * that may have been applied is settled by one HEAD (settle.h): our object is known by
 * the ETag it must have (MD5-based) or by the mark.
 *
 * Conditional replaces (store.h): the single PUT or the CompleteMultipartUpload carries
 * If-Match: ETAG (If-None-Match: * for "no object"), signed; a failed one is settled by
 * cond_put.c's HEAD, which knows our own object the same way. AWS honours both
 * headers on both requests; moto only If-None-Match on Complete; radosgw refuses every
 * If-Match on PUT (412 for the current ETag too: then, the HEAD having found the expected
 * object, the PUT is sent again without it, with a warning) and ignores it on Complete
 * (docs/s3.md): on radosgw a conditional replace is a plain one.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sigv4.h"
#include "store/cond_put.h"
#include "store/create_only.h"
#include "store/digest.h"
#include "store/s3/s3.h"
#include "store/s3_mpu.h"
#include "util/clock.h"
#include "util/log.h"

/* The checksum of a multipart upload (the top comment says why CRC32): its header on
 * parts, Complete and HEAD, and its element in CopyPartResult and Complete's part list. */
#define SUM_HEADER  "x-amz-checksum-crc32"
#define SUM_ELEMENT "ChecksumCRC32"

_Static_assert(CK_S3_MAX_PAR <= CK_PART_MAX_PAR, "S3 parallelism beyond part_upload's pool");

struct part_result {
    char etag[128];    /* first: see ck_mpu_complete */
    char sent_b64[48]; /* its CRC-32 as sent; a copied part: the service's ChecksumCRC32,
                          "" if it gave none */
    char got_b64[48];  /* the server's x-amz-checksum-crc32, "" if it sent none */
    bool copied;       /* made by UploadPartCopy */
    bool have_crc;     /* crc is known (sent, or given for a copied part) */
    uint32_t crc;      /* its CRC-32 */
    uint64_t len;      /* its bytes */
};

_Static_assert(offsetof(struct part_result, etag) == 0, "ck_mpu_complete wants the ETag first");

static const char *const step_labels[CK_MPU_STEPS] = {
    "CreateMultipartUpload", "CompleteMultipartUpload", "AbortMultipartUpload",
    "ListMultipartUploads", "AbortMultipartUpload of a stale upload"};

/* S3's own part of the multipart requests: CreateMultipartUpload asks for full-object
 * CRC32 checksums and names the object's metadata (the upload's mark);
 * CompleteMultipartUpload names the whole object's CRC-32 when it is known and carries a
 * conditional replace's precondition. */
static void mpu_adjust(void *ctx, enum ck_mpu_step step, struct ck_cloud_call *c)
{
    struct ck_mpu_up *u = ctx;
    if (step == CK_MPU_INITIATE) {
        ck_cloud_add_header(c, "x-amz-checksum-algorithm", "CRC32");
        ck_cloud_add_header(c, "x-amz-checksum-type", "FULL_OBJECT");
        ck_cloud_add_header(c, u->up.c->ops->mark_header, u->up.mark);
    }
    if (step == CK_MPU_COMPLETE) {
        if (u->full_sum_b64[0]) {
            ck_cloud_add_header(c, SUM_HEADER, u->full_sum_b64);
            ck_cloud_add_header(c, "x-amz-checksum-type", "FULL_OBJECT");
        }
        ck_cond_values(&u->up.cond, &c->if_match, &c->if_none_match);
    }
}

/* UploadPart, its SHA-256 signed as the payload hash, its CRC-32 sent as
 * x-amz-checksum-crc32 (one pass over the bytes for both). */
static ck_rc send_part(void *ctx, unsigned number, const struct ck_part_body *body, void *result,
                       const atomic_bool *cancel, struct ck_err *err)
{
    struct ck_mpu_up *u = ctx;
    struct part_result *r = result;
    char hex[CK_SHA256_HEX_LEN + 1], query[sizeof(u->mpu.id_query) + 32], label[32];
    ck_rc rc = ck_part_body_sha256(body, hex, NULL, &r->crc, err);
    if (rc)
        return rc;
    ck_crc32_b64(r->crc, r->sent_b64);
    r->have_crc = true;
    r->len = body->len;
    snprintf(query, sizeof(query), "partNumber=%u&%s", number, u->mpu.id_query);
    snprintf(label, sizeof(label), "part %u", number);
    struct ck_cloud_call c = {
        .method = CK_HTTP_PUT,
        .query = query,
        .label = label,
        .body_len = body->len,
        .body_src = body,
        .body_sha256 = hex,
        .hdr = {{SUM_HEADER, r->sent_b64}},
        .capture = {SUM_HEADER},
        .cancel = cancel,
    };
    struct ck_http_response resp;
    rc = ck_cloud_perform(u->up.c, &c, &resp, err);
    if (rc)
        return rc;
    if (!resp.etag[0])
        return ck_fail(err, CK_ECORRUPT, "PUT %s (%s): reply has no ETag", u->up.c->display, label);
    const char *got = resp.captured[0];
    if (strlen(got) < sizeof(r->got_b64))
        memcpy(r->got_b64, got, strlen(got) + 1);
    if (got[0] && strcmp(got, r->sent_b64) != 0)
        return ck_fail(err, CK_ECORRUPT, "PUT %s (%s): server's CRC-32 differs from the one sent",
                       u->up.c->display, label);
    memcpy(r->etag, resp.etag, sizeof(r->etag));
    return CK_OK;
}

/* A refused UploadPartCopy: 412 means the source is no longer the version named (AWS
 * honours x-amz-copy-source-if-match; moto and radosgw ignore it, part_upload.c checks
 * again before Complete); any other 4xx (416 for a range past a shorter new object, 404)
 * is "the source changed" too when a HEAD shows it did. */
static ck_rc copy_refused(const struct ck_copy_src *src, ck_rc rc,
                          const struct ck_http_response *resp, struct ck_err *err)
{
    if (!rc || resp->status < 400 || resp->status > 499)
        return rc;
    if (resp->status == 412)
        return ck_fail(err, CK_EEXIST,
                       "copying from %s: the source changed (version %s, another now)",
                       src->store->display_uri, src->version);
    struct ck_err e;
    ck_err_clear(&e);
    if (ck_store_check_source(src, &e) != CK_EEXIST)
        return rc;
    *err = e;
    return CK_EEXIST;
}

/* UploadPartCopy of src's range as part number; its ETag and the checksum S3 computed
 * (listed at Complete) come in the CopyPartResult. */
static ck_rc copy_part(void *ctx, unsigned number, const struct ck_copy_src *src, void *result,
                       const atomic_bool *cancel, struct ck_err *err)
{
    struct ck_mpu_up *u = ctx;
    struct part_result *r = result;
    const struct ck_cloud *s = ck_cloud_of(src->store);
    char source[CK_MPU_COPY_SOURCE_MAX], range[64], query[sizeof(u->mpu.id_query) + 32], label[48];
    if (!ck_mpu_copy_source(s->bucket, s->key, source, sizeof(source)))
        return ck_fail(err, CK_EINVAL, "%s: source name too long", src->store->display_uri);
    snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)src->off,
             (unsigned long long)(src->off + src->len - 1));
    snprintf(query, sizeof(query), "partNumber=%u&%s", number, u->mpu.id_query);
    snprintf(label, sizeof(label), "part %u, copied", number);
    struct ck_buf reply;
    ck_buf_init(&reply, 64 * 1024);
    struct ck_cloud_call c = {
        .method = CK_HTTP_PUT,
        .query = query,
        .label = label,
        .hdr = {{"x-amz-copy-source", source},
                {"x-amz-copy-source-range", range},
                {"x-amz-copy-source-if-match", src->version}},
        .reply_body = &reply,
        .error_in_2xx = true,
        .cancel = cancel,
    };
    struct ck_http_response resp;
    ck_rc rc = copy_refused(src, ck_cloud_perform(u->up.c, &c, &resp, err), &resp, err);
    if (!rc) {
        char what[600];
        snprintf(what, sizeof(what), "PUT %s (%s)", u->up.c->display, label);
        rc = ck_s3_xml_copy_part(reply.data, reply.len, SUM_ELEMENT, r->etag, sizeof(r->etag),
                                 r->sent_b64, sizeof(r->sent_b64), what, err);
    }
    ck_buf_free(&reply);
    r->copied = !rc;
    r->have_crc = !rc && ck_crc32_of_b64(r->sent_b64, &r->crc);
    r->len = src->len;
    return rc;
}

/* The part count in a multipart ETag ("...-N"), 0 if it has none. */
static unsigned etag_parts(const char *etag)
{
    const char *dash = strrchr(etag, '-');
    return dash ? (unsigned)strtoul(dash + 1, NULL, 10) : 0;
}

/* Every part has an ETag and the checksum it was sent with (part_upload.c has checked
 * that they are 1..n and hold every byte written). */
static ck_rc verify_parts(const struct ck_mpu_up *u, unsigned n, const struct part_result *res,
                          struct ck_err *err)
{
    if (n == 0)
        return ck_fail(err, CK_EINVAL, "%s: multipart upload without parts", u->up.c->display);
    for (unsigned i = 0; i < n; i++) {
        if (!res[i].etag[0] || (!res[i].sent_b64[0] && !res[i].copied))
            return ck_fail(err, CK_EIO, "%s: part %u of %u was not uploaded", u->up.c->display,
                           i + 1, n);
        if (res[i].got_b64[0] && strcmp(res[i].got_b64, res[i].sent_b64) != 0)
            return ck_fail(err, CK_ECORRUPT, "%s: checksum of part %u differs", u->up.c->display,
                           i + 1);
    }
    return CK_OK;
}

/* The ETag of the object Complete makes of these n parts (false if the parts' ETags are
 * not MD5s, as with SSE-KMS: then an ambiguous Complete stays a failure). */
static bool multipart_etag(unsigned n, const struct part_result *res, char *out)
{
    const char **tags = calloc(n ? n : 1, sizeof(*tags));
    if (!tags)
        return false;
    for (unsigned i = 0; i < n; i++)
        tags[i] = res[i].etag;
    bool ok = ck_s3_etag_multipart(tags, n, out);
    free(tags);
    return ok;
}

/* The whole object's CRC-32 joined from its n parts' into out (base64), "" if a part's is
 * not known (a copied part the service gave none for). */
static void whole_crc(unsigned n, const struct part_result *res, char out[CK_CRC32_B64_LEN])
{
    uint32_t crc = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < n; i++) {
        if (!res[i].have_crc)
            return;
        crc = ck_crc32_join(crc, res[i].crc, res[i].len);
    }
    ck_crc32_b64(crc, out);
}

/* The store's own checksum of the object it made (a HEAD with x-amz-checksum-mode): a
 * FULL_OBJECT CRC-32 other than want (the bytes sent) is CK_ECORRUPT; a store that
 * reports none, or one of another type, is not checked, nor is an object whose ETag is
 * not made_etag (Complete's): another writer's object replaced ours since, and its
 * checksum says nothing about the bytes we sent. */
static ck_rc check_whole(struct ck_mpu_up *u, const char *made_etag, const char *want,
                         struct ck_err *err)
{
    struct ck_cloud_call c = {
        .method = CK_HTTP_HEAD,
        .label = "checksum",
        .hdr = {{"x-amz-checksum-mode", "ENABLED"}},
        .capture = {SUM_HEADER, "x-amz-checksum-type"},
    };
    struct ck_http_response resp;
    ck_rc rc = ck_cloud_perform(u->up.c, &c, &resp, err);
    if (rc) { /* committed already: a HEAD that fails leaves the save as it was */
        ck_log_warn("%s (the object's checksum was not checked)", err->msg);
        ck_err_clear(err);
        return CK_OK;
    }
    const char *got = resp.captured[0], *type = resp.captured[1];
    if (!got[0] || (type[0] && strcmp(type, "FULL_OBJECT") != 0))
        return CK_OK;
    if (made_etag[0] && resp.etag[0] && !ck_etag_equal(resp.etag, made_etag)) {
        ck_log_warn("%s: replaced since our CompleteMultipartUpload (ETag %s, ours %s): its "
                    "checksum was not checked",
                    u->up.c->display, resp.etag, made_etag);
        return CK_OK;
    }
    if (strcmp(got, want) != 0)
        return ck_fail(err, CK_ECORRUPT,
                       "%s: the store's CRC-32 of the object (%s) is not the one of the bytes "
                       "sent (%s)",
                       u->up.c->display, got, want);
    return CK_OK;
}

/* Checks the parts, then CompleteMultipartUpload, whose multipart ETag "...-N" must name
 * the parts sent, then the store's checksum of the object. On failure part_upload.c calls
 * ck_mpu_up_abort next, which sweeps. */
static ck_rc complete(void *ctx, unsigned n, const void *results, struct ck_err *err)
{
    struct ck_mpu_up *u = ctx;
    char etag[128] = "", want[CK_ETAG_MD5_MAX];
    ck_rc rc = verify_parts(u, n, results, err);
    if (rc)
        return rc;
    whole_crc(n, results, u->full_sum_b64);
    rc = ck_mpu_complete(&u->mpu, n, results, sizeof(struct part_result),
                         offsetof(struct part_result, sent_b64), etag, sizeof(etag), err);
    if (rc) {
        struct ck_commit_id id = {.etag = multipart_etag(n, results, want) ? want : NULL,
                                  .mark = u->up.mark};
        if (u->up.cond.on)
            rc = ck_cond_settle(u->up.store, &u->up.cond, false, &id, false, rc, err);
        else
            rc = ck_commit_settle(u->up.store, &id, rc, err);
        if (!rc) {
            ck_err_clear(err);
            ck_mpu_sweep(&u->mpu);
            return CK_OK;
        }
        return rc;
    }
    if (etag_parts(etag) && etag_parts(etag) != n)
        return ck_fail(err, CK_ECORRUPT,
                       "POST %s (CompleteMultipartUpload): object has %u parts, %u were sent",
                       u->up.c->display, etag_parts(etag), n);
    ck_mpu_sweep(&u->mpu);
    return u->full_sum_b64[0] ? check_whole(u, etag, u->full_sum_b64, err) : CK_OK;
}

/* 409 ConditionalRequestConflict: another write of the key was in progress; ours was
 * not applied and may be sent again. */
static bool conflict(ck_rc rc, const struct ck_http_response *resp)
{
    return rc && resp->status == 409 && strcmp(resp->error_code, "ConditionalRequestConflict") == 0;
}

/* The create-only PUT of c, sent again after a 409 conflict while the retry policy allows;
 * *attempts counts every request sent. */
static ck_rc put_create(struct ck_mpu_up *u, const struct ck_cloud_call *c,
                        struct ck_http_response *resp, unsigned *attempts, struct ck_err *err)
{
    struct ck_retry_state st;
    ck_retry_begin(&st, &u->up.c->env->retry, ck_now(),
                   (uint64_t)(uintptr_t)u ^ (uint64_t)ck_now());
    *attempts = 0;
    for (;;) {
        ck_rc rc = ck_cloud_perform(u->up.c, c, resp, err);
        *attempts += resp->attempts;
        double delay;
        if (!conflict(rc, resp) || !ck_retry_next(&st, ck_now(), &delay))
            return rc;
        ck_log_warn("%s; sending it again in %.2f s", err->msg, delay);
        ck_sleep(delay);
    }
}

/* The single PUT of data, signed by its SHA-256 (hex and b64 are filled for it), with the
 * upload's mark as metadata. */
static struct ck_cloud_call single_call(const struct ck_mpu_up *u, const char *data, size_t len,
                                        const char *if_none_match, char hex[CK_SHA256_HEX_LEN + 1],
                                        char b64[48])
{
    ck_s3_sha256(data, len, hex, b64);
    return (struct ck_cloud_call){
        .method = CK_HTTP_PUT,
        .body = data,
        .body_len = len,
        .body_sha256 = hex,
        .hdr = {{"x-amz-checksum-sha256", b64}, {u->up.c->ops->mark_header, u->up.mark}},
        .content_type = "application/octet-stream",
        .capture = {"x-amz-checksum-sha256"},
        .if_none_match = if_none_match,
    };
}

/* A create-only PUT (see the top comment); no sweep. */
static ck_rc single_create(struct ck_mpu_up *u, const char *data, size_t len, struct ck_err *err)
{
    char hex[CK_SHA256_HEX_LEN + 1], b64[48];
    struct ck_cloud_call c = single_call(u, data, len, "*", hex, b64);
    struct ck_http_response resp;
    struct ck_create_reply r = {.condition = "If-None-Match: *"};
    r.rc = put_create(u, &c, &resp, &r.attempts, err);
    r.exists = r.rc && resp.status == 412;
    if (!r.rc && resp.captured[0][0] && strcmp(resp.captured[0], b64) != 0)
        r.rc = ck_fail(err, CK_ECORRUPT, "PUT %s: server's SHA-256 differs from the one sent",
                       u->up.c->display);
    return ck_create_only_result(u->up.store, data, len, &r, err);
}

/* The whole object in one PUT, then the sweep for leftovers of an interrupted save. */
static ck_rc single(void *ctx, const char *data, size_t len, struct ck_err *err)
{
    struct ck_mpu_up *u = ctx;
    if (u->up.if_absent)
        return single_create(u, data, len, err);
    char hex[CK_SHA256_HEX_LEN + 1], b64[48];
    struct ck_cloud_call c = single_call(u, data, len, NULL, hex, b64);
    ck_cond_values(&u->up.cond, &c.if_match, &c.if_none_match);
    struct ck_http_response resp;
    ck_rc rc = ck_cloud_perform(u->up.c, &c, &resp, err);
    char want[CK_ETAG_MD5_MAX];
    struct ck_commit_id id = {.etag = rc && ck_s3_etag_md5(data, len, want) ? want : NULL,
                              .mark = u->up.mark};
    bool settled = false; /* a conditional put's failure, decided by cond_put.c's HEAD */
    if (rc && u->up.cond.on) {
        rc = ck_cond_settle(u->up.store, &u->up.cond, false, &id, resp.status == 412, rc, err);
        settled = rc != CK_EUNSUPPORTED;
        if (!settled) { /* radosgw: see the top comment */
            ck_log_warn("%s; putting it without the condition (this store cannot fence writers)",
                        err->msg);
            c.if_match = c.if_none_match = NULL;
            rc = ck_cloud_perform(u->up.c, &c, &resp, err);
        }
    }
    if (!settled && rc) {
        rc = ck_commit_settle(u->up.store, &id, rc, err);
    } else if (!settled && !rc && resp.captured[0][0] && strcmp(resp.captured[0], b64) != 0) {
        rc = ck_fail(err, CK_ECORRUPT, "PUT %s: server's SHA-256 differs from the one sent",
                     u->up.c->display);
    }
    ck_mpu_sweep(&u->mpu);
    return rc;
}

static const struct ck_part_ops s3_part_ops = {
    CK_MPU_PART_OPS, .send = send_part, .complete = complete, .single = single, .copy = copy_part};

const struct ck_mpu_proto ck_s3_mpu_proto = {.labels = step_labels,
                                             .initiate_query = "uploads=",
                                             .adjust = mpu_adjust,
                                             .part_ops = &s3_part_ops,
                                             .result_size = sizeof(struct part_result),
                                             .sum_element = SUM_ELEMENT};
