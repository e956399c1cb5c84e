/*
 * xml.h - reading untrusted XML (cloud replies, STS) with libxml2, and escaping text for
 * the documents we send.
 *
 * Replies come from the network: a document is parsed with network access, entity
 * substitution and DTD loading off (XML_PARSE_NONET; no NOENT, no DTDLOAD), only up to a
 * size the caller gives, and one that carries a DTD is refused. Values read from it are
 * checked (printable ASCII, capped) before they are used or shown.
 *
 * Threads: ck_xml_init() (idempotent, pthread_once) runs libxml2's global set-up before
 * parsers run in several threads; ck_xml_parse calls it first.
 */
#ifndef CK_UTIL_XML_H
#define CK_UTIL_XML_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "util/buf.h"
#include "util/err.h"

void ck_xml_init(void);

/* Parses body into *doc (free it with xmlFreeDoc). CK_EHOSTILE: larger than max or carries
 * a DTD; CK_ECORRUPT: empty or not well-formed. With recover, a truncated document still
 * gives its first elements. */
ck_rc ck_xml_parse(const char *body, size_t len, size_t max, bool recover, xmlDocPtr *doc);

/* Whether n is an element named name (n may be NULL). */
bool ck_xml_is(const xmlNode *n, const char *name);

/* The first child element of parent named name, or NULL (parent may be NULL). */
xmlNodePtr ck_xml_child(const xmlNode *parent, const char *name);

/* The first element named name among n, its siblings and their descendants down to
 * max_depth levels, in document order; NULL if none. */
xmlNodePtr ck_xml_find(const xmlNode *n, const char *name, int max_depth);

/* The text of element n, printable ASCII only (else false), trimmed, fitting outsz. With
 * cut: its first line, cut to fit, other bytes shown as '?'. n may be NULL (false). */
bool ck_xml_text(const xmlNode *n, char *out, size_t outsz, bool cut);

/* A token (key, secret, date): n's children are plain text only, together not empty,
 * without spaces or control characters, fitting outsz. On false, *why says which rule
 * failed ("is not plain text", "is too long", ...), for the caller's message. */
bool ck_xml_token(const xmlNode *n, char *out, size_t outsz, const char **why);

/* Appends s to out with &, <, >, " and ' escaped. */
ck_rc ck_xml_escape(struct ck_buf *out, const char *s);

#endif
