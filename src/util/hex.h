/* hex.h - bytes as lower-case hex digits (digests in signatures, checksum headers). */
#ifndef CK_UTIL_HEX_H
#define CK_UTIL_HEX_H

#include <stddef.h>

/* Writes the n bytes at p as 2n lower-case hex digits and a NUL to out (2n + 1 bytes). */
void ck_hex_lower(const void *p, size_t n, char *out);

#endif
