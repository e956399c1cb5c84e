/*
 * extract.c - a checkpoint object into a tree under dest; see extract.h.
 *
 * Kind detection follows Python's tarfile.is_tarfile(), which is what flyte-sdk uses: the
 * object is a tar if its first header can be read (after gzip, bzip2 or xz decoding), and
 * an empty tar (a zero block first) counts as a tar. Anything else is a payload, also a
 * compressed stream that does not decode to a tar header or decodes to nothing. A 0-byte
 * object is CK_KIND_NONE: flyte-sdk and SPEC 2 treat it as "no checkpoint".
 *
 * gzip is decoded by gunzip_reader (which verifies the CRC of every member); bzip2 and xz
 * by libarchive's filters (whose formats carry their own checks). Only the tar format and
 * these filters are enabled, so libarchive never starts an external program.
 *
 * Entries are written by our own code, never archive_write_disk: names are checked by
 * entry_name, paths are opened by extract_tree without following symlinks. Directory
 * modes and mtimes are set last, deepest first, because creating children changes them.
 */
#include "archive/extract.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "archive/entry_name.h"
#include "archive/extract_tree.h"
#include "archive/gunzip_reader.h"
#include "archive/utf8_locale.h"
#include "util/fsutil.h"

#define RAW_READ_SIZE (1024u * 1024u)       /* read size for non-gzip objects */
#define DRAIN_MAX     (16u * 1024u * 1024u) /* gzip bytes checked after the tar end */
#define QNAME_MAX     200                   /* quoted names in messages */

/* libarchive's graded codes: only OK and WARN deliver a usable header or block (RETRY,
 * which is numerically above WARN, does not). */
#define LA_FAILED(r) ((r) != ARCHIVE_OK && (r) != ARCHIVE_WARN)
/* libarchive's ARCHIVE_ERRNO_MISC, which its public header leaves commented out. */
#define LA_ERRNO_MISC (-1)

struct dir_fix {
    char *name; /* owned, normalized */
    mode_t mode;
    struct timespec mtime; /* tv_nsec UTIME_OMIT when the entry has none */
    size_t depth;
    size_t seq;
};

struct xr {
    struct archive *a;
    struct ck_objsrc src;                 /* fd and ctx not owned */
    const struct ck_extract_hooks *hooks; /* may be NULL */
    int dest;                             /* not owned */
    const struct ck_extract_limits *lim;
    struct ck_extract_stats st;
    uint64_t declared_total; /* sum of regular-file sizes seen */
    struct ck_gunzip *gz;    /* owned; NULL unless the object is gzip */
    unsigned char *raw;      /* RAW_READ_SIZE, owned; for non-gzip objects */
    uint64_t raw_off;
    ck_rc src_rc; /* failure inside a read callback */
    struct ck_err src_err;
    struct dir_fix *dirs; /* owned */
    size_t ndirs, capdirs;
    char name[CK_ENTRY_NAME_MAX]; /* the current entry, normalized */
    char qname[QNAME_MAX];        /* the current entry as named in messages */
    struct ck_err *err;
};

const char *ck_object_kind_name(enum ck_object_kind k)
{
    switch (k) {
    case CK_KIND_TAR:
        return "tar";
    case CK_KIND_PAYLOAD:
        return "payload";
    case CK_KIND_NONE:
    default:
        return "none";
    }
}

/* ---- reading ---------------------------------------------------------------------------- */

static la_ssize_t read_gzip_cb(struct archive *a, void *ctx, const void **buf)
{
    struct xr *x = ctx;
    size_t len;
    x->src_rc = ck_gunzip_read(x->gz, buf, &len, &x->src_err);
    if (x->src_rc) {
        archive_set_error(a, EIO, "%s", x->src_err.msg);
        return -1;
    }
    return (la_ssize_t)len;
}

