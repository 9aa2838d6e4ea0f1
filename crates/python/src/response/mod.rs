//! Runs one request through an application: builds the environ, calls the application,
//! streams what it returns, and always calls the iterable's `close()`.

use super::app;

mod environ;
pub(crate) mod environ_strings;
mod file;
mod report;
use super::current;
use super::exchange::{self, Exchange};
use super::ffi::interp::{Attached, Interpreter, Py};
use super::ffi::native;
use super::ffi::object::{Obj, Pending, PyResult, Raised, exc, module_dict, raise};
use super::interpreters::{self, InterpData};
use super::life::Life;
use super::transport::{Logger, Transport, TransportError};
use environ::build_environ;
use file::try_sendfile;
use report::{log_exception, log_if_slow, warn_dropped_headers};
use rwsgi_core::AppRequest;
use rwsgi_core::Level;
use std::sync::Arc;

/// How the request ended, for the caller's HTTP status.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The response went out (completely, or broken off visibly for the client).
    Sent,
    /// Nothing was sent: answer 500 (the error is in the log).
    ServerError,
    /// The application ended with `mod_wsgi.RequestTimeout` before the response started:
    /// answer 504 (as mod_wsgi 6).
    TimedOut,
    /// [`NewerScript::HandBack`]: the file is newer than the script this interpreter runs;
    /// nothing ran and nothing was sent.
    ScriptChanged,
}

/// What a request does when WSGIScriptReloading finds the script file changed since this
/// interpreter loaded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewerScript {
    /// Import it again here (embedded mode).
    Reimport,
    /// Run nothing and say so ([`Outcome::ScriptChanged`]): daemon mode restarts the process,
    /// so that every module of the application loads afresh, and hands the request back
    /// unstarted. Checked in the same GIL hold as the request itself.
    HandBack,
}

fn pid() -> u32 {
    std::process::id()
}

/// Serves `req` over `transport`, logging through `log`; both borrow the request (`'r`) and
/// are out of reach of the application once this returns. The request holds the GIL once:
/// what the transport held back (a small final write) goes out after it is released.
pub fn run<'r>(
    req: AppRequest,
    transport: Box<dyn Transport + 'r>,
    log: Logger<'r>,
    newer: NewerScript,
) -> Outcome {
    let interp = match interpreters::get(&req.application_group) {
        Ok(i) => i,
        Err(e) => {
            log(Level::Error, &format!("rwsgi (pid={}): {e}", pid()));
            return Outcome::ServerError;
        }
    };
    let started = std::time::Instant::now();
    let (outcome, transport) = {
        let attached = Attached::enter_in_turn(&interp);
        if newer == NewerScript::HandBack
            && req.reload
            && app::loaded_from_other_version(attached.py(), &req.script, req.script_mtime)
        {
            return Outcome::ScriptChanged;
        }
        run_attached(attached.py(), &interp, req, transport, log, started)
    };
    if let Some(mut t) = transport {
        t.complete();
    }
    outcome
}

/// The part of [`run`] that runs Python: every Python object of the request is gone when it
/// returns.
fn run_attached<'r>(
    py: Py<'_>,
    interp: &Interpreter,
    req: AppRequest,
    transport: Box<dyn Transport + 'r>,
    log: Logger<'r>,
    started: std::time::Instant,
) -> (Outcome, Option<Box<dyn Transport + 'r>>) {
    let data = interpreters::data(interp);
    // Before the script loads: a script imported by this request already runs in it.
    let mut life = Life::begin(py, &data.api, &req);
    let callable = match load_callable(py, interp, &req) {
        Ok(c) => c,
        Err(NoCallable::Missing(m)) => {
            log(Level::Error, &m);
            return (Outcome::ServerError, None);
        }
        Err(NoCallable::Load(kind)) => {
            let what = match kind {
                app::LoadError::Compile => "Could not read/compile source file",
                app::LoadError::Exec => "Failed to exec Python script file",
            };
            log(
                Level::Error,
                &format!(
                    "rwsgi (pid={}, process='{}', application='{}'): {what} '{}'.",
                    pid(),
                    req.process_group,
                    req.application_group,
                    req.script
                ),
            );
            log_exception(
                &*log,
                &req.script,
                "Exception occurred processing WSGI script",
            );
            return (Outcome::ServerError, None);
        }
    };
    exchange::scoped(transport, log, body_length(&req), |ex| {
        let _scope = current::Scope::enter(ex);
        let outcome = serve(py, interp, &req, ex, &callable, &mut life);
        log_if_slow(ex, &req, started);
        outcome
    })
}

