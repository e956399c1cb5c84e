/* mount_opts.c - ckptfs options inside -o lists (mount.fuse3, fstab); see mount_opts.h.
 * The keys are the option table's (option_table.c). */
#include "config/mount_opts.h"

#include <stdlib.h>
#include <string.h>

#include "config/option_table.h"

static char *own(struct ck_options *o, char *s, struct ck_err *err)
{
    if (!s || o->nowned == CK_MAX_OWNED) {
        free(s);
        ck_fail(err, CK_ENOMEM, "-o: too many option lists");
        return NULL;
    }
    o->owned[o->nowned++] = s;
    return s;
}

static ck_rc apply_one(struct ck_options *o, const struct ck_opt_def *d, char *val,
                       struct ck_err *err)
{
    if (!ck_opt_valued(d) && val)
        return ck_fail(err, CK_EINVAL, "-o %s takes no value", d->key);
    if (ck_opt_valued(d) && !val)
        return ck_fail(err, CK_EINVAL, "-o %s needs a value (%s=...)", d->key, d->key);
    ck_rc rc = ck_opt_apply(o, d, d->name ? d->name : d->key, val, err);
    if (rc)
        ck_err_prefix(err, "-o %s", d->key);
    return rc;
}

static ck_rc apply_item(struct ck_options *o, char *item, char *rest, size_t *rest_len,
                        struct ck_err *err)
{
    char *eq = strchr(item, '=');
    const struct ck_opt_def *d = ck_opt_by_key(item, eq ? (size_t)(eq - item) : strlen(item));
    if (d)
        return apply_one(o, d, eq ? eq + 1 : NULL, err);
    if (*rest_len)
        rest[(*rest_len)++] = ',';
    memcpy(rest + *rest_len, item, strlen(item) + 1);
    *rest_len += strlen(item);
    return CK_OK;
}

ck_rc ck_mount_opts_apply(struct ck_options *o, const char *list, struct ck_err *err)
{
    char *copy = own(o, strdup(list), err);
    char *rest = copy ? own(o, calloc(1, strlen(list) + 1), err) : NULL;
    if (!rest)
        return err->rc ? err->rc : CK_ENOMEM;
    size_t rest_len = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        ck_rc rc = apply_item(o, item, rest, &rest_len, err);
        if (rc)
            return rc;
    }
    if (rest_len == 0)
        return CK_OK;
    ck_rc rc = ck_options_push_fuse_arg(o, "-o", err);
    return rc ? rc : ck_options_push_fuse_arg(o, rest, err);
}
