/* area.c - the save area and its consistency gate; see area.h. */
#include "save/area.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"

#define CLEAN_MARKER "clean"

static void init_state(struct ck_area *a)
{
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->scan_lock, NULL);
    ck_cond_init_monotonic(&a->cond);
    a->writers = a->mutators = 0;
    a->frozen = false;
    a->change_seq = 1;
    a->last_writer_close = ck_now();
    a->snap = NULL;
    a->snap_users = 0;
    a->named = NULL;
    a->nnamed = a->capnamed = 0;
    a->changed = (struct ck_changed){0};
}

/* Opens cache_dir, creates name in it if missing (*fresh: it was) and opens that too. */
static ck_rc open_dirs(struct ck_area *a, const char *cache_dir, const char *name, bool *fresh,
                       struct ck_err *err)
{
    a->dirfd = -1;
    a->cache_dirfd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->cache_dirfd < 0)
        return ck_fail_errno(err, errno, "cache dir %s", cache_dir);
    int at = name[0] == '/' ? AT_FDCWD : a->cache_dirfd;
    *fresh = mkdirat(at, name, 0755) == 0;
    if (*fresh || errno == EEXIST)
        a->dirfd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (a->dirfd >= 0)
        return CK_OK;
    ck_rc rc = ck_fail_errno(err, errno, "opening %s%s%s", at == AT_FDCWD ? "" : cache_dir,
                             at == AT_FDCWD ? "" : "/", name);
    close(a->cache_dirfd);
    return rc;
}

ck_rc ck_area_open(struct ck_area *a, const char *cache_dir, struct ck_err *err)
{
    bool fresh;
    ck_rc rc = open_dirs(a, cache_dir, "save", &fresh, err);
    if (rc)
        return rc;
    init_state(a);
    a->plain = false;
    a->path = NULL;
    if (fresh) {
        /* A new save area holds nothing to save. */
        int fd = openat(a->cache_dirfd, CLEAN_MARKER, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
    }
    a->clean_marker = faccessat(a->cache_dirfd, CLEAN_MARKER, F_OK, 0) == 0;
    a->saved_seq = a->clean_marker ? 1 : 0;
    ck_snap_clean(a->cache_dirfd); /* a save killed mid-way left its snapshot */
    return CK_OK;
}

ck_rc ck_area_open_plain(struct ck_area *a, const char *path, const char *cache_dir,
                         struct ck_err *err)
{
    bool fresh;
    if (path[0] != '/')
        return ck_fail(err, CK_EINVAL, "save area %s: not an absolute path", path);
    ck_rc rc = open_dirs(a, cache_dir, path, &fresh, err);
    if (rc)
        return rc;
    a->path = strdup(path);
    if (!a->path) {
        close(a->dirfd);
        close(a->cache_dirfd);
        return ck_fail(err, CK_ENOMEM, "out of memory");
    }
    init_state(a);
    a->plain = true;
    a->clean_marker = false;
    a->saved_seq = a->change_seq; /* what is there at the start counts as saved */
    a->seen_fp = ck_tree_fingerprint(path);
    return CK_OK;
}

void ck_area_rescan(struct ck_area *a)
{
    if (!a->plain)
        return;
    pthread_mutex_lock(&a->scan_lock);
    uint64_t fp = ck_tree_fingerprint(a->path);
    pthread_mutex_lock(&a->lock);
    if (fp != a->seen_fp) {
        a->seen_fp = fp;
        a->change_seq++;
        a->last_writer_close = ck_now(); /* the quiet time counts from the change seen */
    }
    pthread_mutex_unlock(&a->lock);
    pthread_mutex_unlock(&a->scan_lock);
}

void ck_area_close(struct ck_area *a)
{
    if (a->dirfd >= 0)
        close(a->dirfd);
    if (a->cache_dirfd >= 0)
        close(a->cache_dirfd);
    a->dirfd = a->cache_dirfd = -1;
    ck_changed_free(&a->changed);
    for (size_t i = 0; i < a->nnamed; i++)
        free(a->named[i].name);
    free(a->named);
    a->named = NULL;
    a->nnamed = a->capnamed = 0;
    free(a->path);
    a->path = NULL;
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->scan_lock);
    pthread_cond_destroy(&a->cond);
}

void ck_area_mutate_begin(struct ck_area *a)
{
    pthread_mutex_lock(&a->lock);
    while (a->frozen)
        pthread_cond_wait(&a->cond, &a->lock);
    a->mutators++;
    if (a->clean_marker) {
        /* The first change after a good save: save/ is dirty from now on, also across a
         * restart. Done under the lock so that no save can write the marker meanwhile. */
        if (unlinkat(a->cache_dirfd, CLEAN_MARKER, 0) < 0 && errno != ENOENT)
            ck_log_warn("removing the clean marker: %s", strerror(errno));
        a->clean_marker = false;
    }
    pthread_mutex_unlock(&a->lock);
}

void ck_area_mutate_begin_inode(struct ck_area *a, dev_t dev, ino_t ino)
{
    ck_area_mutate_begin(a);
    ck_area_inode_changes(a, dev, ino);
}

void ck_area_inode_changes(struct ck_area *a, dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&a->lock);
    ck_changed_note(&a->changed, dev, ino, a->change_seq);
    struct ck_snap *snap = a->snap;
    if (snap)
        a->snap_users++;
    pthread_mutex_unlock(&a->lock);
    if (!snap)
        return;
    ck_snap_before_modify(snap, dev, ino);
    pthread_mutex_lock(&a->lock);
    if (--a->snap_users == 0)
        pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

