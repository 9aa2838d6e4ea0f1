//! One connection as a daemon process sees it: the HELLO that authenticates an Apache child
//! (and maps the shared-memory rings it brings), then each request head, run through the
//! WSGI layer over a [`RemoteTransport`].

use super::pool::{Active, Shared};
use super::rings::{self, Rings, SharedRings};
use super::status;
use super::transport::RemoteTransport;
use nix::sys::signal::Signal;
use rwsgi_core::Level;
use rwsgi_core::errlog::log;
use rwsgi_core::ipc::channel::{Channel, ChannelError};
use rwsgi_core::ipc::frame::{Frame, Kind};
use rwsgi_core::ipc::msg;
use rwsgi_core::label::DaemonName;
use rwsgi_core::request;
use rwsgi_core::spec::GroupSpec;
use rwsgi_python::{self as wsgi, Outcome};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A connection from an Apache child, between requests.
pub struct Conn {
    pub ch: Arc<Channel>,
    /// HELLO showed the group's secret.
    pub authenticated: bool,
    /// The shared-memory rings Apache created for this connection (None: bodies inline).
    pub rings: Option<SharedRings>,
}

impl Conn {
    /// A connection just accepted: not authenticated, no rings until its HELLO.
    pub fn new(ch: Channel) -> Conn {
        Conn {
            ch: Arc::new(ch),
            authenticated: false,
            rings: None,
        }
    }
}

/// Serves the frame waiting on `conn`; returns the connection if it stays usable, and whether
/// the frame was a request (maximum-requests counts those, not handshakes).
pub fn serve_frame(
    spec: &GroupSpec,
    shared: &Shared,
    thread: usize,
    conn: Conn,
) -> (Option<Conn>, bool) {
    let is_request = conn.authenticated;
    let kept = serve_frame_inner(spec, shared, thread, conn);
    (kept, is_request)
}

fn serve_frame_inner(spec: &GroupSpec, shared: &Shared, thread: usize, conn: Conn) -> Option<Conn> {
    let (frame, fds) = match conn.ch.recv(Some(Duration::from_secs(5))) {
        Ok(f) => f,
        Err(ChannelError::Closed) => return None,
        Err(e) => {
            log(
                Level::Error,
                &format!(
                    "rwsgi: {}: bad frame from Apache: {e}",
                    DaemonName(spec.name())
                ),
            );
            return None;
        }
    };
    // A process that is going away takes no new work: the Apache side retries elsewhere
    // (a Goodbye answer is never mistaken for a started request).
    if shared.stopping.load(Ordering::SeqCst)
        && matches!(frame.header.kind, Kind::Hello | Kind::RequestHead)
    {
        let _ = conn.ch.send(&msg::goodbye());
        return None;
    }
    match frame.header.kind {
        Kind::Hello => hello(spec, conn, &frame, fds),
        Kind::RequestHead if conn.authenticated => request(spec, shared, thread, conn, &frame),
        other => {
            log(
                Level::Error,
                &format!(
                    "rwsgi: {}: unexpected {other:?} frame; closing the connection",
                    DaemonName(spec.name())
                ),
            );
            None
        }
    }
}

/// HELLO: an Apache child of this server (its uid, the group's secret) brings the rings.
fn hello(spec: &GroupSpec, mut conn: Conn, frame: &Frame, fds: Vec<OwnedFd>) -> Option<Conn> {
    let uid_ok = conn
        .ch
        .peer_uid()
        .is_ok_and(|u| u == spec.wire.apache_uid || u == 0);
    if !uid_ok || !constant_time_eq(&frame.payload, &spec.wire.secret) {
        log(
            Level::Error,
            &format!(
                "rwsgi: {} refused a connection (peer uid {:?}): not an Apache child of this server",
                DaemonName(spec.name()),
                conn.ch.peer_uid().ok()
            ),
        );
        return None;
    }
    conn.rings = map_rings(spec, fds);
    conn.ch
        .send(&msg::hello_ack(conn.rings.is_some(), std::process::id()))
        .ok()?;
    conn.authenticated = true;
    Some(conn)
}

