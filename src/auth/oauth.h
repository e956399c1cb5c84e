/*
 * oauth.h - what the Google and Azure credential providers share: one token request to an
 * OAuth 2.0 endpoint (token URL, STS, metadata server, IMDS) with a capped reply, the
 * token reply's fields, form bodies, and a cached bearer token refreshed before it expires.
 *
 * Replies are untrusted: at most CK_OAUTH_REPLY_MAX bytes, read with the strict JSON reader
 * of util/json_read.h; a token must be printable ASCII without spaces. An error reply's "error"
 * (and Google's "error.status" / Azure's "error_codes") is shown, never the body itself.
 * Tokens, assertions and client secrets never appear in a message or the log.
 */
#ifndef CK_AUTH_OAUTH_H
#define CK_AUTH_OAUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "net/http.h"
#include "net/retry.h"
#include "util/buf.h"
#include "util/err.h"

#define CK_OAUTH_REPLY_MAX    (64 * 1024)
#define CK_OAUTH_TOKEN_MAX    8192
#define CK_OAUTH_REFRESH_S    300.0 /* refresh when fewer seconds than this remain */
#define CK_OAUTH_META_TRIES   2     /* metadata servers: short timeouts, two attempts */
#define CK_OAUTH_META_CONNECT 1.0

/* A bearer token and when it expires (seconds since the epoch; 0 = never). */
struct ck_oauth_token {
    char value[CK_OAUTH_TOKEN_MAX];
    double expires_wall;
};

/* One request to a token endpoint. Pointers are borrowed for the call. */
struct ck_oauth_call {
    enum ck_http_method method; /* GET or POST */
    const char *url;            /* may not hold secrets in its query (it is shown without) */
    const char *headers[4];     /* "Name: value", NULL-terminated; may hold secrets */
    const char *body;           /* POST body or NULL */
    size_t body_len;
    const char *what; /* names the call in messages: "GCE metadata server" */
    bool metadata;    /* link-local service: CK_OAUTH_META_* timeouts and attempts */
    struct ck_retry_policy retry;
    double connect_timeout_s;
};

/* Runs call; the 2xx reply body lands in reply (initialised here with CK_OAUTH_REPLY_MAX;
 * the caller frees it with ck_oauth_reply_free, which zeroes it). On failure the message
 * is "WHAT: METHOD URL: HTTP 400 Bad Request: invalid_grant". */
ck_rc ck_oauth_perform(const struct ck_oauth_call *call, struct ck_buf *reply, struct ck_err *err);
void ck_oauth_reply_free(struct ck_buf *reply);

/* A token from a cloud's metadata service (GCE, Azure IMDS): a GET of url with one header
 * ("Metadata: true"), its reply's access_token and expires_in. */
ck_rc ck_oauth_metadata_token(const char *url, const char *header, const char *what,
                              const struct ck_retry_policy *retry, struct ck_oauth_token *out,
                              struct ck_err *err);

/* Reads a token reply: the string member token_key ("access_token", "accessToken") and the
 * lifetime: expires_in (seconds, number or digit string) when expiry_key is NULL, else an
 * RFC 3339 time in expiry_key ("expireTime"). now is the wall clock of the request. */
ck_rc ck_oauth_parse_token(const char *json, size_t len, const char *what, const char *token_key,
                           const char *expiry_key, double now, struct ck_oauth_token *out,
                           struct ck_err *err);

/* The name of an OAuth error reply (len bytes of body): its "error" string, or Google's
 * {"error":{"status":..}}; a printable word under 64 bytes, else "" (out has outlen bytes). */
void ck_oauth_error_name(const char *body, size_t len, char *out, size_t outlen);

/* POSTs the form (built with ck_oauth_form_add; form_rc is the result of building it) to
 * url and reads "access_token" from the reply: the token request of OAuth's grant types
 * (JWT bearer, token exchange, client credentials). Frees the form (it may hold secrets). */
ck_rc ck_oauth_post_form(const char *url, struct ck_buf *form, ck_rc form_rc, const char *what,
                         const struct ck_retry_policy *retry, double connect_timeout_s, double now,
                         struct ck_oauth_token *out, struct ck_err *err);

/* Appends "name=value" (with '&' first unless b is empty), value form-encoded. */
ck_rc ck_oauth_form_add(struct ck_buf *b, const char *name, const char *value);

/* Reads a small secret file (a projected token, a key file): regular file, at most max
 * bytes, trailing white space removed. *out is malloc'd; free it with ck_oauth_secret_free. */
ck_rc ck_oauth_read_file(const char *path, size_t max, const char *what, char **out,
                         struct ck_err *err);
void ck_oauth_secret_free(char *s);

/* A cached bearer token. fetch gets a fresh one; it runs with lock held (one refresh at a
 * time; others wait for it rather than send a token about to expire). */
typedef ck_rc (*ck_oauth_fetch_fn)(void *ctx, struct ck_oauth_token *out, struct ck_err *err);

struct ck_oauth_cache {
    pthread_mutex_t lock;
    ck_oauth_fetch_fn fetch; /* set at init, read-only */
    void *ctx;
    struct ck_oauth_token cur; /* protected by lock */
    bool have;                 /* protected by lock */
};

void ck_oauth_cache_init(struct ck_oauth_cache *c, ck_oauth_fetch_fn fetch, void *ctx);
void ck_oauth_cache_destroy(struct ck_oauth_cache *c); /* zeroes the token */

/* Copies a token valid for more than CK_OAUTH_REFRESH_S into out (outlen bytes), fetching
 * one first if needed. If a refresh fails while the current token is still valid, that one
 * is used (and the failure logged as a warning). */
ck_rc ck_oauth_cache_get(struct ck_oauth_cache *c, char *out, size_t outlen, struct ck_err *err);

#endif
