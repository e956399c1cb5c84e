/*
 * ops_tree.c - the FUSE operations table: dispatch between the virtual top level
 * (ops_top.c) and the passthrough subtrees save/ and prev/ (here and in ops_dir.c).
 *
 * save/ operations that change the tree run between ck_area_mutate_begin/end so that a
 * save sees a consistent snapshot; handles open for writing are counted for the save's
 * bounded wait. prev/ is read-only: every change fails with EROFS.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs/fs_internal.h"
#include "restore/lazy.h"

/* Resolves a passthrough node, or answers req and returns NULL for virtual inodes. */
static struct ck_node *tree_node(fuse_req_t req, fuse_ino_t ino, int virtual_errno)
{
    if (ck_top_is_virtual(ino)) {
        fuse_reply_err(req, virtual_errno);
        return NULL;
    }
    return ck_node_of(ino);
}

/* For operations that change the tree: the node must be in save/. */
static struct ck_node *save_node(fuse_req_t req, fuse_ino_t ino)
{
    struct ck_node *n = tree_node(req, ino, EPERM);
    if (n && n->area != CK_NODE_SAVE) {
        fuse_reply_err(req, EROFS);
        return NULL;
    }
    return n;
}

static struct ck_area *area_of(fuse_req_t req)
{
    return &ck_fs_of(req)->d->area;
}

/* A file handle of save/ or prev/: the backing descriptor, and whether the handle was
 * counted as a writer a save waits for (decided at open: fcntl may change O_APPEND
 * later, and the kernel reports the flags of that moment at release). */
#define FH_WAITED ((uint64_t)1 << 32)

/* -1 for a handle of no descriptor (CK_FH_NO_FD, prev_open.c) */
static int fh_fd(const struct fuse_file_info *fi)
{
    return (fi->fh & 0xffffffffu) == CK_FH_NO_FD ? -1 : (int)(fi->fh & 0xffffffffu);
}

static uint64_t fh_make(int fd, bool waited)
{
    return (uint64_t)(unsigned)fd | (waited ? FH_WAITED : 0);
}

/* A stat of a node under prev/ shows the archived mtime of a placeholder being filled. */
static void fix_prev_stat(fuse_req_t req, const struct ck_node *n, struct stat *st)
{
    if (n->area != CK_NODE_PREV || !S_ISREG(st->st_mode))
        return;
    struct ck_lazy *lz = ck_loader_lazy(ck_fs_of(req)->d->loader);
    if (!lz)
        return;
    ino_t shown = st->st_ino;
    st->st_dev = n->dev;
    st->st_ino = n->ino;
    ck_lazy_fix_stat(lz, st);
    st->st_ino = shown;
}

int ck_tree_entry(fuse_req_t req, struct ck_node *parent, const char *name,
                  struct fuse_entry_param *e)
{
    int rc = ck_nodes_lookup(ck_fs_of(req), parent, name, e);
    if (!rc)
        fix_prev_stat(req, ck_node_of(e->ino), &e->attr);
    return rc;
}

