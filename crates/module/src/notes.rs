//! The request notes rwsgi sets when it maps a URL (translate_name) and reads when it serves
//! the request (handler): `WSGIScriptAlias` options travel between the two hooks this way, as
//! in mod_wsgi.

/// Set when WSGIScriptAlias mapped the URL: the script runs without `Options ExecCGI`.
pub const ALIAS_FORCED_TYPE: &str = "alias-forced-type";
pub const PROCESS_GROUP: &str = "mod_wsgi.process_group";
pub const APPLICATION_GROUP: &str = "mod_wsgi.application_group";
pub const CALLABLE_OBJECT: &str = "mod_wsgi.callable_object";
/// `"1"` or `"0"`: see [`flag`] / [`is_set`].
pub const PASS_AUTHORIZATION: &str = "mod_wsgi.pass_authorization";

pub fn flag(v: bool) -> &'static str {
    if v { "1" } else { "0" }
}

pub fn is_set(v: &str) -> bool {
    v == "1"
}
