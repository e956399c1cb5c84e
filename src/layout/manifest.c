/* manifest.c - shard names and the manifest text; see manifest.h. */
#include "layout/manifest.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* A world id becomes one path segment: letters, digits, '-', '_' and '.', not "." or "..". */
static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

static ck_rc prefix(const char *id, char *out, size_t cap, struct ck_err *err)
{
    if (id && !id_ok(id))
        return ck_fail(err, CK_EINVAL, "--world-id '%s': up to 64 letters, digits, '-', '_' or '.'",
                       id);
    snprintf(out, cap, ".ranks/%s%s", id ? id : "", id ? "/" : "");
    return CK_OK;
}

ck_rc ck_world_shard_suffix(const char *id, uint64_t gen, unsigned rank, unsigned world,
                            char out[CK_WORLD_SUFFIX_MAX], struct ck_err *err)
{
    char pre[96];
    ck_rc rc = prefix(id, pre, sizeof(pre), err);
    if (!rc)
        snprintf(out, CK_WORLD_SUFFIX_MAX, "%sg%" PRIu64 "/r%u-of-%u", pre, gen, rank, world);
    return rc;
}

ck_rc ck_world_claim_suffix(const char *id, uint64_t gen, char out[CK_WORLD_SUFFIX_MAX],
                            struct ck_err *err)
{
    char pre[96];
    ck_rc rc = prefix(id, pre, sizeof(pre), err);
    if (!rc)
        snprintf(out, CK_WORLD_SUFFIX_MAX, "%sg%" PRIu64 "/commit", pre, gen);
    return rc;
}

/* ".ranks/[ID/]leaf": the run's control objects. */
static ck_rc leaf_suffix(const char *id, const char *leaf, char out[CK_WORLD_SUFFIX_MAX],
                         struct ck_err *err)
{
    char pre[96];
    ck_rc rc = prefix(id, pre, sizeof(pre), err);
    if (!rc)
        snprintf(out, CK_WORLD_SUFFIX_MAX, "%s%s", pre, leaf);
    return rc;
}

ck_rc ck_world_hint_suffix(const char *id, char out[CK_WORLD_SUFFIX_MAX], struct ck_err *err)
{
    return leaf_suffix(id, "committed", out, err);
}

ck_rc ck_world_round_suffix(const char *id, char out[CK_WORLD_SUFFIX_MAX], struct ck_err *err)
{
    return leaf_suffix(id, "round", out, err);
}

ck_rc ck_world_open(const char *uri, const struct ck_store_env *env, const char *suffix,
                    struct ck_store **out, struct ck_err *err)
{
    char *full = ck_world_uri(uri, suffix);
    ck_rc rc = full ? ck_store_open(full, env, out, err) : ck_fail(err, CK_ENOMEM, "out of memory");
    free(full);
    return rc;
}

char *ck_world_uri(const char *uri, const char *suffix)
{
    size_t path = strcspn(uri, "?");
    size_t n = strlen(uri) + strlen(suffix) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%.*s%s%s", (int)path, uri, suffix, uri + path);
    return out;
}

ck_rc ck_world_manifest_format(const struct ck_world_manifest *m, char **out, size_t *len,
                               struct ck_err *err)
{
    struct ck_buf b;
    ck_buf_init(&b, CK_WORLD_MANIFEST_MAX);
    ck_rc rc = ck_buf_printf(&b, "ckptfs-world 1\ngeneration %" PRIu64 "\nworld %u\nrank 0 .\n",
                             m->generation, m->world);
    for (unsigned r = 1; !rc && r < m->world; r++) {
        const struct ck_world_shard *s = &m->shards[r];
        rc = ck_buf_printf(&b, "rank %u %" PRIu64 " %s %s\n", r, s->size,
                           s->etag[0] ? s->etag : "-", s->suffix);
    }
    if (rc) {
        ck_buf_free(&b);
        return ck_fail(err, CK_ENOMEM, "multi-rank manifest: out of memory");
    }
    *out = b.data;
    *len = b.len;
    return CK_OK;
}

/* A suffix as a writer makes it: ".ranks/", printable, no "..", no spaces. */
static bool suffix_ok(const char *s)
{
    if (strncmp(s, ".ranks/", 7) != 0 || strstr(s, "..") != NULL || strstr(s, "//") != NULL)
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~' || *s == '?' || *s == '#' || *s == '\\')
            return false;
    return true;
}

