/* fuzz_aws_ini.c - AWS shared config/credentials files (INI) on hostile text: sections,
 * keys, odd whitespace, huge lines. Values must fit their buffer and be NUL-terminated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "auth/ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CK_INI_FILE_MAX)
        return 0;
    char *text = ck_fuzz_cstring(data, size);
    if (!text)
        return 0;
    static const char *sections[] = {"default", "profile dev", "dev", "sso-session x", ""};
    static const char *keys[] = {"aws_access_key_id", "aws_secret_access_key", "region", "role_arn",
                                 "source_profile",    "credential_process",    ""};
    for (size_t i = 0; i < sizeof(sections) / sizeof(*sections); i++) {
        (void)ck_ini_has_section(text, sections[i]);
        for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++) {
            char out[64];
            memset(out, 'X', sizeof(out));
            if (ck_ini_get(text, sections[i], keys[k], out, sizeof(out)) == CK_OK &&
                memchr(out, '\0', sizeof(out)) == NULL)
                abort();
        }
    }
    free(text);
    return 0;
}
