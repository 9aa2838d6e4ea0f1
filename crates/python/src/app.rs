//! Loading WSGI scripts: any file path (not only `.py`) is compiled and run as a module named
//! `_mod_wsgi_<md5 of the path>`, cached in `sys.modules`, and re-loaded when its modification
//! time changes (WSGIScriptReloading), as mod_wsgi does in embedded mode.

use super::ffi::interp::{Interpreter, Py, without_gil};
use super::ffi::object::{
    Obj, Raised, builtins, eval_code, exc, module_dict, new_module, raise, sys_modules,
};
use super::interpreters::compile_bytes;
use md5::{Digest, Md5};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pub fn module_name(path: &str) -> String {
    let digest = Md5::digest(path.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("_mod_wsgi_{hex}")
}

thread_local! {
    /// Script path -> module name, so the digest is computed once per thread and script (and
    /// handed out without a heap copy per request).
    static NAMES: RefCell<HashMap<String, Rc<str>>> = RefCell::new(HashMap::new());
}

fn cached_module_name(path: &str) -> Rc<str> {
    NAMES.with(|n| {
        let mut n = n.borrow_mut();
        if let Some(v) = n.get(path) {
            return v.clone();
        }
        let v: Rc<str> = module_name(path).into();
        n.insert(path.to_string(), v.clone());
        v
    })
}

fn loaded_mtime(module: &Obj) -> Option<i64> {
    module_dict(module)
        .dict_get_str("__mtime__")
        .and_then(|m| m.to_i64().ok())
}

/// Returns the script's module, loading (or re-loading) it if needed. Called attached.
/// Why a script could not be loaded (a Python exception is pending in both cases).
#[derive(Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Unreadable file or syntax error.
    Compile,
    /// The script raised while running.
    Exec,
}

/// Returns the script's module, loading (or re-loading) it if needed. Called attached.
/// `resource`: the requested file, for the script's optional `reload_required(resource)`
/// (asked before each request while reloading is on; true re-imports the script).
pub fn load(
    py: Py<'_>,
    interp: &Interpreter,
    path: &str,
    mtime: i64,
    reload: bool,
    resource: Option<&str>,
) -> Result<Obj, LoadError> {
    let r = load_inner(py, interp, path, mtime, reload, resource).map_err(|(e, Raised)| e);
    startup::record(r.is_ok());
    r
}

/// Whether this process ever loaded a WSGI script (daemon mode's startup-timeout restarts a
/// process whose scripts keep failing to load, e.g. Django started while its database was
/// down: Django cannot be set up twice in one process).
pub mod startup {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    static LOADED: AtomicBool = AtomicBool::new(false);
    static FIRST_FAILURE: Mutex<Option<Instant>> = Mutex::new(None);

    pub(super) fn record(ok: bool) {
        if ok {
            LOADED.store(true, Ordering::Relaxed);
        } else if !LOADED.load(Ordering::Relaxed) {
            FIRST_FAILURE
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(Instant::now);
        }
    }

    /// When loading first failed, if no load has succeeded since the process started.
    pub fn failing_since() -> Option<Instant> {
        if LOADED.load(Ordering::Relaxed) {
            return None;
        }
        *FIRST_FAILURE.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn load_inner(
    py: Py<'_>,
    interp: &Interpreter,
    path: &str,
    mtime: i64,
    reload: bool,
    resource: Option<&str>,
) -> Result<Obj, (LoadError, Raised)> {
    use LoadError::{Compile, Exec};
    let name = cached_module_name(path);
    let modules = sys_modules(py);
    // `__mtime__` is set only once the script ran to completion: a module another thread is
    // still executing is in sys.modules (as with any import) but not ready to serve.
    let fresh = |m: &Obj| match loaded_mtime(m) {
        Some(t) => !reload || t == mtime,
        None => false,
    };
    match modules.dict_get_str(&name).filter(|m| fresh(m)) {
        Some(m) if !(reload && asks_reload(py, &m, resource)) => return Ok(m),
        Some(_) => {
            // Dropped, so that the check below under the load lock loads it again.
            modules.dict_del_str(&name);
        }
        None => {}
    }
    // One thread loads while the others wait (detached, so the loader can run).
    let _guard = without_gil(|| interp.load_lock.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(m) = modules.dict_get_str(&name).filter(|m| fresh(m)) {
        return Ok(m);
    }
    let source = without_gil(|| std::fs::read(path)).map_err(|e| {
        (
            Compile,
            raise(
                exc::os_error(),
                &format!("cannot read WSGI script '{path}': {e}"),
            ),
        )
    })?;
    let code = compile_bytes(py, &source, path).map_err(|r| (Compile, r))?;
    let exec = |r| (Exec, r);
    let module = new_module(py, &name).map_err(exec)?;
    let dict = module_dict(&module);
    dict.dict_set_str(c"__file__", &Obj::str(py, path).map_err(exec)?)
        .map_err(exec)?;
    dict.dict_set_str(c"__builtins__", &builtins(py))
        .map_err(exec)?;
    modules
        .dict_set(&Obj::str(py, &name).map_err(exec)?, &module)
        .map_err(exec)?;
    if let Err(e) = eval_code(&code, &dict) {
        modules.dict_del_str(&name);
        return Err((Exec, e));
    }
    dict.dict_set_str(c"__mtime__", &Obj::int(py, mtime).map_err(exec)?)
        .map_err(exec)?;
    Ok(module)
}

/// The script's own `reload_required(resource)`, if it has one (an exception in it is
/// printed and counts as no).
fn asks_reload(py: Py<'_>, module: &Obj, resource: Option<&str>) -> bool {
    let Some(resource) = resource else {
        return false;
    };
    let Some(f) = module_dict(module).dict_get_str("reload_required") else {
        return false;
    };
    let answer = Obj::str(py, resource).and_then(|r| f.call(&[&r]));
    match answer {
        Ok(v) => v.is_true().unwrap_or_else(|Raised| {
            drop(super::ffi::object::Pending::fetch());
            false
        }),
        Err(Raised) => {
            if let Some(p) = super::ffi::object::Pending::fetch() {
                for line in p.format() {
                    super::transport::server_log(rwsgi_core::Level::Error, &line);
                }
            }
            false
        }
    }
}

/// True when `path` is loaded in this interpreter from a file with another modification
/// time (daemon mode restarts the process instead of re-importing, as mod_wsgi does).
pub fn loaded_from_other_version(py: Py<'_>, path: &str, mtime: i64) -> bool {
    sys_modules(py)
        .dict_get_str(&cached_module_name(path))
        .and_then(|m| loaded_mtime(&m))
        .is_some_and(|t| t != mtime)
}

#[cfg(test)]
mod tests {
    #[test]
    fn module_names_are_md5_of_path() {
        assert_eq!(
            super::module_name("/srv/app.wsgi"),
            "_mod_wsgi_295f8766fc4bd953ab4cd252da58a6a3"
        );
    }
}
