//! Where a running request is: the Python stack of one of the process's threads, taken on a
//! helper thread so that a watchdog waits a bounded time for the GIL.

use super::ffi::interp;
use super::ffi::object::{Obj, Raised};
use super::interpreters::{data, get};

/// The Python stack of thread `ident` in `group`'s interpreter, innermost call last, as
/// `traceback` prints it. `Err` says why there is none: the thread runs no Python code, or
/// the GIL was not free within `wait` (a thread holding it in C code: the caller is about to
/// restart the process and must not wait for it). Taken on a helper thread so that the
/// caller waits at most `wait`.
pub fn stack_of(group: &str, ident: u64, wait: std::time::Duration) -> Result<Vec<String>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let group = group.to_string();
    let spawned = rwsgi_core::guard::spawn("rwsgi-stack".into(), None, move || {
        let _ = tx.send(stack_now(&group, ident));
    });
    if let Err(e) = spawned {
        return Err(format!("no thread to take it ({e})"));
    }
    match rx.recv_timeout(wait) {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the GIL was not released within {:.0}s",
            wait.as_secs_f64()
        )),
    }
}

/// The error-log lines for one request's stack (or why there is none), each to be prefixed
/// with who logs it: one wording for every place that logs stacks.
pub fn report(request: &str, ident: u64, stack: Result<Vec<String>, String>) -> Vec<String> {
    match stack {
        Ok(lines) => std::iter::once(format!(
            "Python stack of request {request} (thread {ident}), most recent call last:"
        ))
        .chain(lines)
        .collect(),
        Err(why) => vec![format!("no Python stack for request {request}: {why}.")],
    }
}

/// The Python stack of thread `ident` in whichever of this process's interpreters it runs
/// (embedded mode: the page that asks does not know the request's application group).
pub fn stack_of_thread(ident: u64, wait: std::time::Duration) -> Result<Vec<String>, String> {
    let mut why = "Python is not running in this process".to_string();
    for group in interp::names() {
        match stack_of(&group, ident, wait) {
            Ok(lines) => return Ok(lines),
            Err(e) => why = e,
        }
    }
    Err(why)
}

fn stack_now(group: &str, ident: u64) -> Result<Vec<String>, String> {
    let i = get(group)?;
    let attached = interp::Attached::enter(&i);
    let py = attached.py();
    let lines = data(&i)
        .api
        .stack_of
        .get(py)
        .call(&[&Obj::int(py, ident as i64).map_err(|_| "int")?])
        .map_err(|Raised| {
            super::ffi::object::Pending::fetch()
                .map(|p| p.format().join(" "))
                .unwrap_or_default()
        })?;
    if lines.is_none() {
        return Err("the thread is not running Python code".into());
    }
    (0..lines.size().unwrap_or(0))
        .filter_map(|k| lines.seq_item(k))
        .map(|l| l.to_str().map_err(|Raised| "not text".to_string()))
        .collect()
}
