//! A daemon worker process: drops privileges, starts Python, then serves connections from
//! Apache children. One poller thread watches the listening socket and every idle connection;
//! a connection with a request waiting is handed to one of `threads` Python threads over a
//! bounded channel (back-pressure: when all are busy, requests wait in the socket).

use super::remote::{self, RemoteTransport, Rings, SharedRings};
use super::sys::exit_now;
use super::{GroupSpec, log, request};
use crate::ipc::channel::{self, Channel, ChannelError};
use crate::ipc::frame::{Frame, Kind};
use crate::ipc::msg;
use crate::wsgi::{self, Outcome, ProcessInfo};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Conn {
    ch: Arc<Channel>,
    authenticated: bool,
    /// The shared-memory rings Apache created for this connection (None: bodies inline).
    rings: Option<SharedRings>,
}

/// A request in progress.
struct Active {
    started: Instant,
    ch: Arc<Channel>,
    id: u32,
    /// Where it runs: application group and Python thread (for interrupt-timeout).
    group: String,
    thread_ident: u64,
    /// When mod_wsgi.RequestTimeout was raised in it.
    interrupted: Option<Instant>,
}

struct Shared {
    stopping: AtomicBool,
    in_flight: AtomicUsize,
    served: AtomicU64,
    /// Requests running now, by thread index; the main thread's request-timeout watchdog
    /// reads it.
    active: std::sync::Mutex<std::collections::HashMap<usize, Active>>,
    /// When the last request finished (inactivity-timeout).
    last_activity: std::sync::Mutex<Instant>,
}

/// The worker's life; never returns.
pub fn main(spec: &GroupSpec, listener: OwnedFd) -> ! {
    super::sys::set_process_name(&spec.title);
    if spec.display_name_set {
        super::sys::set_command_line(&spec.title);
    }
    let supervisor = nix::unistd::getppid();
    if let Err(e) = drop_privileges(spec) {
        log(
            "crit",
            &format!(
                "rwsgi: daemon process '{}' cannot switch to uid {} / gid {}: {e}; exiting",
                spec.name, spec.uid, spec.gid
            ),
        );
        exit_now(1);
    }
    // After the credential change, which clears the parent-death signal: this process must
    // not outlive its supervisor.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    if nix::unistd::getppid() != supervisor {
        exit_now(0);
    }
    setup_environment(spec);
    apply_limits(spec);
    wsgi::transport::set_server_logger(|l, m| log(level_name(l), m));
    let p = &spec.python;
    let init = wsgi::interpreters::init_config(p, spec.python_home.clone());
    let process = ProcessInfo {
        multithread: spec.threads > 1,
        multiprocess: spec.multiprocess,
        process_group: spec.name.clone(),
        apache_version: spec.apache_version,
        restrict_stdin: p.restrict_stdin.unwrap_or(false),
        restrict_stdout: p.restrict_stdout.unwrap_or(false),
        restrict_signal: p.restrict_signal.unwrap_or(true),
        python_path: spec.python_path.clone(),
        eggs: spec.python_eggs.clone(),
        switch_interval: spec.limits.switch_interval,
    };
    if let Err(e) = wsgi::interpreters::start(&init, process) {
        log(
            "crit",
            &format!(
                "rwsgi: daemon process '{}' cannot initialise Python: {e}",
                spec.name
            ),
        );
        exit_now(1);
    }
    log(
        "info",
        &format!(
            "rwsgi: daemon process '{}' started (uid {}, {} threads).",
            spec.name,
            nix::unistd::getuid(),
            spec.threads
        ),
    );
    for (group, script) in &spec.import_scripts {
        if let Err(e) = wsgi::interpreters::preload(group, script) {
            log(
                "error",
                &format!(
                    "rwsgi: WSGIImportScript '{script}' failed in daemon process '{}':",
                    spec.name
                ),
            );
            for line in e.lines() {
                log("error", line);
            }
        }
    }
    serve(spec, listener)
}

