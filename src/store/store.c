/*
 * store.c - the store interface: backend dispatch and the thin ck_store_* wrappers; see
 * store.h. Backends live in store_<name>.c and are reached only through their ops table.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "store/backend.h"
#include "store/cloud.h"
#include "store/uri.h"

void ck_store_env_default(struct ck_store_env *env)
{
    ck_retry_policy_default(&env->retry);
    env->stall_timeout_s = 30;
    env->connect_timeout_s = 10;
    env->no_sign_request = false;
    env->part_memory = 0;
    env->spool_dir = NULL;
}

ck_rc ck_store_open(const char *uri, const struct ck_store_env *env, struct ck_store **out,
                    struct ck_err *err)
{
    struct ck_uri u;
    *out = NULL;
    ck_rc rc = ck_uri_parse(uri, &u, err);
    if (rc)
        return rc;
    static const struct ck_cloud_ops *const clouds[] = {
        [CK_URI_S3] = &ck_s3_cloud_ops,
        [CK_URI_GCS] = &ck_gcs_cloud_ops,
        [CK_URI_AZURE] = &ck_azure_cloud_ops,
    };
    if (u.kind == CK_URI_FILE)
        rc = ck_store_file_open(&u, env, out, err);
    else if (u.kind == CK_URI_HTTP)
        rc = ck_store_http_open(&u, env, out, err);
    else
        rc = ck_cloud_open(clouds[u.kind], &u, env, out, err);
    ck_uri_free(&u);
    return rc;
}

void ck_store_close(struct ck_store *s)
{
    if (s)
        s->ops->destroy(s);
}

ck_rc ck_store_head(struct ck_store *s, struct ck_store_info *info, struct ck_err *err)
{
    info->exists = false;
    info->size = 0;
    info->etag[0] = '\0';
    info->version[0] = '\0';
    info->mark[0] = '\0';
    return s->ops->head(s, info, err);
}

ck_rc ck_store_get(struct ck_store *s, uint64_t off, uint64_t len, const struct ck_sink *sink,
                   struct ck_err *err)
{
    if (len != CK_STORE_TO_END && len > UINT64_MAX - off)
        return ck_fail(err, CK_EINVAL, "GET %s: range [%llu, +%llu) overflows", s->display_uri,
                       (unsigned long long)off, (unsigned long long)len);
    return s->ops->get(s, off, len, sink, err);
}

ck_rc ck_store_put_begin(struct ck_store *s, const struct ck_put_opts *opts,
                         struct ck_store_upload **out, struct ck_err *err)
{
    static const struct ck_put_opts defaults = {
        .replayable = false, .size = CK_STORE_SIZE_UNKNOWN, .pass = 0, .if_absent = false};
    *out = NULL;
    return s->ops->put_begin(s, opts ? opts : &defaults, out, err);
}

ck_rc ck_store_put_write(struct ck_store_upload *u, const void *buf, size_t len, struct ck_err *err)
{
    if (len == 0)
        return CK_OK;
    ck_rc rc = u->store->ops->put_write(u, buf, len, err);
    if (rc == CK_OK)
        u->bytes += len;
    return rc;
}

ck_rc ck_store_check_source(const struct ck_copy_src *src, struct ck_err *err)
{
    struct ck_store_info info;
    ck_rc rc = ck_store_head(src->store, &info, err);
    if (rc || !src->version || !src->version[0])
        return rc;
    const char *now = info.version[0] ? info.version : info.etag;
    if (!info.exists || strcmp(now, src->version) != 0)
        return ck_fail(err, CK_EEXIST, "copying from %s: the source changed (version %s, %s)",
                       src->store->display_uri, src->version,
                       info.exists ? "another one now" : "gone now");
    return CK_OK;
}

bool ck_store_copies_from(struct ck_store *dst, struct ck_store *src)
{
    const struct ck_store_ops *ops = dst->ops;
    return ops->put_copy && src->ops == ops && (!ops->copies_from || ops->copies_from(dst, src));
}

/* The range read with get and written, the source's version checked before and after. */
static ck_rc copy_through(struct ck_store_upload *u, const struct ck_copy_src *src,
                          struct ck_err *err)
{
    uint64_t before = u->bytes;
    struct ck_sink sink = ck_store_upload_sink(u);
    ck_rc rc = ck_store_check_source(src, err);
    if (!rc && src->len > 0)
        rc = ck_store_get(src->store, src->off, src->len, &sink, err);
    if (!rc && u->bytes - before != src->len)
        rc = ck_fail(err, CK_ECORRUPT, "GET %s: %llu bytes of a %llu-byte range",
                     src->store->display_uri, (unsigned long long)(u->bytes - before),
                     (unsigned long long)src->len);
    if (!rc)
        rc = ck_store_check_source(src, err);
    return rc;
}

ck_rc ck_store_put_copy(struct ck_store_upload *u, const struct ck_copy_src *src, bool *server_side,
                        struct ck_err *err)
{
    *server_side = false;
    const struct ck_store_ops *ops = u->store->ops;
    if (src->len > 0 && ops->put_copy && src->store->ops == ops) {
        struct ck_err tried;
        ck_err_clear(&tried);
        ck_rc rc = ops->put_copy(u, src, &tried);
        if (rc == CK_OK) {
            u->bytes += src->len;
            *server_side = true;
            return CK_OK;
        }
        if (rc != CK_EUNSUPPORTED) {
            *err = tried;
            return rc;
        }
    }
    return copy_through(u, src, err);
}

