//! Python functions rwsgi calls that are not WSGI applications, in mod_wsgi's terms: a
//! dispatch script's `process_group` / `application_group` / `callable_object`, an auth user
//! script's `check_password` / `get_realm_hash`, an auth group script's `groups_for_user`, and
//! an access script's `allow_access`. Each is loaded like a WSGI script (same module name,
//! same reloading) in the interpreter its directive names, gets a plain dict environ with
//! `wsgi.errors` (which expires with the call), and its answer is checked with mod_wsgi's
//! wording for each mistake.

use super::app;
use super::exchange;
use super::ffi::interp::{Attached, Py};
use super::ffi::native;
use super::ffi::object::{Obj, Pending, PyResult, Raised, module_dict};
use super::interpreters;
use super::transport::{Logger, ResponseHead, SslView, Transport, TransportError};
use rwsgi_core::{Environ, Level};

/// Which script, in which interpreter, with which variables.
pub struct HookCall<'a> {
    pub script: &'a str,
    pub script_mtime: i64,
    pub reload: bool,
    /// Expanded application group ("" = the main interpreter).
    pub application_group: &'a str,
    /// The variables of the environ, as Apache has them (values are latin-1 decoded).
    pub environ: &'a Environ,
    /// `apache.request_rec` (WSGIPassApacheRequest On): the request_rec address.
    pub request_rec: Option<usize>,
    /// mod_ssl's view of the request (`mod_ssl.is_https`, `mod_ssl.var_lookup`).
    pub ssl: Option<&'a dyn SslView>,
    /// An auth provider's or access checker's environ: mod_wsgi gives these
    /// `mod_wsgi.script_reloading` as an int (the dispatch script gets the WSGI str).
    pub auth_environ: bool,
}

/// Why a hook gave no usable answer (the log says why).
#[derive(Debug, PartialEq, Eq)]
pub enum HookError {
    /// The script could not be loaded (missing, syntax error, raised on import).
    Load,
    /// The script has no function of that name.
    NoFunction,
    /// The function raised, or returned something of the wrong type.
    Failed,
}

/// What `check_password` / `get_realm_hash` answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Authn {
    /// `True`, or (check_password) a user name to use instead.
    Granted(Option<String>),
    Denied,
    /// `None`: the next provider is asked.
    UserNotFound,
    /// get_realm_hash: the digest hash.
    Hash(Vec<u8>),
}

/// `allow_access(environ, host)`.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    Allow,
    Deny,
    NoOpinion,
}

/// What a dispatch script decided (`None`: keep what the configuration says).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dispatch {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
}

fn pid() -> u32 {
    std::process::id()
}

