/*
 * fs_internal.h - shared state of the FUSE adapter (the only code that includes fuse).
 *
 * The mount is a low-level libfuse filesystem with a fixed top level and two subtrees:
 *
 *   1  /            virtual directory
 *   2  /.save       virtual control file (write or touch: save)
 *   3  /.status     virtual read-only JSON
 *   *  /save/...    passthrough onto cache-dir/save (read-write, gated by save/area.h)
 *   *  /prev/...    passthrough onto cache-dir/prev (read-only; the first lookup or
 *                   opendir under prev/ starts the lazy load and is answered when it ends)
 *
 * Passthrough nodes (struct ck_node) are found by (dev, ino); their FUSE node id is the
 * node's address, as in libfuse's passthrough_ll. A node keeps a file handle
 * (name_to_handle_at) and an O_PATH descriptor only while it is in use or among the
 * recently used ones: the descriptors of idle nodes are closed beyond a budget (a
 * quarter of RLIMIT_NOFILE; CKPTFS_NODE_FDS sets it, for tests) and reopened from the
 * handle when needed (open_by_handle_at; the daemon is root). Nodes whose file system
 * gives no handles, and a daemon that is not root, keep their descriptor (pinned). An
 * operation takes the descriptor with ck_node_get and gives it back with ck_node_put. Replies that
 * must wait (prev/ before the load, .save close, fsync on save/) are sent from the loader or saver
 * thread when the result is known, so no FUSE worker thread ever waits for the network.
 *
 * Locks: fs->nodes_lock protects the node table and every node's nlookup. It is a leaf
 * lock. Order with the other components: a FUSE thread may take the area gate (inside
 * ck_area_*), then nodes_lock; never the reverse.
 */
#ifndef CK_FS_INTERNAL_H
#define CK_FS_INTERNAL_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "daemon/daemon.h"

#define CK_INO_ROOT    FUSE_ROOT_ID
#define CK_INO_SAVECTL 2
#define CK_INO_STATUS  3

enum ck_node_area {
    CK_NODE_SAVE,
    CK_NODE_PREV,
};

struct ck_node {
    int fd;                                /* O_PATH | O_NOFOLLOW, or -1 when closed; nodes_lock */
    struct file_handle *fh;                /* to reopen fd; NULL: fd is pinned open; owned */
    unsigned users;                        /* ck_node_get without ck_node_put yet; nodes_lock */
    struct ck_node *idle_prev, *idle_next; /* LRU of idle open fds; nodes_lock */
    dev_t dev;
    ino_t ino;
    enum ck_node_area area;
    bool area_root;       /* cache-dir/save or cache-dir/prev itself: never freed early */
    atomic_bool stored;   /* prev/: its data was put into the kernel's page cache (prev_open.c) */
    atomic_uint opens;    /* prev/: its handles open now (prev_open.c) */
    uint64_t nlookup;     /* protected by fs->nodes_lock */
    struct ck_node *next; /* hash chain; protected by fs->nodes_lock */
};

struct ck_fs {
    struct ck_daemon *d; /* not owned */
    struct fuse_session *se;
    pthread_mutex_t nodes_lock;
    struct ck_node **buckets; /* protected by nodes_lock */
    size_t nbuckets;
    size_t nnodes;                         /* protected by nodes_lock */
    struct ck_node *idle_head, *idle_tail; /* idle nodes with an open fd, LRU first */
    size_t open_fds;                       /* fds of nodes with a handle (nodes_lock) */
    size_t fd_budget;                      /* at most this many of them open */
    int handle_fd[2];  /* per area: an O_RDONLY descriptor for open_by_handle_at (an
                        * O_PATH one is refused with EBADF) */
    int handle_mnt[2]; /* per area: its mount id, or -1: its nodes keep their fds open */
    struct ck_node *save_root;
    struct ck_node *prev_root;
    double timeout; /* entry and attribute cache time for passthrough nodes */
    pthread_mutex_t ctl_lock;
    struct savectl_handle *ctl_writers; /* open .save writer handles; protected by ctl_lock */
    double mounted_wall;
    bool owner_set;  /* --uid/--gid given: the mount's own entries show them */
    uid_t owner_uid; /* owner of /, .save, .status, save/ and all of prev/ */
    gid_t owner_gid;
    char mountpoint[PATH_MAX];       /* absolute, resolved once before mounting */
    char savectl_path[PATH_MAX + 8]; /* mountpoint + "/.save", as /proc/PID/fd shows it */
    /* Held for reading by the loader, fetcher and saver threads while they answer a parked
     * request, taken for writing once, when the session loop has ended, to set
     * replies_closed before fuse_session_unmount closes the /dev/fuse descriptor. A leaf. */
    pthread_rwlock_t reply_lock;
    bool replies_closed; /* protected by reply_lock */
    /* Each FUSE worker's buffer for reads under save/ (struct ck_read_buf, freed when the
     * worker ends): one allocation per worker, not one per read. */
    pthread_key_t read_buf;
};

struct ck_read_buf {
    size_t cap;
    char data[];
};

/* inode.c: the node table. */
int ck_nodes_init(struct ck_fs *fs);
void ck_nodes_destroy(struct ck_fs *fs);
struct ck_node *ck_node_of(fuse_ino_t ino);
/* Looks name up under parent, adds a lookup reference and fills e. Returns 0 or errno. */
int ck_nodes_lookup(struct ck_fs *fs, struct ck_node *parent, const char *name,
                    struct fuse_entry_param *e);
