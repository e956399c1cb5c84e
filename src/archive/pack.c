/*
 * pack.c - the tree under a directory fd as a pax (restricted) tar stream; see pack.h.
 *
 * The walk is recursive and holds one directory fd per level; every name is resolved
 * relative to its parent's fd with O_NOFOLLOW, so the daemon never depends on the cwd or
 * on absolute paths. Entry names are built in a capped buffer. Hard links inside the tree
 * are archived as separate regular files (simplest for every reader). libarchive writes
 * with no blocking: each header and data block goes straight to the sink.
 *
 * Two libarchive writers share the sink: the pax writer for most entries, and a ustar
 * writer for an entry whose name or link target has non-ASCII bytes and fits ustar's
 * fields. The pax writer would give such a name a pax `path` record, which bsdtar
 * NFC-normalizes, so the NFC and NFD spellings of one name would extract as one file;
 * raw UTF-8 bytes in the ustar fields reach every reader unchanged. Switching writers
 * finishes the other one's entry first (its padding reaches the sink before the next
 * header); the ustar writer's own end-of-archive blocks are discarded.
 */
#include "archive/pack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "archive/entry_name.h"
#include "archive/utf8_locale.h"
#include "util/buf.h"
#include "util/log.h"

#define PACK_READ_BLOCK (1024u * 1024u) /* file data is read in blocks of this size */
#define PACK_NAME_MAX   (64u * 1024u)   /* cap on an entry name, in bytes */
#define PACK_LINK_MAX   (64u * 1024u)   /* cap on a symlink target, in bytes */
#define PACK_MAX_SEGS   4096u           /* data segments of a sparse entry, at most */
#define PACK_MIN_HOLES  (1024u * 1024u) /* holes a file needs to be a sparse entry */

struct pack {
    struct archive *a;         /* the pax writer, owned */
    struct archive *plain;     /* the ustar writer, owned; opened when first needed */
    struct archive *cur;       /* the writer of the current entry: a or plain */
    bool plain_ending;         /* plain's end-of-archive blocks are being dropped */
    const struct ck_sink *out; /* not owned */
    struct ck_pack_stats st;
    struct ck_buf name;       /* relative name of the current entry */
    unsigned char *data;      /* PACK_READ_BLOCK bytes, owned */
    struct ck_pack_seg *segs; /* PACK_MAX_SEGS, owned: the current file's data segments */
    size_t nsegs;
    bool sparse; /* the current file is written as a sparse entry (segs) */
    struct ck_err *err;
    struct ck_pack_opts opts; /* hooks; members may be NULL */
    ck_rc sink_rc;            /* set when the sink refused bytes */
    uint64_t drop;            /* tar bytes still to keep from the sink (skip_data) */
    bool skippable;           /* the header being written is a file's of the tree */
    bool aborted;             /* a failure happened: nothing more goes to the sink */
};

/* libarchive's write callback: forwards the tar bytes to the sink. */
static la_ssize_t pack_write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct pack *p = ctx;
    if (p->aborted)
        return -1;
    if (a == p->plain && p->plain_ending)
        return (la_ssize_t)len; /* the tar ends once, with the pax writer's end blocks */
    size_t dropped = len < p->drop ? len : (size_t)p->drop; /* a skipped file's bytes */
    p->drop -= dropped;
    p->st.tar_bytes += dropped;
    ck_rc rc = dropped < len
                   ? ck_sink_write(p->out, (const char *)buf + dropped, len - dropped, p->err)
                   : CK_OK;
    if (rc) {
        p->sink_rc = rc;
        archive_set_error(a, EIO, "output refused");
        return -1;
    }
    p->st.tar_bytes += len - dropped;
    return (la_ssize_t)len;
}

/* Turns a libarchive failure into a ck_rc, preferring the sink's own error. */
static ck_rc archive_fail(struct pack *p, const char *what)
{
    if (p->sink_rc)
        return p->sink_rc;
    const char *why = p->cur ? archive_error_string(p->cur) : NULL;
    return ck_fail(p->err, CK_EIO, "tar writer: %s '%s': %s", what, p->name.data,
                   why ? why : "unknown error");
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y); /* byte order */
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Appends a copy of name to the growing array *v (*n used, *cap allocated). */
static bool push_name(char ***v, size_t *n, size_t *cap, const char *name)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        char **nv = realloc(*v, ncap * sizeof(**v));
        if (!nv)
            return false;
        *v = nv;
        *cap = ncap;
    }
    (*v)[*n] = strdup(name);
    return (*v)[*n] && ++*n;
}