/// A request head: checked, then run in this thread; the connection stays usable if the
/// exchange ended cleanly.
fn request(
    spec: &GroupSpec,
    shared: &Shared,
    thread: usize,
    conn: Conn,
    frame: &Frame,
) -> Option<Conn> {
    let id = frame.header.request_id;
    let (mut app, header_only) = admit(spec, &conn, frame)?;
    test_panic(&app);
    let now = rwsgi_core::status::now_us();
    let queued_us = queued_for(&app, now);
    if queued_too_long(spec, queued_us) {
        conn.ch
            .send(&msg::abort(
                id,
                503,
                "request waited longer than queue-timeout",
            ))
            .ok()?;
        return Some(conn);
    }
    app.environ
        .push("mod_wsgi.daemon_start", now.to_string().as_bytes());
    let outcome = run(
        spec,
        shared,
        (thread, now, queued_us),
        &conn,
        id,
        app,
        header_only,
    );
    match outcome {
        Ran::Sent => {}
        Ran::Abort(abort) => {
            conn.ch.send(&abort).ok()?;
        }
        Ran::ScriptChanged(script) => {
            restart_for_new_script(spec, shared, &conn, &script);
            return None;
        }
    }
    rings::drain_credits(&conn.ch, conn.rings.as_ref(), Some(spec.socket_timeout())).then_some(conn)
}

/// The request head of `frame` (inline, or a slice of the request ring), opened with the
/// group's key and decoded; `None` (connection dropped) when any of that fails.
fn admit(spec: &GroupSpec, conn: &Conn, frame: &Frame) -> Option<(rwsgi_core::AppRequest, bool)> {
    let id = frame.header.request_id;
    if let Some(r) = &conn.rings {
        let mut r = r.lock().unwrap_or_else(|e| e.into_inner());
        r.request.reset();
        r.response.reset();
    }
    let in_ring;
    let head: &[u8] = if frame.in_ring() {
        let taken = rings::take_request_slice(
            &conn.ch,
            conn.rings.as_ref(),
            id,
            &frame.payload,
            usize::MAX,
        );
        in_ring = match taken {
            Ok(v) => v,
            Err(e) => {
                log(
                    Level::Error,
                    &format!(
                        "rwsgi: {}: bad request head slice: {e}",
                        DaemonName(spec.name())
                    ),
                );
                return None;
            }
        };
        &in_ring
    } else {
        &frame.payload
    };
    let head = match rwsgi_core::ipc::seal::open(&spec.wire.secret, spec.name(), head) {
        Ok(h) => h,
        Err(e) => {
            log(
                Level::Error,
                &format!(
                    "rwsgi: {} refused a request head that is not authenticated for this group (peer uid {:?}): {e}",
                    DaemonName(spec.name()),
                    conn.ch.peer_uid().ok()
                ),
            );
            return None;
        }
    };
    match request::decode(head, spec.name()) {
        Ok(v) => Some(v),
        Err(e) => {
            let _ = conn
                .ch
                .send(&msg::abort(id, 502, &format!("malformed request: {e}")));
            None
        }
    }
}

/// queue-timeout: a request that waited too long for a free thread is shed (503).
fn queued_too_long(spec: &GroupSpec, queued_us: Option<u64>) -> bool {
    spec.options
        .queue_timeout
        .is_some_and(|limit| queued_us.is_some_and(|q| q as u128 > limit.as_micros()))
}

/// How long (µs) the request waited since the Apache side stamped mod_wsgi.queue_start.
fn queued_for(app: &rwsgi_core::AppRequest, now_us: u64) -> Option<u64> {
    app.environ
        .get("mod_wsgi.queue_start")
        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
        .map(|q| now_us.saturating_sub(q))
}

/// WSGIScriptReloading in daemon mode: a changed script restarts the process (so every module
/// of the application is loaded afresh); the request, not started, is handed back and the
/// Apache side sends it again to the new process.
fn restart_for_new_script(spec: &GroupSpec, shared: &Shared, conn: &Conn, script: &str) {
    log(
        Level::Info,
        &format!(
            "rwsgi: WSGI script '{script}' changed; restarting {}.",
            DaemonName(spec.name())
        ),
    );
    let _ = conn.ch.send(&msg::goodbye());
    shared.stopping.store(true, Ordering::SeqCst);
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGUSR1);
}

/// How [`run`] ended.
enum Ran {
    Sent,
    /// Nothing was sent: this Abort says why.
    Abort(Frame),
    /// The script file is newer than the one loaded (WSGIScriptReloading): nothing ran.
    ScriptChanged(String),
}

