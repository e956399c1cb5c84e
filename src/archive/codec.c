/* codec.c - parsing and naming of the --compress policy; see codec.h. */
#include "archive/codec.h"

#include <stdio.h>
#include <string.h>

bool ck_codec_parse(const char *s, struct ck_codec *out)
{
    if (!s)
        return false;
    if (strcmp(s, "auto") == 0) {
        *out = (struct ck_codec){.kind = CK_CODEC_AUTO, .level = 1};
        return true;
    }
    if (strcmp(s, "store") == 0) {
        *out = (struct ck_codec){.kind = CK_CODEC_STORE, .level = 0};
        return true;
    }
    /* Exactly "gzip-" and one digit 1..9: "gzip-10", "gzip-01", "gzip-" are refused. */
    if (strncmp(s, "gzip-", 5) == 0 && s[5] >= '1' && s[5] <= '9' && s[6] == '\0') {
        *out = (struct ck_codec){.kind = CK_CODEC_GZIP, .level = s[5] - '0'};
        return true;
    }
    return false;
}

const char *ck_codec_name(const struct ck_codec *c, char *buf, unsigned len)
{
    switch (c->kind) {
    case CK_CODEC_AUTO:
        snprintf(buf, len, "auto");
        break;
    case CK_CODEC_STORE:
        snprintf(buf, len, "store");
        break;
    case CK_CODEC_GZIP:
        snprintf(buf, len, "gzip-%d", c->level);
        break;
    default:
        snprintf(buf, len, "unknown");
        break;
    }
    return buf;
}