/* Reads the names in the directory dfd (not "." or ".."), sorted. Does not close dfd. */
static ck_rc list_dir(struct pack *p, int dfd, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return ck_fail_errno(p->err, errno, "tar writer: dup of directory '%s'", p->name.data);
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return ck_fail_errno(p->err, e, "tar writer: opendir '%s'", p->name.data);
    }
    rewinddir(d);
    char **v = NULL;
    size_t n = 0, cap = 0;
    ck_rc rc = CK_OK;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = ck_fail_errno(p->err, errno, "tar writer: readdir '%s'", p->name.data);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (!push_name(&v, &n, &cap, de->d_name)) {
            rc = ck_fail(p->err, CK_ENOMEM, "tar writer: listing '%s'", p->name.data);
            break;
        }
    }
    closedir(d);
    if (rc) {
        free_names(v, n);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_names);
    *out = v;
    *count = n;
    return CK_OK;
}

/* Maps the data segments of fd's size bytes (SEEK_DATA / SEEK_HOLE) into p->segs, their
 * total in *data. False when they cannot all be known (a file system that cannot tell,
 * more than PACK_MAX_SEGS segments): then the whole file is read. */
static bool map_data(struct pack *p, int fd, uint64_t size, uint64_t *data)
{
    p->nsegs = 0;
    *data = 0;
    for (uint64_t pos = 0; pos < size;) {
        off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
        if (d < 0 && errno == ENXIO)
            break; /* a hole to the end */
        if (d < 0 || p->nsegs == PACK_MAX_SEGS)
            return false;
        if ((uint64_t)d >= size)
            break;
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (h <= d)
            return false;
        uint64_t end = (uint64_t)h < size ? (uint64_t)h : size;
        p->segs[p->nsegs++] = (struct ck_pack_seg){(uint64_t)d, end - (uint64_t)d};
        *data += end - (uint64_t)d;
        pos = end;
    }
    return true;
}

