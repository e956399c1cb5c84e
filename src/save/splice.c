/* splice.c - members of the previous object in a new save; see splice.h. */
#include "save/splice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/deflate_block.h"
#include "util/log.h"

/* What became of a member of the new object. */
enum fate { NEW, SHORT, COPIED };

struct file_range {
    uint64_t off, len;
};

struct ck_splice {
    struct ck_store_upload *u;
    struct ck_sink out;
    struct ck_codec codec;      /* for claimed members that are written after all */
    struct ck_block_state *bst; /* made on first use */
    unsigned char *zbuf;        /* a claimed member compressed here */
    size_t zcap;
    const struct ck_splice_src *src; /* NULL: nothing to reuse */
    struct ck_gzw_member *members;   /* the new object's */
    size_t n, cap;
    uint8_t *fates; /* [n]: enum fate of each */
    size_t fcap;
    struct file_range *files; /* ck_splice_add_file's, when src */
    size_t nfiles, capfiles;
    uint64_t bytes_out; /* data bytes of the new object so far, written or copied */
    /* the pending run: members p0 .. p0+k-1 of the previous object */
    bool run;
    size_t p0, k;
    uint64_t run_out;    /* their bytes in the previous object */
    uint64_t run_in_off; /* where the run starts in the new tar stream */
    bool committed;      /* run_out reached CK_SPLICE_MIN: it will be copied */
    /* until then, the run's members as the gzip writer made them (to write them instead):
     * their compressed bytes, or their input bytes for a claimed one (out_len 0) */
    struct ck_gzw_member *held;
    size_t nheld, capheld;
    unsigned char *hbytes;
    size_t hlen, hcap;
    struct ck_splice_stats st;
};

/* ---- the previous object ---- */

static bool same(const struct ck_ix_member *p, const struct ck_gzw_member *m)
{
    return p->in_len == m->in_len && p->crc32 == m->crc32 && p->crc64 == m->crc64;
}

static size_t slot_of(uint64_t crc64, uint32_t in_len, size_t mask)
{
    uint64_t h = (crc64 ^ (crc64 >> 29)) + (uint64_t)in_len * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 32)) & mask;
}

/* The open-addressing table of the previous object's members (the first of equal ones). */
static ck_rc build_table(struct ck_splice_src *src, struct ck_err *err)
{
    size_t size = 64;
    while (size < 2 * src->ix.nmembers)
        size *= 2;
    src->table = calloc(size, sizeof(*src->table));
    if (!src->table)
        return ck_fail(err, CK_ENOMEM, "reuse: no memory for %zu members", src->ix.nmembers);
    src->table_mask = size - 1;
    for (size_t i = 0; i < src->ix.nmembers; i++) {
        const struct ck_ix_member *p = &src->ix.members[i];
        size_t h = slot_of(p->crc64, p->in_len, src->table_mask);
        while (src->table[h]) {
            const struct ck_ix_member *q = &src->ix.members[src->table[h] - 1];
            if (q->in_len == p->in_len && q->crc32 == p->crc32 && q->crc64 == p->crc64)
                break;
            h = (h + 1) & src->table_mask;
        }
        if (!src->table[h] && p->in_len > 0)
            src->table[h] = (uint32_t)(i + 1);
    }
    return CK_OK;
}

/* The previous object's member with m's identity, or SIZE_MAX. */
static size_t lookup(const struct ck_splice_src *src, const struct ck_gzw_member *m)
{
    for (size_t h = slot_of(m->crc64, m->in_len, src->table_mask); src->table[h];
         h = (h + 1) & src->table_mask) {
        size_t i = src->table[h] - 1;
        if (same(&src->ix.members[i], m))
            return i;
    }
    return SIZE_MAX;
}

static const char *version_of(const struct ck_store_info *info)
{
    return info->version[0] ? info->version : info->etag;
}

ck_rc ck_splice_src_new(struct ck_store *s, const char *version, uint64_t size,
                        struct ck_seek_index *ix, struct ck_splice_src **out, struct ck_err *err)
{
    struct ck_splice_src *src = calloc(1, sizeof(*src));
    ck_rc rc = src ? CK_OK : ck_fail(err, CK_ENOMEM, "reuse: out of memory");
    if (!rc) {
        src->store = s;
        src->size = size;
        snprintf(src->version, sizeof(src->version), "%s", version);
        src->ix = *ix;
        memset(ix, 0, sizeof(*ix));
        if (!src->ix.member_ids || src->ix.nmembers > UINT32_MAX - 1)
            rc = CK_ENOTFOUND; /* written before member identities: nothing to match */
    }
    if (!rc)
        rc = build_table(src, err);
    if (rc) {
        ck_splice_src_free(src);
        ck_ix_free(ix);
        return rc;
    }
    *out = src;
    return CK_OK;
}

