/*
 * ini.c - the AWS shared files' INI dialect; see ini.h.
 *
 * Design: one scanner walks the text line by line and calls back for every section header
 * and every key line, so the two lookups share the rules. Lines are never copied whole:
 * names are compared in place and only a found value is copied, checked, into the caller's
 * buffer.
 */
#include "auth/ini.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

ck_rc ck_ini_read(const char *path, char **out, struct ck_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ck_fail(err, CK_ENOTFOUND, "%s: no such file", path)
                               : ck_fail_errno(err, errno, "%s", path);
    struct stat st;
    ck_rc rc = CK_OK;
    if (fstat(fd, &st) != 0)
        rc = ck_fail_errno(err, errno, "%s", path);
    else if (!S_ISREG(st.st_mode) || st.st_size > CK_INI_FILE_MAX)
        rc = ck_fail(err, CK_EHOSTILE, "%s: not a regular file of at most %d bytes", path,
                     CK_INI_FILE_MAX);
    char *buf = rc ? NULL : malloc((size_t)st.st_size + 1);
    if (!rc && !buf)
        rc = ck_fail(err, CK_ENOMEM, "%s: out of memory", path);
    size_t len = 0;
    while (!rc && len < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = ck_fail_errno(err, errno, "%s: read", path);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    return CK_OK;
}

struct span {
    const char *p;
    size_t n;
};

static struct span trim(const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    return (struct span){p, n};
}

static bool span_eq(struct span s, const char *z, bool nocase)
{
    size_t n = strlen(z);
    return s.n == n && (nocase ? strncasecmp(s.p, z, n) == 0 : memcmp(s.p, z, n) == 0);
}

/* Calls on_key for each "key = value" line inside a section named section; stops when it
 * returns true. Returns whether a section of that name exists. */
static bool scan(const char *text, const char *section,
                 bool (*on_key)(struct span key, struct span val, void *ctx), void *ctx)
{
    bool in = false, seen = false;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        bool indented = len && (line[0] == ' ' || line[0] == '\t');
        struct span s = trim(line, len);
        line = nl ? nl + 1 : NULL;
        if (s.n == 0 || s.p[0] == '#' || s.p[0] == ';' || indented)
            continue;
        if (s.p[0] == '[') {
            in = s.p[s.n - 1] == ']' && s.n >= 2 && span_eq(trim(s.p + 1, s.n - 2), section, false);
            seen = seen || in;
            continue;
        }
        const char *eq = memchr(s.p, '=', s.n);
        if (!in || !eq)
            continue;
        struct span k = trim(s.p, (size_t)(eq - s.p));
        struct span v = trim(eq + 1, s.n - (size_t)(eq - s.p) - 1);
        if (on_key && on_key(k, v, ctx))
            break;
    }
    return seen;
}

bool ck_ini_has_section(const char *text, const char *section)
{
    return scan(text, section, NULL, NULL);
}

struct lookup {
    const char *key;
    bool found;
    struct span val;
};

static bool match_key(struct span key, struct span val, void *ctx)
{
    struct lookup *l = ctx;
    if (!span_eq(key, l->key, true))
        return false;
    l->found = true;
    l->val = val;
    return true;
}

ck_rc ck_ini_get(const char *text, const char *section, const char *key, char *out, size_t outlen)
{
    struct lookup l = {.key = key};
    scan(text, section, match_key, &l);
    if (!l.found)
        return CK_ENOTFOUND;
    if (l.val.n >= outlen)
        return CK_EINVAL;
    for (size_t i = 0; i < l.val.n; i++)
        if ((unsigned char)l.val.p[i] < 0x20 || l.val.p[i] == 0x7f)
            return CK_EINVAL;
    memcpy(out, l.val.p, l.val.n);
    out[l.val.n] = '\0';
    return CK_OK;
}
