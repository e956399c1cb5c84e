/*
 * gzip_writer.h - compresses a byte stream into a gzip stream pushed into a sink.
 *
 * Owns its compression state; does not own the output sink. Usage: ck_gzw_new, any number
 * of ck_gzw_write, ck_gzw_finish (writes the trailer), ck_gzw_free. After an error the
 * writer only accepts ck_gzw_free.
 */
#ifndef CK_ARCHIVE_GZIP_WRITER_H
#define CK_ARCHIVE_GZIP_WRITER_H

#include <stdint.h>

#include "archive/codec.h"
#include "util/sink.h"

struct ck_gzw;

ck_rc ck_gzw_new(const struct ck_codec *codec, const struct ck_sink *out, struct ck_gzw **gz,
                 struct ck_err *err);
ck_rc ck_gzw_write(struct ck_gzw *gz, const void *buf, size_t len, struct ck_err *err);
ck_rc ck_gzw_finish(struct ck_gzw *gz, struct ck_err *err);
void ck_gzw_free(struct ck_gzw *gz);

uint64_t ck_gzw_bytes_in(const struct ck_gzw *gz);
uint64_t ck_gzw_bytes_out(const struct ck_gzw *gz);

/* A sink that feeds ck_gzw_write; ctx is gz. */
struct ck_sink ck_gzw_sink(struct ck_gzw *gz);

#endif
