/*
 * codec.h - the compression policy of a save (--compress auto|store|gzip-1..9).
 *
 * Whatever the policy, the output is an ordinary gzip stream that every reader in SPEC 3
 * accepts: "store" writes stored deflate blocks (no compression, ~0.01% overhead), "gzip-N"
 * deflates at level N, "auto" picks per block and never makes data bigger.
 */
#ifndef CK_ARCHIVE_CODEC_H
#define CK_ARCHIVE_CODEC_H

#include <stdbool.h>

enum ck_codec_kind {
    CK_CODEC_AUTO = 0,
    CK_CODEC_STORE,
    CK_CODEC_GZIP,
};

struct ck_codec {
    enum ck_codec_kind kind;
    int level; /* 1..9, meaningful for CK_CODEC_GZIP */
};

/* Parses "auto", "store", "gzip-1" .. "gzip-9". Returns false for anything else. */
bool ck_codec_parse(const char *s, struct ck_codec *out);

/* Writes the canonical name of c into buf ("gzip-6"). */
const char *ck_codec_name(const struct ck_codec *c, char *buf, unsigned len);

#endif
