/*
 * ops_top.c - the virtual top level of the mount and its two control files.
 *
 * .save: every way of touching it saves synchronously and tells the truth (SPEC 2). What
 * programs send differs, and the kernel sends a FLUSH for every close() of every
 * duplicate of a descriptor, so the rule is built on activity and on the last close:
 *   - a write() of anything but the word "async" saves, and is answered when the save is
 *     durable (EIO if it failed): a shell's "echo x > .save" closes the descriptor it
 *     wrote to with dup2, whose close errors nobody sees;
 *   - writing "async", or a time change while .save is open for writing, is activity on
 *     the handle; the next close (FLUSH) of a handle with activity starts the save and is
 *     answered when it is durable (EIO if it failed), or at the snapshot after "async";
 *   - a FLUSH without activity of a writer handle that has not saved yet is the close of
 *     open(".save", "w") (Python's Path.touch() fallback, open().close()): it saves
 *     synchronously too, unless the closing process still holds another descriptor of
 *     .save (read from /proc/PID/fd): that is a shell's redirection (open, dup2, close),
 *     and the save waits for the close of the descriptor the command writes to;
 *   - a time or size change with no .save handle open (os.utime, Path.touch(),
 *     truncate(2)) is itself a synchronous save, answered when durable.
 * So `touch .save` (open, dup2, close, futimens, close) saves once and its exit status
 * tells the truth, `echo async > .save` (open, dup2, close, write, close) saves once
 * asynchronously, and open(".save", "w").close() returns when the save is durable.
 * Reading .save gives nothing.
 * .status: each open renders the status JSON once; reads serve that copy (direct I/O, so
 * the size shown by stat does not limit reads).
 */
#include <errno.h>
#include <pthread.h>
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs_internal.h"
#include "util/log.h"

#define SAVECTL_MAX 64

struct savectl_handle {
    pthread_mutex_t lock;
    bool writer;
    bool activity;               /* written or touched since the last save it started (lock) */
    bool ever_fired;             /* started a save at least once (protected by lock) */
    size_t len;                  /* protected by lock */
    char buf[SAVECTL_MAX];       /* protected by lock */
    struct savectl_handle *next; /* in fs->ctl_writers; protected by fs->ctl_lock */
};

/* Rendered once per open. A read may still be answering when the kernel sends the
 * release (an interrupted read), so the buffer is freed by whichever ends last. */
struct status_handle {
    char *data;
    size_t len;
    atomic_int refs; /* the open handle + reads in progress */
};

static void status_unref(struct status_handle *h)
{
    if (atomic_fetch_sub(&h->refs, 1) == 1) {
        free(h->data);
        free(h);
    }
}

bool ck_top_is_virtual(fuse_ino_t ino)
{
    return ino == CK_INO_ROOT || ino == CK_INO_SAVECTL || ino == CK_INO_STATUS;
}

static size_t status_size(struct ck_fs *fs)
{
    struct ck_buf b;
    ck_buf_init(&b, 1 << 20);
    size_t n = ck_daemon_status_json(fs->d, &b) == CK_OK ? b.len : 0;
    ck_buf_free(&b);
    return n;
}

static void top_stat(struct ck_fs *fs, fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_uid = fs->owner_uid;
    st->st_gid = fs->owner_gid;
    st->st_atime = st->st_mtime = st->st_ctime = (time_t)fs->mounted_wall;
    if (ino == CK_INO_ROOT) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 4;
    } else if (ino == CK_INO_SAVECTL) {
        st->st_mode = S_IFREG | 0644;
        st->st_nlink = 1;
    } else {
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = (off_t)status_size(fs);
    }
}

static void reply_top_entry(fuse_req_t req, fuse_ino_t ino)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    e.ino = ino;
    top_stat(ck_fs_of(req), ino, &e.attr);
    e.entry_timeout = 3600;
    e.attr_timeout = ino == CK_INO_STATUS ? 0 : 3600;
    fuse_reply_entry(req, &e);
}

