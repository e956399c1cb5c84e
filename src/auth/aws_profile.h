/*
 * aws_profile.h - one profile of the AWS shared files, as the AWS CLI reads them.
 *
 * AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials, section "[NAME]") and
 * AWS_CONFIG_FILE (default ~/.aws/config, section "[profile NAME]", or "[default]") for
 * AWS_PROFILE (default "default"). Keys are looked up in the credentials file first, then
 * in the config file. Files are read once, capped (ini.h); a missing file is no error.
 */
#ifndef CK_AUTH_AWS_PROFILE_H
#define CK_AUTH_AWS_PROFILE_H

#include <stdbool.h>

#include "util/err.h"

struct ck_aws_profile {
    char name[128];
    bool explicit_name;   /* AWS_PROFILE was set */
    bool found;           /* a section of that name exists in either file */
    char cred_path[1024]; /* "" without HOME and without the variable */
    char conf_path[1024];
    char access_key[128];
    char secret_key[128];
    char session_token[4096];
    char role_arn[2048];
    char web_identity_token_file[4096];
    char role_session_name[65];
    char region[64];
    char unsupported[64]; /* the first key of a source we do not support, e.g.
                             "source_profile", "credential_process", "sso_start_url" */
};

/* Loads the profile. Errors only for unreadable or oversized files and malformed values
 * (messages name the file and key, never a value). */
ck_rc ck_aws_profile_load(char *(*getenv_fn)(const char *), struct ck_aws_profile *p,
                          struct ck_err *err);

#endif
