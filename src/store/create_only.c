/* create_only.c - what the reply to a create-only PUT means; see create_only.h. */
#include "store/create_only.h"

#include <string.h>

#include "util/log.h"

bool ck_commit_maybe_applied(ck_rc rc)
{
    return rc == CK_ENET || rc == CK_ETIMEDOUT || rc == CK_ENOTFOUND || rc == CK_ECORRUPT ||
           rc == CK_EREMOTE;
}

enum found { FOUND_OURS, FOUND_OTHER, FOUND_NONE, FOUND_UNKNOWN };

/* Compares the object, as it streams in, with the bytes the PUT sent. */
struct compare {
    const char *want;
    size_t len, off;
    bool differs;
};

static ck_rc compare_write(void *ctx, const void *buf, size_t n, struct ck_err *err)
{
    struct compare *c = ctx;
    if (n > c->len - c->off || memcmp(c->want + c->off, buf, n) != 0) {
        c->differs = true; /* stops the transfer: the rest does not matter */
        return ck_fail(err, CK_ECANCELED, "the object differs from the one sent");
    }
    c->off += n;
    return CK_OK;
}

/* Reads the object back; err gets the read's failure for FOUND_UNKNOWN. */
static enum found read_back(struct ck_store *s, const void *body, size_t len, struct ck_err *err)
{
    struct compare c = {.want = body, .len = len};
    struct ck_sink sink = {compare_write, &c};
    ck_rc rc = ck_store_get(s, 0, CK_STORE_TO_END, &sink, err);
    if (c.differs)
        return FOUND_OTHER;
    if (rc == CK_ENOTFOUND)
        return FOUND_NONE;
    if (rc)
        return FOUND_UNKNOWN;
    return c.off == len ? FOUND_OURS : FOUND_OTHER;
}

static ck_rc already_there(const struct ck_store *s, const struct ck_create_reply *r,
                           struct ck_err *err)
{
    return ck_fail(err, CK_EEXIST, "PUT %s: an object is already there (%s)", s->display_uri,
                   r->condition);
}

/* After an outcome that an earlier attempt of ours may have caused: the object decides. */
static ck_rc decide_by_object(struct ck_store *s, const void *body, size_t len,
                              const struct ck_create_reply *r, struct ck_err *err)
{
    struct ck_err rerr;
    ck_err_clear(&rerr);
    enum found f = read_back(s, body, len, &rerr);
    switch (f) {
    case FOUND_OURS:
        ck_log_warn("%s; but %s holds the bytes this put sent: an earlier attempt created it",
                    err->msg, s->display_uri);
        ck_err_clear(err);
        return CK_OK;
    case FOUND_OTHER:
        return already_there(s, r, err);
    case FOUND_NONE:
        return r->exists ? already_there(s, r, err) : r->rc;
    case FOUND_UNKNOWN:
        break;
    }
    if (!r->exists) {
        ck_log_warn("%s; reading it back to see whether it was applied: %s", err->msg, rerr.msg);
        return r->rc;
    }
    return ck_fail(err, rerr.rc,
                   "PUT %s: an object is there (%s), and whether an earlier attempt of this put "
                   "made it is unknown: %s",
                   s->display_uri, r->condition, rerr.msg);
}

ck_rc ck_create_only_result(struct ck_store *s, const void *body, size_t len,
                            const struct ck_create_reply *r, struct ck_err *err)
{
    if (r->rc == CK_OK)
        return CK_OK;
    if (r->exists && r->attempts <= 1)
        return already_there(s, r, err); /* the first and only request was refused */
    if (!r->exists && !ck_commit_maybe_applied(r->rc))
        return r->rc;
    return decide_by_object(s, body, len, r, err);
}