static la_ssize_t read_raw_cb(struct archive *a, void *ctx, const void **buf)
{
    struct xr *x = ctx;
    ssize_t n = ck_objsrc_pread(&x->src, x->raw, RAW_READ_SIZE, x->raw_off, &x->src_err);
    if (n < 0) {
        x->src_rc = x->src_err.rc;
        archive_set_error(a, EIO, "%s", x->src_err.msg);
        return -1;
    }
    x->raw_off += (uint64_t)n;
    *buf = x->raw;
    return n;
}

/* A libarchive failure as a ck_rc: the read callback's own error first, then ENOMEM,
 * else corruption. where says which entry ("archive entry 'x'"). */
static ck_rc read_fail(struct xr *x, const char *where)
{
    long long off = (long long)archive_filter_bytes(x->a, 0); /* -1 before the tar opened */
    char at[48] = "";
    if (off >= 0)
        snprintf(at, sizeof(at), " (at tar offset %lld)", off);
    if (x->src_rc)
        return ck_fail(x->err, x->src_rc, "%s: %s%s", where, x->src_err.msg, at);
    if (archive_errno(x->a) == ENOMEM)
        return ck_fail(x->err, CK_ENOMEM, "%s: out of memory", where);
    const char *msg = archive_error_string(x->a);
    return ck_fail(x->err, CK_ECORRUPT, "%s: %s%s", where, msg ? msg : "damaged archive", at);
}

static ck_rc hostile(struct xr *x, const char *reason)
{
    return ck_fail(x->err, CK_EHOSTILE, "archive entry '%s': %s", x->qname, reason);
}

/* ---- entry attributes ------------------------------------------------------------------- */

static const char *entry_path(struct archive_entry *e)
{
    const char *p = archive_entry_pathname(e);
    return p ? p : archive_entry_pathname_utf8(e);
}

static const char *entry_symlink(struct archive_entry *e)
{
    const char *p = archive_entry_symlink(e);
    return p ? p : archive_entry_symlink_utf8(e);
}

static const char *entry_hardlink(struct archive_entry *e)
{
    const char *p = archive_entry_hardlink(e);
    return p ? p : archive_entry_hardlink_utf8(e);
}

static struct timespec entry_mtime(struct archive_entry *e)
{
    struct timespec t = {.tv_sec = 0, .tv_nsec = UTIME_OMIT};
    if (archive_entry_mtime_is_set(e)) {
        long ns = archive_entry_mtime_nsec(e);
        t.tv_sec = archive_entry_mtime(e);
        t.tv_nsec = ns >= 0 && ns < 1000000000L ? ns : 0;
    }
    return t;
}

/* ---- one entry per type ----------------------------------------------------------------- */

static ck_rc write_data(struct xr *x, int fd, int64_t size)
{
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(x->a, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            return CK_OK;
        if (LA_FAILED(r)) {
            char where[QNAME_MAX + 32];
            snprintf(where, sizeof(where), "archive entry '%s'", x->qname);
            return read_fail(x, where);
        }
        if (off < 0 || (uint64_t)off > (uint64_t)size || len > (uint64_t)(size - off))
            return hostile(x, "data beyond the declared size");
        char what[QNAME_MAX + 32];
        snprintf(what, sizeof(what), "archive entry '%s'", x->qname);
        ck_rc rc = ck_pwrite_sparse(fd, buf, len, (uint64_t)off, what, x->err); /* a new file */
        if (rc)
            return rc;
        x->st.bytes += len;
    }
}

static ck_rc set_file_attrs(struct xr *x, int fd, struct archive_entry *e, int64_t size)
{
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, entry_mtime(e)};
    if (ftruncate(fd, (off_t)size) < 0) /* a sparse file's trailing hole */
        return ck_fail_errno(x->err, errno, "archive entry '%s': truncate", x->qname);
    if (fchmod(fd, archive_entry_perm(e) & CK_TREE_MODE_MASK) < 0)
        return ck_fail_errno(x->err, errno, "archive entry '%s': chmod", x->qname);
    if (futimens(fd, ts) < 0)
        return ck_fail_errno(x->err, errno, "archive entry '%s': set mtime", x->qname);
    return CK_OK;
}

