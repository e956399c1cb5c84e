/*
 * s3_request.c - S3's part of the cloud core (cloud.h): settings at open, credentials and
 * endpoint on the first request, the URL of a request, SigV4 on every attempt, and S3's
 * error documents; see s3.h.
 *
 * Every attempt is signed afresh: the SigV4 date is current and credentials that rotated
 * since the last attempt are picked up. The body is always signed by its SHA-256 (never
 * UNSIGNED-PAYLOAD). Host is sent explicitly (send_host) so that what is signed is what
 * curl sends. On failure the S3 error document's Code and Message (parsed with s3_xml.c,
 * sanitised) replace the engine's generic text; nothing else from the reply is shown.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sigv4.h"
#include "store/backend.h"
#include "store/s3_mpu.h"
#include "store/s3/s3.h"
#include "util/clock.h"
#include "util/hex.h"

#define AUTH_MAX 2048

void ck_s3_sha256(const void *data, size_t len, char *hex, char *b64)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(data, len, d);
    ck_hex_lower(d, SHA256_DIGEST_LENGTH, hex);
    if (b64)
        EVP_EncodeBlock((unsigned char *)b64, d, SHA256_DIGEST_LENGTH);
}

static ck_rc s3_configure(struct ck_cloud *c, const struct ck_uri *uri, struct ck_err *err)
{
    struct ck_s3 *s3 = calloc(1, sizeof(*s3));
    if (!s3)
        return ck_fail(err, CK_ENOMEM, "out of memory");
    c->priv = s3;
    ck_rc rc = ck_s3_settings_from_env(getenv, &s3->set, err);
    c->parts = (struct ck_part_cfg){.part_size = s3->set.part_size,
                                    .max_part = CK_S3_MAX_PART,
                                    .parallel = s3->set.parallel,
                                    .max_parts = CK_S3_MAX_PARTS,
                                    .min_part = CK_S3_MIN_PART,
                                    .max_copy = CK_S3_MAX_PART};
    return rc;
}

static ck_rc s3_ready(struct ck_cloud *c, struct ck_err *err)
{
    struct ck_s3 *s3 = c->priv;
    struct ck_aws_provider_cfg cfg = {
        .getenv_fn = getenv,
        .anonymous = c->env->no_sign_request,
        .retry = c->env->retry,
        .connect_timeout_s = c->env->connect_timeout_s,
    };
    ck_rc rc = ck_aws_provider_new(&cfg, &s3->prov, err);
    if (rc) {
        ck_err_prefix(err, "%s: credentials", c->display);
        return rc;
    }
    snprintf(s3->region, sizeof(s3->region), "%s", ck_aws_provider_region(s3->prov));
    rc = ck_s3_endpoint_resolve(&s3->set, s3->region, &s3->ep, err);
    if (!rc)
        rc = ck_s3_use_virtual(s3->set.style, &s3->ep, c->bucket, &s3->virtual_host, err);
    if (rc) {
        ck_err_prefix(err, "%s", c->display);
        ck_aws_provider_free(s3->prov);
        s3->prov = NULL;
    }
    return rc;
}

static void s3_destroy(void *priv)
{
    struct ck_s3 *s3 = priv;
    if (s3->prov)
        ck_aws_provider_free(s3->prov);
    free(s3);
}

static ck_rc s3_target(const struct ck_cloud *c, const struct ck_cloud_call *call,
                       struct ck_cloud_target *t, struct ck_err *err)
{
    const struct ck_s3 *s3 = c->priv;
    struct ck_s3_target *st = malloc(sizeof(*st));
    if (!st)
        return ck_fail(err, CK_ENOMEM, "%s: out of memory", c->display);
    ck_rc rc =
        ck_s3_target_build(&s3->ep, s3->virtual_host, c->bucket, call->bucket_level ? "" : c->key,
                           call->query ? call->query : "", st, err);
    if (!rc) {
        snprintf(t->url, sizeof(t->url), "%s", st->url);
        snprintf(t->host, sizeof(t->host), "%s", st->host);
        snprintf(t->path, sizeof(t->path), "%s", st->path);
    }
    free(st);
    return rc;
}

/* The headers SigV4 signs: Host, the payload hash, the date, the session token, and every
 * x-amz-* and If-(None-)Match header the call sends (signed: a proxy that drops one
 * cannot turn a conditional put into an overwrite). */
