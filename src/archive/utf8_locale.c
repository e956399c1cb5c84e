/* utf8_locale.c - a thread-local UTF-8 LC_CTYPE around libarchive calls; see utf8_locale.h. */
#include "archive/utf8_locale.h"

void ck_utf8_locale_enter(struct ck_utf8_locale *l)
{
    l->saved = (locale_t)0;
    l->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (l->utf8)
        l->saved = uselocale(l->utf8);
}

void ck_utf8_locale_leave(struct ck_utf8_locale *l)
{
    if (!l->utf8)
        return;
    uselocale(l->saved);
    freelocale(l->utf8);
    l->utf8 = (locale_t)0;
}
