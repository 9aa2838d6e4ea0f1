//! A daemon worker process: drops privileges, starts Python, then serves connections from
//! Apache children. One poller thread watches the listening socket and every idle connection;
//! a connection with a request waiting is handed to one of `threads` Python threads over a
//! bounded channel (back-pressure: when all are busy, requests wait in the socket).

use super::remote::RemoteTransport;
use super::sys::exit_now;
use super::{GroupSpec, log, request};
use crate::ipc::channel::{self, Channel, ChannelError};
use crate::ipc::frame::{Frame, Kind};
use crate::ipc::msg;
use crate::wsgi::{self, InitConfig, Outcome, ProcessInfo};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Conn {
    ch: Arc<Channel>,
    authenticated: bool,
}

struct Shared {
    stopping: AtomicBool,
    in_flight: AtomicUsize,
    served: AtomicU64,
}

/// The worker's life; never returns.
pub fn main(spec: &GroupSpec, listener: OwnedFd) -> ! {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
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
    setup_environment(spec);
    wsgi::transport::set_server_logger(|l, m| log(level_name(l), m));
    let init = InitConfig {
        home: spec.python_home.clone(),
        ..Default::default()
    };
    let process = ProcessInfo {
        multithread: spec.threads > 1,
        multiprocess: spec.multiprocess,
        process_group: spec.name.clone(),
        apache_version: spec.apache_version,
        restrict_signal: true,
        python_path: spec.python_path.clone(),
        eggs: spec.python_eggs.clone(),
        ..Default::default()
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
    // Signals go to the main thread's sigwait; the threads spawned below inherit the mask.
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        mask.add(s);
    }
    let _ = mask.thread_block();

    let shared = Arc::new(Shared {
        stopping: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        served: AtomicU64::new(0),
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
        std::thread::Builder::new()
            .name(format!("rwsgi-req-{i}"))
            .spawn(move || {
                while let Ok(conn) = work_rx.recv() {
                    // in_flight was counted when the poller dispatched the connection
                    let (kept, was_request) = serve_frame(&spec, conn);
                    if let Some(c) = kept {
                        let _ = ret_tx.send(c);
                        let _ = nix::unistd::write(wake_w.as_fd(), &[1]);
                    }
                    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                    if !was_request {
                        continue;
                    }
                    let served = shared.served.fetch_add(1, Ordering::SeqCst) + 1;
                    if spec.maximum_requests > 0 && served == spec.maximum_requests {
                        log("info", &format!("rwsgi: daemon process '{}' reached maximum-requests={}; restarting.", spec.name, spec.maximum_requests));
                        let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGUSR1);
                    }
                }
            })
            .expect("spawn request thread");
    }
    drop(work_rx);

    let poller_thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("rwsgi-poller".into())
            .spawn(move || poller(listener, wake_r, work_tx, ret_rx, shared))
            .expect("spawn poller")
    };

    let sig = mask.wait().unwrap_or(Signal::SIGTERM);
    log(
        "info",
        &format!("rwsgi: daemon process '{}' stopping ({sig:?}).", spec.name),
    );
    shared.stopping.store(true, Ordering::SeqCst);
    let _ = nix::unistd::write(wake_w.as_fd(), &[1]);
    // The poller ends once no request is in progress (after saying Goodbye on every idle
    // connection); requests still running after graceful-timeout are cut off.
    let deadline = Instant::now() + spec.graceful_timeout;
    while !poller_thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    wsgi::interpreters::run_atexit();
    exit_now(0)
}

fn poller(
    listener: OwnedFd,
    wake_r: OwnedFd,
    work_tx: crossbeam_channel::Sender<Conn>,
    ret_rx: crossbeam_channel::Receiver<Conn>,
    shared: Arc<Shared>,
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
                    Ok(ch) => idle.push(Conn {
                        ch: Arc::new(ch),
                        authenticated: false,
                    }),
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
fn serve_frame(spec: &GroupSpec, conn: Conn) -> (Option<Conn>, bool) {
    let is_request = conn.authenticated;
    let kept = serve_frame_inner(spec, conn);
    (kept, is_request)
}

fn serve_frame_inner(spec: &GroupSpec, mut conn: Conn) -> Option<Conn> {
    let (frame, _fds) = match conn.ch.recv(Some(Duration::from_secs(5))) {
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
            conn.ch.send(&Frame::new(Kind::HelloAck, 0, vec![])).ok()?;
            conn.authenticated = true;
            Some(conn)
        }
        Kind::RequestHead if conn.authenticated => {
            let id = frame.header.request_id;
            let (mut app, header_only) = match request::decode(&frame.payload, &spec.name) {
                Ok(v) => v,
                Err(e) => {
                    let _ = conn
                        .ch
                        .send(&msg::abort(id, 502, &format!("malformed request: {e}")));
                    return None;
                }
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0);
            app.environ
                .push(("mod_wsgi.daemon_start".into(), now.to_string().into_bytes()));
            let transport =
                RemoteTransport::new(conn.ch.clone(), id, spec.socket_timeout, header_only);
            if wsgi::run(app, Box::new(transport)) == Outcome::ServerError {
                conn.ch
                    .send(&msg::abort(
                        id,
                        500,
                        "the application failed (see the daemon's messages above)",
                    ))
                    .ok()?;
            }
            Some(conn)
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