void ck_tree_lookup(fuse_req_t req, struct ck_node *parent, const char *name)
{
    struct fuse_entry_param e;
    int rc = ck_tree_entry(req, parent, name, &e);
    if (rc)
        fuse_reply_err(req, rc);
    else
        fuse_reply_entry(req, &e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct ck_fs *fs = ck_fs_of(req);
    if (parent == CK_INO_ROOT) {
        ck_top_lookup(req, name);
        return;
    }
    struct ck_node *p = tree_node(req, parent, ENOTDIR);
    if (!p)
        return;
    if (p->area == CK_NODE_PREV && ck_loader_state(fs->d->loader) != CK_LOAD_READY)
        ck_prev_gate_lookup(req, p, name);
    else
        ck_tree_lookup(req, p, name);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    if (!ck_top_is_virtual(ino))
        ck_nodes_forget(ck_fs_of(req), ck_node_of(ino), nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        if (!ck_top_is_virtual(forgets[i].ino))
            ck_nodes_forget(ck_fs_of(req), ck_node_of(forgets[i].ino), forgets[i].nlookup);
    fuse_reply_none(req);
}

/* fi: the open file, whose descriptor answers even if the node's is closed. */
static void reply_node_attr(fuse_req_t req, struct ck_node *n, struct fuse_file_info *fi)
{
    struct stat st;
    int rc = fi && fh_fd(fi) >= 0 && fstat(fh_fd(fi), &st) == 0
                 ? 0
                 : ck_node_stat(ck_fs_of(req), n, &st);
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    fix_prev_stat(req, n, &st);
    ck_node_show_owner(ck_fs_of(req), n, &st);
    st.st_ino = (ino_t)(uintptr_t)n;
    fuse_reply_attr(req, &st, ck_node_timeout(ck_fs_of(req), n, st.st_mode));
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ck_top_is_virtual(ino))
        ck_top_getattr(req, ino);
    else
        reply_node_attr(req, ck_node_of(ino), fi);
}

static int set_times(int nfd, const struct stat *attr, int to_set, struct fuse_file_info *fi)
{
    struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (to_set & FUSE_SET_ATTR_ATIME_NOW)
        tv[0].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME)
        tv[0] = attr->st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW)
        tv[1].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME)
        tv[1] = attr->st_mtim;
    int r = fi ? futimens(fh_fd(fi), tv) : utimensat(nfd, "", tv, AT_EMPTY_PATH);
    return r < 0 ? errno : 0;
}

static int apply_setattr(int nfd, const struct stat *attr, int to_set, struct fuse_file_info *fi)
{
    char path[64];
    ck_fd_procpath(nfd, path, sizeof(path));
    struct stat st;
    if (!fi && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_SIZE))) {
        /* Never reach through a symlink by its /proc path: it may point anywhere. */
        if (fstatat(nfd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
            return errno;
        if (S_ISLNK(st.st_mode))
            return (to_set & FUSE_SET_ATTR_SIZE) ? EINVAL : EOPNOTSUPP;
    }
    if ((to_set & FUSE_SET_ATTR_MODE) &&
        (fi ? fchmod(fh_fd(fi), attr->st_mode) : chmod(path, attr->st_mode)) < 0)
        return errno;
    if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
        gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
        if (fchownat(nfd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
            return errno;
    }
    if ((to_set & FUSE_SET_ATTR_SIZE) &&
        (fi ? ftruncate(fh_fd(fi), attr->st_size) : truncate(path, attr->st_size)) < 0)
        return errno;
    if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                  FUSE_SET_ATTR_MTIME_NOW))
        return set_times(nfd, attr, to_set, fi);
    return 0;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    if (ck_top_is_virtual(ino)) {
        ck_top_setattr(req, ino, attr, to_set);
        return;
    }
    struct ck_node *n = save_node(req, ino);
    if (!n)
        return;
    struct ck_fs *fs = ck_fs_of(req);
    int nfd = ck_node_get(fs, n);
    if (nfd < 0) {
        fuse_reply_err(req, -nfd);
        return;
    }
    ck_area_mutate_begin_inode(area_of(req), n->dev, n->ino);
    int rc = apply_setattr(nfd, attr, to_set, fi);
    ck_area_mutate_end(area_of(req));
    ck_node_put(fs, n);
    if (rc)
        fuse_reply_err(req, rc);
    else
        reply_node_attr(req, n, fi);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct ck_node *n = tree_node(req, ino, EINVAL);
    if (!n)
        return;
    char buf[PATH_MAX + 1];
    int nfd = ck_node_get(ck_fs_of(req), n);
    ssize_t len = nfd < 0 ? (errno = -nfd, -1) : readlinkat(nfd, "", buf, sizeof(buf) - 1);
    int e = errno;
    if (nfd >= 0)
        ck_node_put(ck_fs_of(req), n);
    if (len < 0) {
        fuse_reply_err(req, e);
        return;
    }
    buf[len] = '\0';
    fuse_reply_readlink(req, buf);
}

/* Parent of a new entry: must be in save/ (the top level and prev/ refuse). Its
 * descriptor is in *pfd until ck_node_put; NULL: req is answered. */
