/*
 * tool_ls.c - `ckptfs ls [-l] URI`: the entries of a checkpoint.
 *
 * A ckptfs archive is listed from its seek index alone (one ranged GET of the tail and one
 * of the index: kilobytes, whatever the checkpoint's size). A multi-rank checkpoint (its
 * index holds the manifest, layout/manifest.h) is listed as a restore shows it: the union
 * of every rank's entries, sorted, each name once, every shard checked against the
 * manifest first (restore/shards.h). Anything else is downloaded into a scratch file and
 * read with libarchive (any tar flavour; a non-tar object is listed as "payload").
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/ix_read.h"
#include "archive/seek_index.h"
#include "cli/tools.h"
#include "layout/manifest.h"
#include "restore/shards.h"
#include "store/store.h"

static void print_line(bool lng, char type, unsigned mode, uint64_t size, int64_t mtime,
                       const char *name, const char *link)
{
    if (lng) {
        char when[32];
        time_t t = (time_t)mtime;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
        printf("%c%04o %12llu %s ", type, mode & 07777, (unsigned long long)size, when);
    }
    printf("%s%s%s%s\n", name, type == 'd' ? "/" : "", link ? " -> " : "", link ? link : "");
}

static void print_entry(const struct ck_ix_entry *e, bool lng)
{
    char t = e->type == CK_IX_DIR ? 'd' : e->type == CK_IX_SYMLINK ? 'l' : '-';
    print_line(lng, t, e->mode, e->size, e->mtime_sec, e->name, e->link);
}

static int entry_cmp(const void *a, const void *b)
{
    const struct ck_ix_entry *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* The entries of ixs[0..n), the manifest left out, sorted by name, each name once. */
static ck_rc print_union(const struct ck_seek_index *ixs, unsigned n, bool lng, struct ck_err *err)
{
    size_t total = 0, k = 0;
    for (unsigned r = 0; r < n; r++)
        total += ixs[r].nentries;
    const struct ck_ix_entry **all = calloc(total ? total : 1, sizeof(*all));
    if (!all)
        return ck_fail(err, CK_ENOMEM, "out of memory");
    for (unsigned r = 0; r < n; r++)
        for (size_t i = 0; i < ixs[r].nentries; i++)
            if (r > 0 || strcmp(ixs[r].entries[i].name, CK_WORLD_MANIFEST) != 0)
                all[k++] = &ixs[r].entries[i];
    qsort(all, k, sizeof(*all), entry_cmp);
    for (size_t i = 0; i < k; i++)
        if (i == 0 || strcmp(all[i]->name, all[i - 1]->name) != 0)
            print_entry(all[i], lng);
    free(all);
    return CK_OK;
}

/* The indexes of ranks 1 .. world-1 of manifest m into ixs[1..], each shard checked. */
static ck_rc fetch_shards(const char *uri, const struct ck_store_env *env,
                          const struct ck_world_manifest *m, struct ck_seek_index *ixs,
                          struct ck_err *err)
{
    ck_rc rc = CK_OK;
    for (unsigned r = 1; !rc && r < m->world; r++) {
        struct ck_store *st = NULL;
        struct ck_store_info info;
        rc = ck_shard_open(uri, env, m, r, &st, &info, err);
        if (!rc)
            rc = ck_ix_fetch(ck_store_read_mem, st, info.size, &ixs[r], err);
        if (rc == CK_ENOTFOUND)
            rc = ck_fail(err, CK_ECORRUPT, "rank %u's shard has no ckptfs index", r);
        if (st)
            ck_store_close(st);
    }
    return rc;
}

/* A multi-rank checkpoint whose rank 0 archive s (at uri) has index ix: the union of every
 * rank's entries. CK_ENOTFOUND: not one (no manifest). */
static ck_rc ls_world(struct ck_store *s, const char *uri, const struct ck_store_env *env,
                      const struct ck_seek_index *ix, bool lng, struct ck_err *err)
{
    char *text = NULL;
    size_t len = 0;
    ck_rc rc = ck_ix_read_entry(ix, ck_store_read_mem, s, "", CK_WORLD_MANIFEST,
                                CK_WORLD_MANIFEST_MAX, &text, &len, err);
    if (rc)
        return rc;
    struct ck_world_manifest m;
    rc = ck_world_manifest_parse_entry(text, len, &m, err);
    if (rc)
        return rc;
    struct ck_seek_index *ixs = calloc(m.world, sizeof(*ixs));
    if (!ixs)
        rc = ck_fail(err, CK_ENOMEM, "out of memory");
    else
        ixs[0] = *ix; /* borrowed: not freed here */
    if (!rc)
        rc = fetch_shards(uri, env, &m, ixs, err);
    if (!rc)
        rc = print_union(ixs, m.world, lng, err);
    for (unsigned r = 1; ixs && r < m.world; r++)
        ck_ix_free(&ixs[r]);
    free(ixs);
    ck_world_manifest_free(&m);
    return rc;
}

