//! The C-level functions Python code calls: `start_response`, `write`, and the primitives the
//! bootstrap module's `Log` class is built on. Each one converts its arguments,
//! catches panics (none may unwind into Python) and calls safe code in `wsgi::exchange`.

use super::interp::Py;
use super::object::{Obj, PyResult, Raised, exc, raise};
use crate::exchange::{self, Exchange};
use pyo3_ffi as ffi;
use std::ffi::{CStr, c_void};
use std::sync::{Arc, OnceLock};

const CAPSULE: &CStr = c"rwsgi.exchange";

/// Wraps an exchange for Python; the capsule owns one Arc reference.
pub fn capsule(_py: Py<'_>, ex: &Arc<Exchange>) -> PyResult<Obj> {
    rwsgi_core::entry! {
        unsafe extern "C" fn destroy(cap: *mut ffi::PyObject) [on panic: ()] {
            // SAFETY: the pointer was produced by Arc::into_raw in `capsule`.
            unsafe {
                let p = ffi::PyCapsule_GetPointer(cap, CAPSULE.as_ptr());
                if !p.is_null() {
                    drop(Arc::from_raw(p.cast::<Exchange>()));
                }
            }
        }
    }
    let raw = Arc::into_raw(ex.clone());
    // SAFETY: the capsule takes the reference; `destroy` gives it back.
    let cap = unsafe { ffi::PyCapsule_New(raw as *mut c_void, CAPSULE.as_ptr(), Some(destroy)) };
    // SAFETY: a new reference or NULL; attached (the token).
    unsafe { Obj::owned(cap) }.inspect_err(|_| {
        // SAFETY: capsule creation failed, so we still own the reference.
        drop(unsafe { Arc::from_raw(raw) });
    })
}

/// The exchange behind a capsule (a new Arc reference), or a TypeError.
fn exchange_of(cap: *mut ffi::PyObject) -> PyResult<Arc<Exchange>> {
    // SAFETY: PyCapsule_GetPointer checks the capsule's name (sets an exception otherwise);
    // the pointer is a live Arc<Exchange> owned by the capsule.
    unsafe {
        let p = ffi::PyCapsule_GetPointer(cap, CAPSULE.as_ptr()).cast::<Exchange>();
        if p.is_null() {
            return Err(Raised);
        }
        Arc::increment_strong_count(p);
        Ok(Arc::from_raw(p))
    }
}

fn finish(r: PyResult<Obj>) -> *mut ffi::PyObject {
    match r {
        Ok(o) => o.into_ptr(),
        Err(Raised) => std::ptr::null_mut(),
    }
}

/// What a native function returns when its body panicked: a Python SystemError.
fn panicked() -> *mut ffi::PyObject {
    // SAFETY: static built-in exception type.
    raise(
        unsafe { ffi::PyExc_SystemError },
        "rwsgi: internal error (panic) in native function",
    );
    std::ptr::null_mut()
}

