/* lazy.c - prev/ from the seek index, data fetched on read; see lazy.h. */
#include "restore/lazy.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/extract_tree.h"
#include "archive/ix_read.h"
#include "restore/fill.h"
#include "restore/resident.h"
#include "util/fsutil.h"
#include "util/log.h"

#define FETCH_THREADS 4
/* Members per ranged GET (8 MiB, Mountpoint's part size too), streamed member by member.
 * Whole restores of 1.5 GiB from radosgw, alternating with one curl GET of the object
 * (2.97-4.70 s): 32-member runs 5.6-9.5 s, 16: 4.7-5.3 s, 8: 3.3-4.3 s, 4: 3.3-4.2 s.
 * A read waits for the run that holds its member, which one stream fetches; long runs
 * make it wait at one stream's rate while the other threads fetch far ahead. */
#define RUN_MAX   8
#define READAHEAD 128 /* members fetched ahead of a read, within its file, in batches */

enum mstate { M_ABSENT, M_QUEUED, M_FETCHING, M_PRESENT, M_FAILED, M_EVICTING };

struct waiter {
    size_t first, last; /* members needed */
    ck_rc outcome;      /* set when it leaves the list */
    ck_lazy_cb cb;
    void *ctx;
    struct waiter *next;
};

struct file_ref {
    dev_t dev;
    ino_t ino;
    size_t entry;
};

struct ck_lazy {
    struct ck_store *store; /* not owned */
    int prev_dirfd;         /* owned (a dup) */
    struct ck_seek_index ix;
    struct file_ref *files; /* placeholders, sorted by (ino, dev) */
    size_t nfiles;
    ino_t *ino_of; /* per entry: its placeholder's inode (on dev), 0 if none */
    dev_t dev;
    size_t *by_data; /* file entries in data_off order */
    size_t nby_data;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint8_t *state; /* per member (lock) */
    size_t *queue;  /* members to fetch, FIFO ring (lock) */
    size_t qhead, qlen;
    struct waiter *waiters;     /* (lock) */
    bool stop;                  /* (lock) */
    char error[CK_ERR_MSG_MAX]; /* the last fetch failure (lock) */
    ck_rc error_rc;             /* its result: what a read of a failed member answers (lock) */
    struct ck_resident res;     /* what stays on disk under --cache-limit (lock) */
    struct ck_lazy_whole whole; /* (lock) */
    size_t run_max, readahead;  /* members per GET, and ahead of a read */
    pthread_t threads[FETCH_THREADS];
    unsigned nthreads;
    _Atomic uint64_t fetched;
    struct ck_lazy *next; /* the next shard of one multi-rank prev/ (owned), or NULL */
};

/* ---------- fetching the index ---------- */

/* ck_ix_fetch's reader: a ranged GET, counted. */
static ck_rc fetch_range(void *ctx, uint64_t off, size_t len, unsigned char **out,
                         struct ck_err *err)
{
    struct ck_lazy *lz = ctx;
    ck_rc rc = ck_store_get_mem(lz->store, off, len, out, err);
    if (!rc)
        atomic_fetch_add(&lz->fetched, len);
    return rc;
}

/* ---------- the skeleton ---------- */

/* A placeholder: the file at its size (holes), readable and writable by the daemon
 * alone. Its mode and mtime are the index's, shown by ck_lazy_fix_stat: a chmod or
 * utimens here would cost two system calls an entry, and the fill's writes change the
 * mtime anyway. */
static ck_rc make_file(struct ck_lazy *lz, size_t i, int pfd, const char *base, struct ck_err *err)
{
    const struct ck_ix_entry *e = &lz->ix.entries[i];
    int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return ck_fail_errno(err, errno, "prev/%s: create", e->name);
    struct stat st;
    ck_rc rc = CK_OK;
    if ((e->size && ftruncate(fd, (off_t)e->size) < 0) || fstat(fd, &st) < 0)
        rc = ck_fail_errno(err, errno, "prev/%s: placeholder", e->name);
    close(fd);
    if (!rc) {
        lz->files[lz->nfiles++] = (struct file_ref){st.st_dev, st.st_ino, i};
        lz->ino_of[i] = st.st_ino;
        lz->dev = st.st_dev;
    }
    return rc;
}

