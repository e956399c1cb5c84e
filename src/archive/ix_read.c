/* ix_read.c - reading an archive's data through its seek index; see ix_read.h. */
#include "archive/ix_read.h"

#include <stdlib.h>
#include <string.h>

#include <isa-l/igzip_lib.h>

ck_rc ck_ix_inflate_member(const struct ck_ix_member *m, const unsigned char *in,
                           unsigned char *out, struct ck_err *err)
{
    struct inflate_state st;
    isal_inflate_init(&st);
    st.crc_flag = ISAL_GZIP;
    st.next_in = (uint8_t *)in;
    st.avail_in = m->out_len;
    st.next_out = out;
    st.avail_out = m->in_len;
    int r = isal_inflate(&st);
    if (r != ISAL_DECOMP_OK || st.block_state != ISAL_BLOCK_FINISH || st.total_out != m->in_len ||
        st.avail_in != 0)
        return ck_fail(err, CK_ECORRUPT, "archive member at byte %llu does not decompress (%s)",
                       (unsigned long long)m->out_off,
                       r == ISAL_INCORRECT_CHECKSUM ? "checksum mismatch" : "bad data");
    return CK_OK;
}

/* Members first..last (their compressed bytes from in) inflated, e's bytes of them copied
 * to out. */
static ck_rc inflate_entry(const struct ck_seek_index *ix, const struct ck_ix_entry *e,
                           size_t first, size_t last, const unsigned char *in, char *out,
                           struct ck_err *err)
{
    const struct ck_ix_member *m0 = &ix->members[first];
    ck_rc rc = CK_OK;
    for (size_t i = first; !rc && i <= last; i++) {
        const struct ck_ix_member *m = &ix->members[i];
        unsigned char *buf = malloc(m->in_len ? m->in_len : 1);
        rc = buf ? ck_ix_inflate_member(m, in + (m->out_off - m0->out_off), buf, err)
                 : ck_fail(err, CK_ENOMEM, "%s: out of memory", e->name);
        uint64_t a = m->in_off > e->data_off ? m->in_off : e->data_off;
        uint64_t b = m->in_off + m->in_len < e->data_off + e->size ? m->in_off + m->in_len
                                                                   : e->data_off + e->size;
        if (!rc && b > a)
            memcpy(out + (a - e->data_off), buf + (a - m->in_off), (size_t)(b - a));
        free(buf);
    }
    return rc;
}

ck_rc ck_ix_read_entry(const struct ck_seek_index *ix, ck_ix_read_fn read, void *ctx,
                       const char *where, const char *name, size_t max, char **out, size_t *len,
                       struct ck_err *err)
{
    const struct ck_ix_entry *e = NULL;
    for (size_t i = 0; i < ix->nentries && !e; i++)
        if (ix->entries[i].type == CK_IX_FILE && strcmp(ix->entries[i].name, name) == 0)
            e = &ix->entries[i];
    if (!e)
        return CK_ENOTFOUND;
    if (e->size > max)
        return ck_fail(err, CK_EHOSTILE, "%s%s: %llu bytes, more than the %zu expected", where,
                       name, (unsigned long long)e->size, max);
    char *buf = calloc(1, (size_t)e->size + 1);
    if (!buf)
        return ck_fail(err, CK_ENOMEM, "%s%s: out of memory", where, name);
    ck_rc rc = CK_OK;
    if (e->size > 0) {
        size_t first = ck_ix_member_at(ix, e->data_off);
        size_t last = ck_ix_member_at(ix, e->data_off + e->size - 1);
        const struct ck_ix_member *m0 = &ix->members[first], *m1 = &ix->members[last];
        unsigned char *in = NULL;
        rc = read(ctx, m0->out_off, (size_t)(m1->out_off + m1->out_len - m0->out_off), &in, err);
        if (!rc)
            rc = inflate_entry(ix, e, first, last, in, buf, err);
        free(in);
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = (size_t)e->size;
    return CK_OK;
}