void ck_top_lookup(fuse_req_t req, const char *name)
{
    struct ck_fs *fs = ck_fs_of(req);
    struct fuse_entry_param e;
    struct ck_node *root = NULL;
    if (strcmp(name, "save") == 0)
        root = fs->save_root;
    else if (strcmp(name, "prev") == 0)
        root = fs->prev_root;
    if (root) {
        int rc = ck_nodes_root_entry(fs, root, &e);
        if (rc)
            fuse_reply_err(req, rc);
        else
            fuse_reply_entry(req, &e);
    } else if (strcmp(name, ".save") == 0) {
        reply_top_entry(req, CK_INO_SAVECTL);
    } else if (strcmp(name, ".status") == 0) {
        reply_top_entry(req, CK_INO_STATUS);
    } else {
        fuse_reply_err(req, ENOENT);
    }
}

void ck_top_getattr(fuse_req_t req, fuse_ino_t ino)
{
    struct stat st;
    top_stat(ck_fs_of(req), ino, &st);
    fuse_reply_attr(req, &st, ino == CK_INO_STATUS ? 0 : 3600);
}

/* Answers a .save close (or fsync on save/) with the save's result. */
static void reply_result(void *ctx, ck_rc rc, const char *msg)
{
    fuse_req_t req = ctx;
    struct ck_fs *fs = ck_fs_reply_begin(req);
    if (!fs)
        return;
    fuse_reply_err(req, ck_fs_errno(rc));
    ck_fs_reply_end(fs);
}

/* Answers a setattr on .save with its attributes once the save it started is durable. */
static void reply_setattr_result(void *ctx, ck_rc rc, const char *msg)
{
    fuse_req_t req = ctx;
    struct ck_fs *fs = ck_fs_reply_begin(req);
    if (!fs)
        return;
    if (rc)
        fuse_reply_err(req, ck_fs_errno(rc));
    else
        ck_top_getattr(req, CK_INO_SAVECTL);
    ck_fs_reply_end(fs);
}

/* Marks every open .save writer handle active; false if none is open. */
static bool mark_writers_active(struct ck_fs *fs)
{
    pthread_mutex_lock(&fs->ctl_lock);
    bool open_writers = fs->ctl_writers != NULL;
    for (struct savectl_handle *h = fs->ctl_writers; h; h = h->next) {
        pthread_mutex_lock(&h->lock);
        h->activity = true;
        pthread_mutex_unlock(&h->lock);
    }
    pthread_mutex_unlock(&fs->ctl_lock);
    return open_writers;
}

void ck_top_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set)
{
    struct ck_fs *fs = ck_fs_of(req);
    if (ino != CK_INO_SAVECTL) {
        fuse_reply_err(req, EPERM);
        return;
    }
    /* A touch sets the access time too (touch(1) and os.utime set both to "now"); the
     * kernel's own mtime updates (after a write) set only mtime/ctime: no effect. A size
     * change is truncate(2), or the O_TRUNC of "> .save", which comes with the handle
     * open: its close saves. */
    bool touch = to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW);
    bool truncate = to_set & FUSE_SET_ATTR_SIZE;
    if (truncate && !touch) {
        pthread_mutex_lock(&fs->ctl_lock);
        bool open_writers = fs->ctl_writers != NULL;
        pthread_mutex_unlock(&fs->ctl_lock);
        if (open_writers) {
            ck_top_getattr(req, ino);
            return;
        }
    } else if (!touch || mark_writers_active(fs)) {
        ck_top_getattr(req, ino); /* nothing asked, or the close that follows saves */
        return;
    }
    ck_saver_request(fs->d->saver, CK_TRIGGER_CONTROL, NULL, reply_setattr_result, req);
}