ck_rc ck_splice_src_load(struct ck_store *s, struct ck_splice_src **out, struct ck_err *err)
{
    struct ck_store_info info;
    ck_rc rc = ck_store_head(s, &info, err);
    if (rc)
        return rc;
    if (!info.exists || !version_of(&info)[0] || info.size < CK_IX_LOCATOR_LEN)
        return CK_ENOTFOUND;
    char version[sizeof(((struct ck_splice_src *)0)->version)];
    snprintf(version, sizeof(version), "%s", version_of(&info));
    struct ck_seek_index ix = {0};
    rc = ck_ix_fetch(ck_store_read_mem, s, info.size, &ix, err);
    struct ck_store_info again;
    if (!rc)
        rc = ck_store_head(s, &again, err);
    if (!rc && (!again.exists || strcmp(version_of(&again), version) != 0))
        rc = ck_fail(err, CK_EEXIST, "%s changed while its index was read", ck_store_uri(s));
    if (rc) {
        ck_ix_free(&ix);
        return rc;
    }
    return ck_splice_src_new(s, version, info.size, &ix, out, err);
}

void ck_splice_src_free(struct ck_splice_src *src)
{
    if (!src)
        return;
    ck_ix_free(&src->ix);
    free(src->table);
    free(src);
}

/* ---- the new object ---- */

bool ck_splice_claim(const void *ctx, uint32_t in_len, uint32_t crc32, uint64_t crc64)
{
    struct ck_gzw_member m = {.in_len = in_len, .crc32 = crc32, .crc64 = crc64};
    return in_len > 0 && lookup(ctx, &m) != SIZE_MAX;
}

ck_rc ck_splice_new(struct ck_store_upload *u, const struct ck_sink *out,
                    const struct ck_codec *codec, const struct ck_splice_src *src,
                    struct ck_splice **spp, struct ck_err *err)
{
    struct ck_splice *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return ck_fail(err, CK_ENOMEM, "save: out of memory");
    sp->u = u;
    sp->out = *out;
    sp->codec = *codec;
    sp->src = src;
    *spp = sp;
    return CK_OK;
}

static ck_rc grow(void **v, size_t *cap, size_t need, size_t elem, struct ck_err *err)
{
    if (need <= *cap)
        return CK_OK;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *p = realloc(*v, c * elem);
    if (!p)
        return ck_fail(err, CK_ENOMEM, "save: out of memory for the member table");
    *v = p;
    *cap = c;
    return CK_OK;
}

/* Appends a member of the new object at bytes_out (m's in_off, lengths and identity). */
static ck_rc record(struct ck_splice *sp, const struct ck_gzw_member *m, enum fate f,
                    struct ck_err *err)
{
    ck_rc rc = grow((void **)&sp->members, &sp->cap, sp->n + 1, sizeof(*sp->members), err);
    if (!rc)
        rc = grow((void **)&sp->fates, &sp->fcap, sp->n + 1, 1, err);
    if (rc)
        return rc;
    sp->fates[sp->n] = (uint8_t)f;
    struct ck_gzw_member *r = &sp->members[sp->n++];
    *r = *m;
    r->out_off = sp->bytes_out;
    sp->bytes_out += m->out_len;
    return CK_OK;
}

static ck_rc write_member(struct ck_splice *sp, const struct ck_gzw_member *m,
                          const unsigned char *bytes, enum fate f, struct ck_err *err)
{
    ck_rc rc = ck_sink_write(&sp->out, bytes, m->out_len, err);
    return rc ? rc : record(sp, m, f, err);
}

