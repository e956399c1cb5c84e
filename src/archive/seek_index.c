/* seek_index.c - writing and reading the seek index; see seek_index.h and docs/format.md. */
#include "archive/seek_index.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "archive/deflate_block.h"
#include "archive/entry_name.h"
#include "util/buf.h"

#define IX_MAGIC        "CKIX"
#define LOC_MAGIC       "CKPTIDX1"
#define IX_VERSION      3u /* written; 1 and 2 (no member identity) are read too */
#define LOC_DATA_LEN    40u
#define CHUNK_MAX       65000u                          /* index bytes per "CK" member */
#define RAW_MAX         (512u << 20)                    /* cap on the serialized index */
#define Z_MAX           (256u << 20)                    /* cap on the compressed index */
#define MEMBER_IN_MAX   (64u << 20)                     /* cap on one member's tar bytes */
#define MEMBER_LEN      24u                             /* a member record, versions 1-2 */
#define MEMBER_LEN_V3   36u                             /* with its CRC-32 and CRC-64 */
#define ENTRY_FIXED_LEN (1 + 4 * 4 + 8 + 4 + 8 + 8 + 4) /* an entry without name and link */

/* ---------- little-endian helpers ---------- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static ck_rc buf_u32(struct ck_buf *b, uint32_t v)
{
    unsigned char t[4];
    put_u32(t, v);
    return ck_buf_append(b, t, 4);
}

static ck_rc buf_u64(struct ck_buf *b, uint64_t v)
{
    unsigned char t[8];
    put_u64(t, v);
    return ck_buf_append(b, t, 8);
}

/* ---------- builder ---------- */

struct ck_ix_builder {
    struct ck_buf entries; /* serialized entries, in order */
    uint64_t nentries;
};

ck_rc ck_ix_builder_new(struct ck_ix_builder **out, struct ck_err *err)
{
    struct ck_ix_builder *b = calloc(1, sizeof(*b));
    if (!b)
        return ck_fail(err, CK_ENOMEM, "seek index: out of memory");
    ck_buf_init(&b->entries, RAW_MAX);
    *out = b;
    return CK_OK;
}

void ck_ix_builder_free(struct ck_ix_builder *b)
{
    if (!b)
        return;
    ck_buf_free(&b->entries);
    free(b);
}

static uint8_t type_of(const struct ck_pack_entry *e)
{
    mode_t m = e->mode;
    return S_ISDIR(m)   ? CK_IX_DIR
           : S_ISLNK(m) ? CK_IX_SYMLINK
           : e->segs    ? CK_IX_SPARSE
                        : CK_IX_FILE;
}

/* A sparse entry's tail: the number of segments, then offset and length of each. */
static ck_rc add_segs(struct ck_ix_builder *b, const struct ck_pack_entry *e)
{
    if (e->nsegs > CK_IX_MAX_SEGS)
        return CK_EINVAL;
    ck_rc rc = buf_u32(&b->entries, (uint32_t)e->nsegs);
    for (size_t i = 0; !rc && i < e->nsegs; i++) {
        rc = buf_u64(&b->entries, e->segs[i].off);
        if (!rc)
            rc = buf_u64(&b->entries, e->segs[i].len);
    }
    return rc;
}

ck_rc ck_ix_builder_add(void *ctx, const struct ck_pack_entry *e, struct ck_err *err)
{
    struct ck_ix_builder *b = ctx;
    struct ck_buf *o = &b->entries;
    uint8_t type = type_of(e);
    size_t nlen = strlen(e->name), llen = e->link ? strlen(e->link) : 0;
    ck_rc rc = ck_buf_append(o, &type, 1);
    if (!rc)
        rc = buf_u32(o, (uint32_t)(e->mode & 07777));
    if (!rc)
        rc = buf_u32(o, (uint32_t)e->uid);
    if (!rc)
        rc = buf_u32(o, (uint32_t)e->gid);
    if (!rc)
        rc = buf_u64(o, (uint64_t)e->mtime.tv_sec);
    if (!rc)
        rc = buf_u32(o, (uint32_t)e->mtime.tv_nsec);
    if (!rc)
        rc = buf_u64(o, e->size);
    if (!rc)
        rc = buf_u64(o, e->data_off);
    if (!rc)
        rc = buf_u32(o, (uint32_t)nlen);
    if (!rc)
        rc = ck_buf_append(o, e->name, nlen);
    if (!rc)
        rc = buf_u32(o, (uint32_t)llen);
    if (!rc)
        rc = ck_buf_append(o, e->link ? e->link : "", llen);
    if (!rc && type == CK_IX_SPARSE)
        rc = add_segs(b, e);
    if (rc)
        return ck_fail(err, rc, "seek index: too large at entry '%s'", e->name);
    b->nentries++;
    return CK_OK;
}