static void open_savectl(fuse_req_t req, struct fuse_file_info *fi)
{
    struct savectl_handle *h = calloc(1, sizeof(*h));
    if (!h) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_init(&h->lock, NULL);
    h->writer = (fi->flags & O_ACCMODE) != O_RDONLY;
    if (h->writer) {
        struct ck_fs *fs = ck_fs_of(req);
        pthread_mutex_lock(&fs->ctl_lock);
        h->next = fs->ctl_writers;
        fs->ctl_writers = h;
        pthread_mutex_unlock(&fs->ctl_lock);
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1;
    fuse_reply_open(req, fi);
}

static void open_status(fuse_req_t req, struct fuse_file_info *fi)
{
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        fuse_reply_err(req, EACCES);
        return;
    }
    struct status_handle *h = calloc(1, sizeof(*h));
    struct ck_buf b;
    ck_buf_init(&b, 1 << 20);
    if (!h || ck_daemon_status_json(ck_fs_of(req)->d, &b) != CK_OK) {
        free(h);
        ck_buf_free(&b);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    h->len = b.len;
    h->data = ck_buf_take(&b);
    atomic_init(&h->refs, 1);
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1;
    fuse_reply_open(req, fi);
}

void ck_top_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ino == CK_INO_SAVECTL)
        open_savectl(req, fi);
    else if (ino == CK_INO_STATUS)
        open_status(req, fi);
    else
        fuse_reply_err(req, EISDIR);
}

void ck_top_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    if (ino != CK_INO_STATUS) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    struct status_handle *h = (struct status_handle *)(uintptr_t)fi->fh;
    atomic_fetch_add(&h->refs, 1);
    if ((size_t)off >= h->len) {
        fuse_reply_buf(req, NULL, 0);
    } else {
        size_t n = h->len - (size_t)off;
        fuse_reply_buf(req, h->data + off, n < size ? n : size);
    }
    status_unref(h);
}

/* A write to .save that saves: answered with its size once the save is durable. */
struct savectl_write {
    fuse_req_t req;
    size_t size;
};

static void reply_write_result(void *ctx, ck_rc rc, const char *msg)
{
    struct savectl_write *w = ctx;
    struct ck_fs *fs = ck_fs_reply_begin(w->req);
    if (fs) {
        if (rc)
            fuse_reply_err(w->req, ck_fs_errno(rc));
        else
            fuse_reply_write(w->req, w->size);
        ck_fs_reply_end(fs);
    }
    free(w);
}

static bool wants_async(const char *s, size_t len);

void ck_top_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
                  struct fuse_file_info *fi)
{
    if (ino != CK_INO_SAVECTL) {
        fuse_reply_err(req, EACCES);
        return;
    }
    struct savectl_handle *h = (struct savectl_handle *)(uintptr_t)fi->fh;
    pthread_mutex_lock(&h->lock);
    size_t room = SAVECTL_MAX - 1 - h->len;
    size_t n = size < room ? size : room;
    memcpy(h->buf + h->len, buf, n);
    h->len += n;
    /* "async": the close saves and returns at the snapshot. Anything else saves now, and
     * the write itself answers: a shell's "echo x > .save" closes its descriptor with
     * dup2, which reports no error, so only the write can tell the truth. */
    bool async = wants_async(h->buf, h->len);
    h->activity = async;
    if (!async) {
        h->ever_fired = true;
        h->len = 0;
    }
    pthread_mutex_unlock(&h->lock);
    struct savectl_write *w = async ? NULL : malloc(sizeof(*w));
    if (async) {
        fuse_reply_write(req, size);
    } else if (!w) {
        fuse_reply_err(req, ENOMEM);
    } else {
        *w = (struct savectl_write){req, size};
        ck_saver_request(ck_fs_of(req)->d->saver, CK_TRIGGER_CONTROL, NULL, reply_write_result, w);
    }
}

/* Whether what was written asks for an asynchronous save ("async", any case, with
 * surrounding white space). */
static bool wants_async(const char *s, size_t len)
{
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    return len == 5 && strncasecmp(s, "async", 5) == 0;
}

/* Whether process pid holds a descriptor of .save (the one being closed is already out
 * of its table). Unknown (no /proc, another pid namespace: pid 0) counts as no. */
static bool holds_savectl(const struct ck_fs *fs, pid_t pid)
{
    char path[300], link[PATH_MAX + 8];
    if (pid <= 0)
        return false;
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (!dir)
        return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(dir));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid, e->d_name);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = '\0';
            found = strcmp(link, fs->savectl_path) == 0;
        }
    }
    closedir(dir);
    return found;
}

/* What a close of handle h does: a save (sync or async) or nothing. */
enum close_action { CLOSE_NOTHING, CLOSE_SAVE, CLOSE_SAVE_ASYNC };

