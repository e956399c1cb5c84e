/* ctl.c - .status lookups; see ctl.h. */
#include "cli/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/json_read.h"

ck_rc ck_ctl_read(const char *mnt, char *doc, size_t cap, struct ck_err *err)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/.status", mnt);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ck_fail_errno(err, errno, "%s (is a ckptfs mounted there?)", p);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, doc + n, cap - 1 - n)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return ck_fail_errno(err, e, "reading %s", p);
        }
        n += (size_t)r;
    }
    close(fd);
    doc[n] = '\0';
    return CK_OK;
}

bool ck_ctl_get(const char *doc, const char *path, char *out, size_t outlen)
{
    char key[64];
    char *cur = strdup(doc), *next = malloc(CK_STATUS_MAX);
    bool ok = cur && next;
    while (ok && *path) {
        const char *dot = strchr(path, '.');
        size_t k = dot ? (size_t)(dot - path) : strlen(path);
        snprintf(key, sizeof(key), "%.*s", (int)(k < sizeof(key) ? k : sizeof(key) - 1), path);
        ok = ck_json_get_raw(cur, strlen(cur), key, next, CK_STATUS_MAX) == CK_OK;
        if (ok) {
            char *t = cur;
            cur = next;
            next = t;
        }
        path += k + (dot ? 1 : 0);
    }
    if (ok)
        snprintf(out, outlen, "%s", cur);
    free(cur);
    free(next);
    return ok;
}

void ck_ctl_str(const char *doc, const char *path, char *out, size_t outlen)
{
    char raw[1024];
    out[0] = '\0';
    if (!ck_ctl_get(doc, path, raw, sizeof(raw)) || strcmp(raw, "null") == 0)
        return;
    size_t n = strlen(raw);
    if (n >= 2 && raw[0] == '"')
        snprintf(out, outlen, "%.*s", (int)(n - 2), raw + 1);
    else
        snprintf(out, outlen, "%s", raw);
}

double ck_ctl_num(const char *doc, const char *path, double def)
{
    char raw[64];
    if (!ck_ctl_get(doc, path, raw, sizeof(raw)))
        return def;
    char *end;
    double v = strtod(raw, &end);
    return end == raw ? def : v;
}
