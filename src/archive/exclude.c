/* exclude.c - --exclude and .ckptfsignore; see exclude.h. */
#include "archive/exclude.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IGNORE_FILE_MAX (256u * 1024u) /* bytes of .ckptfsignore read */
#define PATTERN_MAX     1024u

struct pattern {
    const char *glob; /* without its leading '/' */
    bool anchored;    /* matched against the relative name (it had a '/') */
};

struct ck_exclude {
    struct pattern *pat;
    size_t n, cap;
    char *file_text; /* .ckptfsignore, split into lines in place; owned */
};

static ck_rc add(struct ck_exclude *ex, const char *p, const char *where, struct ck_err *err)
{
    bool anchored = strchr(p, '/') != NULL;
    while (*p == '/')
        p++;
    if (!*p)
        return CK_OK;
    if (strlen(p) > PATTERN_MAX)
        return ck_fail(err, CK_EINVAL, "%s: a pattern longer than %u bytes", where, PATTERN_MAX);
    if (ex->n == CK_EXCLUDE_MAX)
        return ck_fail(err, CK_EINVAL, "%s: more than %u patterns", where, CK_EXCLUDE_MAX);
    if (ex->n == ex->cap) {
        size_t cap = ex->cap ? ex->cap * 2 : 16;
        struct pattern *v = realloc(ex->pat, cap * sizeof(*v));
        if (!v)
            return ck_fail(err, CK_ENOMEM, "%s: out of memory", where);
        ex->pat = v;
        ex->cap = cap;
    }
    ex->pat[ex->n++] = (struct pattern){p, anchored};
    return CK_OK;
}

/* Reads dirfd/.ckptfsignore into ex->file_text (NULL if there is none). */
static ck_rc read_file(struct ck_exclude *ex, int dirfd, struct ck_err *err)
{
    int fd = openat(dirfd, CK_EXCLUDE_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? CK_OK
                               : ck_fail_errno(err, errno, "reading save/%s", CK_EXCLUDE_FILE);
    char *buf = malloc(IGNORE_FILE_MAX + 1);
    size_t len = 0;
    ssize_t r = 1;
    while (buf && len < IGNORE_FILE_MAX && (r = read(fd, buf + len, IGNORE_FILE_MAX - len)) > 0)
        len += (size_t)r;
    int e = errno;
    close(fd);
    if (!buf)
        return ck_fail(err, CK_ENOMEM, "reading save/%s: out of memory", CK_EXCLUDE_FILE);
    if (r < 0) {
        free(buf);
        return ck_fail_errno(err, e, "reading save/%s", CK_EXCLUDE_FILE);
    }
    buf[len] = '\0';
    ex->file_text = buf;
    return CK_OK;
}

static ck_rc add_lines(struct ck_exclude *ex, struct ck_err *err)
{
    char where[64];
    unsigned line = 0;
    for (char *s = ex->file_text, *next; s && *s; s = next) {
        next = strchr(s, '\n');
        if (next)
            *next++ = '\0';
        line++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = '\0';
        if (s[0] == '#' || s[0] == '\0')
            continue;
        snprintf(where, sizeof(where), "save/%s line %u", CK_EXCLUDE_FILE, line);
        ck_rc rc = add(ex, s, where, err);
        if (rc)
            return rc;
    }
    return CK_OK;
}

ck_rc ck_exclude_new(const char *const *globs, size_t n, int dirfd, struct ck_exclude **out,
                     struct ck_err *err)
{
    struct ck_exclude *ex = calloc(1, sizeof(*ex));
    if (!ex)
        return ck_fail(err, CK_ENOMEM, "exclude patterns: out of memory");
    ck_rc rc = CK_OK;
    for (size_t i = 0; !rc && i < n; i++)
        rc = add(ex, globs[i], "--exclude", err);
    if (!rc && dirfd >= 0)
        rc = read_file(ex, dirfd, err);
    if (!rc && ex->file_text)
        rc = add_lines(ex, err);
    if (rc) {
        ck_exclude_free(ex);
        return rc;
    }
    *out = ex;
    return CK_OK;
}

bool ck_exclude_match(const struct ck_exclude *ex, const char *rel)
{
    if (!ex)
        return false;
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    for (size_t i = 0; i < ex->n; i++)
        if (fnmatch(ex->pat[i].glob, ex->pat[i].anchored ? rel : base, 0) == 0)
            return true;
    return false;
}

size_t ck_exclude_count(const struct ck_exclude *ex)
{
    return ex ? ex->n : 0;
}

void ck_exclude_free(struct ck_exclude *ex)
{
    if (!ex)
        return;
    free(ex->pat);
    free(ex->file_text);
    free(ex);
}
