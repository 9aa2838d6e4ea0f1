//! The main thread of a daemon process: it waits for signals, enforces the group's time
//! limits (restart-interval, inactivity-timeout, startup-timeout, deadlock-timeout,
//! request-timeout with interrupt-timeout) and gives freed heap back ([`HeapTrim`]). What to
//! do about a running request is decided by the pure [`verdict`]; this loop only acts on it.

use super::heap::HeapTrim;
use super::pool::Shared;
use nix::sys::signal::Signal;
use rwsgi_core::Level;
use rwsgi_core::death::Exit;
use rwsgi_core::errlog::log;
use rwsgi_core::ipc::channel;
use rwsgi_core::ipc::msg;
use rwsgi_core::label::DaemonName;
use rwsgi_core::spec::GroupSpec;
use rwsgi_python as wsgi;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What the watchdog does about one running request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fine,
    /// Raise mod_wsgi.RequestTimeout in its thread (interrupt-timeout is set).
    Interrupt,
    /// The process must be restarted: the request cannot be stopped from outside.
    Restart,
}

/// The rule of request-timeout: without interrupt-timeout, a request over request-timeout
/// restarts the process; with it, the request is first interrupted, and only one that the
/// interruption did not end within interrupt-timeout restarts the process.
pub fn verdict(
    ran: Duration,
    interrupted_for: Option<Duration>,
    request_timeout: Duration,
    interrupt_timeout: Option<Duration>,
) -> Verdict {
    match (interrupt_timeout, interrupted_for) {
        (Some(grace), Some(since)) if since >= grace => Verdict::Restart,
        (Some(_), Some(_)) => Verdict::Fine,
        (Some(_), None) if ran >= request_timeout => Verdict::Interrupt,
        (None, _) if ran >= request_timeout => Verdict::Restart,
        _ => Verdict::Fine,
    }
}

/// Why the process stops gracefully.
pub struct Stop {
    pub why: String,
    /// SIGUSR1 from outside: eviction-timeout applies instead of graceful-timeout.
    pub evicted: bool,
    /// The exit status once stopped (cpu-time-limit is worth naming to the supervisor).
    pub exit: Exit,
}

/// What a signal to the process means: a stop, or (SIGHUP, SIGUSR2) the application's
/// subscribe_signals callbacks, on a thread of their own, the process running on (mod_wsgi 6).
fn on_signal(signo: i32, spec: &GroupSpec, shared: &Shared) -> Option<Stop> {
    let stop = |why: String| Stop {
        why,
        evicted: false,
        exit: Exit::Normal,
    };
    Some(match Signal::try_from(signo) {
        Ok(Signal::SIGXCPU) => Stop {
            exit: Exit::CpuTimeLimit,
            ..stop("cpu-time-limit reached".into())
        },
        // maximum-requests and script reloading signal the process themselves after setting
        // `stopping`; a SIGUSR1 that finds it unset came from an admin.
        Ok(Signal::SIGUSR1) if !shared.stopping.load(Ordering::SeqCst) => Stop {
            evicted: true,
            ..stop("SIGUSR1: evicted".into())
        },
        Ok(Signal::SIGURG) => {
            log_running_stacks(spec, shared);
            return None;
        }
        Ok(s @ (Signal::SIGHUP | Signal::SIGUSR2)) => {
            let _ = rwsgi_core::guard::spawn("rwsgi-signal".into(), None, move || {
                wsgi::interpreters::process_signal(s.as_str(), s as i32)
            });
            return None;
        }
        Ok(s) => stop(format!("{s:?}")),
        Err(_) => stop("signal".into()),
    })
}

/// Waits until the process should stop gracefully. Over-limit conditions that cannot wait
/// (deadlock-timeout, a request past request-timeout) end the process from here.
pub fn watch(
    spec: &GroupSpec,
    shared: &Shared,
    sfd: &nix::sys::signalfd::SignalFd,
    gil_seen: &std::sync::Mutex<Instant>,
) -> Stop {
    let started = Instant::now();
    let l = &spec.options;
    let stop = |why: String| Stop {
        why,
        evicted: false,
        exit: Exit::Normal,
    };
    let mut heap = HeapTrim::new(Instant::now());
    loop {
        let _ = channel::wait_readable(sfd.as_fd(), Some(Duration::from_millis(250)));
        heap.tick(shared.served.load(Ordering::Relaxed), Instant::now());
        if let Ok(Some(info)) = sfd.read_signal() {
            if let Some(stop) = on_signal(info.ssi_signo as i32, spec, shared) {
                return stop;
            }
        }
        if let Some(t) = l.restart_interval {
            if started.elapsed() >= t {
                return stop(format!("restart-interval={}s", t.as_secs_f64()));
            }
        }
        if let Some(t) = l.startup_timeout {
            if wsgi::script_startup::failing_since().is_some_and(|since| since.elapsed() >= t) {
                log(
                    Level::Error,
                    &format!(
                        "rwsgi: {}: the WSGI script has not loaded within startup-timeout={}s of its first failure; restarting the process.",
                        DaemonName(spec.name()),
                        t.as_secs_f64()
                    ),
                );
                return stop(format!("startup-timeout={}s", t.as_secs_f64()));
            }
        }
        if let Some(t) = l.inactivity_timeout {
            let idle = shared
                .last_activity
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed();
            if shared.in_flight.load(Ordering::SeqCst) == 0 && idle >= t {
                return stop(format!("inactivity-timeout={}s", t.as_secs_f64()));
            }
        }
        if let Some(t) = l.deadlock_timeout {
            let since = gil_seen.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
            if since >= t {
                log(
                    Level::Error,
                    &format!(
                        "rwsgi: {}: the Python GIL could not be taken for {:.0}s (deadlock-timeout); restarting the process. Requests in flight: {}.",
                        DaemonName(spec.name()),
                        since.as_secs_f64(),
                        shared.uris_in_flight()
                    ),
                );
                super::super::sys::exit_now(Exit::DeadlockTimeout as i32);
            }
        }
        if let Some(t) = l.request_timeout {
            enforce_request_timeout(spec, shared, t);
        }
    }
}