static ck_rc make_entry(struct ck_lazy *lz, size_t i, struct ck_tree_cursor *cur,
                        struct ck_err *err)
{
    const struct ck_ix_entry *e = &lz->ix.entries[i];
    int pfd;
    const char *base;
    ck_rc rc = ck_tree_cursor_parent(cur, lz->prev_dirfd, e->name, true, e->name, &pfd, &base, err);
    if (rc)
        return rc;
    struct timespec t[2] = {{e->mtime_sec, e->mtime_nsec}, {e->mtime_sec, e->mtime_nsec}};
    if (e->type == CK_IX_FILE || e->type == CK_IX_SPARSE) {
        rc = make_file(lz, i, pfd, base, err);
    } else if (e->type == CK_IX_SYMLINK) {
        if (symlinkat(e->link, pfd, base) < 0 || utimensat(pfd, base, t, AT_SYMLINK_NOFOLLOW) < 0)
            rc = ck_fail_errno(err, errno, "prev/%s: symlink", e->name);
    } else if (mkdirat(pfd, base, 0700) < 0) {
        struct stat st; /* a directory another shard made too is fine, anything else not */
        if (errno != EEXIST || fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(st.st_mode))
            rc = ck_fail_errno(err, errno == EEXIST ? EEXIST : errno, "prev/%s: mkdir", e->name);
    }
    return rc;
}

/* Directory modes and mtimes last, deepest first: creating children changes them. */
static void finish_dirs(struct ck_lazy *lz)
{
    struct ck_tree_cursor cur;
    ck_tree_cursor_init(&cur);
    for (size_t k = lz->ix.nentries; k-- > 0;) {
        const struct ck_ix_entry *e = &lz->ix.entries[k];
        if (e->type != CK_IX_DIR)
            continue;
        int pfd;
        const char *base;
        struct ck_err ignored;
        if (ck_tree_cursor_parent(&cur, lz->prev_dirfd, e->name, false, e->name, &pfd, &base,
                                  &ignored))
            continue;
        struct timespec t[2] = {{e->mtime_sec, e->mtime_nsec}, {e->mtime_sec, e->mtime_nsec}};
        fchmodat(pfd, base, e->mode & CK_TREE_MODE_MASK, 0);
        utimensat(pfd, base, t, AT_SYMLINK_NOFOLLOW);
    }
    ck_tree_cursor_close(&cur);
}

static int cmp_file_ref(const void *a, const void *b)
{
    const struct file_ref *x = a, *y = b;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return x->dev < y->dev ? -1 : x->dev > y->dev;
}

static ck_rc build_skeleton(struct ck_lazy *lz, struct ck_err *err)
{
    size_t n = lz->ix.nentries;
    lz->files = calloc(n + 1, sizeof(*lz->files));
    lz->by_data = calloc(n + 1, sizeof(*lz->by_data));
    lz->ino_of = calloc(n + 1, sizeof(*lz->ino_of));
    if (!lz->files || !lz->by_data || !lz->ino_of)
        return ck_fail(err, CK_ENOMEM, "prev/: out of memory");
    ck_rc rc = CK_OK;
    struct ck_tree_cursor cur;
    ck_tree_cursor_init(&cur);
    for (size_t i = 0; !rc && i < n; i++)
        rc = make_entry(lz, i, &cur, err);
    ck_tree_cursor_close(&cur);
    if (rc)
        return rc;
    finish_dirs(lz);
    for (size_t i = 0; i < n; i++)
        if (lz->ix.entries[i].stored > 0)
            lz->by_data[lz->nby_data++] = i;
    /* ckptfs writes entries in tar order, so data offsets only grow; check it. */
    for (size_t k = 1; k < lz->nby_data; k++)
        if (lz->ix.entries[lz->by_data[k]].data_off < lz->ix.entries[lz->by_data[k - 1]].data_off)
            return ck_fail(err, CK_ECORRUPT, "seek index: entries out of data order");
    qsort(lz->files, lz->nfiles, sizeof(*lz->files), cmp_file_ref);
    return CK_OK;
}

