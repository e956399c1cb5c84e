/* snapshot.c - the hard-link snapshot with copy-on-write; see snapshot.h. */
#include "save/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

#include "util/buf.h"
#include "util/fsutil.h"
#include "util/log.h"

#define SNAP_DIR "snap"

enum ino_state {
    S_PENDING,  /* shared with save/, not archived yet */
    S_READING,  /* the save is reading it */
    S_COPYING,  /* a writer is giving the snapshot its own copy */
    S_ARCHIVED, /* archived, still shared, and held for a replay: writers copy it first */
    S_DONE,     /* archived, or the snapshot has its own copy: writers go ahead */
};

struct shared {
    dev_t dev;
    ino_t ino;
    enum ino_state state; /* protected by snap->lock */
    char **paths;         /* the inode's snapshot names (several if hard-linked) */
    size_t npaths;
    size_t reads_left; /* names the save has still to read (protected by snap->lock) */
    struct shared *next;
};

struct ck_snap {
    int snap_dirfd; /* cache-dir/snap */
    int tree_fd;    /* cache-dir/snap/tree */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct shared **buckets;
    size_t nbuckets;
    struct shared *reading; /* the file the pack reads now (pack thread only) */
    unsigned tmp_seq;       /* protected by lock */
    bool hold;              /* archived files stay needed (ck_snap_hold; lock) */
};

static size_t bucket(const struct ck_snap *s, dev_t dev, ino_t ino)
{
    return (size_t)(((uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev) % s->nbuckets);
}

static struct shared *find(struct ck_snap *s, dev_t dev, ino_t ino)
{
    for (struct shared *e = s->buckets[bucket(s, dev, ino)]; e; e = e->next)
        if (e->ino == ino && e->dev == dev)
            return e;
    return NULL;
}

static ck_rc add_path(struct shared *e, const char *path)
{
    char **v = realloc(e->paths, (e->npaths + 1) * sizeof(*v));
    if (!v)
        return CK_ENOMEM;
    e->paths = v;
    v[e->npaths] = strdup(path);
    if (!v[e->npaths])
        return CK_ENOMEM;
    e->npaths++;
    e->reads_left++;
    return CK_OK;
}

static ck_rc add_shared(struct ck_snap *s, const struct stat *st, const char *path,
                        struct ck_err *err)
{
    struct shared *e = find(s, st->st_dev, st->st_ino);
    if (e) /* another name of a hard-linked file */
        return add_path(e, path) ? ck_fail(err, CK_ENOMEM, "snapshot: out of memory") : CK_OK;
    e = calloc(1, sizeof(*e));
    if (!e)
        return ck_fail(err, CK_ENOMEM, "snapshot: out of memory");
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->state = S_PENDING;
    size_t b = bucket(s, e->dev, e->ino);
    e->next = s->buckets[b];
    s->buckets[b] = e;
    return add_path(e, path) ? ck_fail(err, CK_ENOMEM, "snapshot: out of memory") : CK_OK;
}

/* ---------- taking the snapshot ---------- */

static ck_rc mirror_dir(struct ck_snap *s, int src, int dst, struct ck_buf *path,
                        struct ck_err *err);

static void copy_times(int dst, const char *name, const struct stat *st)
{
    struct timespec t[2] = {st->st_atim, st->st_mtim};
    utimensat(dst, name, t, AT_SYMLINK_NOFOLLOW);
}

static ck_rc mirror_entry(struct ck_snap *s, int src, int dst, const char *name,
                          struct ck_buf *path, struct ck_err *err)
{
    struct stat st;
    if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return ck_fail_errno(err, errno, "snapshot: stat save/%s", path->data);
    if (S_ISREG(st.st_mode)) {
        if (linkat(src, name, dst, name, 0) < 0)
            return ck_fail_errno(err, errno, "snapshot: link save/%s", path->data);
        return add_shared(s, &st, path->data, err);
    }
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(src, name, target, sizeof(target) - 1);
        if (n < 0)
            return ck_fail_errno(err, errno, "snapshot: readlink save/%s", path->data);
        target[n] = '\0';
        if (symlinkat(target, dst, name) < 0)
            return ck_fail_errno(err, errno, "snapshot: symlink save/%s", path->data);
        copy_times(dst, name, &st);
        return CK_OK;
    }
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
        /* Mirrored as they are, so that the pack leaves them out with a warning. */
        if (mknodat(dst, name, st.st_mode & (S_IFMT | 0777), 0) < 0)
            return ck_fail_errno(err, errno, "snapshot: mknod save/%s", path->data);
        return CK_OK;
    }
    if (!S_ISDIR(st.st_mode))
        return CK_OK; /* no device can be created in save/ */
    if (mkdirat(dst, name, 0700) < 0)
        return ck_fail_errno(err, errno, "snapshot: mkdir save/%s", path->data);
    int sfd = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int dfd = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    ck_rc rc = sfd < 0 || dfd < 0 ? ck_fail_errno(err, errno, "snapshot: open save/%s", path->data)
                                  : mirror_dir(s, sfd, dfd, path, err);
    if (sfd >= 0)
        close(sfd);
    if (dfd >= 0) {
        fchmod(dfd, st.st_mode & 07777);
        close(dfd);
    }
    copy_times(dst, name, &st); /* after the children, which change it */
    return rc;
}

