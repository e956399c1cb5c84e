/* inode.c - the passthrough node table, keyed by (dev, ino); see fs_internal.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fs/fs_internal.h"

#define INITIAL_BUCKETS 1024
#define MIN_FD_BUDGET   16

/* The budget of open node descriptors (fs_internal.h). */
static size_t fd_budget(void)
{
    const char *env = getenv("CKPTFS_NODE_FDS");
    long v = env ? strtol(env, NULL, 10) : 0;
    if (v > 0)
        return (size_t)v < MIN_FD_BUDGET ? MIN_FD_BUDGET : (size_t)v;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 4096;
    size_t b = (size_t)(rl.rlim_cur / 4);
    return b < MIN_FD_BUDGET ? MIN_FD_BUDGET : b;
}

int ck_nodes_init(struct ck_fs *fs)
{
    pthread_mutex_init(&fs->nodes_lock, NULL);
    fs->nbuckets = INITIAL_BUCKETS;
    fs->nnodes = 0;
    fs->fd_budget = fd_budget();
    fs->handle_fd[0] = fs->handle_fd[1] = -1;
    fs->handle_mnt[0] = fs->handle_mnt[1] = -1;
    fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
    return fs->buckets ? 0 : ENOMEM;
}

/* ---------- idle descriptors (all with nodes_lock held) ---------- */

static void idle_remove(struct ck_fs *fs, struct ck_node *n)
{
    if (n->idle_prev)
        n->idle_prev->idle_next = n->idle_next;
    else if (fs->idle_head == n)
        fs->idle_head = n->idle_next;
    else
        return; /* not in the list */
    if (n->idle_next)
        n->idle_next->idle_prev = n->idle_prev;
    else
        fs->idle_tail = n->idle_prev;
    n->idle_prev = n->idle_next = NULL;
}

static void idle_push(struct ck_fs *fs, struct ck_node *n)
{
    n->idle_prev = fs->idle_tail;
    n->idle_next = NULL;
    if (fs->idle_tail)
        fs->idle_tail->idle_next = n;
    else
        fs->idle_head = n;
    fs->idle_tail = n;
}

/* Closes the least recently used idle descriptors beyond the budget. */
static void trim_locked(struct ck_fs *fs)
{
    while (fs->open_fds > fs->fd_budget && fs->idle_head) {
        struct ck_node *n = fs->idle_head;
        idle_remove(fs, n);
        close(n->fd);
        n->fd = -1;
        fs->open_fds--;
    }
}

/* A node with an open descriptor and no user: idle (LRU), if it can be reopened. */
static void settle_locked(struct ck_fs *fs, struct ck_node *n)
{
    if (n->fh && n->fd >= 0 && n->users == 0)
        idle_push(fs, n);
    trim_locked(fs);
}

static void free_node(struct ck_fs *fs, struct ck_node *n)
{
    idle_remove(fs, n);
    if (n->fd >= 0) {
        close(n->fd);
        if (n->fh)
            fs->open_fds--;
    }
    free(n->fh);
    free(n);
}

static int root_fd(struct ck_fs *fs, const struct ck_node *n)
{
    return fs->handle_fd[n->area];
}