/* ---------- fetching members into the placeholders ---------- */

static struct ck_fill fill_of(const struct ck_lazy *lz)
{
    return (struct ck_fill){lz->prev_dirfd, &lz->ix, lz->by_data, lz->nby_data};
}

/* A run being fetched: each member is inflated and written into its placeholders as soon as
 * its last byte arrives, and becomes readable at once, so a long run costs no latency and
 * only one member's worth of memory. */
struct run_sink {
    struct ck_lazy *lz;
    size_t next, last;  /* the member being received; the run's last */
    size_t have;        /* its compressed bytes received so far */
    unsigned char *in;  /* its compressed bytes */
    unsigned char *out; /* its inflated bytes */
};

static struct ck_lazy_whole member_done(struct ck_lazy *lz, size_t i);

/* Hands each small file whose data member m (inflated: out) holds whole to the hook. */
static void offer_whole_files(const struct ck_lazy *lz, const struct ck_lazy_whole *h,
                              const struct ck_ix_member *m, const unsigned char *out)
{
    struct ck_fill f = fill_of(lz);
    uint64_t a = m->in_off, b = a + m->in_len;
    for (size_t k = ck_fill_first_after(&f, a); k < f.n; k++) {
        size_t i = lz->by_data[k];
        const struct ck_ix_entry *e = &lz->ix.entries[i];
        if (e->data_off >= b)
            break;
        if (e->type == CK_IX_FILE && e->size > 0 && e->size <= h->max && e->data_off >= a &&
            e->data_off + e->size <= b && lz->ino_of[i])
            h->fn(h->ctx, lz->dev, lz->ino_of[i], out + (e->data_off - a), (size_t)e->size);
    }
}

static ck_rc run_member_complete(struct run_sink *r, struct ck_err *err)
{
    const struct ck_ix_member *m = &r->lz->ix.members[r->next];
    ck_rc rc = ck_ix_inflate_member(m, r->in, r->out, err);
    struct ck_fill f = fill_of(r->lz);
    if (!rc)
        rc = ck_fill_write(&f, m->in_off, r->out, (size_t)m->in_len, err);
    if (!rc) {
        struct ck_lazy_whole h = member_done(r->lz, r->next);
        if (h.fn) /* after the reads it completes are answered: none waits on this thread */
            offer_whole_files(r->lz, &h, m, r->out);
        r->next++;
        r->have = 0;
    }
    return rc;
}

static ck_rc run_write(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    struct run_sink *r = ctx;
    const unsigned char *p = buf;
    atomic_fetch_add(&r->lz->fetched, len);
    while (len > 0) {
        if (r->next > r->last)
            return ck_fail(err, CK_ECORRUPT, "GET %s: more bytes than asked for",
                           ck_store_uri(r->lz->store));
        const struct ck_ix_member *m = &r->lz->ix.members[r->next];
        size_t take = (size_t)(m->out_len - r->have) < len ? (size_t)(m->out_len - r->have) : len;
        memcpy(r->in + r->have, p, take);
        r->have += take;
        p += take;
        len -= take;
        if (r->have == m->out_len) {
            ck_rc rc = run_member_complete(r, err);
            if (rc)
                return rc;
        }
    }
    return CK_OK;
}

/* Fetches members [first, last] with one ranged GET. On return, r->next is the first member
 * not made present (last + 1 on success). */
