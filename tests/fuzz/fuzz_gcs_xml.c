/* fuzz_gcs_xml.c - the XML replies of GCS's XML API as the GCS backend reads them (with
 * s3_xml.c, at gcs_request.c's and gcs_upload.c's buffer sizes): error documents
 * (Code, Message, Details), InitiateMultipartUploadResult, CompleteMultipartUploadResult
 * on hostile bytes. Outputs stay in their buffers, NUL-terminated, printable; an UploadId
 * taken is non-empty and always fits the uploadId= query it goes into. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/uri_encode.h"
#include "fuzz_util.h"
#include "store/cloud.h"
#include "store/s3_xml.h"
#include "util/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        ck_xml_init();
        inited = 1;
    }
    const char *body = (const char *)data;
    struct ck_err err = {0};

    /* describe_error: "HTTP 403 AccessDenied: Access denied." */
    char code[64], msg[200];
    memset(code, 'X', sizeof(code));
    memset(msg, 'X', sizeof(msg));
    if (ck_cloud_error_doc(body, size, code, sizeof(code), msg, sizeof(msg))) {
        ck_fuzz_check_text(code, sizeof(code), 0x21);
        ck_fuzz_check_text(msg, sizeof(msg), 0x20);
        if (!code[0])
            abort();
        for (const char *p = code; *p; p++) {
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= 'A' && *p <= 'Z') || *p == '.'))
                abort();
        }
    } else if (code[0] || msg[0]) {
        abort();
    }

    /* begin: the UploadId, then "uploadId=<encoded>" */
    char id[CK_S3_UPLOAD_ID_MAX + 1], enc[3 * CK_S3_UPLOAD_ID_MAX + 1];
    memset(id, 'X', sizeof(id));
    if (ck_s3_xml_upload_id(body, size, id, sizeof(id), "fuzz", &err) == CK_OK) {
        ck_fuzz_check_text(id, sizeof(id), 0x21);
        if (!id[0] || ck_uri_encode(id, 0, enc, sizeof(enc)) != CK_OK)
            abort();
    }

    /* complete: the result's ETag (may be empty) */
    char etag[128];
    memset(etag, 'X', sizeof(etag));
    if (ck_s3_xml_complete_etag(body, size, etag, sizeof(etag), "fuzz", &err) == CK_OK)
        ck_fuzz_check_text(etag, sizeof(etag), 0x20);
    return 0;
}
