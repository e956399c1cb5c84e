/*
 * utf8_locale.h - runs libarchive in a UTF-8 character locale on the calling thread only
 * (internal to src/archive/).
 *
 * libarchive converts names between pax's UTF-8 and "the current locale". In the "C" locale
 * a daemon usually runs in, every non-ASCII name fails that conversion: the writer falls
 * back to hdrcharset=BINARY (which GNU tar warns about) and the reader may return no name.
 * uselocale() changes only this thread's locale, so it is safe in the multi-threaded daemon;
 * the previous locale is restored by ck_utf8_locale_leave(). If C.UTF-8 is missing, nothing
 * changes and names outside ASCII are written as raw bytes (hdrcharset=BINARY).
 */
#ifndef CK_ARCHIVE_UTF8_LOCALE_H
#define CK_ARCHIVE_UTF8_LOCALE_H

#include <locale.h>

struct ck_utf8_locale {
    locale_t utf8;  /* owned; (locale_t)0 if unavailable */
    locale_t saved; /* the thread's locale before enter */
};

void ck_utf8_locale_enter(struct ck_utf8_locale *l);
void ck_utf8_locale_leave(struct ck_utf8_locale *l);

#endif
