/* digest.h - content digests that object stores verify on upload (internal to src/store/). */
#ifndef CK_STORE_DIGEST_H
#define CK_STORE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#define CK_CRC32_B64_LEN 9 /* 8 characters + NUL */

/* A CRC-32 (zlib's and gzip's; S3's "CRC32") as S3's x-amz-checksum-crc32 carries it: the
 * base64 of its 4 bytes, most significant first. */
void ck_crc32_b64(uint32_t crc, char out[CK_CRC32_B64_LEN]);

/* The CRC-32 such a string names; false if it names none. */
bool ck_crc32_of_b64(const char *b64, uint32_t *crc);

/* The CRC-32 of A followed by B, from A's, B's and B's length (zlib's crc32_combine). */
uint32_t ck_crc32_join(uint32_t a, uint32_t b, uint64_t len_b);

/* Whether two ETags name the same content (quotes ignored, hex case ignored). */
bool ck_etag_equal(const char *a, const char *b);

#endif