fn level_name(l: wsgi::LogLevel) -> &'static str {
    match l {
        wsgi::LogLevel::Error => "error",
        wsgi::LogLevel::Warning => "warn",
        wsgi::LogLevel::Info => "info",
        wsgi::LogLevel::Debug => "debug",
    }
}

fn drop_privileges(spec: &GroupSpec) -> nix::Result<()> {
    use nix::unistd::{
        Gid, Uid, getegid, geteuid, getgid, getuid, initgroups, setgid, setgroups, setuid,
    };
    if !geteuid().is_root() {
        return Ok(());
    }
    if spec.uid == 0 {
        return Err(nix::errno::Errno::EPERM);
    }
    match (&spec.supplementary_gids, &spec.user_name) {
        (Some(g), _) => setgroups(&g.iter().map(|&g| Gid::from_raw(g)).collect::<Vec<_>>())?,
        (None, Some(name)) => {
            let c = std::ffi::CString::new(name.as_str()).map_err(|_| nix::errno::Errno::EINVAL)?;
            initgroups(&c, Gid::from_raw(spec.gid))?
        }
        (None, None) => setgroups(&[Gid::from_raw(spec.gid)])?,
    }
    setgid(Gid::from_raw(spec.gid))?;
    setuid(Uid::from_raw(spec.uid))?;
    // Verify that the switch is complete and cannot be undone.
    let ok = getuid().as_raw() == spec.uid
        && geteuid().as_raw() == spec.uid
        && getgid().as_raw() == spec.gid
        && getegid().as_raw() == spec.gid
        && setuid(Uid::from_raw(0)).is_err();
    if ok {
        Ok(())
    } else {
        Err(nix::errno::Errno::EPERM)
    }
}

/// cpu-priority, memory-limit, virtual-memory-limit and cpu-time-limit, as mod_wsgi applies
/// them (rlimits of this process; SIGXCPU at the soft CPU limit stops it gracefully, and the
/// supervisor starts a new one).
fn apply_limits(spec: &GroupSpec) {
    use nix::sys::resource::{Resource, setrlimit};
    let l = &spec.limits;
    if l.cpu_priority != 0 {
        if let Err(e) = super::sys::set_cpu_priority(l.cpu_priority) {
            log(
                "warn",
                &format!(
                    "rwsgi: daemon process '{}': cpu-priority={}: {e}",
                    spec.name, l.cpu_priority
                ),
            );
        }
    }
    let set = |what: &str, r: Resource, soft: u64, hard: u64| {
        if let Err(e) = setrlimit(r, soft, hard) {
            log(
                "warn",
                &format!("rwsgi: daemon process '{}': {what}: {e}", spec.name),
            );
        }
    };
    if l.memory_limit > 0 {
        set(
            "memory-limit",
            Resource::RLIMIT_DATA,
            l.memory_limit,
            l.memory_limit,
        );
    }
    if l.virtual_memory_limit > 0 {
        set(
            "virtual-memory-limit",
            Resource::RLIMIT_AS,
            l.virtual_memory_limit,
            l.virtual_memory_limit,
        );
    }
    if let Some(cpu) = l.cpu_time_limit {
        let soft = cpu.as_secs().max(1);
        set(
            "cpu-time-limit",
            Resource::RLIMIT_CPU,
            soft,
            soft + 1 + spec.shutdown_timeout.as_secs(),
        );
    }
}

fn setup_environment(spec: &GroupSpec) {
    if let Some(m) = spec.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
    }
    let home = spec.home.clone().or_else(|| {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(spec.uid))
            .ok()
            .flatten()
            .map(|u| u.dir.to_string_lossy().into_owned())
    });
    if let Some(h) = home {
        if let Err(e) = std::env::set_current_dir(&h) {
            log(
                "warn",
                &format!(
                    "rwsgi: daemon process '{}': cannot change directory to '{h}': {e}",
                    spec.name
                ),
            );
        }
    }
    // SAFETY-relevant: environment changes happen before any thread of ours exists.
    if let Some(l) = &spec.lang {
        // SAFETY: single-threaded at this point (no thread has been spawned yet).
        unsafe { std::env::set_var("LANG", l) };
    }
    if let Some(l) = &spec.locale {
        // SAFETY: as above.
        unsafe { std::env::set_var("LC_ALL", l) };
    }
}