int ck_node_get(struct ck_fs *fs, struct ck_node *n)
{
    pthread_mutex_lock(&fs->nodes_lock);
    if (n->fd >= 0) {
        n->users++;
        idle_remove(fs, n);
        int fd = n->fd;
        pthread_mutex_unlock(&fs->nodes_lock);
        return fd;
    }
    pthread_mutex_unlock(&fs->nodes_lock);
    int fd = open_by_handle_at(root_fd(fs, n), n->fh, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -(errno == ESTALE ? ENOENT : errno);
    pthread_mutex_lock(&fs->nodes_lock);
    if (n->fd >= 0) { /* another thread reopened it meanwhile */
        close(fd);
        fd = n->fd;
        idle_remove(fs, n);
    } else {
        n->fd = fd;
        fs->open_fds++;
    }
    n->users++;
    trim_locked(fs);
    pthread_mutex_unlock(&fs->nodes_lock);
    return fd;
}

void ck_node_put(struct ck_fs *fs, struct ck_node *n)
{
    pthread_mutex_lock(&fs->nodes_lock);
    n->users--;
    settle_locked(fs, n);
    pthread_mutex_unlock(&fs->nodes_lock);
}

/* Room for any file handle, on the stack. */
union handle_buf {
    struct file_handle fh;
    unsigned char bytes[sizeof(struct file_handle) + MAX_HANDLE_SZ];
};

/* The file handle of fd, in a buffer of its own size, if it can reopen fd later: on the
 * file system of its area's root (mount id root_mnt; -1: a daemon that is not root, which
 * cannot open by handle), else NULL: the node keeps fd open. */
static struct file_handle *handle_of(int fd, int root_mnt)
{
    union handle_buf buf;
    int mnt = -1;
    buf.fh.handle_bytes = MAX_HANDLE_SZ;
    if (root_mnt < 0 || name_to_handle_at(fd, "", &buf.fh, &mnt, AT_EMPTY_PATH) != 0 ||
        mnt != root_mnt)
        return NULL;
    size_t n = sizeof(buf.fh) + buf.fh.handle_bytes;
    struct file_handle *fh = malloc(n);
    if (fh)
        memcpy(fh, &buf, n);
    return fh;
}

void ck_nodes_destroy(struct ck_fs *fs)
{
    for (size_t i = 0; i < fs->nbuckets; i++) {
        struct ck_node *n = fs->buckets[i];
        while (n) {
            struct ck_node *next = n->next;
            free_node(fs, n);
            n = next;
        }
    }
    free(fs->buckets);
    fs->buckets = NULL;
    for (int i = 0; i < 2; i++)
        if (fs->handle_fd[i] >= 0)
            close(fs->handle_fd[i]);
    pthread_mutex_destroy(&fs->nodes_lock);
}

struct ck_node *ck_node_of(fuse_ino_t ino)
{
    return (struct ck_node *)(uintptr_t)ino;
}

static size_t bucket_of(const struct ck_fs *fs, dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev;
    return (size_t)(h % fs->nbuckets);
}

/* Doubles the table when it gets crowded. Called with nodes_lock held. */
static void maybe_grow(struct ck_fs *fs)
{
    if (fs->nnodes < fs->nbuckets * 2)
        return;
    size_t old_n = fs->nbuckets;
    struct ck_node **old = fs->buckets;
    struct ck_node **nb = calloc(old_n * 2, sizeof(*nb));
    if (!nb)
        return; /* keep the crowded table: still correct */
    fs->buckets = nb;
    fs->nbuckets = old_n * 2;
    for (size_t i = 0; i < old_n; i++) {
        struct ck_node *n = old[i];
        while (n) {
            struct ck_node *next = n->next;
            size_t b = bucket_of(fs, n->dev, n->ino);
            n->next = nb[b];
            nb[b] = n;
            n = next;
        }
    }
    free(old);
}

static struct ck_node *find_locked(struct ck_fs *fs, dev_t dev, ino_t ino)
{
    for (struct ck_node *n = fs->buckets[bucket_of(fs, dev, ino)]; n; n = n->next)
        if (n->dev == dev && n->ino == ino)
            return n;
    return NULL;
}

void ck_fd_procpath(int fd, char *buf, size_t len)
{
    snprintf(buf, len, "/proc/self/fd/%d", fd);
}

int ck_node_open(struct ck_fs *fs, struct ck_node *n, int flags)
{
    int nfd = ck_node_get(fs, n);
    if (nfd < 0)
        return nfd;
    char path[64];
    ck_fd_procpath(nfd, path, sizeof(path));
    int fd = open(path, flags, 0);
    int rc = fd < 0 ? -errno : fd;
    ck_node_put(fs, n);
    return rc;
}

int ck_node_stat(struct ck_fs *fs, struct ck_node *n, struct stat *st)
{
    int fd = ck_node_get(fs, n);
    if (fd < 0)
        return -fd;
    int rc = fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
    ck_node_put(fs, n);
    return rc;
}

void ck_node_show_owner(const struct ck_fs *fs, const struct ck_node *n, struct stat *st)
{
    if (fs->owner_set && n->area == CK_NODE_PREV) {
        st->st_uid = fs->owner_uid;
        st->st_gid = fs->owner_gid;
    }
}

double ck_node_timeout(const struct ck_fs *fs, const struct ck_node *n, mode_t mode)
{
    return n->area == CK_NODE_PREV && !S_ISDIR(mode) ? CK_PREV_TIMEOUT : fs->timeout;
}

static void fill_entry(struct ck_fs *fs, struct ck_node *n, const struct stat *st,
                       struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = (fuse_ino_t)(uintptr_t)n;
    e->attr = *st;
    e->attr.st_ino = e->ino;
    ck_node_show_owner(fs, n, &e->attr);
    e->attr_timeout = ck_node_timeout(fs, n, st->st_mode);
    e->entry_timeout = e->attr_timeout;
}

int ck_nodes_lookup(struct ck_fs *fs, struct ck_node *parent, const char *name,
                    struct fuse_entry_param *e)
{
    int pfd = ck_node_get(fs, parent);
    if (pfd < 0)
        return -pfd;
    int fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int oe = errno;
    ck_node_put(fs, parent);
    if (fd < 0)
        return oe;
    struct stat st;
    if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
        int e2 = errno;
        close(fd);
        return e2;
    }
    pthread_mutex_lock(&fs->nodes_lock);
    struct ck_node *n = find_locked(fs, st.st_dev, st.st_ino);
    struct file_handle *fh = NULL;
    if (!n) { /* a new node: its handle, taken without the lock (a system call) */
        pthread_mutex_unlock(&fs->nodes_lock);
        fh = handle_of(fd, fs->handle_mnt[parent->area]);
        pthread_mutex_lock(&fs->nodes_lock);
        n = find_locked(fs, st.st_dev, st.st_ino); /* another lookup may have made it */
    }
    if (n) {
        close(fd);
        free(fh);
    } else {
        n = calloc(1, sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&fs->nodes_lock);
            close(fd);
            free(fh);
            return ENOMEM;
        }
        *n = (struct ck_node){
            .fd = fd, .fh = fh, .dev = st.st_dev, .ino = st.st_ino, .area = parent->area};
        if (fh) {
            fs->open_fds++;
            settle_locked(fs, n);
        }
        maybe_grow(fs);
        size_t b = bucket_of(fs, n->dev, n->ino);
        n->next = fs->buckets[b];
        fs->buckets[b] = n;
        fs->nnodes++;
    }
    n->nlookup++;
    pthread_mutex_unlock(&fs->nodes_lock);
    fill_entry(fs, n, &st, e);
    return 0;
}

