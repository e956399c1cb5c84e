/*
 * s3_multipart.h - one S3 multipart upload with parts in flight (internal to src/store/).
 *
 * ck_s3_mpu_start() sends CreateMultipartUpload and starts `parallel` worker threads. The
 * writer (one thread: the store upload's user) fills part buffers and hands them over with
 * ck_s3_mpu_submit(); each worker hashes its part (SHA-256, signed as the payload hash and
 * sent as x-amz-checksum-sha256) and sends it with ck_s3_perform(), which retries that
 * part alone. Memory is bounded: at most parallel + 1 part buffers exist (the writer's
 * included), and fewer once parts grow (their size doubles every 1,000 parts so that any
 * object fits in 10,000): buffers x part size stays within CK_S3_PART_MEMORY, with a
 * floor of two buffers (one filling, one uploading), so only objects beyond ~250 GB, whose
 * parts exceed 64 MiB, use more (two parts). ck_s3_mpu_take_buffer() blocks while all
 * are busy, which is the back-pressure on put_write.
 *
 * ck_s3_mpu_complete() waits for the workers, checks that every part succeeded, that the
 * parts are numbered 1..N with no gap, that their sizes add up to the bytes written and
 * that every checksum the server returned equals the one sent, then sends
 * CompleteMultipartUpload (a "200 OK" carrying an <Error> is a failure). Any failure, and
 * ck_s3_mpu_abort(), sends AbortMultipartUpload (retried), so no failed upload is left
 * open; the object appears only when Complete succeeds.
 *
 * Locking: one mutex per upload (mpu->lock) protects the queue, the free buffers, the part
 * results and the failure state; it is never held during network I/O and no other lock is
 * taken under it.
 */
#ifndef CK_STORE_S3_MULTIPART_H
#define CK_STORE_S3_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "store/s3.h"

#define CK_S3_PART_MEMORY (128u << 20) /* part buffers of one upload, at most (see above) */

struct ck_s3_mpu;

/* CreateMultipartUpload + workers. The writer's current buffer counts against the bound
 * of parallel + 1 buffers from now on. */
ck_rc ck_s3_mpu_start(struct ck_s3 *s3, unsigned parallel, struct ck_s3_mpu **out,
                      struct ck_err *err);

/* Hands buf (malloc'd, capacity cap, len bytes used) over as the next part; ownership
 * passes to the upload whatever the result. Fails with the first part failure, if any. */
ck_rc ck_s3_mpu_submit(struct ck_s3_mpu *m, char *buf, size_t len, size_t cap, struct ck_err *err);

/* A buffer of at least size bytes for the writer to fill (owned by the writer until
 * submitted); blocks while parallel + 1 buffers are in use. */
ck_rc ck_s3_mpu_take_buffer(struct ck_s3_mpu *m, size_t size, char **buf, size_t *cap,
                            struct ck_err *err);

/* The number the next submitted part gets (1-based). */
unsigned ck_s3_mpu_next_part(const struct ck_s3_mpu *m);

/* Waits, verifies against total bytes, completes; aborts on failure. Frees m. */
ck_rc ck_s3_mpu_complete(struct ck_s3_mpu *m, uint64_t total, struct ck_err *err);

/* Uploads of the store's key other than keep (may be NULL) were left by a killed daemon or
 * by a retried CreateMultipartUpload whose first reply was lost: lists and aborts them, so
 * no interrupted save leaves parts behind. Called after every save (one ListMultipartUploads
 * request); ckptfs assumes one writer per destination key. Failures are only logged. */
void ck_s3_sweep_uploads(struct ck_s3 *s3, const char *keep);

/* Stops the workers (parts in flight are not retried further) and aborts. Frees m. */
void ck_s3_mpu_abort(struct ck_s3_mpu *m);

#endif