/* The entry's parent directory (*pfd, -1 on failure) and last name, with room made for it
 * (ck_tree_make_room: *is_dir when a directory is there and want_dir). */
static ck_rc open_slot(struct xr *x, bool want_dir, int *pfd, const char **base, bool *is_dir)
{
    ck_rc rc = ck_tree_open_parent(x->dest, x->name, true, x->qname, pfd, base, x->err);
    if (rc) {
        *pfd = -1;
        return rc;
    }
    return ck_tree_make_room(*pfd, *base, want_dir, x->qname, is_dir, x->err);
}

static ck_rc do_file(struct xr *x, struct archive_entry *e, int64_t size)
{
    if (x->declared_total + (uint64_t)size > x->lim->max_total_size)
        return hostile(x, "the archive's total size exceeds the limit");
    x->declared_total += (uint64_t)size;
    int pfd;
    const char *base;
    bool is_dir;
    ck_rc rc = open_slot(x, false, &pfd, &base, &is_dir);
    int fd = -1;
    if (!rc) {
        fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            rc = ck_fail_errno(x->err, errno, "archive entry '%s': create", x->qname);
    }
    if (!rc)
        rc = write_data(x, fd, size);
    if (!rc)
        rc = set_file_attrs(x, fd, e, size);
    if (fd >= 0)
        close(fd);
    if (pfd >= 0)
        close(pfd);
    return rc;
}

static size_t name_depth(const char *name)
{
    size_t d = 0;
    for (; *name; name++)
        d += *name == '/';
    return d;
}

static ck_rc remember_dir(struct xr *x, struct archive_entry *e)
{
    if (x->ndirs == x->capdirs) {
        size_t cap = x->capdirs ? x->capdirs * 2 : 64;
        struct dir_fix *d = realloc(x->dirs, cap * sizeof(*d));
        if (!d)
            return ck_fail(x->err, CK_ENOMEM, "archive entry '%s': out of memory", x->qname);
        x->dirs = d;
        x->capdirs = cap;
    }
    char *copy = strdup(x->name);
    if (!copy)
        return ck_fail(x->err, CK_ENOMEM, "archive entry '%s': out of memory", x->qname);
    x->dirs[x->ndirs] = (struct dir_fix){.name = copy,
                                         .mode = archive_entry_perm(e) & CK_TREE_MODE_MASK,
                                         .mtime = entry_mtime(e),
                                         .depth = name_depth(x->name),
                                         .seq = x->ndirs};
    x->ndirs++;
    return CK_OK;
}

static ck_rc do_dir(struct xr *x, struct archive_entry *e)
{
    if (x->name[0] == '\0')
        return CK_OK; /* "./": the destination itself keeps its own mode and mtime */
    int pfd;
    const char *base;
    bool is_dir;
    ck_rc rc = open_slot(x, true, &pfd, &base, &is_dir);
    if (!rc && !is_dir && mkdirat(pfd, base, 0700) < 0)
        rc = ck_fail_errno(x->err, errno, "archive entry '%s': mkdir", x->qname);
    if (pfd >= 0)
        close(pfd);
    return rc ? rc : remember_dir(x, e);
}

static ck_rc do_symlink(struct xr *x, struct archive_entry *e)
{
    const char *target = entry_symlink(e);
    const char *why = ck_symlink_target_check(x->name, target);
    if (why)
        return hostile(x, why);
    int pfd;
    const char *base;
    bool is_dir;
    ck_rc rc = open_slot(x, false, &pfd, &base, &is_dir);
    if (!rc && symlinkat(target, pfd, base) < 0)
        rc = ck_fail_errno(x->err, errno, "archive entry '%s': symlink", x->qname);
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, entry_mtime(e)};
    if (!rc && utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
        rc = ck_fail_errno(x->err, errno, "archive entry '%s': set mtime", x->qname);
    if (pfd >= 0)
        close(pfd);
    return rc;
}