static ck_rc serialize(struct ck_ix_builder *b, const struct ck_gzw_member *m, size_t n,
                       uint64_t tar_size, struct ck_buf *raw)
{
    ck_rc rc = ck_buf_append(raw, IX_MAGIC, 4);
    if (!rc)
        rc = buf_u32(raw, IX_VERSION);
    if (!rc)
        rc = buf_u64(raw, tar_size);
    if (!rc)
        rc = buf_u64(raw, n);
    if (!rc)
        rc = buf_u64(raw, b->nentries);
    for (size_t i = 0; !rc && i < n; i++) {
        rc = buf_u64(raw, m[i].in_off);
        if (!rc)
            rc = buf_u64(raw, m[i].out_off);
        if (!rc)
            rc = buf_u32(raw, m[i].in_len);
        if (!rc)
            rc = buf_u32(raw, m[i].out_len);
        if (!rc)
            rc = buf_u32(raw, m[i].crc32);
        if (!rc)
            rc = buf_u64(raw, m[i].crc64);
    }
    if (!rc)
        rc = ck_buf_append(raw, b->entries.data ? b->entries.data : "", b->entries.len);
    return rc;
}

/* Writes z as "CK" members, then the locator. */
static ck_rc write_members(const unsigned char *z, size_t zlen, uint32_t raw_len, uint64_t data_end,
                           uint32_t version, const struct ck_sink *out, struct ck_err *err)
{
    unsigned char mem[CHUNK_MAX + 64];
    uint64_t index_len = 0;
    for (size_t off = 0; off < zlen; off += CHUNK_MAX) {
        size_t n = zlen - off < CHUNK_MAX ? zlen - off : CHUNK_MAX;
        size_t len = ck_block_extra_member('C', 'K', z + off, n, mem, sizeof(mem));
        ck_rc rc = ck_sink_write(out, mem, len, err);
        if (rc)
            return rc;
        index_len += len;
    }
    unsigned char loc[LOC_DATA_LEN];
    memcpy(loc, LOC_MAGIC, 8);
    put_u32(loc + 8, version);
    put_u64(loc + 12, data_end);
    put_u64(loc + 20, index_len);
    put_u32(loc + 28, raw_len);
    put_u32(loc + 32, (uint32_t)zlen);
    put_u32(loc + 36, (uint32_t)crc32(0, z, (uInt)zlen));
    size_t len = ck_block_extra_member('C', 'L', loc, sizeof(loc), mem, sizeof(mem));
    return ck_sink_write(out, mem, len, err);
}

ck_rc ck_ix_builder_write(struct ck_ix_builder *b, const struct ck_gzw_member *members,
                          size_t nmembers, uint64_t tar_size, uint64_t data_end,
                          const struct ck_sink *out, struct ck_err *err)
{
    struct ck_buf raw;
    ck_buf_init(&raw, RAW_MAX);
    ck_rc rc = serialize(b, members, nmembers, tar_size, &raw);
    if (rc) {
        ck_buf_free(&raw);
        return ck_fail(err, rc, "seek index: larger than %u bytes", RAW_MAX);
    }
    uLongf zlen = compressBound((uLong)raw.len);
    unsigned char *z = malloc(zlen);
    if (!z || compress2(z, &zlen, (const Bytef *)raw.data, (uLong)raw.len, 6) != Z_OK) {
        free(z);
        ck_buf_free(&raw);
        return ck_fail(err, CK_ENOMEM, "seek index: compression failed");
    }
    rc = write_members(z, zlen, (uint32_t)raw.len, data_end, IX_VERSION, out, err);
    free(z);
    ck_buf_free(&raw);
    return rc;
}

/* ---------- reading ---------- */

static const unsigned char extra_head[4] = {0x1f, 0x8b, 8, 4};