static ck_rc fill_run(struct ck_lazy *lz, struct run_sink *r, struct ck_err *err)
{
    size_t first = r->next, last = r->last;
    uint64_t in_max = 1, out_max = 1;
    for (size_t i = first; i <= last; i++) {
        const struct ck_ix_member *m = &lz->ix.members[i];
        in_max = m->out_len > in_max ? m->out_len : in_max;
        out_max = m->in_len > out_max ? m->in_len : out_max;
    }
    r->in = malloc((size_t)in_max);
    r->out = malloc((size_t)out_max);
    if (!r->in || !r->out)
        return ck_fail(err, CK_ENOMEM, "prev/: out of memory");
    const struct ck_ix_member *m0 = &lz->ix.members[first], *m1 = &lz->ix.members[last];
    uint64_t len = m1->out_off + m1->out_len - m0->out_off;
    struct ck_sink sink = {run_write, r};
    ck_rc rc = ck_store_get(lz->store, m0->out_off, len, &sink, err);
    if (!rc && r->next <= last)
        rc = ck_fail(err, CK_ECORRUPT, "GET %s: the reply ended early (%llu of %llu bytes)",
                     ck_store_uri(lz->store),
                     (unsigned long long)(lz->ix.members[r->next].out_off + r->have - m0->out_off),
                     (unsigned long long)len);
    return rc;
}

/* ---------- waiters and the fetch threads ---------- */

/* Removes and returns waiters whose members are all present or one failed (lock held). */
static struct waiter *take_finished(struct ck_lazy *lz)
{
    struct waiter *done = NULL, **pp = &lz->waiters;
    while (*pp) {
        struct waiter *w = *pp;
        bool failed = false, ready = true;
        for (size_t i = w->first; i <= w->last; i++) {
            failed |= lz->state[i] == M_FAILED;
            ready &= lz->state[i] == M_PRESENT;
        }
        if (failed || ready || lz->stop) {
            *pp = w->next;
            w->outcome = lz->stop ? CK_ECANCELED
                         : failed ? (lz->error_rc ? lz->error_rc : CK_EIO)
                                  : CK_OK;
            w->next = done;
            done = w;
        } else {
            pp = &w->next;
        }
    }
    return done;
}

static void call_waiters(struct waiter *w, const char *error)
{
    while (w) {
        struct waiter *next = w->next;
        if (w->outcome && w->outcome != CK_ECANCELED)
            ck_log_error("prev/: %s", error);
        w->cb(w->ctx, w->outcome);
        free(w);
        w = next;
    }
}

/* Member i is on the cache disk: wakes the reads it completes. Returns the whole-file
 * hook as it is now. */
static struct ck_lazy_whole member_done(struct ck_lazy *lz, size_t i)
{
    pthread_mutex_lock(&lz->lock);
    lz->state[i] = M_PRESENT;
    ck_resident_arrived(&lz->res, i, lz->ix.members[i].in_len);
    struct waiter *done = take_finished(lz);
    char error[CK_ERR_MSG_MAX];
    memcpy(error, lz->error, sizeof(error));
    struct ck_lazy_whole h = lz->whole;
    pthread_mutex_unlock(&lz->lock);
    call_waiters(done, error);
    return h;
}

/* Pops a run of consecutive queued members (lock held). */
static bool pop_run(struct ck_lazy *lz, size_t *first, size_t *last)
{
    while (lz->qlen > 0) {
        size_t i = lz->queue[lz->qhead];
        lz->qhead = (lz->qhead + 1) % lz->ix.nmembers;
        lz->qlen--;
        if (lz->state[i] != M_QUEUED)
            continue;
        *first = *last = i;
        lz->state[i] = M_FETCHING;
        while (*last + 1 < lz->ix.nmembers && *last + 1 - *first < lz->run_max &&
               lz->state[*last + 1] == M_QUEUED) {
            lz->state[++*last] = M_FETCHING;
        }
        return true;
    }
    return false;
}

/* Queues member i if nobody has it (lock held). */
static void enqueue(struct ck_lazy *lz, size_t i)
{
    if (lz->state[i] != M_ABSENT && lz->state[i] != M_FAILED)
        return;
    lz->state[i] = M_QUEUED;
    lz->queue[(lz->qhead + lz->qlen) % lz->ix.nmembers] = i;
    lz->qlen++;
}

