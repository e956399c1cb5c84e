/* digest.h - content digests that object stores verify on upload (internal to src/store/). */
#ifndef CK_STORE_DIGEST_H
#define CK_STORE_DIGEST_H

#include <stddef.h>

#define CK_MD5_B64_LEN 25 /* 24 characters + NUL */

/* Base64 of the MD5 of data, as Content-MD5 carries it (GCS and Azure check it). */
void ck_md5_b64(const void *data, size_t len, char out[CK_MD5_B64_LEN]);

#endif
