/* cond_put.c - conditional replaces; see cond_put.h. */
#include "store/cond_put.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

ck_rc ck_cond_init(struct ck_cond *c, const struct ck_put_opts *opts, const char *uri,
                   struct ck_err *err)
{
    memset(c, 0, sizeof(*c));
    if (!opts || !opts->if_match)
        return CK_OK;
    if (strlen(opts->if_match) >= sizeof(c->version))
        return ck_fail(err, CK_EINVAL, "PUT %s: the expected version is too long", uri);
    c->on = true;
    memcpy(c->version, opts->if_match, strlen(opts->if_match) + 1);
    return CK_OK;
}

void ck_cond_values(const struct ck_cond *c, const char **if_match, const char **if_none_match)
{
    if (!c->on)
        return;
    *if_match = c->version[0] ? c->version : NULL;
    *if_none_match = c->version[0] ? NULL : "*";
}

void ck_cond_describe(const struct ck_cond *c, bool gcs, char *out, size_t cap)
{
    if (gcs)
        snprintf(out, cap, "x-goog-if-generation-match: %s", c->version[0] ? c->version : "0");
    else if (c->version[0])
        snprintf(out, cap, "If-Match: %s", c->version);
    else
        snprintf(out, cap, "If-None-Match: *");
}

ck_rc ck_cond_settle(struct ck_store *s, const struct ck_cond *c, bool gcs,
                     const struct ck_commit_id *id, bool refused, ck_rc rc, struct ck_err *err)
{
    struct ck_store_info info;
    if (!ck_settle_head(s, &info, err))
        return rc;
    if (ck_commit_is_ours(&info, id)) {
        ck_log_warn("%s; but %s holds the new object: the commit was applied", err->msg,
                    s->display_uri);
        ck_err_clear(err);
        return CK_OK;
    }
    bool expected =
        c->version[0] ? info.exists && strcmp(info.version, c->version) == 0 : !info.exists;
    char cond[192], was[CK_ERR_MSG_MAX];
    ck_cond_describe(c, gcs, cond, sizeof(cond));
    if (expected && refused)
        return ck_fail(err, CK_EUNSUPPORTED,
                       "PUT %s: the store refused the precondition (%s) although the object "
                       "holds that version: it does not honour conditional writes",
                       s->display_uri, cond);
    if (expected)
        return rc;
    snprintf(was, sizeof(was), "%s", err->msg);
    return ck_fail(err, CK_EEXIST, "PUT %s: the object changed since it was read (%s): %s",
                   s->display_uri, cond, was);
}