/* Under --cache-limit: reserves members [first, last] and evicts members until they fit,
 * least recently used first, never one a read holds (resident.h). A member being evicted
 * is M_EVICTING, which nothing fetches or serves; once its bytes are holes it is absent,
 * and queued again if a read waits for it (lock held; dropped while punching). */
static void make_room(struct ck_lazy *lz, size_t first, size_t last)
{
    for (size_t i = first; i <= last; i++)
        ck_resident_reserve(&lz->res, lz->ix.members[i].in_len);
    size_t v;
    while (ck_resident_victim(&lz->res, &v)) {
        lz->state[v] = M_EVICTING;
        pthread_mutex_unlock(&lz->lock);
        const struct ck_ix_member *m = &lz->ix.members[v];
        struct ck_fill f = fill_of(lz);
        struct ck_err err;
        if (ck_fill_punch(&f, m->in_off, m->in_len, &err))
            ck_log_warn("%s (it is fetched again when read)", err.msg);
        pthread_mutex_lock(&lz->lock);
        lz->state[v] = M_ABSENT;
        if (ck_resident_pinned(&lz->res, v)) {
            enqueue(lz, v);
            pthread_cond_signal(&lz->cond);
        }
    }
}

/* Fetches members *next..last into their placeholders; *next is left at the first member
 * not done. Data that does not decompress (a bit flipped on the way: the GET's bytes are
 * checked only by the members' CRCs) is fetched once more before the members fail; the
 * object itself damaged fails twice. */
static ck_rc fetch_run(struct ck_lazy *lz, size_t *next, size_t last, struct ck_err *err)
{
    ck_rc rc = CK_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        ck_err_clear(err);
        struct run_sink r = {.lz = lz, .next = *next, .last = last};
        rc = fill_run(lz, &r, err);
        free(r.in);
        free(r.out);
        *next = r.next;
        if (rc != CK_ECORRUPT || attempt > 0)
            break;
        ck_log_warn("prev/: %s; fetching it again", err->msg);
    }
    return rc;
}

static void *fetch_main(void *arg)
{
    struct ck_lazy *lz = arg;
    pthread_mutex_lock(&lz->lock);
    for (;;) {
        size_t first, last;
        while (!lz->stop && !pop_run(lz, &first, &last))
            pthread_cond_wait(&lz->cond, &lz->lock);
        if (lz->stop)
            break;
        make_room(lz, first, last);
        pthread_mutex_unlock(&lz->lock);
        struct ck_err err;
        size_t next = first;
        ck_rc rc = fetch_run(lz, &next, last, &err);
        pthread_mutex_lock(&lz->lock);
        for (size_t i = next; i <= last; i++) {
            lz->state[i] = M_FAILED;
            ck_resident_unreserve(&lz->res, lz->ix.members[i].in_len);
        }
        if (rc) {
            snprintf(lz->error, sizeof(lz->error), "%s", err.msg);
            lz->error_rc = rc;
        }
        struct waiter *done = take_finished(lz);
        char error[CK_ERR_MSG_MAX];
        memcpy(error, lz->error, sizeof(error));
        pthread_mutex_unlock(&lz->lock);
        call_waiters(done, error);
        pthread_mutex_lock(&lz->lock);
    }
    pthread_mutex_unlock(&lz->lock);
    return NULL;
}

/* Read-ahead within a file, in batches: once fewer than half of lz->readahead members past
 * a read are on their way, the next lz->readahead are queued together, so they leave as a
 * few long runs (few GETs) rather than one member at a time (lock held). */
static void queue_readahead(struct ck_lazy *lz, size_t last, size_t file_last)
{
    size_t ra = lz->readahead, k = last + 1;
    while (k <= file_last && k <= last + ra / 2 && lz->state[k] != M_ABSENT &&
           lz->state[k] != M_FAILED)
        k++;
    if (k > file_last || k > last + ra / 2)
        return;
    for (size_t i = k; i <= file_last && i < k + ra; i++)
        enqueue(lz, i);
}

