/* fuzz_uri.c - --src/--dest URI parsing and the display form (which must never keep a
 * query string or userinfo, the places where presigned URLs and keys carry secrets). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "store/uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the query of a URI ('?' and at least 6 bytes after it) appears in its display
 * form. */
static bool leaks_query(const char *uri, const char *disp)
{
    const char *q = strchr(uri, '?');
    if (!q)
        return false;
    char part[64];
    size_t n = strcspn(q, "#"); /* '?' and the query after it */
    if (n < 7)
        return false;
    if (n >= sizeof(part))
        n = sizeof(part) - 1;
    memcpy(part, q, n);
    part[n] = '\0';
    return strstr(disp, part) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = ck_fuzz_cstring(data, size);
    if (!s)
        return 0;
    struct ck_uri u;
    struct ck_err err = {0};
    /* A string that does not parse as a URI with a scheme is a local path, where '?' is
     * an ordinary character: only real URIs must lose their query in the display. */
    bool remote = false;
    if (ck_uri_parse(s, &u, &err) == CK_OK) {
        if (!u.display)
            abort();
        remote = u.kind != CK_URI_FILE;
        if (remote && leaks_query(s, u.display))
            abort(); /* a query string (presigned signature, SAS) reached the display */
        ck_uri_free(&u);
    }
    char disp[256];
    ck_uri_display(s, disp, sizeof(disp));
    if (memchr(disp, '\0', sizeof(disp)) == NULL)
        abort();
    for (const char *c = disp; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            abort(); /* control characters must be replaced */
    if (remote && leaks_query(s, disp))
        abort();
    free(s);
    return 0;
}
