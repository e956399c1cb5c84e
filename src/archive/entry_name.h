/*
 * entry_name.h - the checks every archive entry name and link target passes before
 * extraction (internal to src/archive/; pure functions, no I/O).
 *
 * Names: not empty, not absolute, no ".." component; "./" prefixes, "." components,
 * repeated and trailing slashes are dropped ("./a//b/" -> "a/b"). A name that normalizes
 * to "" is the root of the tree itself ("./").
 *
 * Symlink targets: not empty, not absolute, and all ".." components come first, no more
 * of them than the link's depth ("sub/l -> ../x" is fine, "l -> ../x" and
 * "sub/l -> a/../../x" are not). A ".." after a name is refused even when it stays inside
 * lexically: "a" may itself be a symlink, and chains of such links can climb out.
 */
#ifndef CK_ARCHIVE_ENTRY_NAME_H
#define CK_ARCHIVE_ENTRY_NAME_H

#include <stddef.h>

#define CK_ENTRY_NAME_MAX  16384 /* bytes in a normalized name, NUL included */
#define CK_LINK_TARGET_MAX 4096  /* bytes in a symlink target, NUL included */

/* Normalizes name into out (cap bytes). Returns NULL if it is acceptable, else the reason. */
const char *ck_entry_name_check(const char *name, char *out, size_t cap);

/* Checks target for a symlink whose normalized name is link_name. NULL or the reason. */
const char *ck_symlink_target_check(const char *link_name, const char *target);

/* Copies s into out (cap > 4 bytes) for messages: non-printable bytes become \xNN and a long
 * name is cut with "...". Returns out. */
const char *ck_entry_name_quote(const char *s, char *out, size_t cap);

#endif
