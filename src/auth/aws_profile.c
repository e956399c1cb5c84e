/*
 * aws_profile.c - reads one profile of the AWS shared files; see aws_profile.h.
 */
#include "auth/aws_profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/ini.h"

static const char *env_or_empty(char *(*getenv_fn)(const char *), const char *name)
{
    const char *v = getenv_fn(name);
    return v ? v : "";
}

static ck_rc path_of(char *(*getenv_fn)(const char *), const char *var, const char *def, char *out,
                     size_t outlen, struct ck_err *err)
{
    const char *v = env_or_empty(getenv_fn, var);
    const char *home = env_or_empty(getenv_fn, "HOME");
    int n = 0;
    if (v[0] == '~' && v[1] == '/' && home[0])
        n = snprintf(out, outlen, "%s%s", home, v + 1);
    else if (v[0])
        n = snprintf(out, outlen, "%s", v);
    else if (home[0])
        n = snprintf(out, outlen, "%s/%s", home, def);
    else
        out[0] = '\0';
    if (n < 0 || (size_t)n >= outlen)
        return ck_fail(err, CK_EINVAL, "profile: %s (or HOME) is too long", var);
    return CK_OK;
}

/* Both files' text; a missing one is NULL. */
struct texts {
    char *cred, *conf;
    char conf_section[160];
};

static ck_rc get(const struct ck_aws_profile *p, const struct texts *t, const char *key, char *out,
                 size_t outlen, struct ck_err *err)
{
    ck_rc rc = t->cred ? ck_ini_get(t->cred, p->name, key, out, outlen) : CK_ENOTFOUND;
    const char *file = p->cred_path;
    if (rc == CK_ENOTFOUND && t->conf) {
        rc = ck_ini_get(t->conf, t->conf_section, key, out, outlen);
        file = p->conf_path;
    }
    if (rc == CK_ENOTFOUND) {
        out[0] = '\0';
        return CK_OK;
    }
    if (rc)
        return ck_fail(err, CK_EINVAL, "profile '%s' in %s: %s is too long or malformed", p->name,
                       file, key);
    return CK_OK;
}

static ck_rc read_keys(struct ck_aws_profile *p, const struct texts *t, struct ck_err *err)
{
    static const char *unsupported[] = {"source_profile", "credential_source", "credential_process",
                                        "sso_start_url", "sso_session"};
    ck_rc rc = get(p, t, "aws_access_key_id", p->access_key, sizeof(p->access_key), err);
    if (!rc)
        rc = get(p, t, "aws_secret_access_key", p->secret_key, sizeof(p->secret_key), err);
    if (!rc)
        rc = get(p, t, "aws_session_token", p->session_token, sizeof(p->session_token), err);
    if (!rc)
        rc = get(p, t, "role_arn", p->role_arn, sizeof(p->role_arn), err);
    if (!rc)
        rc = get(p, t, "web_identity_token_file", p->web_identity_token_file,
                 sizeof(p->web_identity_token_file), err);
    if (!rc)
        rc =
            get(p, t, "role_session_name", p->role_session_name, sizeof(p->role_session_name), err);
    if (!rc)
        rc = get(p, t, "region", p->region, sizeof(p->region), err);
    for (size_t i = 0; !rc && !p->unsupported[0] && i < 5; i++) {
        char v[512];
        rc = get(p, t, unsupported[i], v, sizeof(v), err);
        if (!rc && v[0])
            snprintf(p->unsupported, sizeof(p->unsupported), "%s", unsupported[i]);
    }
    return rc;
}

static ck_rc read_file(const char *path, char **out, struct ck_err *err)
{
    *out = NULL;
    if (!path[0])
        return CK_OK;
    ck_rc rc = ck_ini_read(path, out, err);
    if (rc == CK_ENOTFOUND) {
        ck_err_clear(err);
        return CK_OK;
    }
    if (rc)
        ck_err_prefix(err, "profile");
    return rc;
}

ck_rc ck_aws_profile_load(char *(*getenv_fn)(const char *), struct ck_aws_profile *p,
                          struct ck_err *err)
{
    memset(p, 0, sizeof(*p));
    const char *name = env_or_empty(getenv_fn, "AWS_PROFILE");
    p->explicit_name = name[0] != '\0';
    if (strlen(name) >= sizeof(p->name) || strpbrk(name, "[]\r\n"))
        return ck_fail(err, CK_EINVAL, "profile: AWS_PROFILE is too long or malformed");
    snprintf(p->name, sizeof(p->name), "%s", name[0] ? name : "default");
    ck_rc rc = path_of(getenv_fn, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", p->cred_path,
                       sizeof(p->cred_path), err);
    if (!rc)
        rc = path_of(getenv_fn, "AWS_CONFIG_FILE", ".aws/config", p->conf_path,
                     sizeof(p->conf_path), err);
    struct texts t = {0};
    if (!rc)
        rc = read_file(p->cred_path, &t.cred, err);
    if (!rc)
        rc = read_file(p->conf_path, &t.conf, err);
    snprintf(t.conf_section, sizeof(t.conf_section), "profile %s", p->name);
    if (!rc && t.conf && strcmp(p->name, "default") == 0 &&
        !ck_ini_has_section(t.conf, t.conf_section))
        snprintf(t.conf_section, sizeof(t.conf_section), "default");
    if (!rc) {
        p->found = (t.cred && ck_ini_has_section(t.cred, p->name)) ||
                   (t.conf && ck_ini_has_section(t.conf, t.conf_section));
        rc = read_keys(p, &t, err);
    }
    if (t.cred)
        memset(t.cred, 0, strlen(t.cred));
    free(t.cred);
    free(t.conf);
    if (rc)
        memset(p->secret_key, 0, sizeof(p->secret_key));
    return rc;
}
