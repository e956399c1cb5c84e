/* settle.c - an ambiguous commit settled at the destination; see settle.h. */
#include "store/settle.h"

#include <string.h>

#include "store/create_only.h"
#include "store/digest.h"
#include "util/log.h"

bool ck_commit_is_ours(const struct ck_store_info *info, const struct ck_commit_id *id)
{
    if (!info->exists)
        return false;
    if (id->mark && id->mark[0] && strcmp(info->mark, id->mark) == 0)
        return true;
    return id->etag && id->etag[0] && ck_etag_equal(info->etag, id->etag);
}

bool ck_settle_head(struct ck_store *s, struct ck_store_info *info, const struct ck_err *failure)
{
    struct ck_err herr;
    ck_err_clear(&herr);
    if (ck_store_head(s, info, &herr) == CK_OK)
        return true;
    ck_log_warn("%s; checking whether it was applied: %s", failure->msg, herr.msg);
    return false;
}

ck_rc ck_commit_settle(struct ck_store *s, const struct ck_commit_id *id, ck_rc rc,
                       struct ck_err *err)
{
    if (!rc || !ck_commit_maybe_applied(rc))
        return rc;
    if ((!id->etag || !id->etag[0]) && (!id->mark || !id->mark[0]))
        return rc; /* nothing to recognise it by: the failure stands */
    struct ck_store_info info;
    if (!ck_settle_head(s, &info, err) || !ck_commit_is_ours(&info, id))
        return rc;
    ck_log_warn("%s; but %s holds the new object: the commit was applied", err->msg,
                s->display_uri);
    ck_err_clear(err);
    return CK_OK;
}
