//! Embedded mode's "log the stacks" from the status page: the child that serves the page
//! cannot reach the others' Python, so each child has a small watcher thread, asleep on a
//! futex over a counter of the server board, that the page wakes; it logs the stacks of its
//! own running requests.

use rwsgi_apache::log;
use rwsgi_core::Level;
use rwsgi_core::status::{now_us, wait_change};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static STOPPING: AtomicBool = AtomicBool::new(false);
/// How long the watcher waits for the GIL to take one stack, and for a whole round.
const STACK_WAIT: Duration = Duration::from_secs(2);
const ROUND: Duration = Duration::from_secs(10);

/// Starts this child's watcher (child_init).
pub fn start_watcher() {
    let Some((boards, _)) = super::CHILD.get() else {
        return;
    };
    let asked = boards.server.embedded_stack_requests();
    let mut seen = asked.load(Ordering::Relaxed);
    let _ = rwsgi_core::guard::spawn("rwsgi-status".into(), Some(256 << 10), move || {
        while !STOPPING.load(Ordering::Relaxed) {
            wait_change(asked, seen, Duration::from_secs(5));
            let now = asked.load(Ordering::Relaxed);
            if now != seen && !STOPPING.load(Ordering::Relaxed) {
                seen = now;
                log_running();
            }
        }
    });
}

/// The child ends: the watcher must not take the GIL while Python finishes.
pub fn stop_watcher() {
    STOPPING.store(true, Ordering::Relaxed);
}

/// The Python stack of every embedded request running in this child, into the error log.
fn log_running() {
    let Some((boards, p)) = super::CHILD.get() else {
        return;
    };
    let pid = std::process::id();
    let running: Vec<_> = (0..boards.server.claimed_threads(*p))
        .filter_map(|t| boards.server.apache_slot(*p, t)?.running())
        .filter(|r| r.target == 0 && r.ident != 0)
        .collect();
    if running.is_empty() {
        return;
    }
    log::server(
        Level::Notice,
        &format!(
            "rwsgi: embedded (pid {pid}): the status page asked for the stacks of the {} running request(s).",
            running.len()
        ),
    );
    let deadline = std::time::Instant::now() + ROUND;
    for r in running {
        if STOPPING.load(Ordering::Relaxed) || std::time::Instant::now() >= deadline {
            return;
        }
        let ran = now_us().saturating_sub(r.started_us) as f64 / 1e6;
        let what = format!("{} (running for {ran:.1}s)", r.line);
        let stack = rwsgi_python::stacks::stack_of_thread(r.ident, STACK_WAIT);
        for line in rwsgi_python::stacks::report(&what, r.ident, stack) {
            log::server(
                Level::Error,
                &format!("rwsgi: embedded (pid {pid}): {line}"),
            );
        }
    }
}
