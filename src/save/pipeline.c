/* pipeline.c - one save from the save area to the store; see pipeline.h. */
#include "save/pipeline.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/exclude.h"
#include "archive/gzip_writer.h"
#include "archive/pack.h"
#include "archive/seek_index.h"
#include "save/known.h"
#include "save/splice.h"
#include "util/log.h"
#include "layout/manifest.h"

#define RAW_CHUNK (1u << 20)

/* Classifies the top of the tree: empty, a lone regular "payload", or anything else. */
static ck_rc classify_tree(int dirfd, enum ck_object_kind *kind, struct ck_err *err)
{
    int fd = dup(dirfd);
    if (fd < 0)
        return ck_fail_errno(err, errno, "reading save/");
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return ck_fail_errno(err, errno, "reading save/");
    }
    rewinddir(d);
    unsigned n = 0;
    bool payload = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        if (strcmp(e->d_name, "payload") == 0) {
            struct stat st;
            payload =
                fstatat(dirfd, "payload", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
        }
    }
    closedir(d);
    *kind = n == 0 ? CK_KIND_NONE : (n == 1 && payload) ? CK_KIND_PAYLOAD : CK_KIND_TAR;
    return CK_OK;
}

/* Counts what flows into the store. */
struct counting_sink {
    struct ck_sink inner;
    struct ck_save_progress *progress;
};

static ck_rc counting_write(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    struct counting_sink *c = ctx;
    atomic_fetch_add(&c->progress->bytes_out, len);
    return ck_sink_write(&c->inner, buf, len, err);
}

/* Counts the tar stream as it enters the compressor. */
static ck_rc counting_in_write(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    struct counting_sink *c = ctx;
    atomic_fetch_add(&c->progress->bytes_in, len);
    return ck_sink_write(&c->inner, buf, len, err);
}