/* Adds a lookup reference to an area root and fills e. */
int ck_nodes_root_entry(struct ck_fs *fs, struct ck_node *root, struct fuse_entry_param *e);
void ck_nodes_forget(struct ck_fs *fs, struct ck_node *n, uint64_t count);
/* The node of (dev, ino) the kernel knows, with one more lookup reference (given back by
 * ck_nodes_forget(fs, n, 1)); NULL if the kernel has none. */
struct ck_node *ck_nodes_pin(struct ck_fs *fs, dev_t dev, ino_t ino);
/* Opens an area root node over dirfd's directory (pinned, never forgotten). */
int ck_nodes_make_root(struct ck_fs *fs, const char *path, enum ck_node_area area,
                       struct ck_node **out);
/* n's O_PATH descriptor, valid until ck_node_put; -errno if it cannot be reopened. */
int ck_node_get(struct ck_fs *fs, struct ck_node *n);
void ck_node_put(struct ck_fs *fs, struct ck_node *n);
/* "/proc/self/fd/N" for fd, to reopen an O_PATH descriptor. */
void ck_fd_procpath(int fd, char *buf, size_t len);
/* A new descriptor of n's file opened with flags (O_NOFOLLOW does not apply: reopened
 * through its /proc path); -errno if it cannot be. */
int ck_node_open(struct ck_fs *fs, struct ck_node *n, int flags);
/* lstat of n (takes and gives back its descriptor). Returns 0 or errno. */
int ck_node_stat(struct ck_fs *fs, struct ck_node *n, struct stat *st);
/* --uid/--gid: everything under prev/ is shown as theirs (save/ holds real owners). */
void ck_node_show_owner(const struct ck_fs *fs, const struct ck_node *n, struct stat *st);

/* How long the kernel may keep n's entry and attributes: a file of prev/ never changes
 * (CK_PREV_TIMEOUT); everything else, and prev/'s folders (filled while a foreign archive
 * streams in), fs->timeout. */
#define CK_PREV_TIMEOUT 3600.0
double ck_node_timeout(const struct ck_fs *fs, const struct ck_node *n, mode_t mode);

/* ops_top.c: the virtual top level and the control files. */
struct savectl_handle;
bool ck_top_is_virtual(fuse_ino_t ino);
void ck_top_lookup(fuse_req_t req, const char *name);
void ck_top_getattr(fuse_req_t req, fuse_ino_t ino);
void ck_top_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set);
void ck_top_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ck_top_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void ck_top_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
                  struct fuse_file_info *fi);
void ck_top_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ck_top_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ck_top_opendir(fuse_req_t req, struct fuse_file_info *fi);
/* plus: READDIRPLUS, whose entries here carry no attributes (the kernel looks them up). */
void ck_top_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus);
/* Requests a save and answers req when it is durable (fsync on save/). */
void ck_top_sync_save(fuse_req_t req, enum ck_save_trigger trigger);

/* prev_open.c: answers an open of prev/'s file n (fi filled in, fd its backing descriptor,
 * which the handle owns from here on), a small file's data stored in the kernel's page
 * cache first. */
void ck_prev_open_reply(fuse_req_t req, fuse_ino_t ino, struct ck_node *n, int fd,
                        struct fuse_file_info *fi);
/* Answers an open of prev/'s file n whose data is in the kernel's page cache already (a
 * handle of no descriptor, CK_FH_NO_FD); false, answering nothing, for any other. */
bool ck_prev_open_stored(fuse_req_t req, struct ck_node *n, struct fuse_file_info *fi);
/* Has the loader hand prev_open.c each small file's bytes as a fetch brings them, to be
 * put into the kernel's page cache of its node before anything opens it. */
void ck_prev_push_start(struct ck_fs *fs);
/* A handle's backing descriptor is this when there is none: a read opens one for itself. */
#define CK_FH_NO_FD ((uint64_t)0xffffffffu)

/* ops_tree.c: the ops of save/ and prev/; ops_dir.c: directories of both. */
extern const struct fuse_lowlevel_ops ck_fs_ops;
void ck_tree_lookup(fuse_req_t req, struct ck_node *parent, const char *name);
/* ck_tree_lookup's entry, not sent (a lookup reference is added). Returns 0 or errno. */
int ck_tree_entry(fuse_req_t req, struct ck_node *parent, const char *name,
                  struct fuse_entry_param *e);
void ck_tree_opendir(fuse_req_t req, struct ck_node *n, struct fuse_file_info *fi);
void ck_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ck_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi);
void ck_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi);
void ck_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ck_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* gate.c: requests under prev/ that wait for the lazy load. */
void ck_prev_gate_lookup(fuse_req_t req, struct ck_node *parent, const char *name);
void ck_prev_gate_opendir(fuse_req_t req, struct ck_node *n, struct fuse_file_info *fi);

/* errno_map.c: the errno a FUSE reply gives for a result; 0 for CK_OK. */
int ck_fs_errno(ck_rc rc);

static inline struct ck_fs *ck_fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* session.c: answers to parked requests from threads that are not FUSE workers (the
 * loader, the lazy fetchers, the saver). They may come while the session ends; a reply
 * written after fuse_session_unmount closed the device descriptor would go to a closed
 * descriptor, or to whatever file reused its number. Between a non-NULL
 * ck_fs_reply_begin(req) and ck_fs_reply_end(fs) the descriptor stays open; NULL: the
 * session has ended and req has been dropped (fuse_reply_none; the kernel failed it
 * when the descriptor closed). Also fine on a FUSE worker. */
struct ck_fs *ck_fs_reply_begin(fuse_req_t req);
void ck_fs_reply_end(struct ck_fs *fs);

#endif
