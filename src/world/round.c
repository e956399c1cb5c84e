/* round.c - the round object and small objects of a multi-rank checkpoint; see round.h. */
#include "world/round.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"none", "waiting", "committed", "failed"};

const char *ck_round_state_name(enum ck_round_state s)
{
    return state_names[s];
}

struct small_sink {
    char *buf;
    size_t len;
};

static ck_rc small_write(void *ctx, const void *p, size_t n, struct ck_err *err)
{
    struct small_sink *s = ctx;
    if (n > CK_WORLD_SMALL_MAX - s->len)
        return ck_fail(err, CK_ECORRUPT, "a multi-rank control object is longer than %u bytes",
                       CK_WORLD_SMALL_MAX);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return CK_OK;
}

ck_rc ck_world_small_get(struct ck_store *s, char buf[CK_WORLD_SMALL_MAX + 1], struct ck_err *err)
{
    struct small_sink ss = {buf, 0};
    struct ck_sink sink = {small_write, &ss};
    ck_rc rc = ck_store_get(s, 0, CK_STORE_TO_END, &sink, err);
    if (rc == CK_ENOTFOUND) {
        ck_err_clear(err);
        ss.len = 0;
        rc = CK_OK;
    }
    buf[rc ? 0 : ss.len] = '\0';
    return rc;
}

ck_rc ck_world_small_put(struct ck_store *s, const char *text, struct ck_err *err)
{
    struct ck_store_upload *up = NULL;
    ck_rc rc = ck_store_put_begin(s, NULL, &up, err);
    if (rc)
        return rc;
    rc = ck_store_put_write(up, text, strlen(text), err);
    if (rc) {
        ck_store_put_abort(up);
        return rc;
    }
    return ck_store_put_commit(up, err);
}

bool ck_round_parse(const char *text, struct ck_round *out)
{
    char word[16];
    unsigned long long g;
    int used = 0;
    if (text[0] < '0' || text[0] > '9' || sscanf(text, "%llu %15[a-z]%n", &g, word, &used) != 2 ||
        g == 0)
        return false;
    if (strcmp(text + used, "") != 0 && strcmp(text + used, "\n") != 0)
        return false;
    for (int i = CK_ROUND_WAITING; i <= CK_ROUND_FAILED; i++)
        if (strcmp(word, state_names[i]) == 0) {
            *out = (struct ck_round){g, (enum ck_round_state)i};
            return true;
        }
    return false;
}

ck_rc ck_round_read(struct ck_store *s, struct ck_round *out, struct ck_err *err)
{
    char text[CK_WORLD_SMALL_MAX + 1];
    ck_rc rc = ck_world_small_get(s, text, err);
    *out = (struct ck_round){0, CK_ROUND_NONE};
    if (rc || text[0] == '\0')
        return rc;
    if (!ck_round_parse(text, out))
        return ck_fail(err, CK_ECORRUPT, "%s: not a round (\"G waiting|committed|failed\")",
                       ck_store_uri(s));
    return CK_OK;
}

ck_rc ck_round_write(struct ck_store *s, const struct ck_round *r, struct ck_err *err)
{
    char text[48];
    snprintf(text, sizeof(text), "%" PRIu64 " %s\n", r->gen, ck_round_state_name(r->state));
    return ck_world_small_put(s, text, err);
}
