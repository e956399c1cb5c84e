/*
 * extract.h - turns a downloaded checkpoint object into the tree shown under prev/.
 *
 * The object is read from obj_fd (a local file). If it is a tar archive (plain, gzip,
 * bzip2 or xz, as Python's tarfile "r:*" accepts), its entries are extracted under
 * dest_dirfd and *kind is CK_KIND_TAR. If it is not a tar archive, dest is left untouched
 * and *kind is CK_KIND_PAYLOAD: the caller shows the object itself as prev/payload.
 *
 * Untrusted input. Extraction refuses the whole archive with CK_EHOSTILE and a message
 * naming the entry for: absolute names, ".." components, symlinks whose target is
 * absolute or resolves outside the tree, hard links to anything but an earlier regular
 * file of the archive, device/fifo/socket entries, entries larger than
 * limits->max_entry_size, more than limits->max_total_size bytes or limits->max_entries
 * entries in all. A truncated or damaged archive fails with CK_ECORRUPT. Files are created
 * only through descriptors opened relative to dest_dirfd, component by component with
 * O_NOFOLLOW, so no entry and no symlink can make it write outside dest. Modes (minus
 * setuid/setgid/sticky), mtimes and symlinks are restored; ownership is not.
 * A 0-byte object is CK_KIND_NONE (no previous checkpoint) and leaves dest alone.
 * On failure dest may hold a partial tree; the caller discards it.
 */
#ifndef CK_ARCHIVE_EXTRACT_H
#define CK_ARCHIVE_EXTRACT_H

#include <stdint.h>

#include "archive/objsrc.h"
#include "util/err.h"

enum ck_object_kind {
    CK_KIND_NONE = 0, /* no previous checkpoint */
    CK_KIND_TAR,
    CK_KIND_PAYLOAD,
};

const char *ck_object_kind_name(enum ck_object_kind k); /* "none", "tar", "payload" */

struct ck_extract_limits {
    uint64_t max_entry_size; /* bytes in one entry */
    uint64_t max_total_size; /* bytes in all entries */
    uint64_t max_entries;
};

struct ck_extract_stats {
    uint64_t entries;
    uint64_t bytes; /* regular-file bytes written */
};

ck_rc ck_extract_object(int obj_fd, int dest_dirfd, const struct ck_extract_limits *limits,
                        enum ck_object_kind *kind, struct ck_extract_stats *st, struct ck_err *err);

/* Told of every entry once it is complete on disk (its normalized name), so that a
 * reader may use it before the whole archive is extracted. */
struct ck_extract_hooks {
    void (*entry_done)(void *ctx, const char *name);
    void *ctx;
};

/* The same from a source that may still be growing (objsrc.h): the loader extracts while
 * it downloads. The object must not be empty (the caller knows its size). hooks may be
 * NULL. */
ck_rc ck_extract_src(const struct ck_objsrc *src, int dest_dirfd,
                     const struct ck_extract_limits *limits, const struct ck_extract_hooks *hooks,
                     enum ck_object_kind *kind, struct ck_extract_stats *st, struct ck_err *err);

#endif