static bool has_high_bytes(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/* A tar writer of the given format, unblocked, writing to the sink. */
static ck_rc writer_open(struct pack *p, struct archive **out, bool pax)
{
    struct archive *a = archive_write_new();
    *out = a;
    if (!a)
        return ck_fail(p->err, CK_ENOMEM, "tar writer: out of memory");
    p->cur = a; /* for archive_fail's message */
    int r = pax ? archive_write_set_format_pax_restricted(a) : archive_write_set_format_ustar(a);
    if (r != ARCHIVE_OK || archive_write_add_filter_none(a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK)
        return archive_fail(p, "setup for");
    if (archive_write_open(a, p, NULL, pack_write_cb, NULL) != ARCHIVE_OK)
        return archive_fail(p, "open for");
    return CK_OK;
}

/* Writes e's header with w. Switching writers first finishes the other one's entry, so
 * that its padding reaches the sink before this header. */
static int header_with(struct pack *p, struct archive *w, struct archive_entry *e)
{
    if (p->cur != w && archive_write_finish_entry(p->cur) != ARCHIVE_OK)
        return ARCHIVE_FATAL;
    p->cur = w;
    return archive_write_header(w, e);
}

/* e's header as plain ustar (raw name bytes), the ustar writer opened on first use. */
static int plain_header(struct pack *p, struct archive_entry *e)
{
    if (!p->plain) {
        struct archive *was = p->cur;
        if (writer_open(p, &p->plain, false))
            return ARCHIVE_FATAL;
        p->cur = was;
    }
    return header_with(p, p->plain, e);
}

/* Builds a header for the current name from st (no uname/gname: no lookups). */
static ck_rc write_header(struct pack *p, const struct stat *st, const char *link)
{
    struct archive_entry *e = archive_entry_new2(p->a);
    if (!e)
        return ck_fail(p->err, CK_ENOMEM, "tar writer: entry '%s'", p->name.data);
    archive_entry_copy_pathname(e, p->name.data);
    archive_entry_set_filetype(e, st->st_mode & S_IFMT);
    archive_entry_set_perm(e, st->st_mode & 07777);
    archive_entry_set_uid(e, st->st_uid);
    archive_entry_set_gid(e, st->st_gid);
    archive_entry_set_mtime(e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
    archive_entry_set_size(e, S_ISREG(st->st_mode) ? st->st_size : 0);
    if (link)
        archive_entry_copy_symlink(e, link);
    bool sparse = S_ISREG(st->st_mode) && p->sparse;
    for (size_t i = 0; sparse && i < p->nsegs; i++)
        archive_entry_sparse_add_entry(e, (la_int64_t)p->segs[i].off, (la_int64_t)p->segs[i].len);
    if (sparse && p->nsegs == 0) /* all holes: the map's end marker alone */
        archive_entry_sparse_add_entry(e, st->st_size, 0);
    int r = ARCHIVE_FAILED;
    if (!sparse && (has_high_bytes(p->name.data) || (link && has_high_bytes(link))))
        r = plain_header(p, e); /* ARCHIVE_FAILED: it does not fit ustar, nothing written */
    if (r == ARCHIVE_FAILED)
        r = header_with(p, p->a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        return archive_fail(p, "header of");
    /* A sparse entry's map (GNU.sparse 1.0) leads its data; an empty write flushes it. */
    if (sparse && archive_write_data(p->cur, "", 0) != 0)
        return archive_fail(p, "sparse map of");
    p->st.entries++;
    /* Unbuffered writing: every header byte has reached the sink, data starts here. */
    struct ck_pack_entry pe = {p->name.data,
                               st->st_mode,
                               st->st_uid,
                               st->st_gid,
                               st->st_mtim,
                               S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0,
                               link,
                               p->st.tar_bytes,
                               sparse ? p->segs : NULL,
                               sparse ? p->nsegs : 0,
                               st->st_dev,
                               st->st_ino};
    ck_rc rc = p->opts.observe ? p->opts.observe(p->opts.observe_ctx, &pe, p->err) : CK_OK;
    if (rc || !p->opts.skip_data || !p->skippable || sparse)
        return rc;
    bool skip = false;
    rc = p->opts.skip_data(p->opts.skip_ctx, &pe, &skip, p->err);
    p->drop = skip ? ck_pack_padded(pe.size) : 0;
    return rc;
}

/* Writes len zeros (a hole of the file) into the archive, without reading them; a
 * sparse entry drops them. */
static ck_rc write_zeros(struct pack *p, uint64_t len)
{
    memset(p->data, 0, len < PACK_READ_BLOCK ? (size_t)len : PACK_READ_BLOCK);
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < PACK_READ_BLOCK ? (size_t)(len - done) : PACK_READ_BLOCK;
        if (archive_write_data(p->cur, p->data, n) != (la_ssize_t)n)
            return archive_fail(p, "data of");
        done += n;
        p->st.file_bytes += n;
    }
    return CK_OK;
}

/* Copies exactly len bytes of fd from off into the archive; a file that shrank is an
 * error. */
static ck_rc copy_range(struct pack *p, int fd, uint64_t off, uint64_t len)
{
    for (uint64_t done = 0; done < len;) {
        size_t want = len - done < PACK_READ_BLOCK ? (size_t)(len - done) : PACK_READ_BLOCK;
        ssize_t n = pread(fd, p->data, want, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ck_fail_errno(p->err, errno, "tar writer: read '%s'", p->name.data);
        if (n == 0)
            return ck_fail(p->err, CK_EIO, "tar writer: '%s' shrank while being archived",
                           p->name.data);
        if (archive_write_data(p->cur, p->data, (size_t)n) != n)
            return archive_fail(p, "data of");
        done += (uint64_t)n;
        p->st.file_bytes += (uint64_t)n;
    }
    return CK_OK;
}

/* Copies the file's size bytes into the archive: with a map (p->segs), its data segments
 * are read and its holes written as zeros without reading them; else all of it is read. */
static ck_rc copy_data(struct pack *p, int fd, uint64_t size, bool mapped)
{
    if (!mapped)
        return copy_range(p, fd, 0, size);
    uint64_t pos = 0;
    ck_rc rc = CK_OK;
    for (size_t i = 0; !rc && i < p->nsegs; i++) {
        rc = write_zeros(p, p->segs[i].off - pos);
        if (!rc)
            rc = copy_range(p, fd, p->segs[i].off, p->segs[i].len);
        pos = p->segs[i].off + p->segs[i].len;
    }
    return rc ? rc : write_zeros(p, size - pos);
}

static ck_rc pack_file(struct pack *p, int dfd, const char *base)
{
    int fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return ck_fail_errno(p->err, errno, "tar writer: open '%s'", p->name.data);
    struct stat st;
    ck_rc rc = CK_OK;
    if (fstat(fd, &st) < 0)
        rc = ck_fail_errno(p->err, errno, "tar writer: stat '%s'", p->name.data);
    else if (!S_ISREG(st.st_mode))
        rc = ck_fail(p->err, CK_EIO, "tar writer: '%s' changed type while being archived",
                     p->name.data);
    uint64_t size = rc ? 0 : (uint64_t)st.st_size, data = size;
    /* a file smaller than PACK_MIN_HOLES is read whole: no lseek for small files */
    bool mapped = !rc && size >= PACK_MIN_HOLES && map_data(p, fd, size, &data);
    p->sparse = mapped && size - data >= PACK_MIN_HOLES;
    p->skippable = true;
    if (!rc)
        rc = write_header(p, &st, NULL);
    p->skippable = false;
    if (!rc) /* a skipped file's bytes are zeros here, which the sink never sees */
        rc = p->drop ? write_zeros(p, size) : copy_data(p, fd, size, mapped);
    p->sparse = false;
    close(fd);
    return rc;
}

/* Leaves the current entry out of the archive: logged, counted, reported (pack.h). */
static void skip_entry(struct pack *p, const char *why)
{
    char q[256];
    ck_entry_name_quote(p->name.data, q, sizeof(q));
    ck_log_warn("save: '%s' left out of the checkpoint: %s", q, why);
    p->st.skipped++;
    if (p->opts.skipped)
        p->opts.skipped(p->opts.skipped_ctx, p->name.data, why);
}

static ck_rc pack_symlink(struct pack *p, int dfd, const char *base, const struct stat *st)
{
    char *target = malloc(PACK_LINK_MAX);
    if (!target)
        return ck_fail(p->err, CK_ENOMEM, "tar writer: symlink '%s'", p->name.data);
    ssize_t n = readlinkat(dfd, base, target, PACK_LINK_MAX);
    ck_rc rc = CK_OK;
    if (n < 0)
        rc = ck_fail_errno(p->err, errno, "tar writer: readlink '%s'", p->name.data);
    else if (n >= (ssize_t)PACK_LINK_MAX)
        rc = ck_fail(p->err, CK_EINVAL, "tar writer: symlink '%s': target longer than %u bytes",
                     p->name.data, PACK_LINK_MAX);
    const char *bad = NULL;
    if (!rc) {
        target[n] = '\0';
        bad = ck_symlink_target_check(p->name.data, target);
    }
    if (!rc && bad) {
        char why[512], q[256];
        snprintf(why, sizeof(why), "a symlink to '%s', %s (readers refuse it)",
                 ck_entry_name_quote(target, q, sizeof(q)), bad);
        skip_entry(p, why);
    } else if (!rc) {
        rc = write_header(p, st, target);
    }
    free(target);
    return rc;
}

static ck_rc pack_dir(struct pack *p, int dfd);

static ck_rc pack_subdir(struct pack *p, int dfd, const char *base, const struct stat *st)
{
    ck_rc rc = write_header(p, st, NULL);
    if (rc)
        return rc;
    int sub = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return ck_fail_errno(p->err, errno, "tar writer: open directory '%s'", p->name.data);
    rc = pack_dir(p, sub);
    close(sub);
    return rc;
}

static const char *type_word(mode_t m)
{
    if (S_ISFIFO(m))
        return "a fifo";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    return "an unknown file type";
}

/* Archives one child 'base' of dfd; p->name already holds its relative name. */
static ck_rc pack_child(struct pack *p, int dfd, const char *base)
{
    struct stat st;
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return ck_fail_errno(p->err, errno, "tar writer: stat '%s'", p->name.data);
    if (S_ISREG(st.st_mode)) {
        if (p->opts.file_begin)
            p->opts.file_begin(p->opts.file_ctx, dfd, base);
        ck_rc rc = pack_file(p, dfd, base);
        if (p->opts.file_end)
            p->opts.file_end(p->opts.file_ctx);
        return rc;
    }
    if (S_ISDIR(st.st_mode))
        return pack_subdir(p, dfd, base, &st);
    if (S_ISLNK(st.st_mode))
        return pack_symlink(p, dfd, base, &st);
    char why[64];
    snprintf(why, sizeof(why), "%s, which a checkpoint cannot hold", type_word(st.st_mode));
    skip_entry(p, why);
    return CK_OK;
}

/* Archives the children of dfd in byte order; each directory precedes its contents. */
static ck_rc pack_dir(struct pack *p, int dfd)
{
    char **names;
    size_t n;
    ck_rc rc = list_dir(p, dfd, &names, &n);
    if (rc)
        return rc;
    size_t parent_len = p->name.len;
    for (size_t i = 0; i < n && !rc; i++) {
        if (parent_len > 0)
            rc = ck_buf_puts(&p->name, "/");
        if (!rc)
            rc = ck_buf_puts(&p->name, names[i]);
        if (rc) {
            rc = ck_fail(p->err, CK_EINVAL, "tar writer: name '%s/%s' longer than %u bytes",
                         p->name.data, names[i], PACK_NAME_MAX);
            break;
        }
        const char *why =
            p->opts.leave_out ? p->opts.leave_out(p->opts.leave_out_ctx, p->name.data) : NULL;
        if (why && !*why)
            p->st.excluded++;
        else if (why)
            skip_entry(p, why);
        else
            rc = pack_child(p, dfd, names[i]);
        p->name.len = parent_len;
        p->name.data[parent_len] = '\0';
    }
    free_names(names, n);
    return rc;
}

/* The trailer entry: after the tree, so a reader meets it last (pack.h). */
static ck_rc pack_trailer(struct pack *p, const struct ck_pack_trailer *t)
{
    char *data = NULL;
    size_t len = 0;
    ck_rc rc = t->make(t->ctx, &data, &len, p->err);
    if (rc)
        return rc;
    struct stat st = {
        .st_mode = S_IFREG | 0644, .st_uid = getuid(), .st_gid = getgid(), .st_size = (off_t)len};
    clock_gettime(CLOCK_REALTIME, &st.st_mtim);
    st.st_mtim.tv_nsec = 0;
    ck_buf_reset(&p->name);
    rc = ck_buf_puts(&p->name, t->name) ? ck_fail(p->err, CK_ENOMEM, "tar writer: out of memory")
                                        : write_header(p, &st, NULL);
    if (!rc && len > 0 && archive_write_data(p->cur, data, len) != (la_ssize_t)len)
        rc = archive_fail(p, "data of");
    free(data);
    return rc;
}

static ck_rc pack_open(struct pack *p)
{
    p->data = malloc(PACK_READ_BLOCK);
    p->segs = malloc(PACK_MAX_SEGS * sizeof(*p->segs));
    if (!p->data || !p->segs || ck_buf_puts(&p->name, ""))
        return ck_fail(p->err, CK_ENOMEM, "tar writer: out of memory");
    return writer_open(p, &p->a, true);
}

/* Ends the tar with the pax writer (the ustar writer's last entry finished first). */
static ck_rc pack_close(struct pack *p)
{
    ck_buf_reset(&p->name);
    if (p->cur != p->a && archive_write_finish_entry(p->cur) != ARCHIVE_OK)
        return archive_fail(p, "end of archive after");
    p->cur = p->a;
    if (archive_write_close(p->a) != ARCHIVE_OK)
        return archive_fail(p, "end of archive after");
    return CK_OK;
}

ck_rc ck_pack_tar(int dir_fd, const struct ck_sink *out, struct ck_pack_stats *st,
                  struct ck_err *err)
{
    struct ck_pack_opts none = {0};
    return ck_pack_tar_ex(dir_fd, out, &none, st, err);
}

ck_rc ck_pack_tar_ex(int dir_fd, const struct ck_sink *out, const struct ck_pack_opts *opts,
                     struct ck_pack_stats *st, struct ck_err *err)
{
    struct pack p = {.out = out, .err = err, .opts = *opts};
    struct ck_utf8_locale loc;
    ck_utf8_locale_enter(&loc);
    ck_buf_init(&p.name, PACK_NAME_MAX);
    ck_rc rc = pack_open(&p);
    if (!rc)
        rc = pack_dir(&p, dir_fd);
    if (!rc && p.opts.trailer)
        rc = pack_trailer(&p, p.opts.trailer);
    if (!rc)
        rc = pack_close(&p);
    p.aborted = rc != CK_OK; /* archive_write_free would otherwise write an end marker */
    p.plain_ending = true;
    if (p.plain)
        archive_write_free(p.plain);
    if (p.a)
        archive_write_free(p.a);
    free(p.data);
    free(p.segs);
    ck_buf_free(&p.name);
    ck_utf8_locale_leave(&loc);
    if (st)
        *st = p.st;
    return rc;
}
