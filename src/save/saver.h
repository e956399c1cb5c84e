/*
 * saver.h - the save queue: one save at a time, requests collapse, each save numbered.
 *
 * A request joins the pending save if there is one (several queued requests collapse
 * into one save; the newest trigger names it), else it creates one with the next
 * generation number. A single saver thread runs pending saves one after the other:
 *   freeze save/ (bounded wait for writers) -> snapshot (hard links, snapshot.h) -> thaw
 *   -> on_snapshot callbacks -> pipeline (pack, compress, upload) reading the snapshot ->
 *   commit -> on_done callbacks with the result.
 * If the snapshot cannot be taken, the gate stays closed until the local data is read.
 * Callbacks run on the saver thread with no lock held; they must not block for long
 * (the FUSE adapter only sends a reply from them).
 *
 * Autosave: with quiet_s > 0 the thread starts a save when save/ is dirty and no file has
 * been open for writing for quiet_s seconds; with every_s > 0 when dirty and every_s
 * seconds have passed since the last save started.
 *
 * Lock: saver->lock (inside saver.c) protects the queue and the reports; it is never held
 * while calling into the area, the store or a callback.
 */
#ifndef CK_SAVE_SAVER_H
#define CK_SAVE_SAVER_H

#include <stdbool.h>
#include <stdint.h>

#include "archive/codec.h"
#include "archive/extract.h"
#include "save/area.h"
#include "save/pipeline.h"
#include "store/store.h"

enum ck_save_trigger {
    CK_TRIGGER_CONTROL = 0, /* the .save control file */
    CK_TRIGGER_FSYNC,       /* fsync on save/ */
    CK_TRIGGER_UNMOUNT,
    CK_TRIGGER_AUTOSAVE,
};

const char *ck_save_trigger_name(enum ck_save_trigger t);

enum ck_save_phase {
    CK_PHASE_QUEUED = 0,
    CK_PHASE_WAITING_WRITERS,
    CK_PHASE_ARCHIVING, /* reading save/, compressing, uploading */
    CK_PHASE_COMMITTING,
    CK_PHASE_DONE,
    CK_PHASE_FAILED,
};

const char *ck_save_phase_name(enum ck_save_phase p);

/* What .status shows of one save. */
struct ck_save_report {
    uint64_t generation;
    enum ck_save_trigger trigger;
    enum ck_save_phase phase;
    enum ck_object_kind kind;
    double started_wall; /* seconds since the epoch */
    double seconds;      /* so far, or in all when finished */
    uint64_t entries;
    uint64_t bytes;
    uint64_t compressed;
    uint64_t reused;                 /* of compressed: copied from the previous object */
    char reuse_note[CK_ERR_MSG_MAX]; /* why nothing was reused, or "" */
    bool files_known;                /* a previous object was matched: the files_* counts */
    uint64_t files_reused;           /* files whose bytes were all copied from it */
    uint64_t files_not_read;         /* of them, not read: unchanged since (known.h) */
    uint64_t files_short;            /* unchanged, sent again: runs under 8 MiB (splice.h) */
    uint64_t files_changed;          /* with bytes it does not have */
    unsigned writers_left;           /* files still open for writing at the snapshot */
    double waited_s;                 /* how long the save waited for files open for writing */
    char waited_for[CK_ERR_MSG_MAX]; /* their names, or "" */
    double snapshot_ms;              /* how long the gate was closed for the snapshot */
    uint64_t skipped;                /* entries left out of the archive (archive/pack.h) */
    uint64_t excluded;               /* left out on purpose (--exclude, .ckptfsignore) */
    char warnings[CK_ERR_MSG_MAX];   /* what was left out and why, or "" */
    char error[CK_ERR_MSG_MAX];
};

struct ck_saver_status {
    bool running;
    bool queued;
    struct ck_save_report current; /* valid if running */
    bool has_last;
    struct ck_save_report last; /* the last finished save */
    uint64_t saves_ok;
    uint64_t saves_failed;
};

/* Where one save goes, decided when it starts (multi-rank saves, world/world.h). */
struct ck_save_plan {
    struct ck_store *store;     /* this save's object; owned by the target */
    struct ck_save_extra extra; /* always_tar, trailer */
    void *priv;                 /* the target's own */
    /* Set by the saver (NULL elsewhere): whether a newer save has been asked for since
     * this one began. A target that waits (world.h) gives way to it. */
    bool (*superseded)(void *ctx);
    void *superseded_ctx;
};

/* begin runs on the saver thread after the snapshot, before the pipeline; a failure fails
 * the save. end runs after the pipeline (commit or failure) with its result, whenever
 * begin succeeded. */
struct ck_save_target {
    ck_rc (*begin)(void *ctx, struct ck_save_plan *plan, struct ck_err *err);
    void (*end)(void *ctx, struct ck_save_plan *plan, ck_rc rc);
    void *ctx;
};

struct ck_saver_cfg {
    struct ck_area *area;                /* not owned */
    struct ck_store *dest;               /* not owned; used when target is NULL */
    const struct ck_save_target *target; /* NULL: every save is a plain save to dest */
    struct ck_codec codec;
    struct ck_save_excludes excludes; /* --exclude; globs not owned */
    double save_wait_s;
    double autosave_quiet_s;
    double autosave_every_s;
    /* Optional: opens the object a mount's first plain save may copy members of (*out;
     * NULL and CK_OK when there is none): the --src checkpoint prev/ was loaded from
     * (pipeline.h ck_save_extra.reuse_from). Later saves use their own last object. */
    ck_rc (*previous)(void *ctx, struct ck_store **out, struct ck_err *err);
    void *previous_ctx;
};

/* rc CK_OK and msg NULL on success; else the error. */
typedef void (*ck_save_notify)(void *ctx, ck_rc rc, const char *msg);

struct ck_saver;

ck_rc ck_saver_start(const struct ck_saver_cfg *cfg, struct ck_saver **out, struct ck_err *err);

/* Queues a save and returns its generation. Either callback may be NULL. After
 * ck_saver_stop has begun, the request fails at once with CK_ECANCELED. */
uint64_t ck_saver_request(struct ck_saver *s, enum ck_save_trigger trigger,
                          ck_save_notify on_snapshot, ck_save_notify on_done, void *ctx);

/* Queues a save and waits for its result (for unmount and the CLI). */
ck_rc ck_saver_save_sync(struct ck_saver *s, enum ck_save_trigger trigger, struct ck_err *err);

void ck_saver_status(struct ck_saver *s, struct ck_saver_status *out);

/* Waits until no save runs or is queued (their waiters have been answered). */
void ck_saver_wait_idle(struct ck_saver *s);

/* Lets queued and running saves finish, refuses new ones, joins the thread, frees s. */
void ck_saver_stop(struct ck_saver *s);

#endif
