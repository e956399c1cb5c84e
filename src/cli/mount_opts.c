/* mount_opts.c - ckptfs options inside -o lists (mount.fuse3, fstab); see mount_opts.h. */
#include "cli/mount_opts.h"

#include <stdlib.h>
#include <string.h>

struct opt_map {
    const char *key;  /* as written in -o */
    const char *name; /* the long option it stands for */
    bool valued;
};

static const struct opt_map map[] = {
    {"dest", "--dest", true},
    {"src", "--src", true},
    {"cache_dir", "--cache-dir", true},
    {"autosave_quiet", "--autosave", true},
    {"autosave_every", "--autosave", true},
    {"compress", "--compress", true},
    {"save_wait", "--save-wait", true},
    {"log_level", "--log-level", true},
    {"metrics", "--metrics", true},
    {"grace", "--grace", true},
    {"world", "--world", true},
    {"rank", "--rank", true},
    {"world_id", "--world-id", true},
    {"world_timeout", "--world-timeout", true},
    {"save_on_exit", "--save-on-exit", true},
    {"exclude", "--exclude", true},
    {"uid", "--uid", true},
    {"gid", "--gid", true},
    {"no_save_on_unmount", "--no-save-on-unmount", false},
    {"carry_forward", "--carry-forward", false},
    {"no_sign_request", "--no-sign-request", false},
    {"no_fuse", "--no-fuse", false},
    {NULL, NULL, false},
};

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

/* autosave_quiet=N is "--autosave quiet=N": the key's tail is the policy name. */
static ck_rc apply_one(struct ck_options *o, const struct opt_map *m, char *item, char *val,
                       struct ck_err *err)
{
    if (!m->valued) {
        if (val)
            return ck_fail(err, CK_EINVAL, "-o %s takes no value", m->key);
        ck_options_flag(o, m->name);
        return CK_OK;
    }
    if (!val)
        return ck_fail(err, CK_EINVAL, "-o %s needs a value (%s=...)", m->key, m->key);
    if (strncmp(m->key, "autosave_", 9) == 0)
        val = item + 9; /* "quiet=N" */
    ck_rc rc = ck_options_apply(o, m->name, val, err);
    if (rc)
        ck_err_prefix(err, "-o %s", m->key);
    return rc;
}

static ck_rc apply_item(struct ck_options *o, char *item, char *rest, size_t *rest_len,
                        struct ck_err *err)
{
    char *eq = strchr(item, '=');
    size_t klen = eq ? (size_t)(eq - item) : strlen(item);
    for (const struct opt_map *m = map; m->key; m++)
        if (strlen(m->key) == klen && strncmp(item, m->key, klen) == 0)
            return apply_one(o, m, item, eq ? eq + 1 : NULL, err);
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
