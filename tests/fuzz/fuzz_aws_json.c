/* fuzz_aws_json.c - the JSON of credential replies (IMDS, container credentials, SSO,
 * credential_process) on hostile text: members, escapes, nesting, numbers, times. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "util/json_read.h"
#include "util/clock.h"
#include "auth/aws_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CK_JSON_READ_MAX)
        return 0;
    const char *text = (const char *)data;
    static const char *keys[] = {"AccessKeyId", "Expiration", "Code", "Token", ""};
    for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++) {
        char out[48];
        if (ck_json_get_string(text, size, keys[k], out, sizeof(out)) == CK_OK &&
            memchr(out, '\0', sizeof(out)) == NULL)
            abort();
        if (ck_json_get_raw(text, size, keys[k], out, sizeof(out)) == CK_OK &&
            memchr(out, '\0', sizeof(out)) == NULL)
            abort();
    }
    struct ck_aws_creds c;
    memset(&c, 0, sizeof(c));
    struct ck_err err = {0};
    (void)ck_aws_meta_creds(text, size, "fuzz", &c, &err);
    /* the expiry parser on the input as a string */
    char *s = ck_fuzz_cstring(data, size);
    if (s) {
        double t;
        (void)ck_parse_iso8601(s, &t);
        free(s);
    }
    return 0;
}
