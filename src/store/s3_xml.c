/*
 * s3_xml.c - the XML of S3's multipart replies (read with util/xml.h), and the one document
 * we send; see s3_xml.h.
 */
#include "store/s3_xml.h"

#include <stdio.h>
#include <string.h>

#include "util/xml.h"

/* Parses a reply document (no recovery: a listing or result must be whole). */
static xmlDocPtr parse(const char *body, size_t len)
{
    xmlDocPtr doc;
    return ck_xml_parse(body, len, CK_S3_XML_MAX, false, &doc) ? NULL : doc;
}

ck_rc ck_s3_xml_each_upload(const char *body, size_t len, const char *key,
                            void (*fn)(void *ctx, const char *upload_id), void *ctx,
                            struct ck_err *err)
{
    xmlDocPtr doc = parse(body, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!ck_xml_is(root, "ListMultipartUploadsResult")) {
        xmlFreeDoc(doc);
        return ck_fail(err, CK_ECORRUPT, "ListMultipartUploads: not a listing");
    }
    for (xmlNodePtr n = root->children; n; n = n->next) {
        char k[1100], id[CK_S3_UPLOAD_ID_MAX + 1];
        if (ck_xml_is(n, "Upload") && ck_xml_text(ck_xml_child(n, "Key"), k, sizeof(k), false) &&
            strcmp(k, key) == 0 &&
            ck_xml_text(ck_xml_child(n, "UploadId"), id, sizeof(id), false) && id[0])
            fn(ctx, id);
    }
    xmlFreeDoc(doc);
    return CK_OK;
}

ck_rc ck_s3_xml_upload_id(const char *body, size_t len, char *out, size_t outsz, const char *what,
                          struct ck_err *err)
{
    xmlDocPtr doc = parse(body, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    size_t cap = outsz < CK_S3_UPLOAD_ID_MAX + 1 ? outsz : CK_S3_UPLOAD_ID_MAX + 1;
    bool ok = ck_xml_is(root, "InitiateMultipartUploadResult") &&
              ck_xml_text(ck_xml_child(root, "UploadId"), out, cap, false) && out[0];
    for (size_t i = 0; ok && out[i]; i++)
        ok = out[i] != ' ';
    xmlFreeDoc(doc);
    if (!ok)
        return ck_fail(err, CK_ECORRUPT, "%s: reply has no usable UploadId", what);
    return CK_OK;
}

ck_rc ck_s3_xml_complete_etag(const char *body, size_t len, char *out, size_t outsz,
                              const char *what, struct ck_err *err)
{
    xmlDocPtr doc = parse(body, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    /* AWS documents ...Result; moto (and some compatibles) answer ...Response. */
    bool ok = ck_xml_is(root, "CompleteMultipartUploadResult") ||
              ck_xml_is(root, "CompleteMultipartUploadResponse");
    if (ok)
        ck_xml_text(ck_xml_child(root, "ETag"), out, outsz, false);
    xmlFreeDoc(doc);
    if (!ok)
        return ck_fail(err, CK_ECORRUPT, "%s: reply is not a CompleteMultipartUploadResult", what);
    return CK_OK;
}

ck_rc ck_s3_xml_copy_part(const char *body, size_t len, const char *element, char *etag,
                          size_t etagsz, char *checksum, size_t cksz, const char *what,
                          struct ck_err *err)
{
    xmlDocPtr doc = parse(body, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    bool ok = ck_xml_is(root, "CopyPartResult") &&
              ck_xml_text(ck_xml_child(root, "ETag"), etag, etagsz, false) && etag[0];
    if (ok && !ck_xml_text(ck_xml_child(root, element), checksum, cksz, false))
        checksum[0] = '\0';
    xmlFreeDoc(doc);
    if (!ok)
        return ck_fail(err, CK_ECORRUPT, "%s: reply is not a CopyPartResult with an ETag", what);
    return CK_OK;
}

ck_rc ck_s3_xml_complete_body(const struct ck_s3_part_ref *parts, size_t n, const char *element,
                              struct ck_buf *out, struct ck_err *err)
{
    ck_rc rc = ck_buf_puts(out, "<CompleteMultipartUpload "
                                "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (size_t i = 0; i < n && !rc; i++) {
        rc = ck_buf_printf(out, "<Part><PartNumber>%u</PartNumber><ETag>", parts[i].number);
        if (!rc)
            rc = ck_xml_escape(out, parts[i].etag);
        if (!rc && parts[i].checksum_b64 && element)
            rc = ck_buf_printf(out, "</ETag><%s>%s</%s></Part>", element, parts[i].checksum_b64,
                               element);
        else if (!rc)
            rc = ck_buf_puts(out, "</ETag></Part>");
    }
    if (!rc)
        rc = ck_buf_puts(out, "</CompleteMultipartUpload>");
    if (rc)
        return ck_fail(err, rc, "CompleteMultipartUpload body of %zu parts: too large", n);
    return CK_OK;
}

ck_rc ck_s3_xml_uploads_next(const char *body, size_t len, bool *truncated, char *key_marker,
                             size_t kmsz, char *id_marker, size_t idsz, struct ck_err *err)
{
    *truncated = false;
    key_marker[0] = id_marker[0] = '\0';
    xmlDocPtr doc = parse(body, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!ck_xml_is(root, "ListMultipartUploadsResult")) {
        xmlFreeDoc(doc);
        return ck_fail(err, CK_ECORRUPT, "ListMultipartUploads: not a listing");
    }
    char t[8];
    *truncated = ck_xml_text(ck_xml_child(root, "IsTruncated"), t, sizeof(t), false) &&
                 strcmp(t, "true") == 0;
    if (*truncated &&
        (!ck_xml_text(ck_xml_child(root, "NextKeyMarker"), key_marker, kmsz, false) ||
         !ck_xml_text(ck_xml_child(root, "NextUploadIdMarker"), id_marker, idsz, false)))
        id_marker[0] = '\0'; /* a key marker alone still moves on; none: key_marker "" */
    xmlFreeDoc(doc);
    return CK_OK;
}
