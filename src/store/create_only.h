/*
 * create_only.h - what the reply to a create-only PUT means, the same for S3, GCS and
 * Azure (internal to src/store/; the contract is store.h's "Create-only puts").
 *
 * The server checks and writes in one step (If-None-Match: *, x-goog-if-generation-match:
 * 0) and refuses when an object is there (412; Azure 409 BlobAlreadyExists). That refusal
 * is final only if it answered the first attempt: the HTTP engine sends a PUT again when
 * a reply is lost or is a 5xx, so a refusal after a retry may have met the object our own
 * earlier attempt made, and a failure that may have been applied (lost reply, 5xx after
 * the write) may have made it. Then the object is read back (it is small): our exact
 * bytes mean the put happened (success, logged); another object is CK_EEXIST; no object
 * leaves the failure as it was (a refusal then stays CK_EEXIST: an object was there).
 * Identical bytes from another writer cannot be told from ours: see store.h.
 */
#ifndef CK_STORE_CREATE_ONLY_H
#define CK_STORE_CREATE_ONLY_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

/* How a create-only PUT ended. */
struct ck_create_reply {
    ck_rc rc;              /* the PUT's result; err holds its message when not CK_OK */
    bool exists;           /* the server refused it because an object is there */
    unsigned attempts;     /* requests sent, over every retry and re-send */
    const char *condition; /* the precondition as sent ("If-None-Match: *"), for messages */
};

/* The put's result from r: CK_OK, CK_EEXIST ("PUT URI: an object is already there
 * (CONDITION)"), or r->rc with its message, or the error of the read that was to decide.
 * body and len are what the PUT sent. */
ck_rc ck_create_only_result(struct ck_store *s, const void *body, size_t len,
                            const struct ck_create_reply *r, struct ck_err *err);

/* Whether a failed commit request may still have been applied: not if the request was
 * refused as such (bad credentials, a malformed request), which leaves nothing done. */
bool ck_commit_maybe_applied(ck_rc rc);

#endif
