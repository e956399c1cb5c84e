/*
 * exclude.h - what a save leaves out on purpose: --exclude GLOB (repeatable) and the
 * lines of save/.ckptfsignore (issue 22; docs/operations.md).
 *
 * A pattern without a '/' matches an entry's base name at any depth ("*.log",
 * "events.out.tfevents.*"); one with a '/' matches the entry's relative name from the
 * top of save/ ("runs/x*", "/tmp" for the top-level tmp only; a leading '/' is dropped).
 * Patterns are fnmatch(3) globs, '*' also matching '/' in relative names. A directory
 * that matches is left out with everything under it. In .ckptfsignore, blank lines and
 * lines starting with '#' are ignored; the file itself stays in the checkpoint.
 */
#ifndef CK_ARCHIVE_EXCLUDE_H
#define CK_ARCHIVE_EXCLUDE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define CK_EXCLUDE_FILE ".ckptfsignore"
#define CK_EXCLUDE_MAX  1024 /* patterns in all */

struct ck_exclude;

/* The patterns given (globs[0..n-1], not copied: they must outlive ex) and those of
 * dirfd/.ckptfsignore if it exists (copied). A bad pattern fails naming it and where. */
ck_rc ck_exclude_new(const char *const *globs, size_t n, int dirfd, struct ck_exclude **out,
                     struct ck_err *err);

/* Whether the entry with relative name rel ("a/b/c") is left out. */
bool ck_exclude_match(const struct ck_exclude *ex, const char *rel);

size_t ck_exclude_count(const struct ck_exclude *ex);
void ck_exclude_free(struct ck_exclude *ex);

#endif