static struct ck_node *new_entry_parent(fuse_req_t req, fuse_ino_t parent, int *pfd)
{
    if (parent == CK_INO_ROOT) {
        fuse_reply_err(req, EPERM);
        return NULL;
    }
    struct ck_node *p = save_node(req, parent);
    if (!p)
        return NULL;
    *pfd = ck_node_get(ck_fs_of(req), p);
    if (*pfd < 0) {
        fuse_reply_err(req, -*pfd);
        return NULL;
    }
    return p;
}

/* Who a new entry belongs to (SPEC 2): the calling process's uid, and its gid unless the
 * parent directory is set-group-ID (then the parent's group, which the entry already has,
 * as on a local filesystem). */
static void new_owner(fuse_req_t req, int pfd, uid_t *uid, gid_t *gid)
{
    const struct fuse_ctx *c = fuse_req_ctx(req);
    struct stat pst;
    bool sgid = fstat(pfd, &pst) == 0 && (pst.st_mode & S_ISGID);
    *uid = c->uid;
    *gid = sgid ? (gid_t)-1 : c->gid;
}

/* Gives the new entry name (or fd, if >= 0) under parent to the caller, with exactly the
 * mode it asked for: the kernel has applied the caller's umask, the daemon's own must
 * not cut it. Owner first: a chown clears set-user-ID bits. A daemon that is not root
 * cannot give entries away: they stay its own. */
static int own_new_entry(fuse_req_t req, int pfd, const char *name, int fd, mode_t mode,
                         bool is_link)
{
    uid_t uid;
    gid_t gid;
    new_owner(req, pfd, &uid, &gid);
    bool give = geteuid() == 0 && (uid != geteuid() || (gid != (gid_t)-1 && gid != getegid()));
    int r = 0;
    if (give)
        r = fd >= 0 ? fchown(fd, uid, gid) : fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
    if (r == 0 && !is_link)
        r = fd >= 0 ? fchmod(fd, mode & 07777) : fchmodat(pfd, name, mode & 07777, 0);
    return r < 0 ? errno : 0;
}

enum make_kind { MAKE_NODE, MAKE_DIR, MAKE_SYMLINK };

/* mknod: regular files, FIFOs and sockets (which a save leaves out, with a warning);
 * a checkpoint holds no device nodes. */
static bool node_allowed(mode_t mode)
{
    return S_ISREG(mode) || S_ISFIFO(mode) || S_ISSOCK(mode);
}

