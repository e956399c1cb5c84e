/* fuzz_seek_index.c - the seek index of a ckptfs archive (ck_ix_parse_locator, then
 * ck_ix_decode on the bytes the locator points at, then lookups), on hostile bytes. The
 * input plays the object: its tail is the locator, its body the index members. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "archive/seek_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < CK_IX_LOCATOR_LEN)
        return 0;
    struct ck_ix_locator loc;
    struct ck_err err = {0};
    const unsigned char *tail = data + size - CK_IX_LOCATOR_LEN;
    if (ck_ix_parse_locator(tail, CK_IX_LOCATOR_LEN, size, &loc, &err) != CK_OK)
        return 0;
    if (loc.index_off > size || loc.index_len > size - loc.index_off)
        abort(); /* the locator was accepted but points outside the object */
    struct ck_seek_index ix;
    memset(&ix, 0, sizeof(ix));
    if (ck_ix_decode(data + loc.index_off, (size_t)loc.index_len, &loc, &ix, &err) != CK_OK)
        return 0;
    for (uint64_t off = 0; off < ix.tar_size && off < (1u << 20); off += 4093)
        (void)ck_ix_member_at(&ix, off);
    ck_ix_free(&ix);
    return 0;
}