/// The request body's announced length (a hint for sizing reads): Content-Length, unless the
/// body is chunked.
fn body_length(req: &AppRequest) -> Option<u64> {
    if req.environ.get("HTTP_TRANSFER_ENCODING").is_some() {
        return None;
    }
    std::str::from_utf8(req.environ.get("CONTENT_LENGTH")?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The application callable; `Err(None)` means a Python exception is pending.
/// Why there is no callable to run.
enum NoCallable {
    Load(app::LoadError),
    Missing(String),
}

fn load_callable(py: Py<'_>, interp: &Interpreter, req: &AppRequest) -> Result<Obj, NoCallable> {
    let resource = req
        .environ
        .get("SCRIPT_FILENAME")
        .map(String::from_utf8_lossy);
    let module = app::load(
        py,
        interp,
        &req.script,
        req.script_mtime,
        req.reload,
        resource.as_deref(),
    )
    .map_err(NoCallable::Load)?;
    module_dict(&module)
        .dict_get_str(&req.callable)
        .ok_or_else(|| {
            NoCallable::Missing(format!(
                "rwsgi (pid={}): Target WSGI script '{}' does not contain WSGI application '{}'.",
                pid(),
                req.script,
                req.callable
            ))
        })
}

fn serve(
    py: Py<'_>,
    interp: &Interpreter,
    req: &AppRequest,
    ex: &Arc<Exchange>,
    callable: &Obj,
    life: &mut Life<'_, '_>,
) -> Outcome {
    let data = interpreters::data(interp);
    let logger = |l: Level, m: &str| {
        let _ = ex.log(l, m);
    };
    let prepared = (|| -> PyResult<(Obj, Obj, Obj, u64)> {
        let cap = native::capsule(py, ex)?;
        let errors = data.errors_factory.get(py).call(&[&cap])?;
        let (environ, thread_id) = build_environ(py, data, req, ex, &errors)?;
        Ok((
            environ,
            native::start_response_callable(&cap)?,
            errors,
            thread_id,
        ))
    })();
    let (environ, start_response, errors, thread_id) = match prepared {
        Ok(v) => v,
        Err(Raised) => {
            log_exception(
                &logger,
                &req.script,
                "Exception occurred processing WSGI script",
            );
            return Outcome::ServerError;
        }
    };
    let wrapped = data
        .newrelic_wrapped(py, callable)
        .unwrap_or_else(|Raised| {
            log_exception(
                &logger,
                &req.script,
                "Exception occurred wrapping for New Relic the WSGI script",
            );
            None
        });
    let (application, start_response) = life.started(
        &environ,
        wrapped.as_ref().unwrap_or(callable),
        &start_response,
    );
    let result = application.call(&[&environ, &start_response]);
    warn_dropped_headers(ex, &logger, &req.script);
    let outcome = match result {
        Ok(iterable) => {
            // The exception (if any) is taken out of the thread state before close() runs:
            // Python code must not run with an exception pending.
            let sent = send(py, data, ex, &iterable).map_err(Failure::take);
            let closed = call_close(&iterable).map_err(Failure::take);
            match (sent, closed) {
                (Ok(()), Ok(())) => finish(ex, &logger, &req.script, life),
                (Err(e), _) | (Ok(()), Err(e)) => failed(ex, &logger, &req.script, e, life),
            }
        }
        Err(Raised) => failed(ex, &logger, &req.script, Failure::Python, life),
    };
    let _ = errors.call_method(c"flush", &[]);
    life.finished(ex, thread_id);
    outcome
}

enum Failure {
    /// A Python exception is pending in the thread state.
    Python,
    /// The exception, taken out of the thread state.
    Taken(Option<Pending>),
    Client,
}

impl Failure {
    fn take(self) -> Failure {
        match self {
            Failure::Python => Failure::Taken(Pending::fetch()),
            other => other,
        }
    }
}

fn finish(ex: &Exchange, log: &dyn Fn(Level, &str), script: &str, life: &Life<'_, '_>) -> Outcome {
    match ex.finish() {
        Ok(()) | Err(TransportError::ClientGone) => Outcome::Sent,
        Err(TransportError::NotStarted) => {
            let _ = raise(exc::runtime_error(), "response has not been started");
            failed(ex, log, script, Failure::Python, life)
        }
        Err(e) => {
            log(
                Level::Error,
                &format!(
                    "rwsgi (pid={}): {} in WSGI script '{}'; connection closed.",
                    pid(),
                    e,
                    script
                ),
            );
            if matches!(e, TransportError::Truncated { .. }) {
                ex.abort();
            }
            Outcome::Sent
        }
    }
}

fn failed(
    ex: &Exchange,
    log: &dyn Fn(Level, &str),
    script: &str,
    f: Failure,
    life: &Life<'_, '_>,
) -> Outcome {
    let f = match f.take() {
        Failure::Taken(Some(p)) if life.is_request_timeout(&p) => {
            // Not an application error: the thread was interrupted and has recovered (mod_wsgi
            // 6 logs this line at info level instead of a traceback).
            life.exception(&p);
            drop(p);
            log(
                Level::Info,
                &format!(
                    "rwsgi (pid={}): Request interrupted by RequestTimeout; thread recovered. WSGI script '{script}'.",
                    pid()
                ),
            );
            if ex.progress().head_sent {
                ex.abort();
                return Outcome::Sent;
            }
            return Outcome::TimedOut;
        }
        Failure::Taken(Some(p)) => {
            life.exception(&p);
            p.restore();
            Failure::Python
        }
        Failure::Taken(None) => Failure::Python,
        other => other,
    };
    match f {
        Failure::Client => {
            log(
                Level::Info,
                &format!(
                    "rwsgi (pid={}): client closed connection while serving '{}'.",
                    pid(),
                    script
                ),
            );
            Outcome::Sent
        }
        Failure::Python | Failure::Taken(_) => {
            log_exception(log, script, "Exception occurred processing WSGI script");
            if ex.progress().head_sent {
                ex.abort();
                Outcome::Sent
            } else {
                Outcome::ServerError
            }
        }
    }
}

fn call_close(iterable: &Obj) -> Result<(), Failure> {
    // A plain list or tuple has no close(): asking would create an AttributeError, with its
    // formatted message, and clear it again (1 % of a hello request's CPU).
    if iterable.is_exact_list_or_tuple() {
        return Ok(());
    }
    match iterable.getattr_opt(c"close") {
        Ok(Some(close)) => close
            .call(&[])
            .map(|_| ())
            .map_err(|Raised| Failure::Python),
        Ok(None) => Ok(()),
        Err(Raised) => Err(Failure::Python),
    }
}

fn transport_failure(e: TransportError) -> Failure {
    match e {
        TransportError::NotStarted => {
            raise(exc::runtime_error(), "response has not been started");
            Failure::Python
        }
        _ => Failure::Client,
    }
}

fn item_bytes(item: &Obj) -> Result<&[u8], Failure> {
    item.as_bytes().ok_or_else(|| {
        raise(
            exc::type_error(),
            &format!(
                "sequence of byte string values expected, value of type {} found",
                item.type_name()
            ),
        );
        Failure::Python
    })
}

/// Streams the application's return value. Each yielded chunk is passed on at once
/// (PEP 3333: no buffering); a list or tuple is sent in one go, letting Apache add a
/// Content-Length.
fn send(py: Py<'_>, data: &InterpData, ex: &Exchange, iterable: &Obj) -> Result<(), Failure> {
    if iterable.is_exact_type(data.file_wrapper_class.ptr()) && try_sendfile(py, ex, iterable)? {
        return Ok(());
    }
    if iterable.is_list() || iterable.is_tuple() {
        let n = iterable.size().map_err(|Raised| Failure::Python)?;
        // The total is known only when every item is bytes; a bad item fails when reached,
        // after the items before it went out (as mod_wsgi).
        let total: Option<u64> = (0..n)
            .map(|i| {
                iterable
                    .seq_item(i)
                    .and_then(|it| it.as_bytes().map(|b| b.len() as u64))
            })
            .sum();
        let length_ok = total.is_some_and(|total| {
            ex.with_head(|h| h.is_none_or(|h| h.content_length.is_none_or(|cl| cl == total)))
        });
        for i in 0..n {
            let Some(item) = iterable.seq_item(i) else {
                continue;
            };
            let bytes = item_bytes(&item)?;
            let last = i + 1 == n && length_ok;
            if bytes.is_empty() && !last {
                continue;
            }
            if !ex.progress().started {
                return Err(transport_failure(TransportError::NotStarted));
            }
            ex.send(bytes, last).map_err(transport_failure)?;
        }
        return Ok(());
    }
    let it = iterable.iter().map_err(|Raised| Failure::Python)?;
    while let Some(item) = it.next().map_err(|Raised| Failure::Python)? {
        let bytes = item_bytes(&item)?;
        if bytes.is_empty() {
            continue;
        }
        if !ex.progress().started {
            return Err(transport_failure(TransportError::NotStarted));
        }
        ex.send(bytes, false).map_err(transport_failure)?;
    }
    Ok(())
}