/* Opens the parent of the hard link target tname, which must be a regular file in dest. */
static ck_rc open_link_target(struct xr *x, const char *tname, int *tpfd, const char **tbase)
{
    ck_rc rc = ck_tree_open_parent(x->dest, tname, false, x->qname, tpfd, tbase, x->err);
    if (rc == CK_ENOTFOUND)
        return hostile(x, "hard link target is not an earlier regular file of the archive");
    if (rc)
        return rc;
    struct stat st;
    if (fstatat(*tpfd, *tbase, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
        close(*tpfd);
        *tpfd = -1;
        return hostile(x, "hard link target is not an earlier regular file of the archive");
    }
    return CK_OK;
}

static ck_rc do_hardlink(struct xr *x, const char *target)
{
    char *tname = malloc(CK_ENTRY_NAME_MAX);
    if (!tname)
        return ck_fail(x->err, CK_ENOMEM, "archive entry '%s': out of memory", x->qname);
    const char *why = ck_entry_name_check(target, tname, CK_ENTRY_NAME_MAX);
    ck_rc rc = CK_OK;
    if (why)
        rc =
            ck_fail(x->err, CK_EHOSTILE, "archive entry '%s': hard link target: %s", x->qname, why);
    else if (tname[0] == '\0' || strcmp(tname, x->name) == 0)
        rc = hostile(x, "hard link to itself or to the destination");
    int tpfd = -1, pfd = -1;
    const char *tbase, *base;
    bool is_dir;
    if (!rc)
        rc = open_link_target(x, tname, &tpfd, &tbase);
    if (!rc)
        rc = open_slot(x, false, &pfd, &base, &is_dir);
    if (!rc && linkat(tpfd, tbase, pfd, base, 0) < 0)
        rc = ck_fail_errno(x->err, errno, "archive entry '%s': hard link", x->qname);
    if (tpfd >= 0)
        close(tpfd);
    if (pfd >= 0)
        close(pfd);
    free(tname);
    return rc;
}

static ck_rc refuse_type(struct xr *x, mode_t type)
{
    switch (type) {
    case AE_IFCHR:
    case AE_IFBLK:
        return hostile(x, "device entries are refused");
    case AE_IFIFO:
        return hostile(x, "fifo entries are refused");
    case AE_IFSOCK:
        return hostile(x, "socket entries are refused");
    default:
        return hostile(x, "entries of this type are refused");
    }
}

static ck_rc do_entry(struct xr *x, struct archive_entry *e)
{
    const char *raw = entry_path(e);
    ck_entry_name_quote(raw, x->qname, sizeof(x->qname));
    if (++x->st.entries > x->lim->max_entries)
        return hostile(x, "the archive has more entries than the limit");
    const char *why = ck_entry_name_check(raw, x->name, sizeof(x->name));
    if (why)
        return hostile(x, why);
    int64_t size = archive_entry_size(e);
    if (size < 0)
        return ck_fail(x->err, CK_ECORRUPT, "archive entry '%s': negative size", x->qname);
    if ((uint64_t)size > x->lim->max_entry_size)
        return ck_fail(x->err, CK_EHOSTILE,
                       "archive entry '%s': entry size exceeds the limit (%lld > %llu bytes)",
                       x->qname, (long long)size, (unsigned long long)x->lim->max_entry_size);
    mode_t type = archive_entry_filetype(e);
    const char *hard = entry_hardlink(e);
    if (hard)
        return do_hardlink(x, hard);
    if (x->name[0] == '\0' && type != AE_IFDIR)
        return hostile(x, "names the destination itself");
    switch (type) {
    case AE_IFREG:
        return do_file(x, e, size);
    case AE_IFDIR:
        return do_dir(x, e);
    case AE_IFLNK:
        return do_symlink(x, e);
    default:
        return refuse_type(x, type);
    }
}

/* ---- directories last ------------------------------------------------------------------- */

static int cmp_dir_fix(const void *pa, const void *pb)
{
    const struct dir_fix *a = pa, *b = pb;
    if (a->depth != b->depth)
        return a->depth > b->depth ? -1 : 1;       /* deepest first */
    return a->seq < b->seq ? -1 : a->seq > b->seq; /* a later duplicate wins */
}

static ck_rc fix_dir(struct xr *x, const struct dir_fix *d)
{
    ck_entry_name_quote(d->name, x->qname, sizeof(x->qname));
    int pfd;
    const char *base;
    ck_rc rc = ck_tree_open_parent(x->dest, d->name, false, x->qname, &pfd, &base, x->err);
    if (rc)
        return rc;
    int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(pfd);
    if (fd < 0)
        return ck_fail_errno(x->err, errno, "archive entry '%s': open directory", x->qname);
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, d->mtime};
    if (fchmod(fd, d->mode) < 0)
        rc = ck_fail_errno(x->err, errno, "archive entry '%s': chmod", x->qname);
    else if (futimens(fd, ts) < 0)
        rc = ck_fail_errno(x->err, errno, "archive entry '%s': set mtime", x->qname);
    close(fd);
    return rc;
}

