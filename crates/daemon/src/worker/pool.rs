//! The threads of a daemon process: the poller hands each connection with a frame waiting
//! (found by the [`Hub`]) to one of `threads` Python request threads over a bounded channel
//! (back-pressure: when all are busy, requests wait in their sockets); the request thread
//! puts the connection back into the hub. The main thread watches (`watchdog`) and then
//! stops it all gracefully.

use super::super::sys::exit_now;
use super::hub::{Hub, Token};
use super::poller;
use super::session::{Conn, serve_frame};
use super::watchdog;
use nix::sys::signal::{SigSet, Signal};
use rwsgi_core::Level;
use rwsgi_core::death::Exit;
use rwsgi_core::errlog::log;
use rwsgi_core::ipc::channel::Channel;
use rwsgi_core::ipc::msg;
use rwsgi_core::label::DaemonName;
use rwsgi_core::spec::GroupSpec;
use rwsgi_python as wsgi;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A request in progress.
pub struct Active {
    pub started: Instant,
    pub ch: Arc<Channel>,
    pub id: u32,
    /// `METHOD URI`, for the log lines that name requests in flight.
    pub uri: String,
    /// Where it runs: application group and Python thread (for interrupt-timeout).
    pub group: String,
    pub thread_ident: u64,
    /// When mod_wsgi.RequestTimeout was raised in it.
    pub interrupted: Option<Instant>,
}

/// What the threads of a process share.
pub struct Shared {
    pub stopping: AtomicBool,
    pub in_flight: AtomicUsize,
    pub served: AtomicU64,
    /// Requests running now, by thread index; the watchdog reads it.
    pub active: std::sync::Mutex<std::collections::HashMap<usize, Active>>,
    /// When the last request finished (inactivity-timeout).
    pub last_activity: std::sync::Mutex<Instant>,
}