/* CK_ENOTFOUND: the object has no ckptfs index. */
static ck_rc ls_indexed(struct ck_store *s, const char *uri, const struct ck_store_env *env,
                        uint64_t size, bool lng, struct ck_err *err)
{
    struct ck_seek_index ix;
    ck_rc rc = ck_ix_fetch(ck_store_read_mem, s, size, &ix, err);
    if (rc)
        return rc;
    rc = ls_world(s, uri, env, &ix, lng, err);
    if (rc == CK_ENOTFOUND) {
        ck_err_clear(err);
        for (size_t i = 0; i < ix.nentries; i++)
            print_entry(&ix.entries[i], lng);
        rc = CK_OK;
    }
    ck_ix_free(&ix);
    return rc;
}

static ck_rc fd_write(void *ctx, const void *p, size_t n, struct ck_err *err)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(*(int *)ctx, c, n);
        if (w < 0 && errno != EINTR)
            return ck_fail_errno(err, errno, "writing the scratch copy");
        if (w > 0) {
            c += w;
            n -= (size_t)w;
        }
    }
    return CK_OK;
}

static char entry_type(struct archive_entry *e)
{
    mode_t t = archive_entry_filetype(e);
    return t == AE_IFDIR ? 'd' : t == AE_IFLNK ? 'l' : t == AE_IFREG ? '-' : '?';
}

static ck_rc ls_archive(int fd, bool lng, struct ck_err *err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    lseek(fd, 0, SEEK_SET);
    ck_rc rc = CK_OK;
    struct archive_entry *e;
    if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK ||
        archive_read_next_header(a, &e) != ARCHIVE_OK) {
        struct stat st;
        fstat(fd, &st);
        print_line(lng, '-', 0644, (uint64_t)st.st_size, st.st_mtime, "payload", NULL);
    } else {
        int r;
        do {
            print_line(lng, entry_type(e), archive_entry_perm(e), (uint64_t)archive_entry_size(e),
                       archive_entry_mtime(e), archive_entry_pathname(e), archive_entry_symlink(e));
        } while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK);
        if (r != ARCHIVE_EOF)
            rc = ck_fail(err, CK_ECORRUPT, "reading the archive: %s", archive_error_string(a));
    }
    archive_read_free(a);
    return rc;
}

static ck_rc ls_streamed(struct ck_store *s, bool lng, struct ck_err *err)
{
    const char *base = getenv("TMPDIR");
    int fd = open(base && *base ? base : "/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return ck_fail_errno(err, errno, "creating a scratch file");
    struct ck_sink sink = {fd_write, &fd};
    ck_rc rc = ck_store_get(s, 0, CK_STORE_TO_END, &sink, err);
    if (!rc)
        rc = ls_archive(fd, lng, err);
    close(fd);
    return rc;
}

static ck_rc ls_uri(const char *uri, bool lng, struct ck_err *err)
{
    struct ck_store_env env;
    struct ck_store *s;
    struct ck_store_info info;
    ck_store_env_default(&env);
    ck_rc rc = ck_store_open(uri, &env, &s, err);
    if (rc)
        return rc;
    rc = ck_store_head(s, &info, err);
    if (!rc && !info.exists)
        rc = ck_fail(err, CK_ENOTFOUND, "%s does not exist", ck_store_uri(s));
    if (!rc && info.size > 0) {
        rc = ls_indexed(s, uri, &env, info.size, lng, err);
        if (rc == CK_ENOTFOUND)
            rc = ls_streamed(s, lng, err);
    }
    ck_store_close(s);
    return rc;
}

int ck_tool_ls(int argc, char **argv)
{
    bool lng = argc == 3 && strcmp(argv[1], "-l") == 0;
    if (argc != 2 + lng) {
        fputs("usage: ckptfs ls [-l] URI\n", stderr);
        return 2;
    }
    struct ck_err err;
    ck_err_clear(&err);
    ck_rc rc = ls_uri(argv[argc - 1], lng, &err);
    if (rc)
        fprintf(stderr, "ckptfs ls: %s\n", err.msg);
    return rc == CK_ENOTFOUND ? 3 : rc ? 1 : 0;
}