/// Calls `func(environ, *args)` of the hook script; `answer` interprets the result while
/// still attached. Exceptions are logged with the script's context.
fn call<T>(
    hook: &HookCall<'_>,
    log: Logger<'_>,
    func: &str,
    args: &[&str],
    answer: impl FnOnce(Py<'_>, Obj, &dyn Fn(Level, &str)) -> Result<T, HookError>,
) -> Result<T, HookError> {
    let interp = match interpreters::get(hook.application_group) {
        Ok(i) => i,
        Err(e) => {
            log(Level::Error, &format!("rwsgi (pid={}): {e}", pid()));
            return Err(HookError::Load);
        }
    };
    let attached = Attached::enter_in_turn(&interp);
    let py = attached.py();
    let module = match app::load(
        py,
        &interp,
        hook.script,
        hook.script_mtime,
        hook.reload,
        None,
    ) {
        Ok(m) => m,
        Err(kind) => {
            let what = match kind {
                app::LoadError::Compile => "Could not read/compile source file",
                app::LoadError::Exec => "Failed to exec Python script file",
            };
            log(
                Level::Error,
                &format!("rwsgi (pid={}): {what} '{}'.", pid(), hook.script),
            );
            log_exception(&*log, hook.script);
            return Err(HookError::Load);
        }
    };
    let Some(function) = module_dict(&module).dict_get_str(func) else {
        return Err(HookError::NoFunction);
    };
    let data = interpreters::data(&interp);
    let (result, _) = exchange::scoped(Box::new(NoBody { ssl: hook.ssl }), log, Some(0), |ex| {
        let logger = |l: Level, m: &str| {
            let _ = ex.log(l, m);
        };
        let called = (|| -> PyResult<Obj> {
            let environ = hook_environ(py, hook, data, ex)?;
            let mut argv = vec![environ];
            for a in args {
                argv.push(Obj::str(py, a)?);
            }
            let refs: Vec<&Obj> = argv.iter().collect();
            let result = function.call(&refs);
            if let Some(errors) = argv[0].dict_get_str("wsgi.errors") {
                let _ = errors.call_method(c"flush", &[]);
            }
            result
        })();
        match called {
            Ok(v) => answer(py, v, &logger),
            Err(Raised) => {
                log_exception(&logger, hook.script);
                Err(HookError::Failed)
            }
        }
    });
    result
}

/// The hook's environ: the variables, `wsgi.errors` (bound to this call's exchange),
/// `mod_ssl.is_https` / `mod_ssl.var_lookup`, the version tuples, `apache.request_rec`.
fn hook_environ(
    py: Py<'_>,
    hook: &HookCall<'_>,
    data: &interpreters::InterpData,
    ex: &std::sync::Arc<exchange::Exchange>,
) -> PyResult<Obj> {
    let cap = native::capsule(py, ex)?;
    let errors = data.errors_factory.get(py).call(&[&cap])?;
    let environ = environ(py, hook, &errors)?;
    // As mod_wsgi gives these hooks (not WSGI applications): False / None without
    // mod_ssl.
    let (is_https, var_lookup) = native::ssl_callables(&cap)?;
    environ.dict_set_str(c"mod_ssl.is_https", &is_https)?;
    environ.dict_set_str(c"mod_ssl.var_lookup", &var_lookup)?;
    if hook.auth_environ {
        let n = i64::from(hook.reload);
        environ.dict_set_str(c"mod_wsgi.script_reloading", &Obj::int(py, n)?)?;
    }
    let template = data.template.get(py);
    for key in ["apache.version", "mod_wsgi.version"] {
        if let Some(v) = template.dict_get_str(key) {
            environ.dict_set(&Obj::str(py, key)?, &v)?;
        }
    }
    Ok(environ)
}

fn log_exception(log: &dyn Fn(Level, &str), script: &str) {
    log(
        Level::Error,
        &format!(
            "rwsgi (pid={}): Exception occurred processing WSGI script '{script}'.",
            pid()
        ),
    );
    if let Some(p) = Pending::fetch() {
        for line in p.format() {
            log(Level::Error, &line);
        }
    }
}

/// A hook returned a value of the wrong type: logged as mod_wsgi logs the TypeError it raises.
fn wrong_type(log: &dyn Fn(Level, &str), script: &str, what: &str) -> HookError {
    log(
        Level::Error,
        &format!(
            "rwsgi (pid={}): Exception occurred processing WSGI script '{script}'.",
            pid()
        ),
    );
    log(Level::Error, &format!("TypeError: {what}"));
    HookError::Failed
}

/// The plain dict mod_wsgi gives hooks: the variables, `wsgi.errors`, and
/// `apache.request_rec` when asked for.
fn environ(py: Py<'_>, hook: &HookCall<'_>, errors: &Obj) -> PyResult<Obj> {
    let env = Obj::new_dict(py)?;
    for (k, v) in hook.environ.iter() {
        env.dict_set(&Obj::str(py, k)?, &Obj::latin1(py, v)?)?;
    }
    env.dict_set_str(c"wsgi.errors", errors)?;
    if let Some(r) = hook.request_rec {
        // SAFETY: an opaque address for the application's own use (ctypes), as mod_wsgi
        // passes it; rwsgi never dereferences it.
        env.dict_set_str(c"apache.request_rec", &unsafe {
            Obj::opaque_capsule(py, r)
        }?)?;
    }
    Ok(env)
}

/// A string answer: str (latin-1) or bytes.
fn text(v: &Obj) -> Option<Vec<u8>> {
    if let Some(b) = v.as_bytes() {
        return Some(b.to_vec());
    }
    if v.is_str() {
        return match v.to_latin1() {
            Ok(b) => Some(b),
            Err(Raised) => {
                drop(Pending::fetch());
                None
            }
        };
    }
    None
}

fn is_true(py: Py<'_>, v: &Obj) -> bool {
    v.as_ptr() == Obj::bool(py, true).as_ptr()
}

fn is_false(py: Py<'_>, v: &Obj) -> bool {
    v.as_ptr() == Obj::bool(py, false).as_ptr()
}

/// `check_password(environ, user, password)`: True, False, None or a user name (str).
pub fn check_password(
    hook: &HookCall<'_>,
    log: Logger<'_>,
    user: &str,
    password: &str,
) -> Result<Authn, HookError> {
    call(
        hook,
        log,
        "check_password",
        &[user, password],
        |py, v, log| {
            if v.is_none() {
                Ok(Authn::UserNotFound)
            } else if is_true(py, &v) {
                Ok(Authn::Granted(None))
            } else if is_false(py, &v) {
                Ok(Authn::Denied)
            } else if v.is_str() {
                let name = v.to_str().map_err(|_| {
                    drop(Pending::fetch());
                    HookError::Failed
                })?;
                if name.is_empty() {
                    log(
                        Level::Error,
                        &format!(
                            "rwsgi (pid={}): Basic auth provider in '{}' returned an empty user name.",
                            pid(),
                            hook.script
                        ),
                    );
                    return Err(HookError::Failed);
                }
                Ok(Authn::Granted(Some(name)))
            } else {
                Err(wrong_type(
                    log,
                    hook.script,
                    &format!(
                        "Basic auth provider must return True, False, None or user name as string, not {}",
                        v.type_name()
                    ),
                ))
            }
        },
    )
}

/// `get_realm_hash(environ, user, realm)`: the MD5 hex of `user:realm:password`, or None.
pub fn get_realm_hash(
    hook: &HookCall<'_>,
    log: Logger<'_>,
    user: &str,
    realm: &str,
) -> Result<Authn, HookError> {
    call(
        hook,
        log,
        "get_realm_hash",
        &[user, realm],
        |_py, v, log| {
            if v.is_none() {
                return Ok(Authn::UserNotFound);
            }
            match text(&v) {
                Some(h) => Ok(Authn::Hash(h)),
                None => Err(wrong_type(
                    log,
                    hook.script,
                    &format!(
                        "Digest auth provider must return None or string object, not {}",
                        v.type_name()
                    ),
                )),
            }
        },
    )
}

/// `groups_for_user(environ, user)`: an iterable of str (latin-1) or bytes.
pub fn groups_for_user(
    hook: &HookCall<'_>,
    log: Logger<'_>,
    user: &str,
) -> Result<Vec<Vec<u8>>, HookError> {
    call(hook, log, "groups_for_user", &[user], |_py, v, log| {
        let bad = |detail: &str| {
            log(
                Level::Error,
                &format!(
                    "rwsgi (pid={}): Groups for user returned from '{}' must be an iterable sequence of byte strings{detail}.",
                    pid(),
                    hook.script
                ),
            );
            HookError::Failed
        };
        let iter = v.iter().map_err(|Raised| {
            let e = bad("");
            log_exception(log, hook.script);
            e
        })?;
        let mut groups = Vec::new();
        loop {
            match iter.next() {
                Ok(Some(item)) => {
                    if item.is_str() && item.to_latin1().is_err() {
                        drop(Pending::fetch());
                        return Err(bad(", value containing non 'latin-1' characters found"));
                    }
                    groups.push(text(&item).ok_or_else(|| bad(""))?);
                }
                Ok(None) => return Ok(groups),
                Err(Raised) => {
                    log_exception(log, hook.script);
                    return Err(HookError::Failed);
                }
            }
        }
    })
}

/// `allow_access(environ, host)`: True, False or None.
pub fn allow_access(hook: &HookCall<'_>, log: Logger<'_>, host: &str) -> Result<Access, HookError> {
    call(hook, log, "allow_access", &[host], |py, v, log| {
        if v.is_none() {
            Ok(Access::NoOpinion)
        } else if is_true(py, &v) {
            Ok(Access::Allow)
        } else if is_false(py, &v) {
            Ok(Access::Deny)
        } else {
            log(
                Level::Error,
                &format!(
                    "rwsgi (pid={}): Indicator of host accessibility returned from '{}' must be a boolean or None.",
                    pid(),
                    hook.script
                ),
            );
            Err(HookError::Failed)
        }
    })
}

/// The dispatch script's three optional functions, each `f(environ)` -> str, bytes or None.
/// A load failure is `Err(Load)` (mod_wsgi then serves the request as configured).
pub fn dispatch(hook: &HookCall<'_>, log: Logger<'_>) -> Result<Dispatch, HookError> {
    let mut out = Dispatch::default();
    let log = std::sync::Arc::new(log);
    for (func, what) in [
        ("process_group", "Process group must be a byte string"),
        (
            "application_group",
            "Application group must be a string object",
        ),
        ("callable_object", "Callable object must be a string object"),
    ] {
        let l = log.clone();
        let answer = call(
            hook,
            Box::new(move |lv, m| l(lv, m)),
            func,
            &[],
            |_py, v, log| {
                if v.is_none() {
                    return Ok(None);
                }
                match text(&v) {
                    Some(t) => Ok(Some(String::from_utf8_lossy(&t).into_owned())),
                    None => Err(wrong_type(log, hook.script, what)),
                }
            },
        );
        let value = match answer {
            Ok(v) => v,
            Err(HookError::NoFunction) => None,
            Err(e) => return Err(e),
        };
        match func {
            "process_group" => out.process_group = value,
            "application_group" => out.application_group = value,
            _ => out.callable_object = value,
        }
    }
    Ok(out)
}

/// The transport of a hook call: there is no body to read and no response to write; only
/// `wsgi.errors` (and mod_ssl's view of the request) is used.
struct NoBody<'a> {
    ssl: Option<&'a dyn SslView>,
}

impl Transport for NoBody<'_> {
    fn ssl(&self) -> Option<&dyn SslView> {
        self.ssl
    }
    fn read_body(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
    fn start(&mut self, _head: &ResponseHead) {}
    fn write(&mut self, _data: &[u8], _last: bool) -> Result<(), TransportError> {
        Err(TransportError::Closed)
    }
    fn send_file(&mut self, _fd: i32, _o: u64, _l: u64, _last: bool) -> Result<(), TransportError> {
        Err(TransportError::Closed)
    }
    fn finish(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
    fn abort(&mut self) {}
    fn is_head_request(&self) -> bool {
        false
    }
}