bool ck_area_unchanged_since(struct ck_area *a, dev_t dev, ino_t ino, uint64_t seq)
{
    pthread_mutex_lock(&a->lock);
    bool unchanged = !a->plain && !ck_changed_since(&a->changed, dev, ino, seq);
    pthread_mutex_unlock(&a->lock);
    return unchanged;
}

void ck_area_set_snap(struct ck_area *a, struct ck_snap *snap)
{
    pthread_mutex_lock(&a->lock);
    a->snap = snap;
    while (!snap && a->snap_users > 0)
        pthread_cond_wait(&a->cond, &a->lock);
    pthread_mutex_unlock(&a->lock);
}

void ck_area_mutate_end(struct ck_area *a)
{
    pthread_mutex_lock(&a->lock);
    a->mutators--;
    a->change_seq++;
    if (a->mutators == 0)
        pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

void ck_area_writer_open(struct ck_area *a)
{
    pthread_mutex_lock(&a->lock);
    a->writers++;
    pthread_mutex_unlock(&a->lock);
}

void ck_area_writer_close(struct ck_area *a)
{
    pthread_mutex_lock(&a->lock);
    a->writers--;
    a->last_writer_close = ck_now();
    if (a->writers == 0)
        pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

void ck_area_writer_open_named(struct ck_area *a, int key, const char *name)
{
    char *copy = name ? strdup(name) : NULL;
    pthread_mutex_lock(&a->lock);
    if (copy && a->nnamed == a->capnamed) {
        size_t cap = a->capnamed ? a->capnamed * 2 : 8;
        struct ck_area_writer *v = realloc(a->named, cap * sizeof(*v));
        if (v) {
            a->named = v;
            a->capnamed = cap;
        }
    }
    if (copy && a->nnamed < a->capnamed) {
        a->named[a->nnamed++] = (struct ck_area_writer){key, copy};
        copy = NULL;
    }
    pthread_mutex_unlock(&a->lock);
    free(copy); /* no room: counted, not named */
    ck_area_writer_open(a);
}

void ck_area_writer_close_named(struct ck_area *a, int key)
{
    char *name = NULL;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->nnamed; i++)
        if (a->named[i].key == key) {
            name = a->named[i].name;
            a->named[i] = a->named[--a->nnamed];
            break;
        }
    pthread_mutex_unlock(&a->lock);
    free(name);
    ck_area_writer_close(a);
}

void ck_area_writer_names(struct ck_area *a, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->nnamed && len + 4 < cap; i++) {
        int n = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", a->named[i].name);
        if (n < 0 || (size_t)n >= cap - len) {
            snprintf(buf + cap - 4, 4, "...");
            break;
        }
        len += (size_t)n;
    }
    pthread_mutex_unlock(&a->lock);
}

unsigned ck_area_writers(struct ck_area *a)
{
    pthread_mutex_lock(&a->lock);
    unsigned n = a->writers;
    pthread_mutex_unlock(&a->lock);
    return n;
}

uint64_t ck_area_freeze(struct ck_area *a, double wait_s, unsigned *writers_left)
{
    ck_area_rescan(a);
    struct timespec until = ck_deadline_after(wait_s);
    bool timed_out = false;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (a->writers > 0 && !timed_out)
            timed_out = pthread_cond_timedwait(&a->cond, &a->lock, &until) == ETIMEDOUT;
        a->frozen = true;
        while (a->mutators > 0)
            pthread_cond_wait(&a->cond, &a->lock);
        /* An open (create) in flight when the gate closed may have added a writer: its
         * file is as half-written as any other, so it is waited for too (same bound). */
        if (a->writers == 0 || timed_out)
            break;
        a->frozen = false;
        pthread_cond_broadcast(&a->cond);
    }
    *writers_left = a->writers;
    uint64_t seq = a->change_seq;
    pthread_mutex_unlock(&a->lock);
    return seq;
}

void ck_area_thaw(struct ck_area *a)
{
    pthread_mutex_lock(&a->lock);
    a->frozen = false;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

void ck_area_mark_saved(struct ck_area *a, uint64_t seq)
{
    pthread_mutex_lock(&a->lock);
    if (seq > a->saved_seq)
        a->saved_seq = seq;
    ck_changed_prune(&a->changed, seq);
    if (!a->plain && a->change_seq == seq && a->mutators == 0 && !a->clean_marker) {
        int fd = openat(a->cache_dirfd, CLEAN_MARKER, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
            fsync(a->cache_dirfd);
            a->clean_marker = true;
        }
    }
    pthread_mutex_unlock(&a->lock);
}

bool ck_area_dirty(struct ck_area *a)
{
    ck_area_rescan(a);
    pthread_mutex_lock(&a->lock);
    bool dirty = a->change_seq != a->saved_seq;
    pthread_mutex_unlock(&a->lock);
    return dirty;
}

void ck_area_quiet(struct ck_area *a, double now, double *quiet_s, bool *dirty)
{
    ck_area_rescan(a);
    pthread_mutex_lock(&a->lock);
    *dirty = a->change_seq != a->saved_seq;
    *quiet_s = a->writers > 0 ? 0 : now - a->last_writer_close;
    pthread_mutex_unlock(&a->lock);
}