fn enforce_request_timeout(spec: &GroupSpec, shared: &Shared, limit: Duration) {
    let l = &spec.options;
    let now = Instant::now();
    let mut to_interrupt = Vec::new();
    let mut stuck = Vec::new();
    for (thread, a) in shared
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let ran = now.duration_since(a.started);
        let interrupted_for = a.interrupted.map(|at| now.duration_since(at));
        match verdict(ran, interrupted_for, limit, l.interrupt_timeout) {
            Verdict::Fine => {}
            Verdict::Interrupt => {
                to_interrupt.push((*thread, a.group.clone(), a.thread_ident, ran, a.uri.clone()))
            }
            Verdict::Restart => stuck.push((
                a.ch.clone(),
                a.id,
                ran,
                a.uri.clone(),
                a.group.clone(),
                a.thread_ident,
            )),
        }
    }
    for (thread, group, ident, ran, uri) in to_interrupt {
        log(
            Level::Error,
            &format!(
                "rwsgi: {}: request {uri} has run for {:.1}s, over request-timeout={}s; interrupting it with mod_wsgi.RequestTimeout.",
                DaemonName(spec.name()),
                ran.as_secs_f64(),
                limit.as_secs_f64()
            ),
        );
        log_stack(spec.name(), &group, ident, &uri);
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
    if stuck.is_empty() {
        return;
    }
    for (ch, id, ran, uri, group, ident) in &stuck {
        log(
            Level::Error,
            &format!(
                "rwsgi: {}: request {uri} has run for {:.1}s, over request-timeout={}s; restarting the process. Requests in flight: {}.",
                DaemonName(spec.name()),
                ran.as_secs_f64(),
                limit.as_secs_f64(),
                shared.uris_in_flight()
            ),
        );
        log_stack(spec.name(), group, *ident, uri);
        let _ = ch.send(&msg::abort(
            *id,
            504,
            "request-timeout exceeded; the daemon process was restarted",
        ));
    }
    super::super::sys::exit_now(Exit::RequestTimeout as i32);
}

/// A round of on-demand stacks is being logged (one at a time).
static STACKS_RUNNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// At most this long for one round, however many requests are stuck.
const STACKS_ROUND: Duration = Duration::from_secs(10);

/// Asked from the status page: the Python stack of every running request, into the log. On
/// a thread of its own (the GIL may be held by a stuck request: the watchdog must keep
/// watching), one round at a time, bounded.
fn log_running_stacks(spec: &GroupSpec, shared: &Shared) {
    if STACKS_RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let running: Vec<(String, u64, String, Duration)> = shared
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(|a| {
            (
                a.group.clone(),
                a.thread_ident,
                a.uri.clone(),
                a.started.elapsed(),
            )
        })
        .collect();
    let name = spec.name().to_string();
    let spawned = rwsgi_core::guard::spawn("rwsgi-stacks".into(), None, move || {
        log(
            Level::Notice,
            &format!(
                "rwsgi: {}: the status page asked for the stacks of the {} running request(s).",
                DaemonName(&name),
                running.len()
            ),
        );
        let deadline = Instant::now() + STACKS_ROUND;
        for (group, ident, uri, ran) in running {
            if Instant::now() >= deadline {
                break;
            }
            let uri = format!("{uri} (running for {:.1}s)", ran.as_secs_f64());
            log_stack(&name, &group, ident, &uri);
        }
        STACKS_RUNNING.store(false, Ordering::Release);
    });
    if spawned.is_err() {
        STACKS_RUNNING.store(false, Ordering::Release);
    }
}

/// How long the watchdog waits for the GIL to take an overdue request's stack.
const STACK_WAIT: Duration = Duration::from_secs(2);

/// The Python stack of an overdue request's thread, into the log with the request's URI, so
/// that "it timed out" comes with where it was.
fn log_stack(group_name: &str, group: &str, ident: u64, uri: &str) {
    let name = DaemonName(group_name);
    let stack = wsgi::stacks::stack_of(group, ident, STACK_WAIT);
    for line in wsgi::stacks::report(uri, ident, stack) {
        log(Level::Error, &format!("rwsgi: {name}: {line}"));
    }
}

#[cfg(test)]
mod tests {
    use super::{Verdict, verdict};
    use std::time::Duration;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn without_interrupt_timeout_an_overdue_request_restarts() {
        assert_eq!(verdict(S(4), None, S(5), None), Verdict::Fine);
        assert_eq!(verdict(S(5), None, S(5), None), Verdict::Restart);
    }

    #[test]
    fn with_interrupt_timeout_it_is_interrupted_first() {
        assert_eq!(verdict(S(4), None, S(5), Some(S(2))), Verdict::Fine);
        assert_eq!(verdict(S(5), None, S(5), Some(S(2))), Verdict::Interrupt);
        // interrupted 1 s ago: it gets its interrupt-timeout to end
        assert_eq!(verdict(S(6), Some(S(1)), S(5), Some(S(2))), Verdict::Fine);
        assert_eq!(
            verdict(S(7), Some(S(2)), S(5), Some(S(2))),
            Verdict::Restart
        );
    }
}
