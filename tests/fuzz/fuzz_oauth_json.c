/* fuzz_oauth_json.c - the JSON replies of OAuth token endpoints (Google's token URI and
 * STS, the GCE metadata server, IAM generateAccessToken, Entra ID, Azure IMDS) and of
 * their errors on hostile text. A token taken must be a printable word inside its buffer
 * with a lifetime within a year of the request; a refused reply leaves no token behind;
 * an error name is a short printable word or "". */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000.0

static void check_msg(ck_rc rc, const struct ck_err *err)
{
    if (err->rc != rc)
        abort();
    const char *end = memchr(err->msg, '\0', sizeof(err->msg));
    if (!end)
        abort();
    for (const char *p = err->msg; p < end; p++) {
        if ((unsigned char)*p < 0x20)
            abort(); /* messages go to .status and the log on one line */
    }
}

static void check_token(ck_rc rc, const struct ck_oauth_token *t, const struct ck_err *err)
{
    const char *end = memchr(t->value, '\0', sizeof(t->value));
    if (!end)
        abort();
    if (rc != CK_OK) {
        for (size_t i = 0; i < sizeof(t->value); i++) {
            if (t->value[i])
                abort(); /* a refused reply's token is wiped */
        }
        check_msg(rc, err);
        return;
    }
    if (end == t->value)
        abort();
    for (const char *p = t->value; p < end; p++) {
        if (*p <= 0x20 || *p >= 0x7f)
            abort(); /* it goes into an Authorization header */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CK_OAUTH_REPLY_MAX)
        return 0;
    const char *text = (const char *)data;
    struct ck_oauth_token t;
    struct ck_err err = {0};

    /* expires_in: token URI, STS, metadata server, Entra ID, IMDS */
    memset(&t, 'X', sizeof(t));
    ck_rc rc = ck_oauth_parse_token(text, size, "fuzz", "access_token", NULL, NOW, &t, &err);
    check_token(rc, &t, &err);
    if (rc == CK_OK && !(t.expires_wall >= NOW && t.expires_wall <= NOW + 366.0 * 86400))
        abort();

    /* expireTime (RFC 3339): IAM generateAccessToken */
    memset(&t, 'X', sizeof(t));
    rc = ck_oauth_parse_token(text, size, "fuzz", "accessToken", "expireTime", NOW, &t, &err);
    check_token(rc, &t, &err);
    if (rc == CK_OK && !isfinite(t.expires_wall))
        abort();

    /* error replies: {"error":"invalid_grant"} or Google's {"error":{"status":..}} */
    static const size_t caps[] = {64, 8};
    for (size_t i = 0; i < sizeof(caps) / sizeof(*caps); i++) {
        char name[64];
        memset(name, 'X', sizeof(name));
        ck_oauth_error_name(text, size, name, caps[i]);
        const char *end = memchr(name, '\0', caps[i]);
        if (!end)
            abort();
        for (const char *p = name; p < end; p++) {
            if (*p <= 0x20 || *p >= 0x7f)
                abort();
        }
    }
    return 0;
}
