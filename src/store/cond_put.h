/*
 * cond_put.h - conditional replaces (store.h "Conditional replaces"), the same for S3, GCS
 * and Azure (internal to src/store/).
 *
 * put_begin copies the expected version (ck_put_opts .if_match is borrowed); the
 * committing request (single PUT, CompleteMultipartUpload, Put Block List) carries it as
 * the store's precondition header. When that request fails, the failure may be ours to
 * settle: a refusal (412) after a retry may have met our own earlier attempt's object, and
 * a lost reply may hide a success. One HEAD decides: the object we made (recognised by its
 * ETag or its upload's mark: settle.h) is success; the expected object still there leaves the
 * failure as it was; anything else (another object, or none where one was expected) is
 * CK_EEXIST "the object changed since it was read". A store that refused the precondition
 * (412) although the expected object is there does not honour it (radosgw refuses every
 * If-Match on PUT): CK_EUNSUPPORTED, and the caller may commit without the condition.
 */
#ifndef CK_STORE_COND_PUT_H
#define CK_STORE_COND_PUT_H

#include <stdbool.h>

#include "store/settle.h"
#include "store/store.h"

struct ck_cond {
    bool on;           /* a conditional replace */
    char version[128]; /* head()'s version of the object expected at commit; "": none */
};

/* Copies opts' expectation (none when opts->if_match is NULL). CK_EINVAL if it is too
 * long to be a version. */
ck_rc ck_cond_init(struct ck_cond *c, const struct ck_put_opts *opts, const char *uri,
                   struct ck_err *err);

/* The values of the If-Match and If-None-Match headers (S3, Azure) that carry c: the
 * version, or "*" for "no object"; each NULL when not sent. A put that is not conditional
 * leaves them as they are (a create-only put sets If-None-Match itself). */
void ck_cond_values(const struct ck_cond *c, const char **if_match, const char **if_none_match);

/* The precondition as "Name: value" for messages: "If-Match: V" or "If-None-Match: *";
 * with gcs, "x-goog-if-generation-match: V" (0 for none). */
void ck_cond_describe(const struct ck_cond *c, bool gcs, char *out, size_t cap);

/* After the committing request of a conditional put failed with rc (err holds its
 * message): see the top comment. id names the new object as far as it is known;
 * refused: the server answered 412 (the precondition failed). */
ck_rc ck_cond_settle(struct ck_store *s, const struct ck_cond *c, bool gcs,
                     const struct ck_commit_id *id, bool refused, ck_rc rc, struct ck_err *err);

#endif