static size_t signed_headers(const struct ck_cloud_call *call, const struct ck_cloud_target *t,
                             const char *hash, const char *date, const char *token,
                             struct ck_sigv4_header *h)
{
    size_t n = 0;
    h[n++] = (struct ck_sigv4_header){"host", t->host};
    h[n++] = (struct ck_sigv4_header){"x-amz-content-sha256", hash};
    h[n++] = (struct ck_sigv4_header){"x-amz-date", date};
    if (token[0])
        h[n++] = (struct ck_sigv4_header){"x-amz-security-token", token};
    for (int i = 0; i < CK_CLOUD_HEADERS && call->hdr[i].name; i++)
        h[n++] = (struct ck_sigv4_header){call->hdr[i].name, call->hdr[i].value};
    if (call->if_match)
        h[n++] = (struct ck_sigv4_header){"if-match", call->if_match};
    if (call->if_none_match)
        h[n++] = (struct ck_sigv4_header){"if-none-match", call->if_none_match};
    return n;
}

/* Before every attempt: x-amz-date, x-amz-content-sha256, the session token and
 * Authorization, computed now (credentials that rotated are picked up). */
static ck_rc s3_authorize(struct ck_cloud *c, const struct ck_cloud_call *call,
                          const struct ck_cloud_target *t, struct ck_http_attempt *a,
                          struct ck_err *err)
{
    struct ck_s3 *s3 = c->priv;
    if (ck_aws_provider_anonymous(s3->prov))
        return CK_OK;
    char hash[CK_SHA256_HEX_LEN + 1];
    if (!call->body_sha256)
        ck_s3_sha256(call->body ? call->body : "", call->body_len, hash, NULL);
    const char *payload = call->body_sha256 ? call->body_sha256 : hash;
    struct ck_aws_creds creds;
    ck_rc rc = ck_aws_creds_get(s3->prov, &creds, err);
    if (rc) {
        ck_err_prefix(err, "%s: credentials", c->display);
        return rc;
    }
    char date[17], auth[AUTH_MAX];
    ck_sigv4_amz_date(ck_wall_now(), date);
    struct ck_sigv4_header h[6 + CK_CLOUD_HEADERS];
    size_t n = signed_headers(call, t, payload, date, creds.session_token, h);
    struct ck_sigv4_request sr = {
        .method = ck_http_method_name(call->method),
        .path = t->path,
        .query = call->query ? call->query : "",
        .headers = h,
        .nheaders = n,
        .payload_hash = payload,
        .amz_date = date,
        .region = s3->region,
        .service = "s3",
    };
    rc = ck_sigv4_sign(&sr, &creds, auth, sizeof(auth), err);
    size_t per_attempt = creds.session_token[0] ? 4 : 3; /* h[1..]: hash, date, token */
    for (size_t i = 1; i < per_attempt && !rc; i++)      /* the others are sent on every attempt */
        rc = ck_http_attempt_header(a, h[i].name, h[i].value, err);
    if (!rc)
        rc = ck_http_attempt_header(a, "Authorization", auth, err);
    explicit_bzero(&creds, sizeof(creds));
    explicit_bzero(auth, sizeof(auth));
    return rc;
}

const struct ck_cloud_ops ck_s3_cloud_ops = {
    .store = {CK_CLOUD_STORE_OPS, .name = "s3", .put_begin = ck_mpu_put_begin,
              .copy_from = ck_s3_copy_from, .put_copy = ck_s3_put_copy,
              .copies_from = ck_s3_copies_from, .del = ck_mpu_delete_object},
    .mpu = &ck_s3_mpu_proto,
    .configure = s3_configure,
    .ready = s3_ready,
    .target = s3_target,
    .authorize = s3_authorize,
    .error_code = ck_cloud_xml_error_code,
    .destroy = s3_destroy,
    .send_host = true,
    .ca_env = "AWS_CA_BUNDLE",
    .mark_header = "x-amz-meta-ckptfs-upload",
};