/// The body of a native function: CPython calls it attached.
fn run(f: impl FnOnce(Py<'_>) -> PyResult<Obj>) -> *mut ffi::PyObject {
    // SAFETY: CPython calls native functions with the calling thread attached.
    finish(f(unsafe { Py::assume() }))
}

fn args(args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t) -> Vec<Obj> {
    let n = (nargs as usize) & !(1usize << (usize::BITS - 1)); // strip PY_VECTORCALL_ARGUMENTS_OFFSET
    // SAFETY: CPython passes `n` valid borrowed argument pointers.
    (0..n)
        .filter_map(|i| unsafe { Obj::borrowed(*args.add(i)) })
        .collect()
}

rwsgi_core::entry! {
    unsafe extern "C" fn start_response(
        slf: *mut ffi::PyObject,
        a: *const *mut ffi::PyObject,
        nargs: ffi::Py_ssize_t,
        kwnames: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        run(|_py| {
            let ex = exchange_of(slf)?;
            let mut v = args(a, nargs);
            let npos = v.len();
            let mut exc_info = None;
            if !kwnames.is_null() {
                // SAFETY: keyword values follow the positional ones in `a`; names are a tuple.
                let kw = unsafe { Obj::borrowed(kwnames) }.expect("kwnames");
                for i in 0..kw.size()? {
                    let name = kw
                        .seq_item(i)
                        .map(|n| n.to_str())
                        .transpose()?
                        .unwrap_or_default();
                    // SAFETY: see above.
                    let val = unsafe { Obj::borrowed(*a.add(npos + i)) }.expect("kw value");
                    match name.as_str() {
                        "exc_info" => exc_info = Some(val),
                        "status" if v.is_empty() => v.push(val),
                        "headers" if v.len() == 1 => v.push(val),
                        _ => {
                            return Err(raise(
                                exc::type_error(),
                                &format!(
                                    "start_response() got an unexpected keyword argument '{name}'"
                                ),
                            ));
                        }
                    }
                }
            }
            if v.len() == 3 && exc_info.is_none() {
                exc_info = v.pop();
            }
            if v.len() != 2 {
                return Err(raise(
                    exc::type_error(),
                    "start_response() takes status, response_headers and optional exc_info",
                ));
            }
            exchange::start_response(&ex, &v[0], &v[1], exc_info.filter(|e| !e.is_none()))?;
            write_callable(slf)
        })
    }
}

rwsgi_core::entry! {
    unsafe extern "C" fn write(
        slf: *mut ffi::PyObject,
        a: *mut *mut ffi::PyObject,
        n: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        run(|py| {
            let ex = exchange_of(slf)?;
            let v = args(a.cast_const(), n);
            let [data] = v.as_slice() else {
                return Err(raise(
                    exc::type_error(),
                    "write() takes exactly one argument",
                ));
            };
            exchange::write(&ex, data)?;
            Ok(Obj::none(py))
        })
    }
}

rwsgi_core::entry! {
    unsafe extern "C" fn log(
        _m: *mut ffi::PyObject,
        a: *mut *mut ffi::PyObject,
        n: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        run(|py| {
            let v = args(a.cast_const(), n);
            let [cap, text] = v.as_slice() else {
                return Err(raise(exc::type_error(), "_log(handle, text)"));
            };
            let text = text.to_str()?;
            let ex = if cap.is_none() {
                None
            } else {
                Some(exchange_of(cap.as_ptr())?)
            };
            match exchange::log_line(ex.as_deref(), &text) {
                Ok(()) => Ok(Obj::none(py)),
                Err(e) => Err(raise(exc::runtime_error(), &e.to_string())),
            }
        })
    }
}

rwsgi_core::entry! {
    /// `mod_ssl.is_https()` and `mod_ssl.var_lookup(name)`, bound to the exchange capsule.
    unsafe extern "C" fn ssl_lookup(
        slf: *mut ffi::PyObject,
        a: *mut *mut ffi::PyObject,
        n: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        run(|py| {
            let ex = exchange_of(slf)?;
            let v = args(a.cast_const(), n);
            let name = match v.as_slice() {
                [] => None,
                [name] => Some(name.to_str()?),
                _ => return Err(raise(exc::type_error(), "var_lookup(name)")),
            };
            match ex.ssl(name.as_deref()) {
                Ok(exchange::SslAnswer::Https(b)) => Ok(Obj::bool(py, b)),
                Ok(exchange::SslAnswer::Var(Some(s))) => Obj::str(py, &s),
                Ok(exchange::SslAnswer::Var(None)) => Ok(Obj::none(py)),
                Err(e) => Err(raise(exc::runtime_error(), &e.to_string())),
            }
        })
    }
}

/// `(mod_ssl.is_https, mod_ssl.var_lookup)` for an environ, bound to the exchange capsule.
pub fn ssl_callables(cap: &Obj) -> PyResult<(Obj, Obj)> {
    Ok((
        function(SSL_LOOKUP, cap.as_ptr())?,
        function(SSL_LOOKUP, cap.as_ptr())?,
    ))
}

rwsgi_core::entry! {
    /// `_log_at(level, text)`: level is Apache's (2 crit .. 7 debug).
    unsafe extern "C" fn log_at(
        _m: *mut ffi::PyObject,
        a: *mut *mut ffi::PyObject,
        n: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        run(|py| {
            let v = args(a.cast_const(), n);
            let [level, text] = v.as_slice() else {
                return Err(raise(exc::type_error(), "_log_at(level, text)"));
            };
            let level = match level.to_i64()? {
                ..=2 => rwsgi_core::Level::Crit,
                3 => rwsgi_core::Level::Error,
                4 => rwsgi_core::Level::Warn,
                5 => rwsgi_core::Level::Notice,
                6 => rwsgi_core::Level::Info,
                _ => rwsgi_core::Level::Debug,
            };
            exchange::log_current(level, &text.to_str()?);
            Ok(Obj::none(py))
        })
    }

    /// `_counters()`: (requests completed, busy seconds, ((thread id, requests), ...)).
    unsafe extern "C" fn counters(
        _m: *mut ffi::PyObject,
        _a: *mut *mut ffi::PyObject,
        _n: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        run(|py| {
            let (total, busy, threads) = crate::metrics::counters();
            let threads = threads
                .into_iter()
                .map(|(id, n)| Obj::tuple(py, vec![Obj::int(py, id as i64)?, Obj::int(py, n as i64)?]))
                .collect::<PyResult<Vec<_>>>()?;
            Obj::tuple(
                py,
                vec![Obj::int(py, total as i64)?, Obj::float(py, busy)?, Obj::tuple(py, threads)?],
            )
        })
    }

    /// `_metrics_snapshot()`: the sample since the previous call (see metrics::take_sample).
    unsafe extern "C" fn metrics_snapshot(
        _m: *mut ffi::PyObject,
        _a: *mut *mut ffi::PyObject,
        _n: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        run(|py| {
            let (sample, started) = crate::metrics::take_sample();
            let (count, totals, buckets, per_thread) = sample.parts();
            let ints = |xs: &[u64]| -> PyResult<Obj> {
                Obj::tuple(py, xs.iter().map(|&x| Obj::int(py, x as i64)).collect::<PyResult<_>>()?)
            };
            let mut items = vec![Obj::int(py, count as i64)?];
            for t in totals {
                items.push(Obj::float(py, t)?);
            }
            items.push(Obj::tuple(
                py,
                buckets.iter().map(|b| ints(b)).collect::<PyResult<_>>()?,
            )?);
            items.push(ints(per_thread)?);
            items.push(Obj::int(py, started as i64)?);
            Obj::tuple(py, items)
        })
    }
}

/// The scoreboard as mod_wsgi's server_metrics() dict.
fn scoreboard_dict(py: Py<'_>, sb: &rwsgi_core::scoreboard::Scoreboard) -> PyResult<Obj> {
    let d = Obj::new_dict(py)?;
    let int = |v: i64| Obj::int(py, v);
    d.dict_set_str(c"server_limit", &int(sb.server_limit as i64)?)?;
    d.dict_set_str(c"thread_limit", &int(sb.thread_limit as i64)?)?;
    d.dict_set_str(c"running_generation", &int(sb.running_generation as i64)?)?;
    d.dict_set_str(c"restart_time", &Obj::float(py, sb.restart_time)?)?;
    d.dict_set_str(c"current_time", &Obj::float(py, sb.current_time)?)?;
    let running = (sb.current_time - sb.restart_time).max(0.0) as i64;
    d.dict_set_str(c"running_time", &int(running)?)?;
    let mut processes = Vec::new();
    for p in &sb.processes {
        let pd = Obj::new_dict(py)?;
        pd.dict_set_str(c"process_num", &int(p.process_num as i64)?)?;
        pd.dict_set_str(c"pid", &int(p.pid as i64)?)?;
        pd.dict_set_str(c"generation", &int(p.generation as i64)?)?;
        pd.dict_set_str(c"quiescing", &Obj::bool(py, p.quiescing))?;
        let mut workers = Vec::new();
        for w in &p.workers {
            let wd = Obj::new_dict(py)?;
            wd.dict_set_str(c"thread_num", &int(w.thread_num as i64)?)?;
            wd.dict_set_str(c"generation", &int(w.generation as i64)?)?;
            wd.dict_set_str(c"status", &Obj::str(py, &w.status.to_string())?)?;
            wd.dict_set_str(c"access_count", &int(w.access_count as i64)?)?;
            wd.dict_set_str(c"bytes_served", &int(w.bytes_served as i64)?)?;
            wd.dict_set_str(c"start_time", &Obj::float(py, w.start_time)?)?;
            wd.dict_set_str(c"stop_time", &Obj::float(py, w.stop_time)?)?;
            wd.dict_set_str(c"last_used", &Obj::float(py, w.last_used)?)?;
            wd.dict_set_str(c"client", &Obj::str(py, &w.client)?)?;
            wd.dict_set_str(c"request", &Obj::str(py, &w.request)?)?;
            wd.dict_set_str(c"vhost", &Obj::str(py, &w.vhost)?)?;
            workers.push(wd);
        }
        pd.dict_set_str(c"workers", &Obj::list(py, workers)?)?;
        processes.push(pd);
    }
    d.dict_set_str(c"processes", &Obj::list(py, processes)?)?;
    Ok(d)
}

rwsgi_core::entry! {
    /// `_scoreboard()`: server_metrics()'s dict, or None without a scoreboard to read.
    unsafe extern "C" fn scoreboard(
        _m: *mut ffi::PyObject,
        _a: *mut *mut ffi::PyObject,
        _n: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        run(|py| match crate::metrics::scoreboard() {
            Some(sb) => scoreboard_dict(py, &sb),
            None => Ok(Obj::none(py)),
        })
    }
}

struct Defs(Vec<ffi::PyMethodDef>);
// SAFETY: the definitions are immutable after creation and point to 'static strings.
unsafe impl Sync for Defs {}
unsafe impl Send for Defs {}

static DEFS: OnceLock<Defs> = OnceLock::new();

// Positions in `defs()`.
const START_RESPONSE: usize = 0;
const WRITE: usize = 1;
const LOG: usize = 2;
const SSL_LOOKUP: usize = 3;
const LOG_AT: usize = 4;
const COUNTERS: usize = 5;
const METRICS_SNAPSHOT: usize = 6;
const SCOREBOARD: usize = 7;

fn def(name: &'static CStr, f: ffi::PyMethodDefPointer, flags: i32) -> ffi::PyMethodDef {
    ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: f,
        ml_flags: flags,
        ml_doc: std::ptr::null(),
    }
}

