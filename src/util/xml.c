/* xml.c - untrusted XML read with libxml2; see xml.h. */
#include "util/xml.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>

#include <libxml/parser.h>

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

void ck_xml_init(void)
{
    pthread_once(&xml_once, xml_init);
}

ck_rc ck_xml_parse(const char *body, size_t len, size_t max, bool recover, xmlDocPtr *doc)
{
    *doc = NULL;
    ck_xml_init();
    if (len > max)
        return CK_EHOSTILE;
    if (!body || len == 0)
        return CK_ECORRUPT;
    int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
    if (recover)
        opts |= XML_PARSE_RECOVER;
    xmlDocPtr d = xmlReadMemory(body, (int)len, "reply.xml", NULL, opts);
    if (!d)
        return CK_ECORRUPT;
    if (d->intSubset || d->extSubset) {
        xmlFreeDoc(d);
        return CK_EHOSTILE;
    }
    *doc = d;
    return CK_OK;
}

bool ck_xml_is(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

xmlNodePtr ck_xml_child(const xmlNode *parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (ck_xml_is(c, name))
            return c;
    return NULL;
}

xmlNodePtr ck_xml_find(const xmlNode *n, const char *name, int max_depth)
{
    for (; n && max_depth > 0; n = n->next) {
        if (ck_xml_is(n, name))
            return (xmlNodePtr)n;
        xmlNodePtr c =
            n->type == XML_ELEMENT_NODE ? ck_xml_find(n->children, name, max_depth - 1) : NULL;
        if (c)
            return c;
    }
    return NULL;
}

/* Copies p[0..len) into out as printable ASCII; with cut, stops at the end of out and
 * shows other bytes as '?'; else false if one does not fit or is not printable. */
static bool copy_printable(const char *p, size_t len, char *out, size_t outsz, bool cut)
{
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (j + 1 >= outsz) {
            if (!cut)
                j = 0;
            out[j] = '\0';
            return cut;
        }
        if ((c < 0x20 || c > 0x7e) && !cut) {
            out[0] = '\0';
            return false;
        }
        out[j++] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
    }
    out[j] = '\0';
    return true;
}

bool ck_xml_text(const xmlNode *n, char *out, size_t outsz, bool cut)
{
    out[0] = '\0';
    xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
    if (!t)
        return false;
    const char *p = (const char *)t;
    while (isspace((unsigned char)*p))
        p++;
    size_t len = cut ? strcspn(p, "\r\n") : strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        len--;
    bool ok = copy_printable(p, len, out, outsz, cut);
    xmlFree(t);
    return ok;
}

bool ck_xml_token(const xmlNode *n, char *out, size_t outsz, const char **why)
{
    size_t o = 0;
    out[0] = '\0';
    for (const xmlNode *t = n ? n->children : NULL; t; t = t->next) {
        if (t->type != XML_TEXT_NODE && t->type != XML_CDATA_SECTION_NODE) {
            *why = "is not plain text";
            return false;
        }
        size_t len = strlen((const char *)t->content);
        if (o + len >= outsz) {
            *why = "is too long";
            return false;
        }
        memcpy(out + o, t->content, len);
        o += len;
    }
    out[o] = '\0';
    for (size_t i = 0; i < o; i++)
        if ((unsigned char)out[i] < 0x21 || (unsigned char)out[i] >= 0x7f) {
            *why = "holds control characters, spaces or non-ASCII bytes";
            return false;
        }
    *why = o ? NULL : "is empty";
    return o > 0;
}

ck_rc ck_xml_escape(struct ck_buf *out, const char *s)
{
    static const struct {
        char c;
        const char *as;
    } esc[] = {{'&', "&amp;"}, {'<', "&lt;"}, {'>', "&gt;"}, {'"', "&quot;"}, {'\'', "&apos;"}};
    ck_rc rc = CK_OK;
    for (; *s && !rc; s++) {
        const char *as = NULL;
        for (size_t i = 0; i < sizeof(esc) / sizeof(esc[0]) && !as; i++)
            if (*s == esc[i].c)
                as = esc[i].as;
        rc = as ? ck_buf_puts(out, as) : ck_buf_append(out, s, 1);
    }
    return rc;
}