static ck_rc fix_dirs(struct xr *x)
{
    if (x->ndirs > 1)
        qsort(x->dirs, x->ndirs, sizeof(*x->dirs), cmp_dir_fix);
    for (size_t i = 0; i < x->ndirs; i++) {
        ck_rc rc = fix_dir(x, &x->dirs[i]);
        if (rc)
            return rc;
    }
    return CK_OK;
}

/* Reads the rest of a gzip object after the tar end so that its CRCs are checked too. */
static ck_rc drain_gzip(struct xr *x)
{
    uint64_t seen = 0;
    while (x->gz && seen < DRAIN_MAX) {
        const void *buf;
        size_t len;
        ck_rc rc = ck_gunzip_read(x->gz, &buf, &len, x->err);
        if (rc) {
            ck_err_prefix(x->err, "after the last archive entry");
            return rc;
        }
        if (len == 0)
            break;
        seen += len;
    }
    return CK_OK;
}

/* ---- the whole object ------------------------------------------------------------------- */

static ck_rc xr_open(struct xr *x)
{
    unsigned char magic[2];
    ssize_t n = ck_objsrc_pread(&x->src, magic, sizeof(magic), 0, x->err);
    if (n < 0)
        return x->err->rc;
    x->a = archive_read_new();
    if (!x->a)
        return ck_fail(x->err, CK_ENOMEM, "archive reader: out of memory");
    archive_read_support_format_tar(x->a);
    if (ck_gzip_magic(magic, (size_t)n)) {
        ck_rc rc = ck_gunzip_new(&x->src, &x->gz, x->err);
        if (rc)
            return rc;
        archive_read_open(x->a, x, NULL, read_gzip_cb, NULL);
        return CK_OK;
    }
    x->raw = malloc(RAW_READ_SIZE);
    if (!x->raw)
        return ck_fail(x->err, CK_ENOMEM, "archive reader: out of memory");
    archive_read_support_filter_bzip2(x->a);
    archive_read_support_filter_xz(x->a);
    archive_read_support_filter_lzma(x->a);
    archive_read_open(x->a, x, NULL, read_raw_cb, NULL);
    return CK_OK; /* an open that failed shows again at the first header */
}

/* True if the first header failed inside a compressed stream that was recognised and then
 * broke (truncated, damaged): a damaged archive, never a payload. A stream that decodes
 * cleanly to something that is not a tar stays a payload, as tarfile.is_tarfile() has it. */
static bool damaged_stream(struct xr *x, int r)
{
    if (x->gz)
        return ck_gunzip_damaged(x->gz);
    /* libarchive's decoders report a broken stream as ARCHIVE_ERRNO_MISC ("truncated bzip2
     * input", "Lzma library error"); bytes no filter or format takes are a FILE_FORMAT. */
    return LA_FAILED(r) && archive_errno(x->a) == LA_ERRNO_MISC;
}