impl Shared {
    /// The requests running now, for log lines ("none" when idle).
    pub fn uris_in_flight(&self) -> String {
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if active.is_empty() {
            return "none".into();
        }
        active
            .values()
            .map(|a| a.uri.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Serves until told to stop; returns the exit status.
pub fn serve(spec: &GroupSpec, listener: OwnedFd) -> i32 {
    let sfd = signals();
    let shared = Arc::new(Shared {
        stopping: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        served: AtomicU64::new(0),
        active: std::sync::Mutex::new(std::collections::HashMap::new()),
        last_activity: std::sync::Mutex::new(Instant::now()),
    });
    let threads = spec.threads().max(1) as usize;
    let buffers = (
        spec.options.send_buffer_size as usize,
        spec.options.receive_buffer_size as usize,
    );
    let hub = Arc::new(Hub::new(listener, buffers).expect("epoll"));
    let (work_tx, work_rx) = crossbeam_channel::bounded::<(Token, Conn)>(threads);
    for i in 0..threads {
        let (shared, spec, hub, work_rx) =
            (shared.clone(), spec.clone(), hub.clone(), work_rx.clone());
        rwsgi_core::guard::spawn(
            format!("rwsgi-req-{i}"),
            spec.options.stack_size.map(|s| s as usize),
            move || request_thread(i, &spec, &shared, &hub, work_rx),
        )
        .expect("spawn request thread");
    }
    drop(work_rx);
    {
        let (shared, hub) = (shared.clone(), hub.clone());
        rwsgi_core::guard::spawn("rwsgi-poller".into(), None, move || {
            poller::run(&hub, &shared, work_tx)
        })
        .expect("spawn poller");
    }
    let gil_seen = gil_probe(spec);
    let stop = watchdog::watch(spec, &shared, &sfd, &gil_seen);
    log(
        Level::Info,
        &format!(
            "rwsgi: {} stopping ({}).",
            DaemonName(spec.name()),
            stop.why
        ),
    );
    shared.stopping.store(true, Ordering::SeqCst);
    hub.close();
    shut_down(spec, &shared, stop, &hub)
}

/// The signals the main thread takes through a signalfd (stop, graceful, restart, CPU limit).
fn stop_signals() -> SigSet {
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGXCPU,
        // From the supervisor: the status page asks for the running requests' stacks.
        Signal::SIGURG,
    ] {
        mask.add(s);
    }
    mask
}

/// Blocks the stop signals in this thread before Python starts: every thread started later
/// (Python threads an import script or the application starts included) inherits the mask,
/// so the signals reach the signalfd, not a Python thread that would swallow them.
pub fn block_signals() {
    let _ = stop_signals().thread_block();
}

/// Signals go to the main thread (signalfd); the threads spawned after this inherit the mask.
fn signals() -> nix::sys::signalfd::SignalFd {
    let mask = stop_signals();
    let _ = mask.thread_block();
    nix::sys::signalfd::SignalFd::with_flags(
        &mask,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .expect("signalfd")
}

/// One Python request thread: serves the connections the poller hands it, one frame each,
/// and puts them back into the hub.
fn request_thread(
    i: usize,
    spec: &GroupSpec,
    shared: &Shared,
    hub: &Hub,
    work_rx: crossbeam_channel::Receiver<(Token, Conn)>,
) {
    while let Ok((token, conn)) = work_rx.recv() {
        // in_flight was counted when the poller dispatched the connection
        let ch = conn.ch.clone();
        let (kept, was_request) =
            match rwsgi_core::guard::catch(|| serve_frame(spec, shared, i, conn)) {
                Ok(v) => v,
                // An internal error in one request: its client gets a 500, the thread serves
                // the next one; the connection, in an unknown state, is dropped.
                Err(e) => {
                    rwsgi_core::guard::report(&format!(
                        "rwsgi: internal error in {} while serving a request: {e}",
                        DaemonName(spec.name())
                    ));
                    let _ = ch.send(&msg::abort(0, 500, "rwsgi internal error"));
                    // The Apache child keeps the connection for a next request, which
                    // could reach the socket before it is closed here and be lost (a 502):
                    // told now, that request finds this Goodbye first and goes elsewhere.
                    let _ = ch.send(&msg::goodbye());
                    shared
                        .active
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&i);
                    (None, true)
                }
            };
        match kept {
            Some(c) => hub.put_back(token, c),
            None => hub.forget(&ch),
        }
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        if was_request {
            request_done(spec, shared);
        }
    }
}

/// Counts a served request (inactivity-timeout, maximum-requests).
fn request_done(spec: &GroupSpec, shared: &Shared) {
    *shared
        .last_activity
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Instant::now();
    let served = shared.served.fetch_add(1, Ordering::SeqCst) + 1;
    let max = spec.options.maximum_requests;
    if max > 0 && served == max {
        log(
            Level::Info,
            &format!(
                "rwsgi: {} reached maximum-requests={max}; restarting.",
                DaemonName(spec.name())
            ),
        );
        shared.stopping.store(true, Ordering::SeqCst);
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGUSR1);
    }
}

/// deadlock-timeout: a thread takes the GIL once a second; the watchdog restarts the process
/// when it could not for that long (a C extension holding the GIL forever).
fn gil_probe(spec: &GroupSpec) -> Arc<std::sync::Mutex<Instant>> {
    let gil_seen = Arc::new(std::sync::Mutex::new(Instant::now()));
    if spec.options.deadlock_timeout.is_some() {
        let gil_seen = gil_seen.clone();
        let _ = rwsgi_core::guard::spawn("rwsgi-gil-probe".into(), None, move || {
            loop {
                if wsgi::interpreters::touch_gil() {
                    *gil_seen.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    }
    gil_seen
}

/// `shutdown_reason` of process_stopping: "" for a requested stop (as mod_wsgi 4.9), else
/// mod_wsgi 6's name of the limit that ended the process.
fn stopping_reason(exit: Exit) -> &'static str {
    match exit {
        Exit::RequestTimeout => "request_timeout",
        Exit::DeadlockTimeout => "deadlock_timeout",
        Exit::CpuTimeLimit => "cpu_time_limit",
        _ => "",
    }
}

/// Stops gracefully (the hub has already said Goodbye on every idle connection): requests
/// still running after graceful-timeout (eviction-timeout when an admin sent SIGUSR1) are cut
/// off; atexit handlers run. Returns the exit status.
fn shut_down(spec: &GroupSpec, shared: &Shared, stop: watchdog::Stop, hub: &Hub) -> i32 {
    let (grace, which) = if stop.evicted {
        (spec.eviction_timeout(), "eviction-timeout")
    } else {
        (spec.graceful_timeout(), "graceful-timeout")
    };
    // As mod_wsgi: the application hears it is stopping before its requests are waited for.
    wsgi::interpreters::process_stopping(stopping_reason(stop.exit));
    let deadline = Instant::now() + grace;
    while !hub.drained(shared) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut exit = stop.exit;
    if !hub.drained(shared) {
        log(
            Level::Error,
            &format!(
                "rwsgi: {}: requests still running after {}s ({which}); they are cut off. Requests in flight: {}.",
                DaemonName(spec.name()),
                grace.as_secs_f64(),
                shared.uris_in_flight()
            ),
        );
        if exit == Exit::Normal {
            exit = Exit::GraceExpired;
        }
    }
    // shutdown-timeout: the application's atexit handlers (and whatever requests are still
    // running) get that long; then the process ends regardless (0: never forced).
    if let Some(limit) = spec.options.shutdown_timeout {
        let name = spec.name().to_string();
        let _ = rwsgi_core::guard::spawn("rwsgi-reaper".into(), None, move || {
            std::thread::sleep(limit);
            log(
                Level::Warn,
                &format!(
                    "rwsgi: daemon process '{name}' did not finish shutting down within shutdown-timeout={}s; exiting.",
                    limit.as_secs_f64()
                ),
            );
            exit_now(Exit::ShutdownTimeout as i32)
        });
    }
    wsgi::interpreters::run_atexit();
    exit as i32
}