static ck_rc bad(struct ck_err *err, const char *where, unsigned line, const char *what)
{
    return ck_fail(err, CK_ECORRUPT, "%s: multi-rank manifest line %u: %s", where, line, what);
}

/* "rank R SIZE ETAG SUFFIX" for R > 0. */
static ck_rc parse_rank(const char *line, unsigned no, const char *where,
                        struct ck_world_manifest *m, unsigned expect, struct ck_err *err)
{
    unsigned r;
    uint64_t size;
    char etag[128], suffix[CK_WORLD_SUFFIX_MAX];
    int used = 0;
    if (sscanf(line, "rank %u %" SCNu64 " %127s %159s%n", &r, &size, etag, suffix, &used) != 4 ||
        line[used] != '\0')
        return bad(err, where, no, "expected 'rank R SIZE ETAG SUFFIX'");
    if (r != expect)
        return bad(err, where, no, "ranks out of order");
    if (!suffix_ok(suffix))
        return bad(err, where, no, "shard name outside DEST.ranks/");
    struct ck_world_shard *s = &m->shards[r];
    s->size = size;
    snprintf(s->etag, sizeof(s->etag), "%s", strcmp(etag, "-") == 0 ? "" : etag);
    snprintf(s->suffix, sizeof(s->suffix), "%s", suffix);
    return CK_OK;
}

static ck_rc parse_header(char **lines, size_t n, const char *where, struct ck_world_manifest *m,
                          struct ck_err *err)
{
    int used = 0;
    if (n < 4 || strcmp(lines[0], "ckptfs-world 1") != 0)
        return bad(err, where, 1, "not 'ckptfs-world 1'");
    if (sscanf(lines[1], "generation %" SCNu64 "%n", &m->generation, &used) != 1 || lines[1][used])
        return bad(err, where, 2, "expected 'generation G'");
    used = 0;
    if (sscanf(lines[2], "world %u%n", &m->world, &used) != 1 || lines[2][used] || m->world < 1 ||
        m->world > 4096)
        return bad(err, where, 3, "expected 'world N', N from 1 to 4096");
    if (strcmp(lines[3], "rank 0 .") != 0)
        return bad(err, where, 4, "expected 'rank 0 .'");
    if (n != 3 + (size_t)m->world)
        return bad(err, where, (unsigned)n, "not one line per rank");
    return CK_OK;
}

ck_rc ck_world_manifest_parse(const char *text, const char *where, struct ck_world_manifest *m,
                              struct ck_err *err)
{
    memset(m, 0, sizeof(*m));
    char *copy = strdup(text);
    size_t cap = 8, n = 0;
    char **lines = malloc(cap * sizeof(*lines));
    if (!copy || !lines) {
        free(copy);
        free(lines);
        return ck_fail(err, CK_ENOMEM, "%s: out of memory", where);
    }
    ck_rc rc = CK_OK;
    size_t len = strlen(copy);
    if (len == 0 || copy[len - 1] != '\n')
        rc = bad(err, where, 0, "does not end with a newline");
    for (char *p = copy; !rc && *p;) {
        char *nl = strchr(p, '\n');
        *nl = '\0';
        if (n == cap) {
            char **grown = n < 8192 ? realloc(lines, 2 * cap * sizeof(*lines)) : NULL;
            if (!grown) {
                rc = bad(err, where, (unsigned)n, "too many lines");
                break;
            }
            lines = grown;
            cap *= 2;
        }
        lines[n++] = p;
        p = nl + 1;
    }
    if (!rc)
        rc = parse_header(lines, n, where, m, err);
    if (!rc && !(m->shards = calloc(m->world, sizeof(*m->shards))))
        rc = ck_fail(err, CK_ENOMEM, "%s: out of memory", where);
    for (unsigned r = 1; !rc && r < m->world; r++)
        rc = parse_rank(lines[3 + r], 4 + r, where, m, r, err);
    free(lines);
    free(copy);
    if (rc)
        ck_world_manifest_free(m);
    return rc;
}

void ck_world_manifest_free(struct ck_world_manifest *m)
{
    free(m->shards);
    m->shards = NULL;
}

ck_rc ck_world_manifest_parse_entry(char *text, size_t len, struct ck_world_manifest *m,
                                    struct ck_err *err)
{
    ck_rc rc = strlen(text) != len ? ck_fail(err, CK_ECORRUPT, "multi-rank manifest: a NUL byte")
                                   : ck_world_manifest_parse(text, CK_WORLD_MANIFEST, m, err);
    free(text);
    return rc;
}
