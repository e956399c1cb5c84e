/* uri_encode.c - percent-encoding; see uri_encode.h. */
#include "util/uri_encode.h"

static const char HEXU[] = "0123456789ABCDEF";

static bool plain(unsigned char c, bool keep_slash)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
}

ck_rc ck_uri_encode(const char *in, bool keep_slash, char *out, size_t outlen)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool keep = plain(*p, keep_slash);
        if (o + (keep ? 1 : 3) >= outlen)
            return CK_EINVAL;
        if (keep) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = HEXU[*p >> 4];
            out[o++] = HEXU[*p & 15];
        }
    }
    if (outlen == 0)
        return CK_EINVAL;
    out[o] = '\0';
    return CK_OK;
}

ck_rc ck_uri_encode_buf(struct ck_buf *b, const char *in, size_t n, bool keep_slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        char esc[3] = {'%', HEXU[c >> 4], HEXU[c & 15]};
        ck_rc rc = plain(c, keep_slash) ? ck_buf_append(b, &in[i], 1) : ck_buf_append(b, esc, 3);
        if (rc)
            return rc;
    }
    return CK_OK;
}
