/* fill.c - restored bytes into prev/'s placeholders, and out again; see fill.h. */
#include "restore/fill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/extract_tree.h"
#include "util/fsutil.h"

static ck_rc punch(int fd, uint64_t off, uint64_t len, const char *what, struct ck_err *err)
{
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
        return ck_fail_errno(err, errno, "%s: evicting %llu bytes at %llu", what,
                             (unsigned long long)len, (unsigned long long)off);
    return CK_OK;
}

/* Stored bytes [at, at + n) of file e: written from p, or punched out when p is NULL. */
static ck_rc change_stored(int fd, const struct ck_ix_entry *e, uint64_t at, const unsigned char *p,
                           uint64_t n, struct ck_err *err)
{
    char what[600];
    snprintf(what, sizeof(what), "prev/%.500s", e->name);
    ck_rc rc = CK_OK;
    while (!rc && n > 0) { /* stored bytes at "at" go to their place in the file */
        uint64_t logical, run;
        ck_ix_logical_at(e, at, &logical, &run);
        uint64_t k = run < n ? run : n;
        /* a placeholder made by ftruncate: its zeros stay holes (fsutil.h) */
        rc = p ? ck_pwrite_sparse(fd, p, (size_t)k, logical, what, err)
               : punch(fd, logical, k, what, err);
        at += k;
        p = p ? p + k : NULL;
        n -= k;
    }
    return rc;
}

static ck_rc change_file(const struct ck_fill *f, struct ck_tree_cursor *cur,
                         const struct ck_ix_entry *e, uint64_t at, const unsigned char *p,
                         uint64_t n, struct ck_err *err)
{
    int pfd;
    const char *base;
    ck_rc rc = ck_tree_cursor_parent(cur, f->dirfd, e->name, false, e->name, &pfd, &base, err);
    if (rc)
        return rc;
    /* placeholders are 0600, the daemon's own (lazy.c), whatever the archived mode */
    int fd = openat(pfd, base, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ck_fail_errno(err, errno, "prev/%s: open for %s", e->name,
                             p ? "filling" : "evicting");
    rc = change_stored(fd, e, at, p, n, err);
    close(fd);
    return rc;
}

size_t ck_fill_first_after(const struct ck_fill *f, uint64_t off)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct ck_ix_entry *e = &f->ix->entries[f->by_data[mid]];
        if (e->data_off + e->stored <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static ck_rc change(const struct ck_fill *f, uint64_t a, const unsigned char *data, uint64_t n,
                    struct ck_err *err)
{
    uint64_t b = a + n;
    struct ck_tree_cursor cur;
    ck_tree_cursor_init(&cur);
    ck_rc rc = CK_OK;
    for (size_t k = ck_fill_first_after(f, a); !rc && k < f->n; k++) {
        const struct ck_ix_entry *e = &f->ix->entries[f->by_data[k]];
        if (e->data_off >= b)
            break;
        uint64_t from = e->data_off > a ? e->data_off : a;
        uint64_t to = e->data_off + e->stored < b ? e->data_off + e->stored : b;
        rc = change_file(f, &cur, e, from - e->data_off, data ? data + (from - a) : NULL, to - from,
                         err);
    }
    ck_tree_cursor_close(&cur);
    return rc;
}

ck_rc ck_fill_write(const struct ck_fill *f, uint64_t at, const unsigned char *data, size_t n,
                    struct ck_err *err)
{
    return change(f, at, data, n, err);
}

ck_rc ck_fill_punch(const struct ck_fill *f, uint64_t at, uint64_t n, struct ck_err *err)
{
    return change(f, at, NULL, n, err);
}