fn defs() -> &'static [ffi::PyMethodDef] {
    &DEFS
        .get_or_init(|| {
            Defs(vec![
                def(
                    c"start_response",
                    ffi::PyMethodDefPointer {
                        PyCFunctionFastWithKeywords: start_response,
                    },
                    ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
                ),
                def(
                    c"write",
                    ffi::PyMethodDefPointer {
                        PyCFunctionFast: write,
                    },
                    ffi::METH_FASTCALL,
                ),
                def(
                    c"_log",
                    ffi::PyMethodDefPointer {
                        PyCFunctionFast: log,
                    },
                    ffi::METH_FASTCALL,
                ),
                def(
                    c"ssl_lookup",
                    ffi::PyMethodDefPointer {
                        PyCFunctionFast: ssl_lookup,
                    },
                    ffi::METH_FASTCALL,
                ),
                def(
                    c"_log_at",
                    ffi::PyMethodDefPointer {
                        PyCFunctionFast: log_at,
                    },
                    ffi::METH_FASTCALL,
                ),
                def(
                    c"_counters",
                    ffi::PyMethodDefPointer {
                        PyCFunctionFast: counters,
                    },
                    ffi::METH_FASTCALL,
                ),
                def(
                    c"_metrics_snapshot",
                    ffi::PyMethodDefPointer {
                        PyCFunctionFast: metrics_snapshot,
                    },
                    ffi::METH_FASTCALL,
                ),
                def(
                    c"_scoreboard",
                    ffi::PyMethodDefPointer {
                        PyCFunctionFast: scoreboard,
                    },
                    ffi::METH_FASTCALL,
                ),
            ])
        })
        .0
}