fn serve(spec: &GroupSpec, listener: OwnedFd) -> ! {
    // Signals go to the main thread (signalfd); the threads spawned below inherit the mask.
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGXCPU,
    ] {
        mask.add(s);
    }
    let _ = mask.thread_block();
    let sfd = nix::sys::signalfd::SignalFd::with_flags(
        &mask,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .expect("signalfd");

    let shared = Arc::new(Shared {
        stopping: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        served: AtomicU64::new(0),
        active: std::sync::Mutex::new(std::collections::HashMap::new()),
        last_activity: std::sync::Mutex::new(Instant::now()),
    });
    let threads = spec.threads.max(1) as usize;
    let (work_tx, work_rx) = crossbeam_channel::bounded::<Conn>(threads);
    let (ret_tx, ret_rx) = crossbeam_channel::unbounded::<Conn>();
    let (wake_r, wake_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .expect("pipe");
    let wake_w = Arc::new(wake_w);

    for i in 0..threads {
        let (work_rx, ret_tx, wake_w, shared, spec) = (
            work_rx.clone(),
            ret_tx.clone(),
            wake_w.clone(),
            shared.clone(),
            spec.clone(),
        );
        crate::guard::spawn(
            format!("rwsgi-req-{i}"),
            spec.limits.stack_size.map(|s| s as usize),
            move || {
                while let Ok(conn) = work_rx.recv() {
                    // in_flight was counted when the poller dispatched the connection
                    let ch = conn.ch.clone();
                    let (kept, was_request) =
                        match crate::guard::catch(|| serve_frame(&spec, &shared, i, conn)) {
                            Ok(v) => v,
                            // An internal error in one request: its client gets a 500, the
                            // thread serves the next one; the connection, in an unknown state,
                            // is dropped.
                            Err(e) => {
                                crate::guard::report(&format!(
                                    "rwsgi: internal error in daemon process '{}' while serving a request: {e}",
                                    spec.name
                                ));
                                let _ = ch.send(&msg::abort(0, 500, "rwsgi internal error"));
                                shared.active.lock().unwrap_or_else(|e| e.into_inner()).remove(&i);
                                (None, true)
                            }
                        };
                    if let Some(c) = kept {
                        let _ = ret_tx.send(c);
                        let _ = nix::unistd::write(wake_w.as_fd(), &[1]);
                    }
                    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                    if !was_request {
                        continue;
                    }
                    *shared.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                    let served = shared.served.fetch_add(1, Ordering::SeqCst) + 1;
                    if spec.maximum_requests > 0 && served == spec.maximum_requests {
                        log("info", &format!("rwsgi: daemon process '{}' reached maximum-requests={}; restarting.", spec.name, spec.maximum_requests));
                        shared.stopping.store(true, Ordering::SeqCst);
                        let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGUSR1);
                    }
                }
            },
        )
        .expect("spawn request thread");
    }
    drop(work_rx);

    let poller_thread = {
        let shared = shared.clone();
        let buffers = (
            spec.limits.send_buffer_size as usize,
            spec.limits.receive_buffer_size as usize,
        );
        crate::guard::spawn("rwsgi-poller".into(), None, move || {
            poller(listener, wake_r, work_tx, ret_rx, shared, buffers)
        })
        .expect("spawn poller")
    };

    // deadlock-timeout: a thread takes the GIL once a second; the watch below restarts the
    // process when it could not for that long (a C extension holding the GIL forever).
    let gil_seen = Arc::new(std::sync::Mutex::new(Instant::now()));
    if spec.limits.deadlock_timeout.is_some() {
        let gil_seen = gil_seen.clone();
        let _ = crate::guard::spawn("rwsgi-gil-probe".into(), None, move || {
            loop {
                if wsgi::interpreters::touch_gil() {
                    *gil_seen.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    }
    let (why, evicted) = watch(spec, &shared, &sfd, &gil_seen);
    log(
        "info",
        &format!("rwsgi: daemon process '{}' stopping ({why}).", spec.name),
    );
    shared.stopping.store(true, Ordering::SeqCst);
    let _ = nix::unistd::write(wake_w.as_fd(), &[1]);
    // The poller ends once no request is in progress (after saying Goodbye on every idle
    // connection); requests still running after graceful-timeout (eviction-timeout when an
    // admin sent SIGUSR1) are cut off.
    let grace = if evicted {
        spec.eviction_timeout
    } else {
        spec.graceful_timeout
    };
    let deadline = Instant::now() + grace;
    while !poller_thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // shutdown-timeout: the application's atexit handlers (and whatever requests are still
    // running) get that long; then the process ends regardless.
    let limit = spec.shutdown_timeout;
    let name = spec.name.clone();
    let _ = crate::guard::spawn("rwsgi-reaper".into(), None, move || {
        std::thread::sleep(limit);
        log(
            "warn",
            &format!(
                "rwsgi: daemon process '{name}' did not finish shutting down within shutdown-timeout={}s; exiting.",
                limit.as_secs_f64()
            ),
        );
        exit_now(1)
    });
    wsgi::interpreters::run_atexit();
    exit_now(0)
}

/// The main thread's watch: returns why the process should stop gracefully (a signal,
/// restart-interval, inactivity-timeout, startup-timeout) and whether it was an eviction
/// (SIGUSR1 from outside). A request over request-timeout cannot be stopped from outside its
/// thread: its client is told (504) and the process ends at once.
fn watch(
    spec: &GroupSpec,
    shared: &Shared,
    sfd: &nix::sys::signalfd::SignalFd,
    gil_seen: &std::sync::Mutex<Instant>,
) -> (String, bool) {
    let started = Instant::now();
    let l = &spec.limits;
    loop {
        let _ = channel::wait_readable(sfd.as_fd(), Some(Duration::from_millis(250)));
        if let Ok(Some(info)) = sfd.read_signal() {
            return match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGXCPU) => ("cpu-time-limit reached".into(), false),
                // maximum-requests and script reloading signal the process themselves after
                // setting `stopping`; a SIGUSR1 that finds it unset came from an admin.
                Ok(Signal::SIGUSR1) if !shared.stopping.load(Ordering::SeqCst) => {
                    ("SIGUSR1: evicted".into(), true)
                }
                Ok(s) => (format!("{s:?}"), false),
                Err(_) => ("signal".into(), false),
            };
        }
        if let Some(t) = l.restart_interval {
            if started.elapsed() >= t {
                return (format!("restart-interval={}s", t.as_secs_f64()), false);
            }
        }
        if let Some(t) = l.startup_timeout {
            if wsgi::script_startup::failing_since().is_some_and(|since| since.elapsed() >= t) {
                log(
                    "error",
                    &format!(
                        "rwsgi: daemon process '{}': the WSGI script has not loaded within startup-timeout={}s of its first failure; restarting the process.",
                        spec.name,
                        t.as_secs_f64()
                    ),
                );
                return (format!("startup-timeout={}s", t.as_secs_f64()), false);
            }
        }
        if let Some(t) = l.inactivity_timeout {
            let idle = shared
                .last_activity
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed();
            if shared.in_flight.load(Ordering::SeqCst) == 0 && idle >= t {
                return (format!("inactivity-timeout={}s", t.as_secs_f64()), false);
            }
        }
        if let Some(t) = l.deadlock_timeout {
            let since = gil_seen.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
            if since >= t {
                log(
                    "error",
                    &format!(
                        "rwsgi: daemon process '{}': the Python GIL could not be taken for {:.0}s (deadlock-timeout); restarting the process.",
                        spec.name,
                        since.as_secs_f64()
                    ),
                );
                exit_now(1);
            }
        }
        if let Some(t) = l.request_timeout {
            // With interrupt-timeout, an overdue request is first interrupted; only one the
            // interruption did not end within interrupt-timeout restarts the process.
            if l.interrupt_timeout.is_some() {
                interrupt_overdue(spec, shared, t);
            }
            let stuck: Vec<(Arc<Channel>, u32, Duration)> = shared
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .filter(|a| match (a.interrupted, l.interrupt_timeout) {
                    (Some(at), Some(grace)) => at.elapsed() >= grace,
                    (None, Some(_)) => false,
                    _ => a.started.elapsed() >= t,
                })
                .map(|a| (a.ch.clone(), a.id, a.started.elapsed()))
                .collect();
            if !stuck.is_empty() {
                for (ch, id, ran) in &stuck {
                    log(
                        "error",
                        &format!(
                            "rwsgi: daemon process '{}': a request has run for {:.1}s, over request-timeout={}s; restarting the process.",
                            spec.name,
                            ran.as_secs_f64(),
                            t.as_secs_f64()
                        ),
                    );
                    let _ = ch.send(&msg::abort(
                        *id,
                        504,
                        "request-timeout exceeded; the daemon process was restarted",
                    ));
                }
                exit_now(1);
            }
        }
    }
}

fn poller(
    listener: OwnedFd,
    wake_r: OwnedFd,
    work_tx: crossbeam_channel::Sender<Conn>,
    ret_rx: crossbeam_channel::Receiver<Conn>,
    shared: Arc<Shared>,
    buffers: (usize, usize),
) {
    let mut idle: Vec<Conn> = Vec::new();
    loop {
        let stopping = shared.stopping.load(Ordering::SeqCst);
        if stopping {
            // Idle connections are closed (their Apache threads reconnect elsewhere) with a
            // Goodbye first: a request that raced with the close is then known unstarted and
            // safe to send again. Connections with a request in progress finish it first.
            while let Ok(c) = ret_rx.try_recv() {
                idle.push(c);
            }
            for c in idle.drain(..) {
                let _ = c.ch.send(&Frame::new(Kind::Goodbye, 0, vec![]));
            }
        }
        let mut fds: Vec<PollFd> = vec![PollFd::new(wake_r.as_fd(), PollFlags::POLLIN)];
        if !stopping {
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        }
        let first_conn = fds.len();
        for c in &idle {
            fds.push(PollFd::new(c.ch.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(250u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                log(
                    "error",
                    &format!("rwsgi: poll failed in daemon process: {e}"),
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        let listener_ready = !stopping && ready.get(1).copied().unwrap_or(false);
        drop(fds);
        if ready[0] {
            let mut buf = [0u8; 64];
            while matches!(nix::unistd::read(&wake_r, &mut buf), Ok(n) if n > 0) {}
        }
        while let Ok(c) = ret_rx.try_recv() {
            idle.push(c);
        }
        // Hand ready connections to the request threads (in reverse so indices stay valid).
        for i in (0..ready.len().saturating_sub(first_conn)).rev() {
            if ready[first_conn + i] && i < idle.len() {
                let c = idle.swap_remove(i);
                shared.in_flight.fetch_add(1, Ordering::SeqCst);
                if work_tx.send(c).is_err() {
                    return;
                }
            }
        }
        if listener_ready {
            loop {
                match channel::accept(listener.as_fd()) {
                    Ok(ch) => {
                        ch.set_buffer_sizes(buffers.0, buffers.1);
                        idle.push(Conn {
                            ch: Arc::new(ch),
                            authenticated: false,
                            rings: None,
                        })
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        log("error", &format!("rwsgi: accept failed: {e}"));
                        break;
                    }
                }
            }
        }
        if stopping && shared.in_flight.load(Ordering::SeqCst) == 0 {
            for c in ret_rx.try_iter().chain(idle.drain(..)) {
                let _ = c.ch.send(&Frame::new(Kind::Goodbye, 0, vec![]));
            }
            return;
        }
    }
}

/// Serves the frame waiting on `conn`; returns the connection if it stays usable, and whether
/// the frame was a request (maximum-requests counts those, not handshakes).
fn serve_frame(
    spec: &GroupSpec,
    shared: &Shared,
    thread: usize,
    conn: Conn,
) -> (Option<Conn>, bool) {
    let is_request = conn.authenticated;
    let kept = serve_frame_inner(spec, shared, thread, conn);
    (kept, is_request)
}

fn serve_frame_inner(
    spec: &GroupSpec,
    shared: &Shared,
    thread: usize,
    mut conn: Conn,
) -> Option<Conn> {
    let (frame, fds) = match conn.ch.recv(Some(Duration::from_secs(5))) {
        Ok(f) => f,
        Err(ChannelError::Closed) => return None,
        Err(e) => {
            log(
                "error",
                &format!(
                    "rwsgi: daemon process '{}': bad frame from Apache: {e}",
                    spec.name
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
        let _ = conn.ch.send(&Frame::new(Kind::Goodbye, 0, vec![]));
        return None;
    }
    match frame.header.kind {
        Kind::Hello => {
            let uid_ok = conn
                .ch
                .peer_uid()
                .is_ok_and(|u| u == spec.apache_uid || u == 0);
            if !uid_ok || !constant_time_eq(&frame.payload, &spec.secret) {
                log(
                    "error",
                    &format!(
                        "rwsgi: daemon process '{}' refused a connection (peer uid {:?}): not an Apache child of this server",
                        spec.name,
                        conn.ch.peer_uid().ok()
                    ),
                );
                return None;
            }
            conn.rings = map_rings(spec, fds);
            let mapped = u8::from(conn.rings.is_some());
            conn.ch
                .send(&Frame::new(Kind::HelloAck, 0, vec![mapped]))
                .ok()?;
            conn.authenticated = true;
            Some(conn)
        }
        Kind::RequestHead if conn.authenticated => {
            let id = frame.header.request_id;
            if let Some(r) = &conn.rings {
                let mut r = r.lock().unwrap_or_else(|e| e.into_inner());
                r.request.reset();
                r.response.reset();
            }
            let in_ring;
            let head: &[u8] = if frame.in_ring() {
                in_ring = match remote::take_request_slice(
                    &conn.ch,
                    conn.rings.as_ref(),
                    id,
                    &frame.payload,
                    usize::MAX,
                ) {
                    Ok(v) => v,
                    Err(e) => {
                        log(
                            "error",
                            &format!(
                                "rwsgi: daemon process '{}': bad request head slice: {e}",
                                spec.name
                            ),
                        );
                        return None;
                    }
                };
                &in_ring
            } else {
                &frame.payload
            };
            let (mut app, header_only) = match request::decode(head, &spec.name) {
                Ok(v) => v,
                Err(e) => {
                    let _ = conn
                        .ch
                        .send(&msg::abort(id, 502, &format!("malformed request: {e}")));
                    return None;
                }
            };
            test_panic(&app);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0);
            // queue-timeout: a request that waited too long for a free thread is shed (504).
            if let Some(limit) = spec.limits.queue_timeout {
                let queued = app
                    .environ
                    .get("mod_wsgi.queue_start")
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u128>().ok());
                if let Some(q) = queued {
                    if now.saturating_sub(q) > limit.as_micros() {
                        conn.ch
                            .send(&msg::abort(
                                id,
                                503,
                                "request waited longer than queue-timeout",
                            ))
                            .ok()?;
                        return Some(conn);
                    }
                }
            }
            app.environ
                .push("mod_wsgi.daemon_start", now.to_string().as_bytes());
            // WSGIScriptReloading in daemon mode: a changed script restarts the process (so
            // every module of the application is loaded afresh); this request is handed
            // back unstarted and the Apache side sends it again to the new process.
            if app.reload
                && wsgi::interpreters::script_changed(
                    &app.application_group,
                    &app.script,
                    app.script_mtime,
                )
            {
                log(
                    "info",
                    &format!(
                        "rwsgi: WSGI script '{}' changed; restarting daemon process '{}'.",
                        app.script, spec.name
                    ),
                );
                let _ = conn.ch.send(&Frame::new(Kind::Goodbye, 0, vec![]));
                shared.stopping.store(true, Ordering::SeqCst);
                let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGUSR1);
                return None;
            }
            let transport = RemoteTransport::new(
                conn.ch.clone(),
                conn.rings.clone(),
                id,
                spec.socket_timeout,
                header_only,
            );
            shared
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    thread,
                    Active {
                        started: Instant::now(),
                        ch: conn.ch.clone(),
                        id,
                        group: app.application_group.clone(),
                        thread_ident: wsgi::interpreters::thread_ident(),
                        interrupted: None,
                    },
                );
            let log = transport.logger();
            let outcome = wsgi::run(app, Box::new(transport), log);
            let interrupted = shared
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&thread)
                .is_some_and(|a| a.interrupted.is_some());
            if outcome == Outcome::ServerError {
                let abort = if interrupted {
                    msg::abort(
                        id,
                        504,
                        "request-timeout exceeded; the request was interrupted",
                    )
                } else {
                    msg::abort(
                        id,
                        500,
                        "the application failed (see the daemon's messages above)",
                    )
                };
                conn.ch.send(&abort).ok()?;
            }
            remote::drain_credits(&conn.ch, conn.rings.as_ref(), spec.socket_timeout)
                .then_some(conn)
        }
        other => {
            log(
                "error",
                &format!(
                    "rwsgi: daemon process '{}': unexpected {other:?} frame; closing the connection",
                    spec.name
                ),
            );
            None
        }
    }
}

/// Test-only: with `RWSGI_TEST_PANIC_URI=/some/uri` in the daemon's environment, a request for
/// exactly that URI panics inside its request thread (tests/test_trust.py checks that such an
/// internal error costs one 500, not the thread, the process or the accounting).
fn test_panic(app: &crate::wsgi::AppRequest) {
    static URI: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    let uri = URI
        .get_or_init(|| std::env::var_os("RWSGI_TEST_PANIC_URI").map(|v| v.into_encoded_bytes()));
    if let Some(uri) = uri {
        if app.environ.get("REQUEST_URI") == Some(uri.as_slice()) {
            panic!("test-only panic (RWSGI_TEST_PANIC_URI)");
        }
    }
}

/// interrupt-timeout: raises mod_wsgi.RequestTimeout in every request thread over
/// request-timeout that was not interrupted yet (its request then ends with a 504, and the
/// process lives on).
fn interrupt_overdue(spec: &GroupSpec, shared: &Shared, limit: Duration) {
    let due: Vec<(usize, String, u64, Duration)> = shared
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(_, a)| a.interrupted.is_none() && a.started.elapsed() >= limit)
        .map(|(k, a)| (*k, a.group.clone(), a.thread_ident, a.started.elapsed()))
        .collect();
    for (thread, group, ident, ran) in due {
        log(
            "error",
            &format!(
                "rwsgi: daemon process '{}': a request has run for {:.1}s, over request-timeout={}s; interrupting it with mod_wsgi.RequestTimeout.",
                spec.name,
                ran.as_secs_f64(),
                limit.as_secs_f64()
            ),
        );
        // Taking the GIL may wait for the stuck thread's next switch interval; the mark is
        // set first so the request's thread sees it however soon the exception lands.
        if let Some(a) = shared
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&thread)
        {
            a.interrupted = Some(Instant::now());
        }
        wsgi::interpreters::interrupt(&group, ident);
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
            "warn",
            &format!(
                "rwsgi: daemon process '{}': HELLO with a wrong number of ring descriptors; bodies go inline",
                spec.name
            ),
        );
        return None;
    };
    match (
        crate::ipc::ring::SharedMem::open(a),
        crate::ipc::ring::SharedMem::open(b),
    ) {
        (Ok(req), Ok(resp)) => Some(Arc::new(std::sync::Mutex::new(Rings {
            request: crate::ipc::ring::Inbound::new(req),
            response: crate::ipc::ring::Outbound::new(resp),
        }))),
        (Err(e), _) | (_, Err(e)) => {
            log(
                "warn",
                &format!(
                    "rwsgi: daemon process '{}': unusable shared-memory ring from Apache ({e}); bodies go inline",
                    spec.name
                ),
            );
            None
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