/// Runs the application for request `id`, visible to the watchdog meanwhile.
fn run(
    spec: &GroupSpec,
    shared: &Shared,
    (thread, started, queued_us): (usize, u64, Option<u64>),
    conn: &Conn,
    id: u32,
    app: rwsgi_core::AppRequest,
    header_only: bool,
) -> Ran {
    let transport = RemoteTransport::new(
        conn.ch.clone(),
        conn.rings.clone(),
        id,
        Some(spec.socket_timeout()),
        header_only,
    );
    let line = request_line(&app);
    status::begin(
        thread,
        started,
        &line,
        app.environ.get("REMOTE_ADDR").unwrap_or_default(),
    );
    let active = Active {
        started: Instant::now(),
        ch: conn.ch.clone(),
        id,
        uri: line,
        group: app.application_group.clone(),
        thread_ident: wsgi::interpreters::thread_ident(),
        interrupted: None,
    };
    shared
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(thread, active);
    let log = transport.logger();
    // Only for the log line when the script changed (reloading is on by default).
    let script = app.reload.then(|| app.script.clone());
    let outcome = wsgi::run(app, Box::new(transport), log, wsgi::NewerScript::HandBack);
    if outcome == Outcome::ScriptChanged {
        status::abandon(thread);
    } else {
        status::end(
            thread,
            rwsgi_core::status::now_us().saturating_sub(started),
            queued_us,
        );
    }
    let interrupted = shared
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&thread)
        .is_some_and(|a| a.interrupted.is_some());
    match outcome {
        Outcome::Sent => Ran::Sent,
        Outcome::ScriptChanged => Ran::ScriptChanged(script.unwrap_or_default()),
        Outcome::TimedOut | Outcome::ServerError if interrupted => Ran::Abort(msg::abort(
            id,
            504,
            "request-timeout exceeded; the request was interrupted",
        )),
        Outcome::TimedOut => Ran::Abort(msg::abort(
            id,
            504,
            "the application raised mod_wsgi.RequestTimeout",
        )),
        Outcome::ServerError => Ran::Abort(msg::abort(
            id,
            500,
            "the application failed (see the daemon's messages above)",
        )),
    }
}

/// `GET /path?query` of a request, for log lines.
fn request_line(app: &rwsgi_core::AppRequest) -> String {
    let get = |k| String::from_utf8_lossy(app.environ.get(k).unwrap_or_default());
    let (method, uri) = (get("REQUEST_METHOD"), get("REQUEST_URI"));
    let mut line = String::with_capacity(method.len() + 1 + uri.len());
    line.push_str(&method);
    line.push(' ');
    line.push_str(&uri);
    line
}

/// Test-only: with `RWSGI_TEST_PANIC_URI=/some/uri` in the daemon's environment, a request for
/// exactly that URI panics inside its request thread (tests/test_trust.py checks that such an
/// internal error costs one 500, not the thread, the process or the accounting).
fn test_panic(app: &rwsgi_core::AppRequest) {
    static URI: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    let uri = URI
        .get_or_init(|| std::env::var_os("RWSGI_TEST_PANIC_URI").map(|v| v.into_encoded_bytes()));
    if let Some(uri) = uri {
        if app.environ.get("REQUEST_URI") == Some(uri.as_slice()) {
            panic!("test-only panic (RWSGI_TEST_PANIC_URI)");
        }
    }
}

/// Maps the two rings Apache sent with HELLO (request, response). Without them, or when they
/// are not sealed memfds of a sane size, bodies travel inline.
fn map_rings(spec: &GroupSpec, fds: Vec<OwnedFd>) -> Option<SharedRings> {
    if fds.is_empty() {
        return None;
    }
    let mut fds = fds.into_iter();
    let (Some(a), Some(b), None) = (fds.next(), fds.next(), fds.next()) else {
        log(
            Level::Warn,
            &format!(
                "rwsgi: {}: HELLO with a wrong number of ring descriptors; bodies go inline",
                DaemonName(spec.name())
            ),
        );
        return None;
    };
    match (
        rwsgi_core::ipc::ring::SharedMem::open(a),
        rwsgi_core::ipc::ring::SharedMem::open(b),
    ) {
        (Ok(req), Ok(resp)) => Some(Arc::new(std::sync::Mutex::new(Rings {
            request: rwsgi_core::ipc::ring::Inbound::new(req),
            response: rwsgi_core::ipc::ring::Outbound::new(resp),
        }))),
        (Err(e), _) | (_, Err(e)) => {
            log(
                Level::Warn,
                &format!(
                    "rwsgi: {}: unusable shared-memory ring from Apache ({e}); bodies go inline",
                    DaemonName(spec.name())
                ),
            );
            None
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
