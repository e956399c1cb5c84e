/* digest.c - see digest.h. MD5 here is an integrity check against corruption in transit,
 * which is what the services verify; it is not used for security. */
#include "store/digest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <zlib.h>

void ck_md5_b64(const void *data, size_t len, char out[CK_MD5_B64_LEN])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, d, &n, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, d, (int)n);
}

static void hex_of(const unsigned char *d, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

bool ck_s3_etag_md5(const void *data, size_t len, char out[CK_ETAG_MD5_MAX])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, d, &n, EVP_md5(), NULL) || n != 16)
        return false;
    hex_of(d, n, out);
    return true;
}

/* The 16 bytes of an ETag that is an MD5 in hex ("..." quotes allowed). */
static bool md5_of_etag(const char *etag, unsigned char md[16])
{
    size_t len = strlen(etag);
    if (len == 34 && etag[0] == '"' && etag[33] == '"') {
        etag++;
        len = 32;
    }
    if (len != 32)
        return false;
    for (int i = 0; i < 16; i++) {
        char byte[3] = {etag[2 * i], etag[2 * i + 1], 0};
        if (!isxdigit((unsigned char)byte[0]) || !isxdigit((unsigned char)byte[1]))
            return false;
        md[i] = (unsigned char)strtoul(byte, NULL, 16);
    }
    return true;
}

bool ck_s3_etag_multipart(const char *const *part_etags, unsigned n, char out[CK_ETAG_MD5_MAX])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && n > 0 && EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
    for (unsigned i = 0; ok && i < n; i++) {
        unsigned char md[16];
        ok = md5_of_etag(part_etags[i], md) && EVP_DigestUpdate(ctx, md, sizeof(md));
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    ok = ok && EVP_DigestFinal_ex(ctx, d, &dn) && dn == 16;
    EVP_MD_CTX_free(ctx);
    if (ok) {
        hex_of(d, dn, out);
        snprintf(out + 32, CK_ETAG_MD5_MAX - 32, "-%u", n);
    }
    return ok;
}

/* s without surrounding quotes: its start and length. */
static const char *unquoted(const char *s, size_t *len)
{
    *len = strlen(s);
    if (*len >= 2 && s[0] == '"' && s[*len - 1] == '"') {
        *len -= 2;
        return s + 1;
    }
    return s;
}

bool ck_etag_equal(const char *a, const char *b)
{
    size_t la, lb;
    const char *pa = unquoted(a, &la), *pb = unquoted(b, &lb);
    return la > 0 && la == lb && strncasecmp(pa, pb, la) == 0;
}

void ck_crc32_b64(uint32_t crc, char out[CK_CRC32_B64_LEN])
{
    unsigned char be[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
                           (unsigned char)(crc >> 8), (unsigned char)crc};
    EVP_EncodeBlock((unsigned char *)out, be, 4);
}

bool ck_crc32_of_b64(const char *b64, uint32_t *crc)
{
    unsigned char be[6];
    if (strlen(b64) != 8 || EVP_DecodeBlock(be, (const unsigned char *)b64, 8) != 6 ||
        strcmp(b64 + 6, "==") != 0)
        return false;
    *crc = (uint32_t)be[0] << 24 | (uint32_t)be[1] << 16 | (uint32_t)be[2] << 8 | be[3];
    return true;
}

uint32_t ck_crc32_join(uint32_t a, uint32_t b, uint64_t len_b)
{
    return (uint32_t)crc32_combine(a, b, (z_off_t)len_b); /* z_off_t: 64 bits here */
}
