/* Functions over APR/httpd macros that bindgen cannot bind. Nothing else lives here: the module
 * structure, command table and every hook are Rust (src/apache). All messages are passed as a
 * "%s" argument, never as a format string. */
#include "wrapper.h"

#define HIDDEN __attribute__((visibility("hidden")))

HIDDEN void rwsgi_brigade_insert_tail(apr_bucket_brigade *bb, apr_bucket *b)
{
    APR_BRIGADE_INSERT_TAIL(bb, b);
}

HIDDEN void rwsgi_bucket_insert_after(apr_bucket *a, apr_bucket *b)
{
    APR_BUCKET_INSERT_AFTER(a, b);
}

HIDDEN int rwsgi_brigade_empty(apr_bucket_brigade *bb)
{
    return APR_BRIGADE_EMPTY(bb);
}

HIDDEN int rwsgi_brigade_ends_with_eos(apr_bucket_brigade *bb)
{
    return !APR_BRIGADE_EMPTY(bb) && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(bb));
}

HIDDEN void rwsgi_log_rerror(const char *file, int line, int module_index, int level,
                             apr_status_t status, const request_rec *r, const char *msg)
{
    ap_log_rerror_(file, line, module_index, level, status, r, "%s", msg);
}

HIDDEN void rwsgi_log_error(const char *file, int line, int module_index, int level,
                            apr_status_t status, const server_rec *s, const char *msg)
{
    ap_log_error_(file, line, module_index, level, status, s, "%s", msg);
}

HIDDEN void *rwsgi_get_module_config(void *const *vector, int module_index)
{
    return vector[module_index];
}

HIDDEN void rwsgi_set_module_config(void **vector, int module_index, void *val)
{
    vector[module_index] = val;
}

APR_DECLARE_OPTIONAL_FN(int, ssl_is_https, (conn_rec *));

HIDDEN int rwsgi_is_https(conn_rec *c)
{
    APR_OPTIONAL_FN_TYPE(ssl_is_https) *fn = APR_RETRIEVE_OPTIONAL_FN(ssl_is_https);
    return fn != NULL && c != NULL && fn(c);
}

APR_DECLARE_OPTIONAL_FN(char *, ssl_var_lookup,
                        (apr_pool_t *, server_rec *, conn_rec *, request_rec *, char *));

/* Whether mod_ssl is loaded (its optional functions exist). */
HIDDEN int rwsgi_ssl_loaded(void)
{
    return APR_RETRIEVE_OPTIONAL_FN(ssl_var_lookup) != NULL;
}

/* mod_ssl's value of an SSL variable for the request, or NULL (no mod_ssl, no value). */
HIDDEN const char *rwsgi_ssl_var_lookup(request_rec *r, const char *name)
{
    APR_OPTIONAL_FN_TYPE(ssl_var_lookup) *fn = APR_RETRIEVE_OPTIONAL_FN(ssl_var_lookup);
    if (fn == NULL || r == NULL || name == NULL)
        return NULL;
    return fn(r->pool, r->server, r->connection, r, apr_pstrdup(r->pool, name));
}