static void make_entry(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                       enum make_kind kind, const char *link)
{
    if (kind == MAKE_NODE && !node_allowed(mode)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    int pfd;
    struct ck_node *p = new_entry_parent(req, parent, &pfd);
    if (!p)
        return;
    if (kind == MAKE_DIR) {
        struct stat pst;
        if (fstat(pfd, &pst) == 0 && (pst.st_mode & S_ISGID))
            mode |= S_ISGID; /* kept by new directories of a set-group-ID one */
    }
    ck_area_mutate_begin(area_of(req));
    /* Made private to the daemon (0700) until it has its owner and mode. */
    int r = kind == MAKE_DIR    ? mkdirat(pfd, name, 0700)
            : kind == MAKE_NODE ? mknodat(pfd, name, (mode & S_IFMT) | 0600, 0)
                                : symlinkat(link, pfd, name);
    int rc = r < 0 ? errno : own_new_entry(req, pfd, name, -1, mode, kind == MAKE_SYMLINK);
    if (r == 0 && rc)
        unlinkat(pfd, name, kind == MAKE_DIR ? AT_REMOVEDIR : 0);
    ck_area_mutate_end(area_of(req));
    struct ck_fs *fs = ck_fs_of(req); /* req is gone once answered */
    if (rc)
        fuse_reply_err(req, rc);
    else
        ck_tree_lookup(req, p, name);
    ck_node_put(fs, p);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    make_entry(req, parent, name, mode, MAKE_NODE, NULL);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    make_entry(req, parent, name, mode, MAKE_DIR, NULL);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    make_entry(req, parent, name, 0, MAKE_SYMLINK, link);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    struct ck_fs *fs = ck_fs_of(req);
    struct ck_node *n = save_node(req, ino);
    if (!n)
        return;
    int nfd = ck_node_get(fs, n);
    if (nfd < 0) {
        fuse_reply_err(req, -nfd);
        return;
    }
    int pfd;
    struct ck_node *p = new_entry_parent(req, newparent, &pfd);
    if (!p) {
        ck_node_put(fs, n);
        return;
    }
    struct stat st;
    bool is_link =
        fstatat(nfd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
    char path[64];
    ck_fd_procpath(nfd, path, sizeof(path));
    ck_area_mutate_begin(area_of(req));
    /* Linking through /proc would link a symlink's target: a symlink (its O_PATH
     * descriptor names the link itself) is linked with AT_EMPTY_PATH, which needs
     * CAP_DAC_READ_SEARCH; without it link(2) of a symlink stays EPERM. */
    int r = is_link ? linkat(nfd, "", pfd, newname, AT_EMPTY_PATH)
                    : linkat(AT_FDCWD, path, pfd, newname, AT_SYMLINK_FOLLOW);
    int rc = r < 0 ? (is_link && errno == ENOENT ? EPERM : errno) : 0;
    ck_area_mutate_end(area_of(req));
    ck_node_put(fs, n);
    if (rc)
        fuse_reply_err(req, rc);
    else
        ck_tree_lookup(req, p, newname);
    ck_node_put(fs, p);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, int flags)
{
    int pfd;
    struct ck_node *p = new_entry_parent(req, parent, &pfd);
    if (!p)
        return;
    ck_area_mutate_begin(area_of(req));
    int rc = unlinkat(pfd, name, flags) < 0 ? errno : 0;
    ck_area_mutate_end(area_of(req));
    ck_node_put(ck_fs_of(req), p);
    fuse_reply_err(req, rc);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_entry(req, parent, name, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_entry(req, parent, name, AT_REMOVEDIR);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    int pfd, npfd;
    struct ck_node *p = new_entry_parent(req, parent, &pfd);
    if (!p)
        return;
    struct ck_node *np = new_entry_parent(req, newparent, &npfd);
    if (!np) {
        ck_node_put(ck_fs_of(req), p);
        return;
    }
    ck_area_mutate_begin(area_of(req));
    int rc = renameat2(pfd, name, npfd, newname, flags) < 0 ? errno : 0;
    ck_area_mutate_end(area_of(req));
    ck_node_put(ck_fs_of(req), p);
    ck_node_put(ck_fs_of(req), np);
    fuse_reply_err(req, rc);
}

/* Counts fd as a writer a save waits for, with its name under save/ for .status. */
static void writer_open(fuse_req_t req, int fd)
{
    struct ck_fs *fs = ck_fs_of(req);
    char proc[64], abs[PATH_MAX], prefix[PATH_MAX + 8];
    ck_fd_procpath(fd, proc, sizeof(proc));
    ssize_t n = readlink(proc, abs, sizeof(abs) - 1);
    int pl = snprintf(prefix, sizeof(prefix), "%s/save/", fs->d->cache_dir);
    const char *name = NULL;
    if (n > 0 && pl > 0) {
        abs[n] = '\0';
        if (strncmp(abs, prefix, (size_t)pl) == 0)
            name = abs + pl;
    }
    ck_area_writer_open_named(area_of(req), fd, name);
}

/* Flags for the backing file: the node is reopened through /proc, so O_NOFOLLOW would
 * refuse it; O_DIRECT is the program's promise about its own buffers, which never reach
 * the backing file as they are (FUSE hands the daemon the data in its own buffers, of
 * any alignment): the handle is direct I/O to the kernel instead (direct_io_handle).
 * Everything else (O_APPEND included) applies as the program asked. */
static int open_flags(int flags)
{
    return (flags & ~(O_NOFOLLOW | O_DIRECT)) | O_CLOEXEC;
}

static bool is_writer(int flags)
{
    return (flags & O_ACCMODE) != O_RDONLY;
}

/* Whether a save waits for this handle to close (area.h): a writer, unless it only
 * appends. An O_APPEND handle (a log, TensorBoard's event file, a CSV) is consistent at
 * any moment, so a save archives the length it has at the snapshot instead of waiting
 * for a close that may come only at the end of the run. */
static bool waited_for(int flags)
{
    return is_writer(flags) && !(flags & O_APPEND);
}

/* Write-only opens of save/ files bypass the kernel's page cache of the mount (direct I/O):
 * the data is written once, into the cache disk's page cache, instead of being copied into
 * both, which makes large sequential writes 1.5-3x faster. Such a descriptor cannot be
 * mmapped (a shared mapping needs read access), so nothing that maps files changes; the
 * kernel invalidates cached pages of other opens of the file on each direct write. */
static bool write_only(const struct fuse_file_info *fi)
{
    return (fi->flags & O_ACCMODE) == O_WRONLY;
}

/* Direct I/O to the kernel: write-only opens (above) and opens with O_DIRECT, whose reads
 * and writes must not go through the page cache of the mount either. */
static bool direct_io_handle(const struct fuse_file_info *fi)
{
    return write_only(fi) || (fi->flags & O_DIRECT);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ck_top_is_virtual(ino)) {
        ck_top_open(req, ino, fi);
        return;
    }
    struct ck_node *n = ck_node_of(ino);
    bool writer = is_writer(fi->flags) || (fi->flags & O_TRUNC);
    if (writer && n->area != CK_NODE_SAVE) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (!writer && ck_prev_open_stored(req, n, fi))
        return;
    if (fi->flags & O_TRUNC)
        ck_area_mutate_begin_inode(area_of(req), n->dev, n->ino);
    else if (writer)
        ck_area_mutate_begin(area_of(req));
    int fd = ck_node_open(ck_fs_of(req), n, open_flags(fi->flags));
    int rc = fd < 0 ? -fd : 0;
    if (writer && !rc && waited_for(fi->flags))
        writer_open(req, fd);
    if (writer)
        ck_area_mutate_end(area_of(req));
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    fi->fh = fh_make(fd, writer && waited_for(fi->flags));
    fi->keep_cache = n->area == CK_NODE_PREV && !(fi->flags & O_DIRECT); /* never changes */
    fi->noflush = n->area == CK_NODE_PREV; /* read-only: a close has nothing to report */
    fi->direct_io = direct_io_handle(fi);
    if (n->area == CK_NODE_PREV) {
        ck_prev_open_reply(req, ino, n, fd, fi);
        return;
    }
    struct ck_area *area = area_of(req); /* req is gone once answered */
    if (fuse_reply_open(req, fi) != 0) {
        if (fi->fh & FH_WAITED)
            ck_area_writer_close_named(area, fd);
        close(fd);
    }
}

/* The file a create without O_EXCL found at name: opened, and truncated if asked, as a
 * change of that inode (area.h: the snapshot of a running save keeps its bytes, and the
 * next save reads it). Returns the descriptor, or -errno. */
static int open_existing(fuse_req_t req, int pfd, const char *name, int flags)
{
    int fd = openat(pfd, name, open_flags(flags & ~(O_CREAT | O_TRUNC)), 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (!(flags & O_TRUNC) || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return fd;
    ck_area_inode_changes(area_of(req), st.st_dev, st.st_ino);
    if (ftruncate(fd, 0) == 0)
        return fd;
    int e = errno;
    close(fd);
    return -e;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    int pfd;
    struct ck_node *p = new_entry_parent(req, parent, &pfd);
    if (!p)
        return;
    ck_area_mutate_begin(area_of(req));
    /* Private to the daemon (0600) until it has its owner and mode; an existing file (no
     * O_EXCL) keeps both. */
    int fd = openat(pfd, name, open_flags(fi->flags | O_CREAT | O_EXCL), 0600);
    int rc = fd < 0 ? errno : own_new_entry(req, pfd, name, fd, mode, false);
    if (fd >= 0 && rc) {
        unlinkat(pfd, name, 0);
        close(fd);
        fd = -1;
    } else if (fd < 0 && rc == EEXIST && !(fi->flags & O_EXCL)) {
        fd = open_existing(req, pfd, name, fi->flags);
        rc = fd < 0 ? -fd : 0;
    }
    if (!rc && waited_for(fi->flags))
        writer_open(req, fd);
    ck_area_mutate_end(area_of(req));
    struct fuse_entry_param e;
    if (!rc)
        rc = ck_nodes_lookup(ck_fs_of(req), p, name, &e);
    ck_node_put(ck_fs_of(req), p);
    if (rc && fd < 0) {
        fuse_reply_err(req, rc);
        return;
    }
    if (rc) {
        if (waited_for(fi->flags))
            ck_area_writer_close_named(area_of(req), fd);
        close(fd);
        fuse_reply_err(req, rc);
        return;
    }
    fi->fh = fh_make(fd, waited_for(fi->flags));
    fi->direct_io = direct_io_handle(fi);
    struct ck_area *area = area_of(req); /* req is gone once answered */
    if (fuse_reply_create(req, &e, fi) != 0) {
        if (fi->fh & FH_WAITED)
            ck_area_writer_close_named(area, fd);
        close(fd);
    }
}

/* This worker's read buffer of at least size bytes (fs->read_buf), or NULL. */
static char *read_buf(struct ck_fs *fs, size_t size)
{
    struct ck_read_buf *b = pthread_getspecific(fs->read_buf);
    if (b && b->cap >= size)
        return b->data;
    struct ck_read_buf *nb = realloc(b, sizeof(*b) + (size ? size : 1));
    if (!nb)
        return NULL;
    nb->cap = size ? size : 1;
    pthread_setspecific(fs->read_buf, nb);
    return nb->data;
}

/* Reads under prev/ (files that never change) are spliced from the cache file to the
 * kernel. Reads under save/ are copied through memory: a file there may shrink while it
 * is being read, and libfuse 3.14 drops a read whose splice the kernel then refuses
 * without answering it (fuse_reply_data frees the request), which hangs the reader. */
static void reply_read(fuse_req_t req, int fd, size_t size, off_t off, bool may_change)
{
    if (!may_change) {
        struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
        buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        buf.buf[0].fd = fd;
        buf.buf[0].pos = off;
        fuse_reply_data(req, &buf, 0);
        return;
    }
    char *mem = read_buf(ck_fs_of(req), size);
    if (!mem) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, mem + got, size - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0 && got == 0) {
                fuse_reply_err(req, errno);
                return;
            }
            break;
        }
        got += (size_t)n;
    }
    fuse_reply_buf(req, mem, got);
}

/* A read under prev/ waiting for its data to be fetched (restore/lazy.h). */
struct parked_read {
    fuse_req_t req;
    int fd;
    int own; /* fd if the read opened it (and closes it), else -1 */
    size_t size;
    off_t off;
    struct ck_lazy_hold hold; /* its members stay on the cache disk until answered */
};

static void resume_read(void *ctx, ck_rc rc)
{
    struct parked_read *p = ctx;
    struct ck_fs *fs = ck_fs_reply_begin(p->req);
    if (fs) {
        if (rc)
            fuse_reply_err(p->req, ck_fs_errno(rc));
        else
            reply_read(p->req, p->fd, p->size, p->off, false);
        ck_fs_reply_end(fs);
    }
    if (p->own >= 0)
        close(p->own);
    ck_lazy_release(&p->hold);
    free(p);
}

/* Answers a read of n from fd, parked until a prev/ placeholder's data is fetched; true
 * if parked (the parked read closes own, a descriptor the read opened, when answered). */
static bool read_node(fuse_req_t req, struct ck_node *n, int fd, int own, size_t size, off_t off)
{
    struct ck_lazy *lz = n->area == CK_NODE_PREV ? ck_loader_lazy(ck_fs_of(req)->d->loader) : NULL;
    if (lz && ck_lazy_is_placeholder(lz, n->dev, n->ino)) {
        struct parked_read *p = malloc(sizeof(*p));
        if (!p) {
            fuse_reply_err(req, ENOMEM);
            return false;
        }
        *p = (struct parked_read){req, fd, own, size, off, {NULL, 0, 0}};
        if (!ck_lazy_want(lz, n->dev, n->ino, (uint64_t)off, size, resume_read, p, &p->hold))
            return true;                       /* answered by a fetch thread */
        reply_read(req, fd, size, off, false); /* the hold keeps its members until read */
        ck_lazy_release(&p->hold);
        free(p);
        return false;
    }
    reply_read(req, fd, size, off, n->area == CK_NODE_SAVE);
    return false;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    if (ck_top_is_virtual(ino)) {
        ck_top_read(req, ino, size, off, fi);
        return;
    }
    struct ck_node *n = ck_node_of(ino);
    int fd = fh_fd(fi), own = -1;
    if (fd < 0) { /* a prev/ handle of no descriptor (prev_open.c): the pages were dropped */
        fd = own = ck_node_open(ck_fs_of(req), n, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fuse_reply_err(req, -fd);
            return;
        }
    }
    if (!read_node(req, n, fd, own, size, off) && own >= 0)
        close(own);
}

/* A write by a process without CAP_FSETID (taken as: not root) clears the file's
 * set-user-ID bit, and its set-group-ID bit if group-executable, as the kernel does on a
 * local filesystem. The kernel asks for it itself (a SETATTR) only on cached writes; the
 * direct I/O handles (write-only and O_DIRECT opens) do it here, on every write path. */
static void drop_privs_after_write(fuse_req_t req, int fd)
{
    struct stat st;
    if (fuse_req_ctx(req)->uid == 0 || fstat(fd, &st) < 0)
        return;
    mode_t kill = S_ISUID | ((st.st_mode & S_IXGRP) ? S_ISGID : 0);
    if (st.st_mode & kill)
        (void)fchmod(fd, st.st_mode & 07777 & ~kill);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
                         struct fuse_file_info *fi)
{
    if (ck_top_is_virtual(ino)) {
        /* Control-file writes are tiny: copy them to memory first. */
        char small[256];
        struct fuse_bufvec dst = FUSE_BUFVEC_INIT(sizeof(small));
        dst.buf[0].mem = small;
        ssize_t n = fuse_buf_copy(&dst, in, 0);
        if (n < 0)
            fuse_reply_err(req, (int)-n);
        else
            ck_top_write(req, ino, small, (size_t)n, fi);
        return;
    }
    struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
    out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    out.buf[0].fd = fh_fd(fi);
    out.buf[0].pos = off;
    struct ck_node *node = ck_node_of(ino);
    ck_area_mutate_begin_inode(area_of(req), node->dev, node->ino);
    ssize_t n = fuse_buf_copy(&out, in, 0);
    if (n > 0)
        drop_privs_after_write(req, fh_fd(fi));
    ck_area_mutate_end(area_of(req));
    if (n < 0)
        fuse_reply_err(req, (int)-n);
    else
        fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ck_top_is_virtual(ino)) {
        ck_top_flush(req, ino, fi);
        return;
    }
    /* close() of a duplicate reports delayed write errors of the underlying file; a
     * handle of no descriptor (prev/) has none to report */
    int fd = fh_fd(fi) < 0 ? -1 : dup(fh_fd(fi));
    int rc = fh_fd(fi) >= 0 && (fd < 0 || close(fd) < 0) ? errno : 0;
    fuse_reply_err(req, rc);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ck_top_is_virtual(ino)) {
        ck_top_release(req, ino, fi);
        return;
    }
    if (fi->fh & FH_WAITED) /* before the close: the fd number names the entry */
        ck_area_writer_close_named(area_of(req), fh_fd(fi));
    if (fh_fd(fi) >= 0)
        close(fh_fd(fi));
    if (ck_node_of(ino)->area == CK_NODE_PREV)
        atomic_fetch_sub(&ck_node_of(ino)->opens, 1); /* counted by prev_open.c */
    fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    if (ck_top_is_virtual(ino)) {
        fuse_reply_err(req, 0);
        return;
    }
    int fd = fh_fd(fi); /* none: a prev/ file whose data is the kernel's (prev_open.c) */
    int r = fd < 0 ? 0 : datasync ? fdatasync(fd) : fsync(fd);
    fuse_reply_err(req, r < 0 ? errno : 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
    struct ck_node *n = save_node(req, ino);
    if (!n)
        return;
    ck_area_mutate_begin_inode(area_of(req), n->dev, n->ino);
    int rc = fallocate(fh_fd(fi), mode, offset, length) < 0 ? errno : 0;
    ck_area_mutate_end(area_of(req));
    fuse_reply_err(req, rc);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs st;
    if (fstatvfs(ck_fs_of(req)->save_root->fd, &st) < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_statfs(req, &st);
}

/* ThreadSanitizer does not see the order the kernel gives FUSE requests (a RELEASE comes
 * after the replies to that handle's reads, a FORGET after every request on the inode)
 * when requests and replies go through splice(2), which it does not intercept: it then
 * reports the libfuse thread that read a file for a reply and the one that closes it in
 * RELEASE, or frees the node in FORGET, as racing. With read(2) and writev(2) on
 * /dev/fuse it models the channel as synchronizing, like a pipe. So TSan builds do not
 * splice; the other builds and CI's release and ASan runs test the splice paths. */
#if defined(__SANITIZE_THREAD__)
#define CK_FUSE_SPLICE 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CK_FUSE_SPLICE 0
#endif
#endif
#ifndef CK_FUSE_SPLICE
#define CK_FUSE_SPLICE 1
#endif
#define CK_SPLICE_REPLY_MAX (512u * 1024u)

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    if (CK_FUSE_SPLICE && (conn->capable & FUSE_CAP_SPLICE_WRITE))
        conn->want |= FUSE_CAP_SPLICE_WRITE; /* no SPLICE_MOVE: page stealing is not needed */
    if (CK_FUSE_SPLICE && (conn->capable & FUSE_CAP_SPLICE_READ))
        conn->want |= FUSE_CAP_SPLICE_READ;
    /* A spliced reply (reply_read) must fit the worker's pipe with its 16-byte header, and
     * a pipe grows to at most pipe-max-size (1 MiB by default; more needs
     * CAP_SYS_RESOURCE, which containers drop). libfuse copies a larger reply through a
     * fresh buffer of its size instead, page faults and all (direct reads of 4 MiB ran at
     * a twentieth of the speed). A pipe's size is a power of two, so 512 KiB (plus the header)
     * is the largest request whose reply fits 1 MiB; libfuse derives the largest request
     * (max_pages) from max_write. docs/performance.md has the figures. */
    if (CK_FUSE_SPLICE && conn->max_write > CK_SPLICE_REPLY_MAX)
        conn->max_write = CK_SPLICE_REPLY_MAX;
    if (!CK_FUSE_SPLICE) /* libfuse asks for SPLICE_READ itself when write_buf is set */
        conn->want &=
            ~(unsigned)(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_SPLICE_READ);
    /* No writeback cache: SPEC 2 wants written data on the cache disk when write()
     * returns, so that it survives a killed daemon and a full disk fails the write. */
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
    /* Every readdir with attributes (ops_dir.c): a walk that opens each entry then needs no
     * LOOKUP of its own (the kernel's adaptive mode sent one for 18,431 of 30,001 files of a
     * whole read of prev/). Only when nodes need no descriptor of their own (a root daemon
     * reopens them by handle): one that is not root keeps one per node, and keeps the
     * adaptive mode, which looks up only what a program goes on to use. */
    const struct ck_fs *fs = userdata;
    if (fs->handle_mnt[CK_NODE_SAVE] >= 0 && fs->handle_mnt[CK_NODE_PREV] >= 0)
        conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
}

const struct fuse_lowlevel_ops ck_fs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .symlink = op_symlink,
    .link = op_link,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write_buf = op_write_buf,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .fallocate = op_fallocate,
    .opendir = ck_op_opendir,
    .readdir = ck_op_readdir,
    .readdirplus = ck_op_readdirplus,
    .releasedir = ck_op_releasedir,
    .fsyncdir = ck_op_fsyncdir,
    .statfs = op_statfs,
};
