//! The environ of one request: the interpreter's template copied, the request's CGI
//! variables, mod_wsgi's per-process counters, and the request's own objects.

use crate::exchange::Exchange;
use crate::ffi::input_type;
use crate::ffi::interp::Py;
use crate::ffi::object::{Obj, PyResult};
use crate::interpreters::InterpData;
use rwsgi_core::AppRequest;
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

static TOTAL_REQUESTS: AtomicU64 = AtomicU64::new(0);
static NEXT_THREAD_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// (mod_wsgi.thread_id, requests this thread served before).
    static THREAD: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// mod_wsgi's per-process counters: thread id, requests by this thread and by the process.
fn counters() -> (u64, u64, u64) {
    let total = TOTAL_REQUESTS.fetch_add(1, Ordering::Relaxed);
    THREAD.with(|t| {
        let (mut id, n) = t.get();
        if id == 0 {
            id = NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed);
        }
        t.set((id, n + 1));
        crate::metrics::started(id);
        (id, n, total)
    })
}

pub(super) fn build_environ(
    py: Py<'_>,
    data: &InterpData,
    req: &AppRequest,
    ex: &Arc<Exchange>,
    errors: &Obj,
) -> PyResult<(Obj, u64)> {
    let (thread_id, thread_requests, total) = counters();
    let scheme: &[u8] = if req.https { b"https" } else { b"http" };
    let vars = || (req.environ.iter()).chain([("wsgi.url_scheme", scheme)]);
    // SAFETY: an address the application may pass to C code (as mod_wsgi gives it); rwsgi
    // never dereferences it.
    let request_rec = (req.request_rec).map(|r| unsafe { Obj::opaque_capsule(py, r) });
    let objects = [
        ("mod_wsgi.thread_id", Obj::int(py, thread_id as i64)?),
        (
            "mod_wsgi.thread_requests",
            Obj::int(py, thread_requests as i64)?,
        ),
        ("mod_wsgi.total_requests", Obj::int(py, total as i64)?),
        (
            "wsgi.input",
            input_type::new(py, &data.input_class.get(py), ex)?,
        ),
        ("wsgi.errors", errors.clone()),
        (
            "apache.request_rec",
            request_rec.transpose()?.unwrap_or(Obj::none(py)),
        ),
    ];
    let objects = &objects[..objects.len() - usize::from(req.request_rec.is_none())];
    let env = (data.template.get(py)).dict_copy_with_room(py, req.environ.len() + 8)?;
    let strings = &data.environ_strings;
    let filled = strings.try_with(py, |s| {
        s.fill(py, &env, vars())?;
        s.fill_objects(py, &env, req.environ.len() + 1, objects)
    });
    match filled {
        Some(filled) => filled?,
        // (only if code run by `fill` let another thread in: fresh objects, as before)
        None => {
            for (k, v) in vars() {
                env.dict_set(&Obj::str(py, k)?, &Obj::latin1(py, v)?)?;
            }
            for (k, v) in objects {
                env.dict_set(&Obj::str(py, k)?, v)?;
            }
        }
    }
    Ok((env, thread_id))
}
