/* The Apache httpd / APR surface rwsgi binds with bindgen. Keep this list short: every header
 * here is API we depend on. Macro values bindgen cannot evaluate are exported as consts. */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_main.h>
#include <http_connection.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <ap_regex.h>
#include <util_script.h>
#include <util_filter.h>
#include <apr_strings.h>
#include <apr_buckets.h>
#include <apr_optional.h>
#include <apr_file_io.h>
#include <apr_portable.h>
#include <unixd.h>
#include <mod_auth.h>
#include <scoreboard.h>

const int rwsgi_mmn_major = MODULE_MAGIC_NUMBER_MAJOR;
const int rwsgi_mmn_minor = MODULE_MAGIC_NUMBER_MINOR;
const unsigned long rwsgi_magic_cookie = MODULE_MAGIC_COOKIE;

/* csrc/shim.c: APR/httpd macros turned into functions. */
void rwsgi_brigade_insert_tail(apr_bucket_brigade *bb, apr_bucket *b);
void rwsgi_bucket_insert_after(apr_bucket *a, apr_bucket *b);
int rwsgi_brigade_empty(apr_bucket_brigade *bb);
int rwsgi_brigade_ends_with_eos(apr_bucket_brigade *bb);
void rwsgi_log_rerror(const char *file, int line, int module_index, int level, apr_status_t status,
                      const request_rec *r, const char *msg);
void rwsgi_log_error(const char *file, int line, int module_index, int level, apr_status_t status,
                     const server_rec *s, const char *msg);
void *rwsgi_get_module_config(void *const *vector, int module_index);
void rwsgi_set_module_config(void **vector, int module_index, void *val);
int rwsgi_is_https(conn_rec *c);
int rwsgi_ssl_loaded(void);
const char *rwsgi_ssl_var_lookup(request_rec *r, const char *name);
