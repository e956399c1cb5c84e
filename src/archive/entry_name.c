/* entry_name.c - entry name and link target checks; see entry_name.h. */
#include "archive/entry_name.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Returns the length of the component starting at s (up to '/' or the end). */
static size_t comp_len(const char *s)
{
    const char *slash = strchr(s, '/');
    return slash ? (size_t)(slash - s) : strlen(s);
}

static bool is_dot(const char *s, size_t n)
{
    return n == 1 && s[0] == '.';
}

static bool is_dotdot(const char *s, size_t n)
{
    return n == 2 && s[0] == '.' && s[1] == '.';
}

const char *ck_entry_name_check(const char *name, char *out, size_t cap)
{
    if (!name || name[0] == '\0')
        return "empty name";
    if (name[0] == '/')
        return "absolute name";
    size_t len = 0;
    for (const char *p = name; *p;) {
        size_t n = comp_len(p);
        if (is_dotdot(p, n))
            return "name has a '..' component";
        if (n > 0 && !is_dot(p, n)) {
            size_t need = len + (len > 0) + n + 1;
            if (need > cap)
                return "name too long";
            if (len > 0)
                out[len++] = '/';
            memcpy(out + len, p, n);
            len += n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    if (cap == 0)
        return "name too long";
    out[len] = '\0';
    return NULL;
}

/* Number of directories above a normalized name: "a" is 0, "a/b" is 1. */
static size_t name_depth(const char *name)
{
    size_t d = 0;
    for (const char *p = name; *p; p++)
        d += *p == '/';
    return d;
}

const char *ck_symlink_target_check(const char *link_name, const char *target)
{
    if (!target || target[0] == '\0')
        return "empty symlink target";
    if (strlen(target) >= CK_LINK_TARGET_MAX)
        return "symlink target too long";
    if (target[0] == '/')
        return "symlink target is absolute";
    size_t depth = name_depth(link_name), ups = 0;
    bool seen_name = false;
    for (const char *p = target; *p;) {
        size_t n = comp_len(p);
        if (is_dotdot(p, n)) {
            if (seen_name)
                return "symlink target has '..' after a name";
            if (++ups > depth)
                return "symlink target leaves the checkpoint";
        } else if (n > 0 && !is_dot(p, n)) {
            seen_name = true;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    return NULL;
}

const char *ck_entry_name_quote(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (!s)
        s = "(none)";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[5];
        int n = (c < 0x20 || c == 0x7f) ? snprintf(tmp, sizeof(tmp), "\\x%02x", c)
                                        : snprintf(tmp, sizeof(tmp), "%c", c);
        if (o + (size_t)n + 4 > cap) { /* keep room for "..." and the NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, tmp, (size_t)n);
        o += (size_t)n;
    }
    out[o] = '\0';
    return out;
}