static enum close_action take_activity(struct ck_fs *fs, struct savectl_handle *h, pid_t pid)
{
    pthread_mutex_lock(&h->lock);
    bool fire = h->writer && h->activity;
    bool async = fire && wants_async(h->buf, h->len);
    bool first = h->writer && !h->activity && !h->ever_fired;
    pthread_mutex_unlock(&h->lock);
    /* A shell's redirection closes its first descriptor before the command writes. */
    if (first && !holds_savectl(fs, pid))
        fire = true;
    if (!fire)
        return CLOSE_NOTHING;
    pthread_mutex_lock(&h->lock);
    h->activity = false;
    h->ever_fired = true;
    h->len = 0;
    pthread_mutex_unlock(&h->lock);
    return async ? CLOSE_SAVE_ASYNC : CLOSE_SAVE;
}

void ck_top_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ino != CK_INO_SAVECTL) {
        fuse_reply_err(req, 0);
        return;
    }
    struct ck_fs *fs = ck_fs_of(req);
    struct savectl_handle *h = (struct savectl_handle *)(uintptr_t)fi->fh;
    enum close_action act = take_activity(fs, h, fuse_req_ctx(req)->pid);
    if (act == CLOSE_NOTHING)
        fuse_reply_err(req, 0);
    else if (act == CLOSE_SAVE_ASYNC)
        ck_saver_request(fs->d->saver, CK_TRIGGER_CONTROL, reply_result, NULL, req);
    else
        ck_saver_request(fs->d->saver, CK_TRIGGER_CONTROL, NULL, reply_result, req);
}

void ck_top_sync_save(fuse_req_t req, enum ck_save_trigger trigger)
{
    ck_saver_request(ck_fs_of(req)->d->saver, trigger, NULL, reply_result, req);
}

static void release_savectl(struct ck_fs *fs, struct savectl_handle *h)
{
    if (h->writer) {
        pthread_mutex_lock(&fs->ctl_lock);
        struct savectl_handle **pp = &fs->ctl_writers;
        while (*pp && *pp != h)
            pp = &(*pp)->next;
        if (*pp)
            *pp = h->next;
        pthread_mutex_unlock(&fs->ctl_lock);
        /* Activity no close answered (a FLUSH the kernel did not send): save it, in the
         * background; .status tells the result. */
        if (!h->ever_fired || h->activity)
            ck_saver_request(fs->d->saver, CK_TRIGGER_CONTROL, NULL, NULL, NULL);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}

void ck_top_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ino == CK_INO_SAVECTL) {
        release_savectl(ck_fs_of(req), (struct savectl_handle *)(uintptr_t)fi->fh);
    } else if (ino == CK_INO_STATUS) {
        status_unref((struct status_handle *)(uintptr_t)fi->fh);
    }
    fuse_reply_err(req, 0);
}

void ck_top_opendir(fuse_req_t req, struct fuse_file_info *fi)
{
    fi->fh = 0;
    fuse_reply_open(req, fi);
}

void ck_top_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
    static const struct {
        const char *name;
        fuse_ino_t ino;
        mode_t mode;
    } ents[] = {
        {".", CK_INO_ROOT, S_IFDIR},
        {"..", CK_INO_ROOT, S_IFDIR},
        {"prev", 0, S_IFDIR},
        {"save", 0, S_IFDIR},
        {".save", CK_INO_SAVECTL, S_IFREG},
        {".status", CK_INO_STATUS, S_IFREG},
    };
    char *buf = calloc(1, size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t used = 0;
    for (size_t i = (size_t)off; i < sizeof(ents) / sizeof(ents[0]); i++) {
        struct stat st = {.st_ino = ents[i].ino ? ents[i].ino : 100 + i, .st_mode = ents[i].mode};
        struct fuse_entry_param e = {.attr = st}; /* ino 0: no attributes, looked up later */
        size_t n = plus ? fuse_add_direntry_plus(req, buf + used, size - used, ents[i].name, &e,
                                                 (off_t)(i + 1))
                        : fuse_add_direntry(req, buf + used, size - used, ents[i].name, &st,
                                            (off_t)(i + 1));
        if (n > size - used)
            break;
        used += n;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}