static ck_rc mirror_dir(struct ck_snap *s, int src, int dst, struct ck_buf *path,
                        struct ck_err *err)
{
    int fd = openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return ck_fail_errno(err, errno, "snapshot: read save/%s", path->data);
    }
    size_t len = path->len;
    ck_rc rc = CK_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = ck_buf_printf(path, "%s%s", len ? "/" : "", e->d_name);
        if (rc)
            rc = ck_fail(err, rc, "snapshot: path too long under save/%s", path->data);
        else
            rc = mirror_entry(s, src, dst, e->d_name, path, err);
        path->len = len;
        path->data[len] = '\0';
    }
    closedir(d);
    return rc;
}

static int open_dir_at(int at, const char *name)
{
    if (mkdirat(at, name, 0700) < 0 && errno != EEXIST)
        return -1;
    return openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

void ck_snap_clean(int cache_dirfd)
{
    struct ck_err ignored;
    ck_rmtree_at(cache_dirfd, SNAP_DIR, "cache snap/", &ignored);
}

ck_rc ck_snap_take(int save_dirfd, int cache_dirfd, struct ck_snap **out, int *tree_fd,
                   struct ck_err *err)
{
    ck_snap_clean(cache_dirfd);
    struct ck_snap *s = calloc(1, sizeof(*s));
    if (!s)
        return ck_fail(err, CK_ENOMEM, "snapshot: out of memory");
    s->snap_dirfd = s->tree_fd = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->nbuckets = 4096;
    s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
    s->snap_dirfd = open_dir_at(cache_dirfd, SNAP_DIR);
    if (s->snap_dirfd >= 0)
        s->tree_fd = open_dir_at(s->snap_dirfd, "tree");
    ck_rc rc = CK_OK;
    if (!s->buckets)
        rc = ck_fail(err, CK_ENOMEM, "snapshot: out of memory");
    else if (s->tree_fd < 0)
        rc = ck_fail_errno(err, errno, "snapshot: creating cache snap/");
    struct ck_buf path;
    ck_buf_init(&path, 64 * 1024);
    if (!rc)
        rc = ck_buf_puts(&path, "");
    if (!rc)
        rc = mirror_dir(s, save_dirfd, s->tree_fd, &path, err);
    ck_buf_free(&path);
    if (rc) {
        ck_snap_free(s);
        return rc;
    }
    *out = s;
    *tree_fd = s->tree_fd;
    return CK_OK;
}

/* ---------- copy-on-write ---------- */

static bool copy_data(int in, int out, off_t size)
{
    if (ioctl(out, FICLONE, in) == 0)
        return true; /* a reflink: btrfs, XFS */
    off_t done = 0;
    while (done < size) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)(size - done), 0);
        if (n <= 0)
            return false;
        done += n;
    }
    return true;
}

/* Points every snapshot name of e at the private copy tmp (in snap/). */
static bool relink_names(struct ck_snap *s, const struct shared *e, const char *tmp)
{
    for (size_t i = 0; i < e->npaths; i++) {
        char alias[96];
        snprintf(alias, sizeof(alias), "%.60s.%zu", tmp, i);
        if (linkat(s->snap_dirfd, tmp, s->snap_dirfd, alias, 0) < 0 ||
            renameat(s->snap_dirfd, alias, s->tree_fd, e->paths[i]) < 0) {
            unlinkat(s->snap_dirfd, alias, 0);
            return false;
        }
    }
    return true;
}