fn function(index: usize, slf: *mut ffi::PyObject) -> PyResult<Obj> {
    let d = &defs()[index];
    // SAFETY: the method definition is 'static; PyCMethod_New keeps a reference to `slf`.
    unsafe {
        Obj::owned(ffi::PyCMethod_New(
            (d as *const ffi::PyMethodDef).cast_mut(),
            slf,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        ))
    }
}

/// A new `start_response` callable bound to the exchange capsule.
pub fn start_response_callable(cap: &Obj) -> PyResult<Obj> {
    function(START_RESPONSE, cap.as_ptr())
}

fn write_callable(cap: *mut ffi::PyObject) -> PyResult<Obj> {
    function(WRITE, cap)
}

/// The module-level primitives (`_read`, `_readline`, `_log`) for the bootstrap module.
pub fn module_functions() -> PyResult<Vec<(&'static CStr, Obj)>> {
    Ok(vec![
        (c"_log", function(LOG, std::ptr::null_mut())?),
        (c"_log_at", function(LOG_AT, std::ptr::null_mut())?),
        (c"_counters", function(COUNTERS, std::ptr::null_mut())?),
        (
            c"_metrics_snapshot",
            function(METRICS_SNAPSHOT, std::ptr::null_mut())?,
        ),
        (c"_scoreboard", function(SCOREBOARD, std::ptr::null_mut())?),
    ])
}
