/* digest.h - content digests that object stores verify on upload (internal to src/store/). */
#ifndef CK_STORE_DIGEST_H
#define CK_STORE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#define CK_MD5_B64_LEN 25 /* 24 characters + NUL */

/* Base64 of the MD5 of data, as Content-MD5 carries it (GCS and Azure check it). */
void ck_md5_b64(const void *data, size_t len, char out[CK_MD5_B64_LEN]);

#define CK_ETAG_MD5_MAX 48 /* 32 hex digits, "-" and a part count, NUL */

/* The ETag S3 gives an object it stored without server-side encryption by KMS: the hex MD5
 * of its bytes for a single PUT (part_etags NULL: the MD5 of data), or for a multipart
 * upload of n parts the hex MD5 of the parts' binary MD5s (each part's ETag, quotes
 * allowed) followed by "-n". False if a part's ETag is not an MD5. */
bool ck_s3_etag_md5(const void *data, size_t len, char out[CK_ETAG_MD5_MAX]);
bool ck_s3_etag_multipart(const char *const *part_etags, unsigned n, char out[CK_ETAG_MD5_MAX]);

/* Whether two ETags name the same content (quotes ignored, hex case ignored). */
bool ck_etag_equal(const char *a, const char *b);

#endif
