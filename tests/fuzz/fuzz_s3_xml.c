/* fuzz_s3_xml.c - the S3 XML reply parsers (error documents, InitiateMultipartUpload and
 * CompleteMultipartUpload results, ListMultipartUploads: its uploads and its paging markers,
 * as the sweep of S3 and GCS reads them) on hostile bytes: malformed XML, entities, DTDs,
 * huge and odd values. Outputs must stay within their buffers and be NUL-terminated; upload
 * ids and paging markers must be printable ASCII. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/cloud.h"
#include "store/s3_xml.h"
#include "util/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

/* s is NUL-terminated within cap and printable ASCII, without surrounding spaces. */
static void check_printable(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            abort();
    }
    if (n && (s[0] == ' ' || s[n - 1] == ' '))
        abort();
}

/* ListMultipartUploads: every id handed on is a usable UploadId. */
static void on_upload(void *ctx, const char *upload_id)
{
    (void)ctx;
    size_t n = strnlen(upload_id, CK_S3_UPLOAD_ID_MAX + 1);
    if (n == 0 || n > CK_S3_UPLOAD_ID_MAX)
        abort();
    check_printable(upload_id, CK_S3_UPLOAD_ID_MAX + 1);
}

/* ListMultipartUploads's paging markers into buffers of kmsz and idsz bytes (the sweep's,
 * and small ones that a long marker does not fit): NUL-terminated within them, printable;
 * none unless truncated, none after an error, no upload id marker without a key marker. */
static void check_next(const char *body, size_t size, size_t kmsz, size_t idsz)
{
    char key[1100], id[CK_S3_UPLOAD_ID_MAX + 1];
    struct ck_err err = {0};
    bool more = true;
    memset(key, 'K', sizeof(key));
    memset(id, 'I', sizeof(id));
    ck_rc rc = ck_s3_xml_uploads_next(body, size, &more, key, kmsz, id, idsz, &err);
    check_printable(key, kmsz);
    check_printable(id, idsz);
    for (size_t i = kmsz; i < sizeof(key); i++) {
        if (key[i] != 'K')
            abort(); /* wrote past kmsz */
    }
    for (size_t i = idsz; i < sizeof(id); i++) {
        if (id[i] != 'I')
            abort(); /* wrote past idsz */
    }
    if ((rc != CK_OK || !more) && (key[0] || id[0]))
        abort();
    if (rc != CK_OK && more)
        abort();
    if (id[0] && !key[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        ck_xml_init();
        inited = 1;
    }
    const char *body = (const char *)data;
    char code[64], msg[256], id[CK_S3_UPLOAD_ID_MAX + 1], etag[256];
    struct ck_err err = {0};
    if (ck_cloud_error_doc(body, size, code, sizeof(code), msg, sizeof(msg))) {
        check_str(code, sizeof(code));
        check_str(msg, sizeof(msg));
    }
    if (ck_s3_xml_upload_id(body, size, id, sizeof(id), "fuzz", &err) == CK_OK) {
        check_str(id, sizeof(id));
        if (id[0] == '\0')
            abort(); /* "no usable UploadId" must be an error */
    }
    if (ck_s3_xml_complete_etag(body, size, etag, sizeof(etag), "fuzz", &err) == CK_OK)
        check_str(etag, sizeof(etag));
    (void)ck_s3_xml_each_upload(body, size, "ckpt/model.tar.gz", on_upload, NULL, &err);
    check_next(body, size, 1100, CK_S3_UPLOAD_ID_MAX + 1);
    check_next(body, size, 8, 4);
    return 0;
}
