/*
 * extract_tree.h - creating entries under the destination directory without ever
 * following a symlink (internal to src/archive/).
 *
 * Names are normalized entry names (see entry_name.h). Parents are opened component by
 * component with openat(O_DIRECTORY | O_NOFOLLOW) relative to the destination fd, and
 * missing ones are created (mode 0755), so a symlink or file in the way fails with
 * CK_EHOSTILE instead of redirecting the write. Messages name the entry as quoted by the
 * caller ("archive entry 'x': ...").
 */
#ifndef CK_ARCHIVE_EXTRACT_TREE_H
#define CK_ARCHIVE_EXTRACT_TREE_H

#include <stdbool.h>

#include <sys/stat.h>

#include "util/err.h"

/* The mode bits a restore keeps: all permission bits, never setuid, setgid or sticky. Set
 * with fchmod, not through open's mode argument, which the umask would cut. */
#define CK_TREE_MODE_MASK (07777 & ~(S_ISUID | S_ISGID | S_ISVTX))

/* Opens the directory holding name (a non-empty normalized name) and points *base at its
 * last component. The fd is the caller's to close. With create, missing parents are made;
 * without, a missing parent fails with CK_ENOTFOUND. qname is the entry for messages. */
ck_rc ck_tree_open_parent(int dest_fd, const char *name, bool create, const char *qname,
                          int *parent_fd, const char **base, struct ck_err *err);

/* Makes room for a new entry base in parent_fd: removes a previous non-directory (the
 * later duplicate wins, as in tar). An existing directory is kept when keep_dir, and
 * refused (CK_EHOSTILE) otherwise. *is_dir tells whether a directory is there. */
ck_rc ck_tree_make_room(int parent_fd, const char *base, bool keep_dir, const char *qname,
                        bool *is_dir, struct ck_err *err);

#endif
