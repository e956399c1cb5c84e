/*
 * objsrc.h - where extraction reads the checkpoint object from: a local file, possibly
 * still being downloaded.
 *
 * With wait == NULL the file is complete. Otherwise the loader downloads into the file
 * while extraction reads it: before reading at off, ck_objsrc_pread calls
 * wait(ctx, off, &have), which blocks until the file holds byte off or the download has
 * ended (CK_OK), or fails with the download's error; have is where the bytes known to be
 * there end (the file may hold later ranges already, with holes before them), and the
 * read stops there. So download, decompression and extraction overlap, and a short read
 * at the end means the real end of the object.
 */
#ifndef CK_ARCHIVE_OBJSRC_H
#define CK_ARCHIVE_OBJSRC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

struct ck_objsrc {
    int fd; /* not owned */
    ck_rc (*wait)(void *ctx, uint64_t off, uint64_t *have, struct ck_err *err);
    void *ctx;
};

/* pread that waits for a growing file; returns bytes read (0 at the end) or -1 with err. */
ssize_t ck_objsrc_pread(const struct ck_objsrc *s, void *buf, size_t len, uint64_t off,
                        struct ck_err *err);

#endif
