/*
 * ctl.h - reading a mount's .status from outside (ckptfs save/status/wait).
 *
 * The document is the one the FUSE adapter serves (daemon/status.c) or the one the
 * no-FUSE server writes (daemon/nofuse.c, "mode": "no-fuse"). Values are looked
 * up by dotted path ("save.last.generation") with the strict JSON reader of util/json_read.h.
 */
#ifndef CK_CLI_CTL_H
#define CK_CLI_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define CK_STATUS_MAX (64 * 1024)

/* Reads MOUNTPOINT/.status into doc (NUL-terminated). */
ck_rc ck_ctl_read(const char *mnt, char *doc, size_t cap, struct ck_err *err);

/* The raw JSON text at path (strings keep their quotes); false if absent. */
bool ck_ctl_get(const char *doc, const char *path, char *out, size_t outlen);
/* The value at path as a string without quotes ("" for null or absent). */
void ck_ctl_str(const char *doc, const char *path, char *out, size_t outlen);
/* The number at path, or def. */
double ck_ctl_num(const char *doc, const char *path, double def);

#endif