ck_rc ck_store_put_commit(struct ck_store_upload *u, struct ck_err *err)
{
    return u->store->ops->put_commit(u, err);
}

void ck_store_put_abort(struct ck_store_upload *u)
{
    if (u)
        u->store->ops->put_abort(u);
}

static ck_rc upload_sink_write(void *ctx, const void *buf, size_t len, struct ck_err *err)
{
    return ck_store_put_write(ctx, buf, len, err);
}

struct ck_sink ck_store_upload_sink(struct ck_store_upload *u)
{
    struct ck_sink s = {upload_sink_write, u};
    return s;
}

/* One GET of the whole source into a new upload of the destination. */
static ck_rc copy_pass(struct ck_store *src, uint64_t size, struct ck_store *dst,
                       const struct ck_put_opts *opts, struct ck_err *err)
{
    struct ck_store_upload *up;
    ck_rc rc = ck_store_put_begin(dst, opts, &up, err);
    if (rc)
        return rc;
    struct ck_sink sink = ck_store_upload_sink(up);
    rc = ck_store_get(src, 0, CK_STORE_TO_END, &sink, err);
    if (!rc && up->bytes != size)
        rc = ck_fail(err, CK_ECORRUPT, "GET %s: %llu bytes, %llu expected", src->display_uri,
                     (unsigned long long)up->bytes, (unsigned long long)size);
    if (rc) {
        ck_store_put_abort(up);
        return rc;
    }
    return ck_store_put_commit(up, err);
}

/* GET streamed into a PUT; the source is read again when the destination asks for a
 * replay (store.h). */
static ck_rc copy_streamed(struct ck_store *src, uint64_t size, struct ck_store *dst,
                           struct ck_err *err)
{
    struct ck_put_opts opts = {.replayable = true, .size = size, .pass = 0};
    for (;; opts.pass++) {
        ck_rc rc = copy_pass(src, size, dst, &opts, err);
        if (rc != CK_EREPLAY)
            return rc;
        if (opts.pass + 1 >= CK_STORE_MAX_PASSES)
            return ck_fail(err, CK_ENET,
                           "PUT %s: still asked to send the object again after "
                           "%u passes",
                           dst->display_uri, CK_STORE_MAX_PASSES);
        ck_err_clear(err);
    }
}

ck_rc ck_store_delete(struct ck_store *s, struct ck_err *err)
{
    if (!s->ops->del)
        return ck_fail(err, CK_EUNSUPPORTED, "DELETE %s: this store has no delete", s->display_uri);
    ck_rc rc = s->ops->del(s, err);
    if (rc == CK_ENOTFOUND) { /* nothing was there: deleted all the same */
        ck_err_clear(err);
        rc = CK_OK;
    }
    return rc;
}

ck_rc ck_store_copy(struct ck_store *src, uint64_t size, struct ck_store *dst, bool *server_side,
                    struct ck_err *err)
{
    *server_side = false;
    if (src->ops == dst->ops && dst->ops->copy_from) {
        struct ck_err tried;
        ck_err_clear(&tried);
        ck_rc rc = dst->ops->copy_from(dst, src, size, &tried);
        if (rc == CK_OK) {
            *server_side = true;
            return CK_OK;
        }
        if (rc != CK_EUNSUPPORTED) {
            *err = tried;
            return rc;
        }
    }
    return copy_streamed(src, size, dst, err);
}

/* The sink of ck_store_get_mem: at most cap bytes into buf. */
struct mem_sink {
    unsigned char *buf;
    size_t len, cap;
};

static ck_rc mem_write(void *ctx, const void *p, size_t n, struct ck_err *err)
{
    struct mem_sink *m = ctx;
    if (n > m->cap - m->len)
        return ck_fail(err, CK_ECORRUPT, "the store sent more bytes than asked for");
    memcpy(m->buf + m->len, p, n);
    m->len += n;
    return CK_OK;
}

ck_rc ck_store_get_mem(struct ck_store *s, uint64_t off, size_t len, unsigned char **out,
                       struct ck_err *err)
{
    struct mem_sink m = {malloc(len ? len : 1), 0, len};
    if (!m.buf)
        return ck_fail(err, CK_ENOMEM, "GET %s: no memory for %zu bytes", ck_store_uri(s), len);
    struct ck_sink sink = {mem_write, &m};
    ck_rc rc = len ? ck_store_get(s, off, len, &sink, err) : CK_OK;
    if (!rc && m.len != len)
        rc = ck_fail(err, CK_ECORRUPT, "GET %s: %zu of %zu bytes", ck_store_uri(s), m.len, len);
    if (rc) {
        free(m.buf);
        return rc;
    }
    *out = m.buf;
    return CK_OK;
}

ck_rc ck_store_read_mem(void *store, uint64_t off, size_t len, unsigned char **out,
                        struct ck_err *err)
{
    return ck_store_get_mem(store, off, len, out, err);
}