static const struct file_ref *find_file(const struct ck_lazy *lz, dev_t dev, ino_t ino)
{
    struct file_ref key = {dev, ino, 0};
    return bsearch(&key, lz->files, lz->nfiles, sizeof(key), cmp_file_ref);
}

/* The shard of the chain that serves the placeholder (dev, ino), or NULL. */
static struct ck_lazy *owner(struct ck_lazy *lz, dev_t dev, ino_t ino, const struct file_ref **f)
{
    for (; lz; lz = lz->next)
        if ((*f = find_file(lz, dev, ino)) != NULL)
            return lz;
    return NULL;
}

int ck_lazy_is_placeholder(struct ck_lazy *lz, dev_t dev, ino_t ino)
{
    const struct file_ref *f;
    return owner(lz, dev, ino, &f) != NULL;
}

void ck_lazy_fix_stat(struct ck_lazy *lz, struct stat *st)
{
    const struct file_ref *f;
    lz = owner(lz, st->st_dev, st->st_ino, &f);
    if (!lz)
        return;
    const struct ck_ix_entry *e = &lz->ix.entries[f->entry];
    st->st_mtim = (struct timespec){e->mtime_sec, e->mtime_nsec};
    st->st_mode = (st->st_mode & S_IFMT) | (e->mode & CK_TREE_MODE_MASK);
}

int ck_lazy_want(struct ck_lazy *lz, dev_t dev, ino_t ino, uint64_t off, uint64_t len,
                 ck_lazy_cb cb, void *ctx, struct ck_lazy_hold *hold)
{
    *hold = (struct ck_lazy_hold){NULL, 0, 0};
    const struct file_ref *f;
    lz = owner(lz, dev, ino, &f);
    if (!lz)
        return 1;
    const struct ck_ix_entry *e = &lz->ix.entries[f->entry];
    if (off >= e->size || len == 0)
        return 1;
    uint64_t from, to; /* the stored bytes that hold [off, off + len) */
    ck_ix_stored_range(e, off, len, &from, &to);
    if (from == to)
        return 1; /* holes: the placeholder reads as zeros */
    size_t first = ck_ix_member_at(&lz->ix, e->data_off + from);
    size_t last = ck_ix_member_at(&lz->ix, e->data_off + to - 1);
    size_t file_last = ck_ix_member_at(&lz->ix, e->data_off + e->stored - 1);
    pthread_mutex_lock(&lz->lock);
    if (lz->stop) {
        pthread_mutex_unlock(&lz->lock);
        cb(ctx, CK_ECANCELED);
        return 0;
    }
    ck_resident_pin(&lz->res, first, last);
    *hold = (struct ck_lazy_hold){lz, first, last};
    size_t queued = lz->qlen;
    bool ready = true;
    for (size_t i = first; i <= last; i++) {
        enqueue(lz, i);
        ready &= lz->state[i] == M_PRESENT;
    }
    queue_readahead(lz, last, file_last);
    struct waiter *w = ready ? NULL : malloc(sizeof(*w));
    if (w) {
        *w = (struct waiter){first, last, CK_OK, cb, ctx, lz->waiters};
        lz->waiters = w;
    }
    if (lz->qlen != queued) /* the fetch threads sleep only on an empty queue */
        pthread_cond_broadcast(&lz->cond);
    pthread_mutex_unlock(&lz->lock);
    if (!ready && !w) {
        cb(ctx, CK_ENOMEM);
        return 0;
    }
    return ready;
}

void ck_lazy_release(struct ck_lazy_hold *hold)
{
    struct ck_lazy *lz = hold->lz;
    if (!lz)
        return;
    pthread_mutex_lock(&lz->lock);
    ck_resident_unpin(&lz->res, hold->first, hold->last);
    pthread_mutex_unlock(&lz->lock);
    hold->lz = NULL;
}

