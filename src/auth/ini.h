/*
 * ini.h - lookups in the AWS shared credentials and config files (INI dialect).
 *
 * The text is the caller's (read with a cap by ck_ini_read); nothing here allocates.
 * Rules, as the AWS CLI reads these files: "[section]" headers (spaces inside the brackets
 * trimmed), "key = value" lines (both trimmed, keys compared case-insensitively), lines
 * starting with '#' or ';' are comments, indented lines continue a nested block ("s3 =")
 * and are skipped. No inline comments: '#' inside a value is part of it. The first
 * occurrence of a key in any section of that name wins.
 */
#ifndef CK_AUTH_INI_H
#define CK_AUTH_INI_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define CK_INI_FILE_MAX (1024 * 1024) /* bigger credential files are refused */

/* Reads path into a NUL-terminated malloc'd buffer (*out, caller frees). A missing file
 * is CK_ENOTFOUND with *out NULL; a file over CK_INI_FILE_MAX is CK_EHOSTILE. */
ck_rc ck_ini_read(const char *path, char **out, struct ck_err *err);

/* Whether text has a section named section. */
bool ck_ini_has_section(const char *text, const char *section);

/* Finds key in section: CK_OK with the value in out, CK_ENOTFOUND if absent,
 * CK_EINVAL if the value does not fit in outlen or holds control characters. */
ck_rc ck_ini_get(const char *text, const char *section, const char *key, char *out, size_t outlen);

#endif