ck_rc ck_ix_parse_locator(const unsigned char *tail, size_t len, uint64_t object_size,
                          struct ck_ix_locator *loc, struct ck_err *err)
{
    if (len < CK_IX_LOCATOR_LEN || object_size < CK_IX_LOCATOR_LEN)
        return CK_ENOTFOUND;
    const unsigned char *p = tail + len - CK_IX_LOCATOR_LEN;
    static const unsigned char end[10] = {3, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    if (memcmp(p, extra_head, 4) != 0 ||
        get_u32(p + 10) != (44u | (unsigned)'C' << 16 | (unsigned)'L' << 24) ||
        p[14] != LOC_DATA_LEN || p[15] != 0 || memcmp(p + 16, LOC_MAGIC, 8) != 0 ||
        memcmp(p + 56, end, sizeof(end)) != 0)
        return CK_ENOTFOUND;
    const unsigned char *d = p + 16;
    if (get_u32(d + 8) < 1 || get_u32(d + 8) > IX_VERSION)
        return ck_fail(err, CK_ECORRUPT, "seek index: version %u is not supported", get_u32(d + 8));
    loc->index_off = get_u64(d + 12);
    loc->index_len = get_u64(d + 20);
    loc->raw_len = get_u32(d + 28);
    loc->z_len = get_u32(d + 32);
    loc->crc = get_u32(d + 36);
    uint64_t body = object_size - CK_IX_LOCATOR_LEN;
    if (loc->index_off > body || loc->index_len != body - loc->index_off || loc->z_len == 0 ||
        loc->z_len > Z_MAX || loc->z_len > loc->index_len || loc->raw_len > RAW_MAX ||
        loc->index_len > loc->z_len + ((uint64_t)loc->z_len / CHUNK_MAX + 1) * 64)
        return ck_fail(err, CK_ECORRUPT, "seek index: the locator does not add up");
    return CK_OK;
}

/* Collects the "CK" subfields of the index members into z (z_len bytes). */
static ck_rc gather(const unsigned char *buf, size_t len, unsigned char *z, size_t z_len,
                    struct ck_err *err)
{
    size_t off = 0, got = 0;
    while (off < len) {
        if (len - off < 26 || memcmp(buf + off, extra_head, 4) != 0)
            return ck_fail(err, CK_ECORRUPT, "seek index: bad index member at +%zu", off);
        size_t xlen = buf[off + 10] | (size_t)buf[off + 11] << 8;
        size_t dlen = buf[off + 14] | (size_t)buf[off + 15] << 8;
        if (buf[off + 12] != 'C' || buf[off + 13] != 'K' || dlen + 4 != xlen ||
            len - off < 12 + xlen + 10 || dlen > z_len - got)
            return ck_fail(err, CK_ECORRUPT, "seek index: bad index member at +%zu", off);
        memcpy(z + got, buf + off + 16, dlen);
        got += dlen;
        off += 12 + xlen + 10;
    }
    if (got != z_len)
        return ck_fail(err, CK_ECORRUPT, "seek index: %zu of %zu index bytes present", got, z_len);
    return CK_OK;
}

/* A bounds-checked reader over the serialized index. */
struct cursor {
    const unsigned char *p;
    const unsigned char *end;
    bool bad;
};

static const unsigned char *take(struct cursor *c, size_t n)
{
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = true;
        return NULL;
    }
    const unsigned char *r = c->p;
    c->p += n;
    return r;
}

static uint32_t take_u32(struct cursor *c)
{
    const unsigned char *p = take(c, 4);
    return p ? get_u32(p) : 0;
}

static uint64_t take_u64(struct cursor *c)
{
    const unsigned char *p = take(c, 8);
    return p ? get_u64(p) : 0;
}

static ck_rc decode_members(struct cursor *c, struct ck_seek_index *ix, uint64_t data_end,
                            struct ck_err *err)
{
    uint64_t in = 0, out = 0;
    for (size_t i = 0; i < ix->nmembers; i++) {
        struct ck_ix_member *m = &ix->members[i];
        m->in_off = take_u64(c);
        m->out_off = take_u64(c);
        m->in_len = take_u32(c);
        m->out_len = take_u32(c);
        if (ix->member_ids) {
            m->crc32 = take_u32(c);
            m->crc64 = take_u64(c);
        }
        if (c->bad || m->in_off != in || m->out_off != out || m->in_len > MEMBER_IN_MAX ||
            m->out_len < 18 || m->out_len > ck_block_bound(m->in_len))
            return ck_fail(err, CK_ECORRUPT, "seek index: member %zu does not add up", i);
        in += m->in_len;
        out += m->out_len;
    }
    if (in != ix->tar_size || out != data_end)
        return ck_fail(err, CK_ECORRUPT, "seek index: members cover %llu of %llu tar bytes",
                       (unsigned long long)in, (unsigned long long)ix->tar_size);
    return CK_OK;
}

