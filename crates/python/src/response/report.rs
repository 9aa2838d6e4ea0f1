//! What a request says in the error log besides its own lines: the application's exception
//! with the script's context, WSGISlowRequests, and hop-by-hop headers it sent.

use super::interpreters;
use super::pid;
use crate::exchange::Exchange;
use crate::ffi::object::Pending;
use rwsgi_core::AppRequest;
use rwsgi_core::Level;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// Logs the pending Python exception with the script's context, then its traceback (a
/// SystemExit too, with mod_wsgi's "ignored" line: the process goes on).
pub(super) fn log_exception(log: &dyn Fn(Level, &str), script: &str, what: &str) {
    let pending = Pending::fetch();
    let first = if pending.as_ref().is_some_and(Pending::is_system_exit) {
        format!(
            "rwsgi (pid={}): SystemExit exception raised by WSGI script '{script}' ignored.",
            pid()
        )
    } else {
        format!("rwsgi (pid={}): {} '{}'.", pid(), what, script)
    };
    log(Level::Error, &first);
    if let Some(p) = pending {
        for line in p.format() {
            log(Level::Error, &line);
        }
    }
}

/// WSGISlowRequests (mod_wsgi 6 sends these to its telemetry service; rwsgi logs them): a
/// request that took longer is logged with its path (no query string: it may hold secrets,
/// and mod_wsgi strips it too) and where the time went.
pub(super) fn log_if_slow(ex: &Exchange, req: &AppRequest, started: std::time::Instant) {
    let Some(limit) = interpreters::slow_request_time() else {
        return;
    };
    let took = started.elapsed().as_secs_f64();
    if took < limit {
        return;
    }
    let var =
        |k: &str| String::from_utf8_lossy(req.environ.get(k).unwrap_or_default()).into_owned();
    let (_, _, input_time, _, _, output_time) = ex.io_stats();
    // The process's log, not the request's: in a daemon process the response has already
    // ended, and with it the Apache side's relaying of this request's log lines.
    crate::transport::server_log(
        Level::Warn,
        &format!(
            "rwsgi (pid={}, process='{}', application='{}'): slow request: {} {} took {took:.3}s (over {limit}s): {input_time:.3}s reading the request body, {output_time:.3}s writing the response, the rest in the application; WSGI script '{}'.",
            pid(),
            req.process_group,
            req.application_group,
            var("REQUEST_METHOD"),
            var("REQUEST_URI").split('?').next().unwrap_or_default(),
            req.script
        ),
    );
}

/// One warning per application and header name: the application keeps working (mod_wsgi
/// passes these headers on; PEP 3333 forbids them), and the log is not flooded.
pub(super) fn warn_dropped_headers(ex: &Exchange, log: &dyn Fn(Level, &str), script: &str) {
    static WARNED: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());
    let dropped = ex.dropped_headers();
    if dropped.is_empty() {
        return;
    }
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    let new: Vec<String> = dropped
        .into_iter()
        .filter(|d| warned.insert((script.to_string(), d.to_ascii_lowercase())))
        .collect();
    if !new.is_empty() {
        log(
            Level::Warn,
            &format!(
                "rwsgi (pid={}): WSGI script '{script}' sent hop-by-hop response header(s) {}, which PEP 3333 forbids; they are dropped (Connection: close is honoured). Logged once per application.",
                pid(),
                new.join(", ")
            ),
        );
    }
}
