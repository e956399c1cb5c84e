/*
 * sink.h - a consumer of a byte stream.
 *
 * Producers (a download, the tar writer, the gzip encoder) push bytes into a sink; a sink
 * that cannot take them returns an error and fills err, and the producer stops. The sink
 * does not own ctx.
 */
#ifndef CK_UTIL_SINK_H
#define CK_UTIL_SINK_H

#include <stddef.h>

#include "util/err.h"

struct ck_sink {
    ck_rc (*write)(void *ctx, const void *buf, size_t len, struct ck_err *err);
    void *ctx;
};

static inline ck_rc ck_sink_write(const struct ck_sink *s, const void *buf, size_t len,
                                  struct ck_err *err)
{
    return s->write(s->ctx, buf, len, err);
}

#endif