/* Reads the first header: decides TAR or PAYLOAD. *first is NULL for an empty tar. */
static ck_rc xr_first(struct xr *x, enum ck_object_kind *kind, struct archive_entry **first)
{
    *first = NULL;
    int r = archive_read_next_header(x->a, first);
    bool io_error = x->src_rc && x->src_rc != CK_ECORRUPT;
    if (io_error || (r != ARCHIVE_EOF && LA_FAILED(r) && archive_errno(x->a) == ENOMEM))
        return read_fail(x, "archive header");
    if (r != ARCHIVE_OK && damaged_stream(x, r)) {
        *kind = CK_KIND_TAR; /* a damaged archive */
        return read_fail(x, "first archive entry");
    }
    if (r == ARCHIVE_EOF) {
        /* A zero block first is an empty tar; a stream that decodes to nothing is not
         * (tarfile.is_tarfile() says "empty file"). */
        *kind = archive_filter_bytes(x->a, 0) > 0 ? CK_KIND_TAR : CK_KIND_PAYLOAD;
        *first = NULL;
        return CK_OK;
    }
    if (LA_FAILED(r)) {
        *kind = CK_KIND_PAYLOAD;
        *first = NULL;
        return CK_OK;
    }
    *kind = CK_KIND_TAR;
    return CK_OK;
}

static ck_rc xr_entries(struct xr *x, struct archive_entry *e)
{
    while (e) {
        ck_rc rc = do_entry(x, e);
        if (rc)
            return rc;
        if (x->hooks && x->hooks->entry_done && x->name[0])
            x->hooks->entry_done(x->hooks->ctx, x->name);
        int r = archive_read_next_header(x->a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (LA_FAILED(r)) {
            char where[QNAME_MAX + 40];
            snprintf(where, sizeof(where), "archive entry after '%s'", x->qname);
            return read_fail(x, where);
        }
    }
    ck_rc rc = fix_dirs(x);
    return rc ? rc : drain_gzip(x);
}

static void xr_free(struct xr *x)
{
    if (x->a)
        archive_read_free(x->a);
    ck_gunzip_free(x->gz);
    free(x->raw);
    for (size_t i = 0; i < x->ndirs; i++)
        free(x->dirs[i].name);
    free(x->dirs);
    free(x);
}

ck_rc ck_extract_object(int obj_fd, int dest_dirfd, const struct ck_extract_limits *limits,
                        enum ck_object_kind *kind, struct ck_extract_stats *st, struct ck_err *err)
{
    struct stat sb;
    if (fstat(obj_fd, &sb) < 0)
        return ck_fail_errno(err, errno, "stat of the checkpoint object");
    if (S_ISREG(sb.st_mode) && sb.st_size == 0) {
        *kind = CK_KIND_NONE;
        if (st)
            *st = (struct ck_extract_stats){0};
        return CK_OK; /* an empty object is "no checkpoint" */
    }
    struct ck_objsrc src = {obj_fd, NULL, NULL};
    return ck_extract_src(&src, dest_dirfd, limits, NULL, kind, st, err);
}

ck_rc ck_extract_src(const struct ck_objsrc *src, int dest_dirfd,
                     const struct ck_extract_limits *limits, const struct ck_extract_hooks *hooks,
                     enum ck_object_kind *kind, struct ck_extract_stats *st, struct ck_err *err)
{
    *kind = CK_KIND_NONE;
    if (st)
        *st = (struct ck_extract_stats){0};
    struct xr *x = calloc(1, sizeof(*x));
    if (!x)
        return ck_fail(err, CK_ENOMEM, "archive reader: out of memory");
    *x = (struct xr){.src = *src, .dest = dest_dirfd, .lim = limits, .err = err, .hooks = hooks};
    struct archive_entry *first = NULL;
    struct ck_utf8_locale loc;
    ck_utf8_locale_enter(&loc);
    ck_rc rc = xr_open(x);
    if (!rc)
        rc = xr_first(x, kind, &first);
    if (!rc && *kind == CK_KIND_TAR)
        rc = xr_entries(x, first);
    if (st)
        *st = x->st;
    xr_free(x);
    ck_utf8_locale_leave(&loc);
    return rc;
}