/* Replaces the snapshot's links to e by a private copy of the file. */
static bool give_own_copy(struct ck_snap *s, struct shared *e, unsigned seq)
{
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "cow-%u", seq);
    int in = openat(s->tree_fd, e->paths[0], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int out = openat(s->snap_dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    struct stat st;
    bool ok = in >= 0 && out >= 0 && fstat(in, &st) == 0 && copy_data(in, out, st.st_size);
    if (ok) {
        struct timespec t[2] = {st.st_atim, st.st_mtim};
        ok = fchown(out, st.st_uid, st.st_gid) == 0 && fchmod(out, st.st_mode & 07777) == 0 &&
             futimens(out, t) == 0;
    }
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    ok = ok && relink_names(s, e, tmp);
    if (!ok)
        ck_log_warn("snapshot: no copy of save/%s (%s); the writer waits for the save instead",
                    e->paths[0], strerror(errno));
    unlinkat(s->snap_dirfd, tmp, 0);
    return ok;
}

void ck_snap_before_modify(struct ck_snap *s, dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&s->lock);
    struct shared *e = find(s, dev, ino);
    while (e && (e->state == S_READING || e->state == S_COPYING))
        pthread_cond_wait(&s->cond, &s->lock);
    if (!e || e->state == S_DONE) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    enum ino_state was = e->state; /* S_PENDING or S_ARCHIVED */
    e->state = S_COPYING;
    unsigned seq = s->tmp_seq++;
    pthread_mutex_unlock(&s->lock);
    bool copied = give_own_copy(s, e, seq);
    pthread_mutex_lock(&s->lock);
    e->state = copied ? S_DONE : was;
    pthread_cond_broadcast(&s->cond);
    /* No copy: wait until the save no longer needs the file, then go ahead. */
    while (!copied && e->state != S_DONE)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

void ck_snap_file_begin(void *ctx, int dfd, const char *base)
{
    struct ck_snap *s = ctx;
    struct stat st;
    s->reading = NULL;
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    pthread_mutex_lock(&s->lock);
    struct shared *e = find(s, st.st_dev, st.st_ino);
    while (e && e->state == S_COPYING)
        pthread_cond_wait(&s->cond, &s->lock);
    if (e && e->state == S_PENDING) {
        e->state = S_READING; /* writers of this file wait until file_end */
        s->reading = e;
    }
    /* S_DONE here means a copy replaced the link: the name now holds the private copy. */
    pthread_mutex_unlock(&s->lock);
}

void ck_snap_file_end(void *ctx)
{
    struct ck_snap *s = ctx;
    if (!s->reading)
        return;
    pthread_mutex_lock(&s->lock);
    s->reading->reads_left--;
    s->reading->state = s->reading->reads_left ? S_PENDING : s->hold ? S_ARCHIVED : S_DONE;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    s->reading = NULL;
}

void ck_snap_hold(struct ck_snap *s)
{
    pthread_mutex_lock(&s->lock);
    s->hold = true;
    pthread_mutex_unlock(&s->lock);
}

/* Calls fn on every entry (lock held). */
static void each_entry(struct ck_snap *s, void (*fn)(struct shared *e))
{
    for (size_t i = 0; i < s->nbuckets; i++)
        for (struct shared *e = s->buckets[i]; e; e = e->next)
            fn(e);
}

static bool any_copying(struct ck_snap *s)
{
    for (size_t i = 0; i < s->nbuckets; i++)
        for (struct shared *e = s->buckets[i]; e; e = e->next)
            if (e->state == S_COPYING)
                return true;
    return false;
}

static void rewind_entry(struct shared *e)
{
    if (e->state == S_ARCHIVED || e->state == S_PENDING) {
        e->state = S_PENDING;
        e->reads_left = e->npaths;
    }
}

void ck_snap_rewind(struct ck_snap *s)
{
    pthread_mutex_lock(&s->lock);
    while (any_copying(s)) /* a copy ends in S_DONE or back where it was */
        pthread_cond_wait(&s->cond, &s->lock);
    each_entry(s, rewind_entry);
    pthread_mutex_unlock(&s->lock);
}

static void release_entry(struct shared *e)
{
    if (e->state == S_ARCHIVED)
        e->state = S_DONE;
}

void ck_snap_release(struct ck_snap *s)
{
    pthread_mutex_lock(&s->lock);
    s->hold = false;
    each_entry(s, release_entry);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void ck_snap_free(struct ck_snap *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->buckets && i < s->nbuckets; i++) {
        struct shared *e = s->buckets[i];
        while (e) {
            struct shared *next = e->next;
            for (size_t k = 0; k < e->npaths; k++)
                free(e->paths[k]);
            free(e->paths);
            free(e);
            e = next;
        }
    }
    free(s->buckets);
    if (s->tree_fd >= 0)
        close(s->tree_fd);
    if (s->snap_dirfd >= 0) {
        struct ck_err ignored;
        ck_empty_dir(s->snap_dirfd, "cache snap/", &ignored);
        close(s->snap_dirfd);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}
