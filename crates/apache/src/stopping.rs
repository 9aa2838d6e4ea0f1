//! A guard against a use-after-free in Apache's threaded MPMs when a child stops ungracefully
//! (`apachectl stop`, SIGTERM to the parent): an Apache child must not segfault at shutdown.
//!
//! On an ungraceful stop the child's main thread runs the MPM's `signal_threads()`: it sets the
//! MPM state to STOPPING, then `close_worker_sockets()` walks `worker_sockets[]` and closes
//! every connection a worker thread is serving, then runs the `child_stopping` hooks. Nothing
//! stops a worker from finishing its connection meanwhile: mpm_event's `process_socket()`
//! closes the connection and destroys (or recycles) its transaction pool — which holds the
//! `apr_socket_t` — *before* it clears its `worker_sockets[]` slot. When the main thread reads
//! that slot in between, `apr_os_sock_get()` dereferences unmapped memory and the child dies
//! with SIGSEGV (AH00052). With WSGI applications many workers are mid-request at any moment,
//! so this happens in a few percent of stops under load (mod_wsgi alike).
//!
//! rwsgi cannot fix the MPM, but it can keep the memory alive: every connection pool gets a
//! cleanup that, while the main thread is between "STOPPING" and the `child_stopping` hook
//! (i.e. inside `close_worker_sockets()`), waits for that hook before letting the pool be
//! freed. A worker leaving rwsgi's handler in that window waits too, so it does not close its
//! socket concurrently with the main thread. Outside that window (every request of a running
//! server, and graceful stops, where the window is a few instructions long) the cost is one
//! flag load and one `ap_mpm_query`.

use super::bindings as b;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest a thread waits for the main thread to finish closing worker sockets (it takes
/// microseconds; the bound only matters if an MPM never runs the `child_stopping` hook).
const MAX_WAIT: Duration = Duration::from_secs(2);

/// This child runs a threaded MPM (set in child_init; the guard is not needed otherwise).
static THREADED: AtomicBool = AtomicBool::new(false);

/// The `child_stopping` hooks have run in this child.
static STOPPED: Gate = Gate::new();

/// A one-way flag threads can wait on.
struct Gate {
    open: AtomicBool,
    lock: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    const fn new() -> Gate {
        Gate {
            open: AtomicBool::new(false),
            lock: Mutex::new(false),
            cond: Condvar::new(),
        }
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    fn open(&self) {
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        *g = true;
        self.open.store(true, Ordering::Release);
        self.cond.notify_all();
    }

    /// Waits until the gate opens or `max` has passed; true if it opened.
    fn wait(&self, max: Duration) -> bool {
        let deadline = Instant::now() + max;
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*g {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self
                .cond
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

fn mpm_stopping() -> bool {
    let mut state = 0i32;
    // SAFETY: ap_mpm_query writes one int; it only reads the MPM's state.
    let rv = unsafe { b::ap_mpm_query(b::AP_MPMQ_MPM_STATE, &mut state) };
    rv == 0 && state == b::AP_MPMQ_STOPPING
}

/// Blocks while this child's main thread may be force-closing worker sockets (see the module
/// documentation). Returns immediately in every other situation.
pub fn wait_while_closing_worker_sockets() {
    if !THREADED.load(Ordering::Relaxed) || STOPPED.is_open() || !mpm_stopping() {
        return;
    }
    STOPPED.wait(MAX_WAIT);
}

/// Registers the guard's hooks: first at pre_connection, so its pool cleanup runs as late as
/// possible (cleanups run in reverse), and child_stopping.
pub(crate) fn register() {
    // SAFETY: called while Apache loads the module, single-threaded; the hooks are 'static.
    unsafe {
        b::ap_hook_pre_connection(
            Some(pre_connection),
            std::ptr::null(),
            std::ptr::null(),
            b::APR_HOOK_REALLY_FIRST,
        );
        b::ap_hook_child_stopping(
            Some(child_stopping),
            std::ptr::null(),
            std::ptr::null(),
            b::APR_HOOK_MIDDLE,
        );
    }
}

/// child_init: decides whether the guard is needed in this child.
pub(crate) fn child_init() {
    let mut threaded = 0i32;
    // SAFETY: ap_mpm_query writes one int.
    unsafe { b::ap_mpm_query(b::AP_MPMQ_IS_THREADED, &mut threaded) };
    THREADED.store(threaded != b::AP_MPMQ_NOT_SUPPORTED, Ordering::Relaxed);
}

rwsgi_core::entry! {
    /// child_stopping hook: the MPM has finished closing worker sockets (ungraceful) or has only
    /// told its threads to stop (graceful).
    unsafe extern "C" fn child_stopping(_pchild: *mut b::apr_pool_t, _graceful: i32) [on panic: ()] {
        STOPPED.open()
    }
}

rwsgi_core::entry! {
    /// pre_connection hook: the connection's pool (the MPM's transaction pool, which holds the
    /// client socket) is not freed while the main thread may still read the socket.
    unsafe extern "C" fn pre_connection(c: *mut b::conn_rec, _csd: *mut c_void) -> i32 [on panic: b::DECLINED] {
        if THREADED.load(Ordering::Relaxed) && !c.is_null() {
            // SAFETY: Apache passes the live connection; its pool outlives the cleanup entry,
            // which carries no data.
            unsafe {
                b::apr_pool_cleanup_register(
                    (*c).pool,
                    std::ptr::null(),
                    Some(connection_pool_cleanup),
                    Some(b::apr_pool_cleanup_null),
                )
            };
        }
        b::DECLINED
    }
}

rwsgi_core::entry! {
    unsafe extern "C" fn connection_pool_cleanup(_data: *mut c_void) -> b::apr_status_t [on panic: 0] {
        wait_while_closing_worker_sockets();
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn gate_wait_times_out_then_opens() {
        let g = Arc::new(Gate::new());
        assert!(!g.wait(Duration::from_millis(20)));
        let g2 = g.clone();
        let t = std::thread::spawn(move || g2.wait(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        g.open();
        assert!(t.join().unwrap());
        assert!(g.is_open());
        assert!(g.wait(Duration::ZERO));
    }
}
