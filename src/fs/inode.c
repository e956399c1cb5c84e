/* inode.c - the passthrough node table, keyed by (dev, ino); see fs_internal.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs_internal.h"

#define INITIAL_BUCKETS 1024

int ck_nodes_init(struct ck_fs *fs)
{
    pthread_mutex_init(&fs->nodes_lock, NULL);
    fs->nbuckets = INITIAL_BUCKETS;
    fs->nnodes = 0;
    fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
    return fs->buckets ? 0 : ENOMEM;
}

static void free_node(struct ck_node *n)
{
    close(n->fd);
    free(n);
}

void ck_nodes_destroy(struct ck_fs *fs)
{
    for (size_t i = 0; i < fs->nbuckets; i++) {
        struct ck_node *n = fs->buckets[i];
        while (n) {
            struct ck_node *next = n->next;
            free_node(n);
            n = next;
        }
    }
    free(fs->buckets);
    fs->buckets = NULL;
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

void ck_node_procpath(const struct ck_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "/proc/self/fd/%d", n->fd);
}

int ck_node_stat(const struct ck_node *n, struct stat *st)
{
    if (fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
        return errno;
    return 0;
}

void ck_node_show_owner(const struct ck_fs *fs, const struct ck_node *n, struct stat *st)
{
    if (fs->owner_set && n->area == CK_NODE_PREV) {
        st->st_uid = fs->owner_uid;
        st->st_gid = fs->owner_gid;
    }
}

static void fill_entry(struct ck_fs *fs, struct ck_node *n, const struct stat *st,
                       struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = (fuse_ino_t)(uintptr_t)n;
    e->attr = *st;
    e->attr.st_ino = e->ino;
    ck_node_show_owner(fs, n, &e->attr);
    e->attr_timeout = fs->timeout;
    e->entry_timeout = fs->timeout;
}

int ck_nodes_lookup(struct ck_fs *fs, struct ck_node *parent, const char *name,
                    struct fuse_entry_param *e)
{
    int fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
        int e2 = errno;
        close(fd);
        return e2;
    }
    pthread_mutex_lock(&fs->nodes_lock);
    struct ck_node *n = find_locked(fs, st.st_dev, st.st_ino);
    if (n) {
        close(fd);
    } else {
        n = calloc(1, sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&fs->nodes_lock);
            close(fd);
            return ENOMEM;
        }
        *n = (struct ck_node){.fd = fd, .dev = st.st_dev, .ino = st.st_ino, .area = parent->area};
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
    int rc = ck_node_stat(root, &st);
    if (rc)
        return rc;
    pthread_mutex_lock(&fs->nodes_lock);
    root->nlookup++;
    pthread_mutex_unlock(&fs->nodes_lock);
    fill_entry(fs, root, &st, e);
    return 0;
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
            free_node(n);
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
    struct stat st;
    if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0) {
        int e = errno;
        close(fd);
        return e;
    }
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