/* Copies len bytes at p into the arena (NUL-terminated) and returns them. */
static char *arena_str(char **arena, const unsigned char *p, size_t len)
{
    char *s = *arena;
    memcpy(s, p, len);
    s[len] = '\0';
    *arena += len + 1;
    return s;
}

/* Segments decoded so far, in entry order (the arena grows: entries get their pointers
 * once all are decoded). */
struct segs {
    struct ck_ix_seg *v;
    size_t n, cap;
};

/* A sparse entry's segments: in order, apart, inside the file, none empty. */
static ck_rc decode_segs(struct cursor *c, struct ck_ix_entry *e, struct segs *sg)
{
    uint32_t n = take_u32(c);
    if (c->bad || n > CK_IX_MAX_SEGS)
        return CK_ECORRUPT;
    if (sg->n + n > sg->cap) {
        size_t cap = sg->cap * 2 > sg->n + n ? sg->cap * 2 : sg->n + n + 16;
        struct ck_ix_seg *v = realloc(sg->v, cap * sizeof(*v));
        if (!v)
            return CK_ENOMEM;
        sg->v = v;
        sg->cap = cap;
    }
    e->nsegs = n;
    uint64_t end = 0, at = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct ck_ix_seg *s = &sg->v[sg->n++];
        s->off = take_u64(c);
        s->len = take_u64(c);
        s->at = at;
        if (c->bad || e->size > INT64_MAX || s->len == 0 || s->off < end || s->off > e->size ||
            s->len > e->size - s->off)
            return CK_ECORRUPT;
        end = s->off + s->len;
        at += s->len;
    }
    e->stored = at;
    return CK_OK;
}

static ck_rc decode_entry(struct cursor *c, struct ck_seek_index *ix, struct ck_ix_entry *e,
                          char **arena, struct segs *sg, uint32_t version, struct ck_err *err)
{
    const unsigned char *t = take(c, 1);
    e->type = t ? *t : 0;
    e->mode = take_u32(c) & 07777;
    e->uid = take_u32(c);
    e->gid = take_u32(c);
    e->mtime_sec = (int64_t)take_u64(c);
    e->mtime_nsec = take_u32(c);
    e->size = take_u64(c);
    e->data_off = take_u64(c);
    uint32_t nlen = take_u32(c);
    const unsigned char *name = take(c, nlen);
    uint32_t llen = take_u32(c);
    const unsigned char *link = take(c, llen);
    uint8_t max_type = version >= 2 ? CK_IX_SPARSE : CK_IX_SYMLINK;
    e->stored = e->size;
    ck_rc src = e->type == CK_IX_SPARSE && !c->bad ? decode_segs(c, e, sg) : CK_OK;
    if (src == CK_ENOMEM)
        return ck_fail(err, CK_ENOMEM, "seek index: out of memory");
    if (c->bad || src || e->type > max_type || e->mtime_nsec >= 1000000000u ||
        nlen >= CK_ENTRY_NAME_MAX || llen >= CK_LINK_TARGET_MAX || memchr(name, 0, nlen) ||
        (llen && memchr(link, 0, llen)))
        return ck_fail(err, CK_ECORRUPT, "seek index: entry %zu is malformed",
                       (size_t)(e - ix->entries));
    char raw_name[CK_ENTRY_NAME_MAX];
    memcpy(raw_name, name, nlen);
    raw_name[nlen] = '\0';
    char norm[CK_ENTRY_NAME_MAX], q[128];
    const char *why = ck_entry_name_check(raw_name, norm, sizeof(norm));
    if (!why && norm[0] == '\0')
        why = "names the root of the tree";
    if (why)
        return ck_fail(err, CK_EHOSTILE, "seek index entry '%s': %s",
                       ck_entry_name_quote(raw_name, q, sizeof(q)), why);
    e->name = arena_str(arena, (const unsigned char *)norm, strlen(norm));
    e->link = NULL;
    if (e->type == CK_IX_SYMLINK) {
        e->link = arena_str(arena, link, llen);
        why = ck_symlink_target_check(e->name, e->link);
        if (why)
            return ck_fail(err, CK_EHOSTILE, "seek index entry '%s': %s",
                           ck_entry_name_quote(e->name, q, sizeof(q)), why);
    }
    if (e->type != CK_IX_FILE && e->type != CK_IX_SPARSE)
        e->size = e->stored = 0;
    else if (e->data_off > ix->tar_size || e->stored > ix->tar_size - e->data_off)
        return ck_fail(err, CK_ECORRUPT, "seek index entry '%s': data outside the archive",
                       ck_entry_name_quote(e->name, q, sizeof(q)));
    return CK_OK;
}