static ck_rc write_raw_file(int dirfd, struct ck_store_upload *up, struct ck_save_progress *pr,
                            struct ck_save_result *res, struct ck_err *err)
{
    int fd = openat(dirfd, "payload", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ck_fail_errno(err, errno, "reading save/payload");
    char *buf = malloc(RAW_CHUNK);
    ck_rc rc = buf ? CK_OK : ck_fail(err, CK_ENOMEM, "reading save/payload: out of memory");
    while (!rc) {
        ssize_t n = read(fd, buf, RAW_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ck_fail_errno(err, errno, "reading save/payload");
        } else if (n == 0) {
            break;
        } else {
            atomic_fetch_add(&pr->bytes_in, (uint64_t)n);
            atomic_fetch_add(&pr->bytes_out, (uint64_t)n);
            res->bytes += (uint64_t)n;
            rc = ck_store_put_write(up, buf, (size_t)n, err);
        }
    }
    free(buf);
    close(fd);
    res->entries = 1;
    return rc;
}

static ck_rc write_raw(int dirfd, struct ck_snap *snap, struct ck_store_upload *up,
                       struct ck_save_progress *pr, struct ck_save_result *res, struct ck_err *err)
{
    if (snap)
        ck_snap_file_begin(snap, dirfd, "payload");
    ck_rc rc = write_raw_file(dirfd, up, pr, res, err);
    if (snap)
        ck_snap_file_end(snap);
    return rc;
}

/* pack's skipped hook: the first names and reasons, as many as fit, for .status. */
static void note_skipped(void *ctx, const char *name, const char *why)
{
    struct ck_save_result *res = ctx;
    size_t cap = sizeof(res->skipped_names), len = strlen(res->skipped_names);
    if (len + 4 >= cap)
        return;
    int n = snprintf(res->skipped_names + len, cap - len, "%s%s: %s", len ? "; " : "", name, why);
    if (n < 0 || (size_t)n >= cap - len)
        snprintf(res->skipped_names + cap - 4, 4, "...");
}

/* What pack leaves out (pack.h leave_out): the excluded names, and in a plain save the
 * name of the multi-rank manifest at the top. */
struct leave_out {
    const struct ck_exclude *ex;
    bool world; /* a multi-rank save: the manifest's name was refused before */
};

static const char *leave_out(void *ctx, const char *name)
{
    const struct leave_out *l = ctx;
    if (!l->world && strcmp(name, CK_WORLD_MANIFEST) == 0)
        return "the name of the multi-rank manifest, which a reader would take for one "
               "(rename it)";
    return ck_exclude_match(l->ex, name) ? "" : NULL;
}

/* What every pass of one save reads from. */
struct pass_in {
    int dirfd; /* the tree: the snapshot's, or save/ itself */
    struct ck_snap *snap;
    const struct ck_codec *codec;
    const struct ck_exclude *ex;
    const struct ck_pack_trailer *trailer;
    const struct ck_save_extra *extra; /* NULL: a plain save with nothing to reuse */
    struct ck_save_progress *pr;
};

/* pack's observe and skip_data hooks: the seek index's entry, member boundaries around
 * the data of a large regular file (docs/format.md "Member-aligned files": its members
 * then depend on its bytes alone, whatever comes before it in the tree), and such files
 * not read when the previous object holds them unchanged (known.h). */
struct observer {
    struct ck_ix_builder *ix;
    struct ck_gzw *gz;
    struct ck_splice *sp; /* counts what became of each file */
    const struct ck_splice_src *src;
    const struct ck_known *known; /* files not to read (of src's object), or NULL */
    struct ck_known *made;        /* the record for the next save, or NULL */
    struct ck_save_progress *pr;
};

static uint64_t stored_bytes(const struct ck_pack_entry *e)
{
    if (!e->segs)
        return e->size;
    uint64_t n = 0;
    for (size_t i = 0; i < e->nsegs; i++)
        n += e->segs[i].len;
    return n;
}

static ck_rc observe(void *ctx, const struct ck_pack_entry *e, struct ck_err *err)
{
    struct observer *o = ctx;
    ck_rc rc = ck_ix_builder_add(o->ix, e, err);
    if (!rc && S_ISREG(e->mode))
        rc = ck_splice_add_file(o->sp, e->data_off, stored_bytes(e), err);
    if (rc || !S_ISREG(e->mode) || e->segs || e->size < CK_SAVE_ALIGN_MIN)
        return rc;
    rc = ck_gzw_cut_at(o->gz, e->data_off, err);
    if (!rc)
        rc = ck_gzw_cut_at(o->gz, e->data_off + ck_pack_padded(e->size), err);
    if (!rc && o->made)
        rc = ck_known_note(o->made, e, err);
    return rc;
}

static ck_rc skip_known(void *ctx, const struct ck_pack_entry *e, bool *skip, struct ck_err *err)
{
    struct observer *o = ctx;
    const struct ck_known_file *f = o->known ? ck_known_find(o->known, e) : NULL;
    uint64_t len = ck_pack_padded(e->size), at;
    *skip = false;
    if (!f || !ck_splice_src_holds(o->src, f->first, f->count, len))
        return CK_OK;
    ck_rc rc = ck_gzw_flush(o->gz, err); /* the splice's run as it is before this file */
    if (rc || !ck_splice_can_place(o->sp, f->first, f->count))
        return rc;
    *skip = true;
    rc = ck_gzw_skip(o->gz, len, &at, err);
    if (!rc)
        rc = ck_splice_place(o->sp, f->first, f->count, at, len, err);
    if (!rc)
        atomic_fetch_add(&o->pr->bytes_in, len);
    return rc;
}

/* The tar stream's pack, with the hooks the pipeline needs. */
static ck_rc pack_into(const struct pass_in *in, struct observer *ob, struct ck_save_result *res,
                       struct ck_pack_stats *st, struct ck_err *err)
{
    struct counting_sink cs = {ck_gzw_sink(ob->gz), in->pr};
    struct ck_sink in_sink = {counting_in_write, &cs};
    struct leave_out lo = {in->ex, in->trailer != NULL};
    struct ck_pack_opts po = {.observe = observe,
                              .observe_ctx = ob,
                              .trailer = in->trailer,
                              .skipped = note_skipped,
                              .skipped_ctx = res,
                              .leave_out = leave_out,
                              .leave_out_ctx = &lo,
                              .skip_data = ob->known ? skip_known : NULL,
                              .skip_ctx = ob};
    if (in->snap) {
        po.file_begin = ck_snap_file_begin;
        po.file_end = ck_snap_file_end;
        po.file_ctx = in->snap;
    }
    return ck_pack_tar_ex(in->dirfd, &in_sink, &po, st, err);
}

/* The observer of a pass writing into up through out: the index builder, the splice, the
 * gzip writer, and what the pass may skip and must note (known.h). */
static ck_rc observer_new(const struct pass_in *in, const struct ck_splice_src *src,
                          struct ck_store_upload *up, const struct ck_sink *out,
                          struct observer *ob, struct ck_err *err)
{
    const struct ck_save_extra *x = in->extra;
    *ob = (struct observer){.src = src, .pr = in->pr};
    if (src && x && x->known && ck_known_matches(x->known, &src->ix))
        ob->known = x->known;
    ck_rc rc = ck_ix_builder_new(&ob->ix, err);
    if (!rc && x && x->note_known)
        rc = ck_known_new(&ob->made, err);
    if (!rc)
        rc = ck_splice_new(up, out, in->codec, src, &ob->sp, err);
    if (!rc) {
        struct ck_gzw_opts go = {.codec = *in->codec,
                                 .member = ck_splice_member,
                                 .member_ctx = ob->sp,
                                 .claim = src ? ck_splice_claim : NULL,
                                 .claim_ctx = src};
        rc = ck_gzw_new_opts(&go, out, &ob->gz, err);
    }
    return rc;
}

static void observer_free(struct observer *ob)
{
    ck_gzw_free(ob->gz);
    ck_splice_free(ob->sp);
    ck_ix_builder_free(ob->ix);
    ck_known_free(ob->made);
}

/* After the pack: the last members, the seek index, and the record of the large files. */
static ck_rc finish_tar(struct observer *ob, const struct ck_pack_stats *st,
                        const struct ck_sink *out, struct ck_save_result *res, struct ck_err *err)
{
    ck_rc rc = ck_gzw_finish(ob->gz, err);
    if (!rc)
        rc = ck_splice_finish(ob->sp, err);
    size_t n = 0;
    const struct ck_gzw_member *m = rc ? NULL : ck_splice_members(ob->sp, &n);
    if (!rc)
        rc =
            ck_ix_builder_write(ob->ix, m, n, st->tar_bytes, ck_splice_bytes_out(ob->sp), out, err);
    if (!rc && ob->made)
        rc = ck_known_seal(ob->made, m, n, err);
    if (!rc) {
        res->known = ob->made;
        ob->made = NULL;
    }
    return rc;
}

/* tar -> parallel gzip members -> the splice (members of src copied, the others written)
 * -> store, then the seek index after the last member. */
static ck_rc write_tar(const struct pass_in *in, const struct ck_splice_src *src,
                       struct ck_store_upload *up, struct ck_save_result *res, struct ck_err *err)
{
    struct counting_sink cs = {ck_store_upload_sink(up), in->pr};
    struct ck_sink out = {counting_write, &cs};
    struct observer ob;
    struct ck_pack_stats st = {0};
    ck_rc rc = observer_new(in, src, up, &out, &ob, err);
    if (!rc)
        rc = pack_into(in, &ob, res, &st, err);
    if (!rc)
        rc = finish_tar(&ob, &st, &out, res, err);
    res->entries = st.entries;
    res->bytes = st.tar_bytes;
    res->skipped = st.skipped;
    res->excluded = st.excluded;
    if (ob.sp)
        ck_splice_get_stats(ob.sp, &res->reuse);
    observer_free(&ob);
    return rc;
}

/* One pass: a new upload of the whole object. *wrote_all tells whether every byte was
 * handed to the upload (then opts->size can be set for the next pass). */
static ck_rc run_pass(const struct pass_in *in, struct ck_store *dest,
                      const struct ck_splice_src *src, const struct ck_put_opts *opts,
                      struct ck_save_result *res, bool *may_replay, bool *wrote_all,
                      struct ck_err *err)
{
    enum ck_object_kind kind = res->kind;
    struct ck_save_result fresh = {.kind = kind}; /* the kind and the reuse note stay */
    memcpy(fresh.reuse_note, res->reuse_note, sizeof(fresh.reuse_note));
    ck_known_free(res->known);
    *res = fresh;
    atomic_store(&in->pr->bytes_in, 0);
    atomic_store(&in->pr->bytes_out, 0);
    struct ck_store_upload *up = NULL;
    ck_rc rc = ck_store_put_begin(dest, opts, &up, err);
    if (rc)
        return rc;
    *may_replay = up->may_replay;
    if (in->snap && up->may_replay)
        ck_snap_hold(in->snap);
    if (kind == CK_KIND_PAYLOAD)
        rc = write_raw(in->dirfd, in->snap, up, in->pr, res, err);
    else if (kind == CK_KIND_TAR)
        rc = write_tar(in, src, up, res, err);
    *wrote_all = rc == CK_OK;
    if (rc) {
        ck_store_put_abort(up);
        return rc;
    }
    res->compressed = up->bytes;
    return ck_store_put_commit(up, err);
}

/* The tree may not hold the trailer's name: the archive would have it twice. */
static ck_rc check_trailer_name(int dirfd, const struct ck_pack_trailer *t, struct ck_err *err)
{
    struct stat st;
    if (t && fstatat(dirfd, t->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return ck_fail(err, CK_EINVAL,
                       "save/%s: this name is reserved for the multi-rank manifest; rename it",
                       t->name);
    return CK_OK;
}

/* The previous object (extra->reuse_from's) whose members a save to dest may copy
 * (splice.h), or NULL: none, or one whose index cannot be read (then logged, and the save
 * is a full one). */
static struct ck_splice_src *load_reuse(struct ck_store *dest, const struct ck_save_extra *extra,
                                        struct ck_save_result *res)
{
    struct ck_store *from = extra ? extra->reuse_from : NULL;
    const char *why = NULL;
    if (!from)
        why = "not looked for: no earlier save of this mount at the destination, and no "
              "ckptfs --src checkpoint loaded in prev/";
    else if (!ck_store_copies_ranges(dest)) /* copying would read the bytes back: send them */
        why = "this store cannot copy byte ranges of an object (GCS, Azure, http): every byte "
              "is sent";
    else if (!ck_store_copies_from(dest, from))
        why = "the previous checkpoint is on another store or endpoint than the destination: "
              "every byte is sent";
    if (why) {
        snprintf(res->reuse_note, sizeof(res->reuse_note), "%s", why);
        return NULL;
    }
    struct ck_splice_src *src = NULL;
    struct ck_err e;
    ck_err_clear(&e);
    ck_rc rc = res->kind == CK_KIND_TAR ? ck_splice_src_load(from, &src, &e) : CK_ENOTFOUND;
    if (rc == CK_ENOTFOUND) {
        snprintf(res->reuse_note, sizeof(res->reuse_note),
                 "no earlier ckptfs object with member identities at %s", ck_store_uri(from));
    } else if (rc) {
        snprintf(res->reuse_note, sizeof(res->reuse_note), "%s", e.msg);
        ck_log_warn("save: not reusing the previous object's members: %s", e.msg);
    } else {
        ck_log_debug("save: members of %s (%zu) may be reused", ck_store_uri(from),
                     src->ix.nmembers);
    }
    return src;
}

/* After a pass that ended with rc: whether to archive again. The store may ask for the
 * object again (CK_EREPLAY). A copy from a previous object that changed since its index
 * was read fails (CK_EEXIST), and a store may refuse to copy from it (CK_EAUTH,
 * CK_EREMOTE: a --src bucket these credentials may not read): that save is made again in
 * full (*src dropped), unless the object that changed is the destination of a save
 * conditional on its version (opts->if_match, a multi-rank commit): that save has lost
 * (*err says so, as the conditional replace would). */
static bool again(struct ck_splice_src **src, struct ck_store *dest, const struct ck_put_opts *opts,
                  ck_rc rc, struct ck_err *err, struct ck_save_result *res)
{
    if (rc == CK_EREPLAY)
        return true;
    if (!*src || (rc != CK_EEXIST && rc != CK_EAUTH && rc != CK_EREMOTE))
        return false;
    struct ck_copy_src c = {(*src)->store, (*src)->version, 0, 0};
    struct ck_err e;
    if (rc == CK_EEXIST && ck_store_check_source(&c, &e) == CK_OK)
        return false; /* another reason (a conditional replace that lost) */
    if (rc == CK_EEXIST && c.store == dest && opts->if_match) {
        ck_fail(err, CK_EEXIST, "PUT %s: the object changed since it was read (%s)",
                ck_store_uri(dest), opts->if_match);
        return false;
    }
    const char *what = rc == CK_EEXIST ? "changed during the save" : "could not be copied from";
    ck_log_info("save: %s %s (%s); saving again without reusing it", ck_store_uri(c.store), what,
                err->msg);
    snprintf(res->reuse_note, sizeof(res->reuse_note), "%s %s", ck_store_uri(c.store), what);
    ck_splice_src_free(*src);
    *src = NULL;
    return true;
}

ck_rc ck_save_pipeline_run(int save_dirfd, struct ck_snap *snap, struct ck_store *dest,
                           const struct ck_codec *codec, const struct ck_save_excludes *excludes,
                           const struct ck_save_extra *extra, void (*read_done)(void *ctx),
                           void *ctx, struct ck_save_progress *progress, struct ck_save_result *res,
                           struct ck_err *err)
{
    memset(res, 0, sizeof(*res));
    const struct ck_pack_trailer *trailer = extra ? extra->trailer : NULL;
    ck_rc rc = classify_tree(save_dirfd, &res->kind, err);
    if (!rc && extra && extra->always_tar)
        res->kind = CK_KIND_TAR;
    if (!rc)
        rc = check_trailer_name(save_dirfd, trailer, err);
    struct ck_exclude *ex = NULL;
    if (!rc && excludes)
        rc = ck_exclude_new(excludes->globs, excludes->n, save_dirfd, &ex, err);
    struct ck_put_opts opts = {.replayable = true,
                               .size = CK_STORE_SIZE_UNKNOWN,
                               .pass = 0,
                               .if_match = extra ? extra->if_match : NULL};
    struct ck_splice_src *src = rc ? NULL : load_reuse(dest, extra, res);
    struct pass_in in = {save_dirfd, snap, codec, ex, trailer, extra, progress};
    bool read_reported = false;
    while (!rc) {
        bool may_replay = false, wrote_all = false;
        rc = run_pass(&in, dest, src, &opts, res, &may_replay, &wrote_all, err);
        /* Writers go on once the tree is read, unless another pass would read it again with
         * nothing keeping it as it was (no snapshot: the caller's gate is closed). */
        if (read_done && !read_reported && (snap || (!may_replay && !src))) {
            read_done(ctx);
            read_reported = true;
        }
        if (!again(&src, dest, &opts, rc, err, res))
            break;
        if (opts.pass + 1 >= CK_STORE_MAX_PASSES) {
            rc = ck_fail(err, CK_ENET,
                         "PUT %s: still asked to send the object again after %u passes",
                         ck_store_uri(dest), CK_STORE_MAX_PASSES);
            break;
        }
        opts.size = wrote_all && rc == CK_EREPLAY ? res->compressed : CK_STORE_SIZE_UNKNOWN;
        opts.pass++;
        ck_log_info("PUT %s: archiving it again, pass %u (%s)", ck_store_uri(dest), opts.pass + 1,
                    err->msg[0] ? err->msg : "replay");
        ck_err_clear(err);
        rc = CK_OK;
        if (snap)
            ck_snap_rewind(snap);
    }
    ck_splice_src_free(src);
    ck_exclude_free(ex);
    if (rc) { /* the record is of an object that is not there */
        ck_known_free(res->known);
        res->known = NULL;
    }
    if (snap)
        ck_snap_release(snap);
    if (read_done && !read_reported)
        read_done(ctx);
    return rc;
}
