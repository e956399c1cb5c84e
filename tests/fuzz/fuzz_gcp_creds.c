/* fuzz_gcp_creds.c - Google credentials files (GOOGLE_APPLICATION_CREDENTIALS, gcloud's
 * application_default_credentials.json) on hostile text: service_account (its PEM key is
 * parsed and a JWT signed), external_account (credential_source, format) and
 * authorized_user. A source made must be complete and is freed (leaks show); a refusal
 * gives a one-line message. No I/O: sources fetch tokens only when asked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "auth/gcp_creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CK_GCP_FILE_MAX)
        return 0;
    /* the file reader hands over a C string; the parsers still get its length */
    char *text = ck_fuzz_cstring(data, size);
    if (!text)
        return 0;
    static const struct ck_gcp_cfg cfg = {.getenv_fn = NULL};
    struct ck_gcp_source src;
    struct ck_err err = {0};
    memset(&src, 0, sizeof(src));
    ck_rc rc = ck_gcp_file_source(text, size, "fuzz.json", &cfg, &src, &err);
    if (rc == CK_OK) {
        if (!memchr(src.name, '\0', sizeof(src.name)) || !src.name[0] || !src.fetch || !src.ctx ||
            !src.free_ctx)
            abort();
        if (strcmp(src.name, "service-account") && strcmp(src.name, "external-account") &&
            strcmp(src.name, "authorized-user"))
            abort();
        src.free_ctx(src.ctx);
    } else {
        const char *end = memchr(err.msg, '\0', sizeof(err.msg));
        if (!end || err.rc != rc)
            abort();
        for (const char *p = err.msg; p < end; p++) {
            if ((unsigned char)*p < 0x20)
                abort();
        }
    }
    free(text);
    return 0;
}