static int cmp_entry_names(const void *a, const void *b)
{
    return strcmp((*(const struct ck_ix_entry *const *)a)->name,
                  (*(const struct ck_ix_entry *const *)b)->name);
}

static ck_rc check_unique(struct ck_seek_index *ix, struct ck_err *err)
{
    const struct ck_ix_entry **v = malloc((ix->nentries + 1) * sizeof(*v));
    if (!v)
        return ck_fail(err, CK_ENOMEM, "seek index: out of memory");
    for (size_t i = 0; i < ix->nentries; i++)
        v[i] = &ix->entries[i];
    qsort(v, ix->nentries, sizeof(*v), cmp_entry_names);
    ck_rc rc = CK_OK;
    for (size_t i = 1; !rc && i < ix->nentries; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            rc = ck_fail(err, CK_EHOSTILE, "seek index: entry '%s' appears twice", v[i]->name);
    free(v);
    return rc;
}

static ck_rc decode_raw(const unsigned char *raw, size_t len, uint64_t data_end,
                        struct ck_seek_index *ix, struct ck_err *err)
{
    struct cursor c = {raw, raw + len, false};
    const unsigned char *magic = take(&c, 4);
    uint32_t version = take_u32(&c);
    ix->tar_size = take_u64(&c);
    uint64_t nm = take_u64(&c), ne = take_u64(&c);
    if (c.bad || memcmp(magic, IX_MAGIC, 4) != 0 || version < 1 || version > IX_VERSION)
        return ck_fail(err, CK_ECORRUPT, "seek index: bad header");
    ix->member_ids = version >= 3;
    if (nm > len / (ix->member_ids ? MEMBER_LEN_V3 : MEMBER_LEN) || ne > len / ENTRY_FIXED_LEN)
        return ck_fail(err, CK_ECORRUPT, "seek index: counts larger than the index");
    ix->nmembers = (size_t)nm;
    ix->nentries = (size_t)ne;
    ix->members = calloc(nm + 1, sizeof(*ix->members));
    ix->entries = calloc(ne + 1, sizeof(*ix->entries));
    ix->arena = malloc(len + 1); /* names and links are all inside raw: they fit */
    if (!ix->members || !ix->entries || !ix->arena)
        return ck_fail(err, CK_ENOMEM, "seek index: out of memory");
    ck_rc rc = decode_members(&c, ix, data_end, err);
    char *arena = ix->arena;
    struct segs sg = {0};
    for (size_t i = 0; !rc && i < ix->nentries; i++)
        rc = decode_entry(&c, ix, &ix->entries[i], &arena, &sg, version, err);
    ix->seg_arena = sg.v; /* freed with the index, also after a failure */
    for (size_t i = 0, k = 0; !rc && i < ix->nentries; i++) {
        if (ix->entries[i].type == CK_IX_SPARSE) {
            ix->entries[i].segs = sg.v + k;
            k += ix->entries[i].nsegs;
        }
    }
    if (!rc && c.p != c.end)
        rc = ck_fail(err, CK_ECORRUPT, "seek index: trailing bytes");
    return rc ? rc : check_unique(ix, err);
}

ck_rc ck_ix_decode(const unsigned char *buf, size_t len, const struct ck_ix_locator *loc,
                   struct ck_seek_index *ix, struct ck_err *err)
{
    memset(ix, 0, sizeof(*ix));
    if (len != loc->index_len)
        return ck_fail(err, CK_ECORRUPT, "seek index: %zu bytes given, %llu expected", len,
                       (unsigned long long)loc->index_len);
    unsigned char *z = malloc(loc->z_len);
    unsigned char *raw = malloc(loc->raw_len ? loc->raw_len : 1);
    ck_rc rc = z && raw ? CK_OK : ck_fail(err, CK_ENOMEM, "seek index: out of memory");
    if (!rc)
        rc = gather(buf, len, z, loc->z_len, err);
    if (!rc && crc32(0, z, loc->z_len) != loc->crc)
        rc = ck_fail(err, CK_ECORRUPT, "seek index: checksum mismatch");
    uLongf rlen = loc->raw_len;
    if (!rc && (uncompress(raw, &rlen, z, loc->z_len) != Z_OK || rlen != loc->raw_len))
        rc = ck_fail(err, CK_ECORRUPT, "seek index: does not decompress");
    if (!rc)
        rc = decode_raw(raw, rlen, loc->index_off, ix, err);
    free(z);
    free(raw);
    if (rc)
        ck_ix_free(ix);
    return rc;
}

ck_rc ck_ix_fetch(ck_ix_read_fn read, void *ctx, uint64_t size, struct ck_seek_index *ix,
                  struct ck_err *err)
{
    memset(ix, 0, sizeof(*ix));
    if (size < CK_IX_LOCATOR_LEN)
        return CK_ENOTFOUND;
    size_t tail_len = size < CK_IX_TAIL_FETCH ? (size_t)size : CK_IX_TAIL_FETCH;
    uint64_t tail_off = size - tail_len;
    unsigned char *tail = NULL, *buf = NULL;
    struct ck_ix_locator loc;
    ck_rc rc = read(ctx, tail_off, tail_len, &tail, err);
    if (!rc)
        rc = ck_ix_parse_locator(tail, tail_len, size, &loc, err);
    if (!rc && loc.index_off >= tail_off)
        rc = ck_ix_decode(tail + (loc.index_off - tail_off), (size_t)loc.index_len, &loc, ix, err);
    else if (!rc && !(rc = read(ctx, loc.index_off, (size_t)loc.index_len, &buf, err)))
        rc = ck_ix_decode(buf, (size_t)loc.index_len, &loc, ix, err);
    free(buf);
    free(tail);
    return rc;
}

void ck_ix_free(struct ck_seek_index *ix)
{
    free(ix->members);
    free(ix->entries);
    free(ix->arena);
    free(ix->seg_arena);
    memset(ix, 0, sizeof(*ix));
}

size_t ck_ix_member_at(const struct ck_seek_index *ix, uint64_t off)
{
    size_t lo = 0, hi = ix->nmembers;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->members[mid].in_off <= off)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The first segment of e whose end (logical, or stored with by_at) is after x. */
static uint32_t seg_after(const struct ck_ix_entry *e, uint64_t x, bool by_at)
{
    uint32_t lo = 0, hi = e->nsegs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct ck_ix_seg *s = &e->segs[mid];
        if ((by_at ? s->at : s->off) + s->len <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void ck_ix_stored_range(const struct ck_ix_entry *e, uint64_t off, uint64_t len, uint64_t *from,
                        uint64_t *to)
{
    uint64_t end = len > e->size - (off < e->size ? off : e->size) ? e->size : off + len;
    if (e->type != CK_IX_SPARSE) {
        *from = off < end ? off : end;
        *to = end;
        return;
    }
    uint32_t i = seg_after(e, off, false);
    if (i == e->nsegs || e->segs[i].off >= end) { /* all holes */
        *from = *to = i < e->nsegs ? e->segs[i].at : e->stored;
        return;
    }
    const struct ck_ix_seg *a = &e->segs[i];
    *from = a->at + (off > a->off ? off - a->off : 0);
    uint32_t j = seg_after(e, end - 1, false);
    if (j == e->nsegs || e->segs[j].off >= end)
        j--; /* end falls in a hole: the last segment before it */
    const struct ck_ix_seg *b = &e->segs[j];
    *to = b->at + (end - b->off < b->len ? end - b->off : b->len);
}

void ck_ix_logical_at(const struct ck_ix_entry *e, uint64_t at, uint64_t *logical, uint64_t *run)
{
    if (e->type != CK_IX_SPARSE) {
        *logical = at;
        *run = e->size - at;
        return;
    }
    uint32_t i = seg_after(e, at, true); /* at < stored: inside segment i */
    const struct ck_ix_seg *s = &e->segs[i < e->nsegs ? i : e->nsegs - 1];
    *logical = s->off + (at - s->at);
    *run = s->at + s->len - at;
}