/* A member whose compression the claim hook spared, compressed now and written. */
static ck_rc write_raw(struct ck_splice *sp, const struct ck_gzw_member *m,
                       const unsigned char *raw, enum fate f, struct ck_err *err)
{
    ck_rc rc = sp->bst ? CK_OK : ck_block_state_new(&sp->bst, err);
    if (!rc)
        rc = grow((void **)&sp->zbuf, &sp->zcap, ck_block_bound(m->in_len), 1, err);
    if (rc)
        return rc;
    sp->st.claimed_compressed++;
    struct ck_gzw_member w = *m;
    w.out_len = (uint32_t)ck_block_compress(sp->bst, &sp->codec, raw, m->in_len, m->crc32, sp->zbuf,
                                            sp->zcap);
    if (w.out_len == 0)
        return ck_fail(err, CK_EIO, "save: a block did not compress");
    return write_member(sp, &w, sp->zbuf, f, err);
}

/* Keeps m (and, until the run is committed, its bytes, or raw's when bytes is NULL) as the
 * run's next member. */
static ck_rc hold(struct ck_splice *sp, const struct ck_gzw_member *m, const unsigned char *bytes,
                  const unsigned char *raw, struct ck_err *err)
{
    const struct ck_ix_member *p = &sp->src->ix.members[sp->p0 + sp->k];
    sp->k++;
    sp->run_out += p->out_len;
    if (sp->committed)
        return CK_OK;
    size_t len = bytes ? m->out_len : m->in_len;
    ck_rc rc = grow((void **)&sp->held, &sp->capheld, sp->nheld + 1, sizeof(*sp->held), err);
    if (!rc)
        rc = grow((void **)&sp->hbytes, &sp->hcap, sp->hlen + len, 1, err);
    if (rc)
        return rc;
    sp->held[sp->nheld++] = *m;
    memcpy(sp->hbytes + sp->hlen, bytes ? bytes : raw, len);
    sp->hlen += len;
    if (sp->run_out >= CK_SPLICE_MIN) { /* it will be copied: what was held is not needed */
        sp->committed = true;
        sp->nheld = sp->hlen = 0;
    }
    return CK_OK;
}

/* The committed run as one copied range of the previous object. */
static ck_rc copy_run(struct ck_splice *sp, struct ck_err *err)
{
    const struct ck_ix_member *p = &sp->src->ix.members[sp->p0];
    struct ck_copy_src c = {sp->src->store, sp->src->version, p->out_off, sp->run_out};
    bool server_side;
    ck_rc rc = ck_store_put_copy(sp->u, &c, &server_side, err);
    uint64_t in_off = sp->run_in_off;
    for (size_t i = 0; !rc && i < sp->k; i++, p++) {
        struct ck_gzw_member m = {in_off, 0, p->in_len, p->out_len, p->crc32, p->crc64};
        in_off += p->in_len;
        rc = record(sp, &m, COPIED, err);
    }
    if (!rc) {
        sp->st.reused_bytes += sp->run_out;
        sp->st.reused_members += sp->k;
        sp->st.copies++;
        sp->st.server_side += server_side;
    }
    return rc;
}

/* Ends the pending run: copied if committed, else its held members written. */
static ck_rc flush_run(struct ck_splice *sp, struct ck_err *err)
{
    if (!sp->run)
        return CK_OK;
    ck_rc rc = CK_OK;
    if (sp->committed) {
        rc = copy_run(sp, err);
    } else {
        size_t off = 0;
        for (size_t i = 0; !rc && i < sp->nheld; i++) {
            const struct ck_gzw_member *h = &sp->held[i];
            rc = h->out_len ? write_member(sp, h, sp->hbytes + off, SHORT, err)
                            : write_raw(sp, h, sp->hbytes + off, SHORT, err);
            off += h->out_len ? h->out_len : h->in_len;
        }
    }
    sp->run = sp->committed = false;
    sp->k = sp->nheld = sp->hlen = 0;
    sp->run_out = 0;
    return rc;
}

ck_rc ck_splice_member(void *ctx, const struct ck_gzw_member *m, const unsigned char *bytes,
                       const unsigned char *raw, struct ck_err *err)
{
    struct ck_splice *sp = ctx;
    sp->st.claimed += bytes == NULL;
    size_t next = sp->p0 + sp->k;
    if (sp->src && sp->run && next < sp->src->ix.nmembers && same(&sp->src->ix.members[next], m))
        return hold(sp, m, bytes, raw, err);
    ck_rc rc = flush_run(sp, err);
    if (rc)
        return rc;
    size_t j = sp->src ? lookup(sp->src, m) : SIZE_MAX;
    if (j == SIZE_MAX)
        return bytes ? write_member(sp, m, bytes, NEW, err) : write_raw(sp, m, raw, NEW, err);
    sp->run = true;
    sp->p0 = j;
    sp->run_in_off = m->in_off;
    return hold(sp, m, bytes, raw, err);
}

