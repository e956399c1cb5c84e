/*
 * s3_xml.h - the XML of the S3 multipart protocol (S3 and GCS's XML API): the replies to
 * initiate, complete and list, and the CompleteMultipartUpload document (internal to
 * src/store/). Replies are read with util/xml.h (untrusted: no network, no entities, no
 * DTD, at most CK_S3_XML_MAX bytes, every value checked).
 */
#ifndef CK_STORE_S3_XML_H
#define CK_STORE_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

#define CK_S3_XML_MAX       (256 * 1024) /* largest reply document parsed */
#define CK_S3_UPLOAD_ID_MAX 1024

/* ListMultipartUploads: calls fn(ctx, upload_id) for every <Upload> whose <Key> is key.
 * CK_ECORRUPT for a reply that is not such a listing. */
ck_rc ck_s3_xml_each_upload(const char *body, size_t len, const char *key,
                            void (*fn)(void *ctx, const char *upload_id), void *ctx,
                            struct ck_err *err);

/* ListMultipartUploads's paging: *truncated when <IsTruncated> is "true"; then
 * <NextKeyMarker> and <NextUploadIdMarker>, the key-marker and upload-id-marker of the next
 * page ("" when absent, empty, not printable ASCII or too long: a key marker without an
 * upload id marker may be given, no key marker means the listing cannot go on). CK_ECORRUPT
 * for a reply that is not a listing. */
ck_rc ck_s3_xml_uploads_next(const char *body, size_t len, bool *truncated, char *key_marker,
                             size_t kmsz, char *id_marker, size_t idsz, struct ck_err *err);

/* <InitiateMultipartUploadResult><UploadId>: printable, no spaces, at most
 * CK_S3_UPLOAD_ID_MAX bytes. CK_ECORRUPT naming `what` otherwise. */
ck_rc ck_s3_xml_upload_id(const char *body, size_t len, char *out, size_t outsz, const char *what,
                          struct ck_err *err);

/* <CompleteMultipartUploadResult><ETag> (may be empty if absent). CK_ECORRUPT if the
 * document is not that result. */
ck_rc ck_s3_xml_complete_etag(const char *body, size_t len, char *out, size_t outsz,
                              const char *what, struct ck_err *err);

/* <CopyPartResult> (UploadPartCopy): its <ETag> (required) and the checksum named element
 * ("ChecksumCRC32"; "" when absent: moto and radosgw send none). CK_ECORRUPT naming `what`
 * otherwise. */
ck_rc ck_s3_xml_copy_part(const char *body, size_t len, const char *element, char *etag,
                          size_t etagsz, char *checksum, size_t cksz, const char *what,
                          struct ck_err *err);

/* One part as CompleteMultipartUpload lists it. */
struct ck_s3_part_ref {
    unsigned number;
    const char *etag;         /* as the server returned it, quotes included */
    const char *checksum_b64; /* base64 checksum we sent (or the service computed, for a
                                 copied part); NULL: none listed (GCS, a copied part the
                                 service gave none for) */
};

/* Appends the CompleteMultipartUpload document for parts (ascending numbers) to out, with
 * the ETags XML-escaped and each part's checksum as element ("ChecksumCRC32"; NULL: none). */
ck_rc ck_s3_xml_complete_body(const struct ck_s3_part_ref *parts, size_t n, const char *element,
                              struct ck_buf *out, struct ck_err *err);

#endif