int ck_nodes_root_entry(struct ck_fs *fs, struct ck_node *root, struct fuse_entry_param *e)
{
    struct stat st;
    int rc = ck_node_stat(fs, root, &st);
    if (rc)
        return rc;
    pthread_mutex_lock(&fs->nodes_lock);
    root->nlookup++;
    pthread_mutex_unlock(&fs->nodes_lock);
    fill_entry(fs, root, &st, e);
    return 0;
}

struct ck_node *ck_nodes_pin(struct ck_fs *fs, dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&fs->nodes_lock);
    struct ck_node *n = find_locked(fs, dev, ino);
    if (n && n->nlookup > 0)
        n->nlookup++;
    else
        n = NULL;
    pthread_mutex_unlock(&fs->nodes_lock);
    return n;
}

void ck_nodes_forget(struct ck_fs *fs, struct ck_node *n, uint64_t count)
{
    pthread_mutex_lock(&fs->nodes_lock);
    n->nlookup = count > n->nlookup ? 0 : n->nlookup - count;
    if (n->nlookup == 0 && !n->area_root) {
        struct ck_node **pp = &fs->buckets[bucket_of(fs, n->dev, n->ino)];
        while (*pp && *pp != n)
            pp = &(*pp)->next;
        if (*pp) {
            *pp = n->next;
            fs->nnodes--;
            free_node(fs, n);
        }
    }
    pthread_mutex_unlock(&fs->nodes_lock);
}

int ck_nodes_make_root(struct ck_fs *fs, const char *path, enum ck_node_area area,
                       struct ck_node **out)
{
    int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno;
    fs->handle_fd[area] = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fs->handle_fd[area] < 0) {
        int e = errno;
        close(fd);
        return e;
    }
    struct stat st;
    if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0) {
        int e = errno;
        close(fd);
        return e;
    }
    union handle_buf probe;
    probe.fh.handle_bytes = MAX_HANDLE_SZ;
    int mnt = -1; /* a handle reopens only on its own file system, and only for root */
    if (geteuid() == 0 && name_to_handle_at(fd, "", &probe.fh, &mnt, AT_EMPTY_PATH) == 0)
        fs->handle_mnt[area] = mnt;
    struct ck_node *n = calloc(1, sizeof(*n));
    if (!n) {
        close(fd);
        return ENOMEM;
    }
    *n = (struct ck_node){
        .fd = fd, .dev = st.st_dev, .ino = st.st_ino, .area = area, .area_root = true};
    pthread_mutex_lock(&fs->nodes_lock);
    size_t b = bucket_of(fs, n->dev, n->ino);
    n->next = fs->buckets[b];
    fs->buckets[b] = n;
    fs->nnodes++;
    pthread_mutex_unlock(&fs->nodes_lock);
    *out = n;
    return 0;
}
