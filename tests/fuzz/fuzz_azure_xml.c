/* fuzz_azure_xml.c - Azure Blob error replies as the Azure backend reads them
 * (ck_azure_error_code): an <Error> document whose Message runs on with RequestId and
 * Time lines, or only the x-ms-error-code header, on hostile bytes. The input's first
 * line is the header's value (the HTTP engine keeps it printable ASCII), the rest the
 * body. A code shown is letters, digits and '.', the message one printable line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "store/azure/azure.h"
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
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : 0;
    char header[256]; /* struct ck_http_response.captured */
    size_t n = 0;
    for (size_t i = 0; i < hlen && n + 1 < sizeof(header); i++) {
        if (data[i] >= 0x20 && data[i] < 0x7f)
            header[n++] = (char)data[i];
    }
    header[n] = '\0';
    const char *body = nl ? (const char *)nl + 1 : (const char *)data;
    size_t blen = nl ? size - hlen - 1 : size;

    char code[64], msg[200]; /* azure_request.c's describe_error */
    memset(code, 'X', sizeof(code));
    memset(msg, 'X', sizeof(msg));
    if (ck_azure_error_code(body, blen, header, code, sizeof(code), msg, sizeof(msg))) {
        ck_fuzz_check_text(code, sizeof(code), 0x20);
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
    return 0;
}