void ck_lazy_cache_use(struct ck_lazy *lz, struct ck_lazy_cache *out)
{
    *out = (struct ck_lazy_cache){0};
    for (; lz; lz = lz->next) {
        pthread_mutex_lock(&lz->lock);
        out->limit += lz->res.limit;
        out->bytes += lz->res.used;
        out->evicted_bytes += lz->res.evicted;
        pthread_mutex_unlock(&lz->lock);
    }
}

uint64_t ck_lazy_data_bytes(struct ck_lazy *lz)
{
    uint64_t n = 0;
    for (; lz; lz = lz->next)
        for (size_t i = 0; i < lz->ix.nentries; i++)
            n += lz->ix.entries[i].stored; /* a sparse file's holes take no space */
    return n;
}

uint64_t ck_lazy_bytes_fetched(struct ck_lazy *lz)
{
    uint64_t n = 0;
    for (; lz; lz = lz->next)
        n += atomic_load(&lz->fetched);
    return n;
}

void ck_lazy_last_error(struct ck_lazy *lz, char *out, size_t cap)
{
    out[0] = '\0';
    for (; lz && !out[0]; lz = lz->next) {
        pthread_mutex_lock(&lz->lock);
        snprintf(out, cap, "%s", lz->error);
        pthread_mutex_unlock(&lz->lock);
    }
}

void ck_lazy_hide(struct ck_lazy *lz, const char *name)
{
    pthread_mutex_lock(&lz->lock);
    for (size_t k = 0; k < lz->nby_data; k++) {
        if (strcmp(lz->ix.entries[lz->by_data[k]].name, name) != 0)
            continue;
        memmove(&lz->by_data[k], &lz->by_data[k + 1], (lz->nby_data - k - 1) * sizeof(size_t));
        lz->nby_data--;
        break;
    }
    for (size_t k = 0; k < lz->nfiles; k++) {
        if (strcmp(lz->ix.entries[lz->files[k].entry].name, name) != 0)
            continue;
        lz->ino_of[lz->files[k].entry] = 0;
        memmove(&lz->files[k], &lz->files[k + 1], (lz->nfiles - k - 1) * sizeof(*lz->files));
        lz->nfiles--;
        break;
    }
    pthread_mutex_unlock(&lz->lock);
    unlinkat(lz->prev_dirfd, name, 0);
}

void ck_lazy_on_whole_file(struct ck_lazy *lz, const struct ck_lazy_whole *hook)
{
    for (; lz; lz = lz->next) {
        pthread_mutex_lock(&lz->lock);
        lz->whole = *hook;
        pthread_mutex_unlock(&lz->lock);
    }
}

void ck_lazy_chain(struct ck_lazy *lz, struct ck_lazy *next)
{
    while (lz->next)
        lz = lz->next;
    lz->next = next;
}

/* ---------- one small entry, read at once ---------- */

ck_rc ck_lazy_read_entry(struct ck_lazy *lz, const char *name, size_t max, char **out, size_t *len,
                         struct ck_err *err)
{
    return ck_ix_read_entry(&lz->ix, fetch_range, lz, "prev/", name, max, out, len, err);
}

/* ---------- life cycle ---------- */

static ck_rc start_threads(struct ck_lazy *lz, struct ck_err *err)
{
    size_t n = lz->ix.nmembers;
    lz->state = calloc(n + 1, 1);
    lz->queue = calloc(n + 1, sizeof(*lz->queue));
    if (!lz->state || !lz->queue)
        return ck_fail(err, CK_ENOMEM, "prev/: out of memory");
    for (unsigned i = 0; i < FETCH_THREADS; i++) {
        if (pthread_create(&lz->threads[i], NULL, fetch_main, lz) != 0)
            return ck_fail(err, CK_ENOMEM, "prev/: cannot start a fetch thread");
        lz->nthreads++;
    }
    return CK_OK;
}

