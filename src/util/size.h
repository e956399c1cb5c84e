/*
 * size.h - byte sizes as people write them, for options and settings: "8388608", "512K",
 * "8M", "8MiB", "1G", "2T" (powers of 1024; K, M, G, T in either case, "iB" allowed).
 */
#ifndef CK_UTIL_SIZE_H
#define CK_UTIL_SIZE_H

#include <stdbool.h>
#include <stdint.h>

/* False for anything else (signs, spaces, fractions, overflow). */
bool ck_parse_size(const char *s, uint64_t *out);

#endif
