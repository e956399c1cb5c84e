/*
 * s3_xml.c - parsing S3's XML replies safely with libxml2, and writing the one document we
 * send; see s3_xml.h.
 */
#include "store/s3_xml.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

/* libxml2 2.9 wants xmlInitParser() once before parsers run in several threads. */
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

void ck_s3_xml_init(void)
{
    pthread_once(&xml_once, xml_init);
}

/* Parses body safely: no network, no entities substituted, no DTD loaded, capped size.
 * RECOVER lets a truncated error body still give its first elements. */
static xmlDocPtr parse(const char *body, size_t len, bool recover)
{
    ck_s3_xml_init();
    if (!body || len == 0 || len > CK_S3_XML_MAX)
        return NULL;
    int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
    if (recover)
        opts |= XML_PARSE_RECOVER;
    return xmlReadMemory(body, (int)len, "s3-reply.xml", NULL, opts);
}

static bool name_is(xmlNodePtr n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next) {
        if (name_is(c, name))
            return c;
    }
    return NULL;
}

/* The text of element n, printable ASCII only (else false), trimmed, fitting outsz. With
 * cut: its first line, cut to fit, other bytes shown as '?'. */
static bool text_of(xmlNodePtr n, char *out, size_t outsz, bool cut)
{
    out[0] = '\0';
    if (!n)
        return false;
    xmlChar *t = xmlNodeGetContent(n);
    if (!t)
        return false;
    const char *p = (const char *)t;
    while (isspace((unsigned char)*p))
        p++;
    size_t len = cut ? strcspn(p, "\r\n") : strlen(p), j = 0;
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        len--;
    bool ok = true;
    for (size_t i = 0; i < len && ok; i++) {
        unsigned char c = (unsigned char)p[i];
        if (j + 1 >= outsz) {
            ok = cut;
            break;
        }
        if ((c < 0x20 || c > 0x7e) && !cut) {
            ok = false;
            break;
        }
        out[j++] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
    }
    out[ok ? j : 0] = '\0';
    xmlFree(t);
    return ok;
}

bool ck_s3_xml_error(const char *body, size_t len, char *code, size_t codesz, char *msg,
                     size_t msgsz)
{
    code[0] = msg[0] = '\0';
    xmlDocPtr doc = parse(body, len, true);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    bool ok =
        name_is(root, "Error") && text_of(child(root, "Code"), code, codesz, false) && code[0];
    for (size_t i = 0; ok && code[i]; i++)
        ok = isalnum((unsigned char)code[i]) || code[i] == '.';
    if (ok)
        text_of(child(root, "Message"), msg, msgsz, true);
    else
        code[0] = msg[0] = '\0';
    xmlFreeDoc(doc);
    return ok;
}

ck_rc ck_s3_xml_each_upload(const char *body, size_t len, const char *key,
                            void (*fn)(void *ctx, const char *upload_id), void *ctx,
                            struct ck_err *err)
{
    xmlDocPtr doc = parse(body, len, false);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!name_is(root, "ListMultipartUploadsResult")) {
        xmlFreeDoc(doc);
        return ck_fail(err, CK_ECORRUPT, "ListMultipartUploads: not a listing");
    }
    for (xmlNodePtr n = root->children; n; n = n->next) {
        char k[1100], id[CK_S3_UPLOAD_ID_MAX + 1];
        if (name_is(n, "Upload") && text_of(child(n, "Key"), k, sizeof(k), false) &&
            strcmp(k, key) == 0 && text_of(child(n, "UploadId"), id, sizeof(id), false) && id[0])
            fn(ctx, id);
    }
    xmlFreeDoc(doc);
    return CK_OK;
}

ck_rc ck_s3_xml_upload_id(const char *body, size_t len, char *out, size_t outsz, const char *what,
                          struct ck_err *err)
{
    xmlDocPtr doc = parse(body, len, false);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    size_t cap = outsz < CK_S3_UPLOAD_ID_MAX + 1 ? outsz : CK_S3_UPLOAD_ID_MAX + 1;
    bool ok = name_is(root, "InitiateMultipartUploadResult") &&
              text_of(child(root, "UploadId"), out, cap, false) && out[0];
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
    xmlDocPtr doc = parse(body, len, false);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    /* AWS documents ...Result; moto (and some compatibles) answer ...Response. */
    bool ok = name_is(root, "CompleteMultipartUploadResult") ||
              name_is(root, "CompleteMultipartUploadResponse");
    if (ok)
        text_of(child(root, "ETag"), out, outsz, false);
    xmlFreeDoc(doc);
    if (!ok)
        return ck_fail(err, CK_ECORRUPT, "%s: reply is not a CompleteMultipartUploadResult", what);
    return CK_OK;
}

/* Appends s with &, <, >, " and ' escaped. */
static ck_rc put_escaped(struct ck_buf *out, const char *s)
{
    ck_rc rc = CK_OK;
    for (; *s && !rc; s++) {
        switch (*s) {
        case '&':
            rc = ck_buf_puts(out, "&amp;");
            break;
        case '<':
            rc = ck_buf_puts(out, "&lt;");
            break;
        case '>':
            rc = ck_buf_puts(out, "&gt;");
            break;
        case '"':
            rc = ck_buf_puts(out, "&quot;");
            break;
        case '\'':
            rc = ck_buf_puts(out, "&apos;");
            break;
        default:
            rc = ck_buf_append(out, s, 1);
        }
    }
    return rc;
}

ck_rc ck_s3_xml_complete_body(const struct ck_s3_part_ref *parts, size_t n, struct ck_buf *out,
                              struct ck_err *err)
{
    ck_rc rc = ck_buf_puts(out, "<CompleteMultipartUpload "
                                "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (size_t i = 0; i < n && !rc; i++) {
        rc = ck_buf_printf(out, "<Part><PartNumber>%u</PartNumber><ETag>", parts[i].number);
        if (!rc)
            rc = put_escaped(out, parts[i].etag);
        if (!rc && parts[i].checksum_b64)
            rc = ck_buf_printf(out, "</ETag><ChecksumSHA256>%s</ChecksumSHA256></Part>",
                               parts[i].checksum_b64);
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
    xmlDocPtr doc = parse(body, len, false);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!name_is(root, "ListMultipartUploadsResult")) {
        xmlFreeDoc(doc);
        return ck_fail(err, CK_ECORRUPT, "ListMultipartUploads: not a listing");
    }
    char t[8];
    *truncated = text_of(child(root, "IsTruncated"), t, sizeof(t), false) && strcmp(t, "true") == 0;
    if (*truncated && (!text_of(child(root, "NextKeyMarker"), key_marker, kmsz, false) ||
                       !text_of(child(root, "NextUploadIdMarker"), id_marker, idsz, false)))
        id_marker[0] = '\0'; /* a key marker alone still moves on; none: key_marker "" */
    xmlFreeDoc(doc);
    return CK_OK;
}
