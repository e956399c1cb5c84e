/* known.c - see known.h. */
#include "save/known.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

ck_rc ck_known_new(struct ck_known **out, struct ck_err *err)
{
    *out = calloc(1, sizeof(**out));
    return *out ? CK_OK : ck_fail(err, CK_ENOMEM, "save: out of memory");
}

ck_rc ck_known_note(struct ck_known *k, const struct ck_pack_entry *e, struct ck_err *err)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 64;
        struct ck_known_file *v = realloc(k->files, cap * sizeof(*v));
        if (!v)
            return ck_fail(err, CK_ENOMEM, "save: out of memory for the file record");
        k->files = v;
        k->cap = cap;
    }
    k->files[k->n++] = (struct ck_known_file){e->dev, e->ino, e->size, e->mtime, e->data_off, 0, 0};
    return CK_OK;
}

/* One member's fields, in a fixed byte order, into the digest. */
static void digest_member(EVP_MD_CTX *md, uint64_t in_off, uint64_t out_off, uint32_t in_len,
                          uint32_t out_len, uint32_t crc32, uint64_t crc64)
{
    uint64_t v[6] = {in_off, out_off, in_len, out_len, crc32, crc64};
    unsigned char b[sizeof(v)];
    for (size_t i = 0; i < sizeof(b); i++)
        b[i] = (unsigned char)(v[i / 8] >> (8 * (i % 8)));
    EVP_DigestUpdate(md, b, sizeof(b));
}

/* SHA-256 of a member table: n index members (ix) or gzip writer members. */
static bool digest_table(const void *members, size_t n, bool ix, unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++) {
        if (ix) {
            const struct ck_ix_member *m = (const struct ck_ix_member *)members + i;
            digest_member(md, m->in_off, m->out_off, m->in_len, m->out_len, m->crc32, m->crc64);
        } else {
            const struct ck_gzw_member *m = (const struct ck_gzw_member *)members + i;
            digest_member(md, m->in_off, m->out_off, m->in_len, m->out_len, m->crc32, m->crc64);
        }
    }
    unsigned len = 0;
    ok = ok && EVP_DigestFinal_ex(md, out, &len) && len == 32;
    EVP_MD_CTX_free(md);
    return ok;
}

/* The member starting at in_off (members sorted by in_off), or n. */
static size_t member_at(const struct ck_gzw_member *m, size_t n, uint64_t in_off)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m[mid].in_off < in_off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && m[lo].in_off == in_off ? lo : n;
}

/* Gives f the members that hold exactly its padded data; false if none do. */
static bool place_file(struct ck_known_file *f, const struct ck_gzw_member *m, size_t n)
{
    uint64_t end = f->data_off + ck_pack_padded(f->size);
    size_t j = member_at(m, n, f->data_off), i = j;
    while (i < n && m[i].in_off < end)
        i++;
    if (j == n || i == j || m[i - 1].in_off + m[i - 1].in_len != end)
        return false;
    f->first = j;
    f->count = i - j;
    return true;
}

static int cmp_inode(const void *x, const void *y)
{
    const struct ck_known_file *a = x, *b = y;
    if (a->dev != b->dev)
        return a->dev < b->dev ? -1 : 1;
    return a->ino < b->ino ? -1 : a->ino > b->ino;
}

ck_rc ck_known_seal(struct ck_known *k, const struct ck_gzw_member *m, size_t n, struct ck_err *err)
{
    size_t kept = 0;
    for (size_t i = 0; i < k->n; i++)
        if (place_file(&k->files[i], m, n))
            k->files[kept++] = k->files[i];
    k->n = kept;
    if (!k->n)
        return CK_OK; /* nothing to leave unread next time */
    qsort(k->files, k->n, sizeof(*k->files), cmp_inode);
    if (!digest_table(m, n, false, k->digest))
        return ck_fail(err, CK_ENOMEM, "save: cannot digest the member table");
    return CK_OK;
}

void ck_known_keep(struct ck_known *k,
                   bool (*unchanged)(void *ctx, dev_t dev, ino_t ino, uint64_t seq), void *ctx)
{
    size_t kept = 0;
    for (size_t i = 0; i < k->n; i++)
        if (unchanged(ctx, k->files[i].dev, k->files[i].ino, k->seq))
            k->files[kept++] = k->files[i];
    k->n = kept;
}

bool ck_known_matches(const struct ck_known *k, const struct ck_seek_index *ix)
{
    unsigned char d[32];
    return k->n > 0 && digest_table(ix->members, ix->nmembers, true, d) &&
           memcmp(d, k->digest, sizeof(d)) == 0;
}

const struct ck_known_file *ck_known_find(const struct ck_known *k, const struct ck_pack_entry *e)
{
    struct ck_known_file key = {.dev = e->dev, .ino = e->ino};
    if (!k->n)
        return NULL;
    const struct ck_known_file *f = bsearch(&key, k->files, k->n, sizeof(key), cmp_inode);
    if (!f || f->size != e->size || f->mtime.tv_sec != e->mtime.tv_sec ||
        f->mtime.tv_nsec != e->mtime.tv_nsec)
        return NULL;
    return f;
}

void ck_known_free(struct ck_known *k)
{
    if (!k)
        return;
    free(k->files);
    free(k);
}
