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

/* The parent directory of a sequence of names, kept open between calls: a folder's
 * entries follow one another in tar order, so most names need no open at all (a restore
 * of many small files spent a third of its system calls reopening the same folders). */
struct ck_tree_cursor {
    int fd;     /* the parent of the last name, or -1 */
    size_t len; /* the length of its path (the last name up to its last '/') */
    char dir[4096];
};

void ck_tree_cursor_init(struct ck_tree_cursor *c);
/* As ck_tree_open_parent, but *parent_fd belongs to c: valid until the next call with c
 * or ck_tree_cursor_close. */
ck_rc ck_tree_cursor_parent(struct ck_tree_cursor *c, int dest_fd, const char *name, bool create,
                            const char *qname, int *parent_fd, const char **base,
                            struct ck_err *err);
void ck_tree_cursor_close(struct ck_tree_cursor *c);

/* Makes room for a new entry base in parent_fd: removes a previous non-directory (the
 * later duplicate wins, as in tar). An existing directory is kept when keep_dir, and
 * refused (CK_EHOSTILE) otherwise. *is_dir tells whether a directory is there. */
ck_rc ck_tree_make_room(int parent_fd, const char *base, bool keep_dir, const char *qname,
                        bool *is_dir, struct ck_err *err);

#endif