/* Under a cache limit, GETs and read-ahead fit a quarter of it (at least one member). */
static ck_rc set_limit(struct ck_lazy *lz, uint64_t limit, struct ck_err *err)
{
    ck_resident_free(&lz->res);
    ck_rc rc = ck_resident_init(&lz->res, lz->ix.nmembers, limit, err);
    uint64_t fit = READAHEAD;
    if (limit) { /* members of the average size that fit a quarter of it */
        uint64_t tar = 0;
        for (size_t i = 0; i < lz->ix.nmembers; i++)
            tar += lz->ix.members[i].in_len;
        fit = limit / 4 / (lz->ix.nmembers ? tar / lz->ix.nmembers + 1 : 1);
        fit = fit < 1 ? 1 : fit;
    }
    lz->run_max = fit < RUN_MAX ? (size_t)fit : RUN_MAX;
    lz->readahead = fit < READAHEAD ? (size_t)fit : READAHEAD;
    return rc;
}

ck_rc ck_lazy_open(struct ck_store *store, uint64_t size, int prev_dirfd, struct ck_lazy **out,
                   uint64_t *entries, struct ck_err *err)
{
    struct ck_lazy *lz = calloc(1, sizeof(*lz));
    if (!lz)
        return ck_fail(err, CK_ENOMEM, "prev/: out of memory");
    lz->store = store;
    lz->prev_dirfd = fcntl(prev_dirfd, F_DUPFD_CLOEXEC, 0);
    pthread_mutex_init(&lz->lock, NULL);
    pthread_cond_init(&lz->cond, NULL);
    atomic_init(&lz->fetched, 0);
    ck_rc rc = lz->prev_dirfd < 0 ? ck_fail_errno(err, errno, "prev/") : CK_OK;
    if (!rc)
        rc = ck_ix_fetch(fetch_range, lz, size, &lz->ix, err);
    if (!rc)
        rc = build_skeleton(lz, err);
    if (!rc)
        rc = set_limit(lz, 0, err);
    if (!rc)
        rc = start_threads(lz, err);
    if (rc) {
        ck_lazy_free(lz);
        return rc;
    }
    *entries = lz->ix.nentries;
    *out = lz;
    return CK_OK;
}

ck_rc ck_lazy_share_limit(struct ck_lazy *lz, uint64_t cache_limit, struct ck_err *err)
{
    size_t n = 0;
    for (struct ck_lazy *p = lz; p; p = p->next)
        n++;
    uint64_t each = cache_limit / n;
    if (cache_limit && each == 0)
        each = 1;
    ck_rc rc = CK_OK;
    for (; lz && !rc; lz = lz->next) {
        pthread_mutex_lock(&lz->lock);
        rc = set_limit(lz, each, err);
        pthread_mutex_unlock(&lz->lock);
    }
    return rc;
}

void ck_lazy_stop(struct ck_lazy *lz)
{
    if (lz->next)
        ck_lazy_stop(lz->next);
    pthread_mutex_lock(&lz->lock);
    lz->stop = true;
    pthread_cond_broadcast(&lz->cond);
    struct waiter *done = take_finished(lz);
    unsigned n = lz->nthreads;
    lz->nthreads = 0;
    pthread_mutex_unlock(&lz->lock);
    call_waiters(done, "");
    for (unsigned i = 0; i < n; i++)
        pthread_join(lz->threads[i], NULL);
}

void ck_lazy_free(struct ck_lazy *lz)
{
    if (!lz)
        return;
    ck_lazy_stop(lz);
    ck_lazy_free(lz->next);
    if (lz->prev_dirfd >= 0)
        close(lz->prev_dirfd);
    ck_ix_free(&lz->ix);
    free(lz->files);
    free(lz->ino_of);
    free(lz->by_data);
    free(lz->state);
    free(lz->queue);
    ck_resident_free(&lz->res);
    pthread_mutex_destroy(&lz->lock);
    pthread_cond_destroy(&lz->cond);
    free(lz);
}