bool ck_splice_src_holds(const struct ck_splice_src *src, size_t j, size_t k, uint64_t len)
{
    if (!src || k == 0 || j >= src->ix.nmembers || k > src->ix.nmembers - j)
        return false;
    uint64_t in = 0;
    for (size_t i = j; i < j + k; i++)
        in += src->ix.members[i].in_len;
    return in == len;
}

bool ck_splice_can_place(const struct ck_splice *sp, size_t j, size_t k)
{
    uint64_t out = 0;
    for (size_t i = j; i < j + k; i++)
        out += sp->src->ix.members[i].out_len;
    bool continues = sp->run && sp->p0 + sp->k == j;
    return out >= CK_SPLICE_MIN ||
           (continues && (sp->committed || sp->run_out + out >= CK_SPLICE_MIN));
}

ck_rc ck_splice_place(struct ck_splice *sp, size_t j, size_t k, uint64_t in_off, uint64_t len,
                      struct ck_err *err)
{
    if (!ck_splice_src_holds(sp->src, j, k, len) || !ck_splice_can_place(sp, j, k))
        return ck_fail(err, CK_EINVAL,
                       "save: members %zu..%zu of the previous object do not hold %llu bytes", j,
                       j + k, (unsigned long long)len);
    if (!sp->run || sp->p0 + sp->k != j) {
        ck_rc rc = flush_run(sp, err);
        if (rc)
            return rc;
        sp->run = true;
        sp->p0 = j;
        sp->run_in_off = in_off;
    }
    for (size_t i = j; i < j + k; i++)
        sp->run_out += sp->src->ix.members[i].out_len;
    sp->k += k;
    sp->committed = true; /* CK_SPLICE_MIN or more (can_place): what was held is not needed */
    sp->nheld = sp->hlen = 0;
    sp->st.placed_files++;
    sp->st.placed_bytes += len;
    return CK_OK;
}

ck_rc ck_splice_add_file(struct ck_splice *sp, uint64_t data_off, uint64_t len, struct ck_err *err)
{
    if (!sp->src || len == 0)
        return CK_OK;
    ck_rc rc = grow((void **)&sp->files, &sp->capfiles, sp->nfiles + 1, sizeof(*sp->files), err);
    if (!rc)
        sp->files[sp->nfiles++] = (struct file_range){data_off, len};
    return rc;
}

/* The worst fate of the members that hold [off, off + len), from member *k on (files and
 * members both in tar order; *k moves past the members wholly before it). */
static enum fate file_fate(const struct ck_splice *sp, const struct file_range *f, size_t *k)
{
    while (*k < sp->n && sp->members[*k].in_off + sp->members[*k].in_len <= f->off)
        (*k)++;
    enum fate worst = COPIED;
    for (size_t j = *k; j < sp->n && sp->members[j].in_off < f->off + f->len; j++)
        worst = sp->fates[j] < worst ? (enum fate)sp->fates[j] : worst;
    return *k < sp->n ? worst : NEW;
}

static void count_files(struct ck_splice *sp)
{
    size_t k = 0;
    for (size_t i = 0; i < sp->nfiles; i++) {
        enum fate f = file_fate(sp, &sp->files[i], &k);
        sp->st.files_reused += f == COPIED;
        sp->st.files_short += f == SHORT;
        sp->st.files_changed += f == NEW;
    }
}

ck_rc ck_splice_finish(struct ck_splice *sp, struct ck_err *err)
{
    ck_rc rc = flush_run(sp, err);
    if (!rc)
        count_files(sp);
    return rc;
}

const struct ck_gzw_member *ck_splice_members(const struct ck_splice *sp, size_t *n)
{
    *n = sp->n;
    return sp->members;
}

uint64_t ck_splice_bytes_out(const struct ck_splice *sp)
{
    return sp->bytes_out;
}

void ck_splice_get_stats(const struct ck_splice *sp, struct ck_splice_stats *st)
{
    *st = sp->st;
}

void ck_splice_free(struct ck_splice *sp)
{
    if (!sp)
        return;
    free(sp->members);
    free(sp->fates);
    free(sp->files);
    free(sp->held);
    free(sp->hbytes);
    free(sp->zbuf);
    ck_block_state_free(sp->bst);
    free(sp);
}
