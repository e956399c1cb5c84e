/* digest.c - see digest.h. MD5 here is an integrity check against corruption in transit,
 * which is what the services verify; it is not used for security. */
#include "store/digest.h"

#include <openssl/evp.h>

void ck_md5_b64(const void *data, size_t len, char out[CK_MD5_B64_LEN])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, d, &n, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, d, (int)n);
}
