/* fuzz_s3_xml.c - the S3 XML reply parsers (error documents, InitiateMultipartUpload and
 * CompleteMultipartUpload results, ListMultipartUploads) on hostile bytes: malformed XML,
 * entities, DTDs, huge and odd values. Outputs must stay within their buffers and be
 * NUL-terminated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/s3_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

/* ListMultipartUploads: every id handed on is a usable UploadId. */
static void on_upload(void *ctx, const char *upload_id)
{
    (void)ctx;
    size_t n = strnlen(upload_id, CK_S3_UPLOAD_ID_MAX + 1);
    if (n == 0 || n > CK_S3_UPLOAD_ID_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        ck_s3_xml_init();
        inited = 1;
    }
    const char *body = (const char *)data;
    char code[64], msg[256], id[CK_S3_UPLOAD_ID_MAX + 1], etag[256];
    struct ck_err err = {0};
    if (ck_s3_xml_error(body, size, code, sizeof(code), msg, sizeof(msg))) {
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
    return 0;
}
