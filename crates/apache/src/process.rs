//! What the Apache parent knows and does about processes: its MPM's state, its `User`, other
//! children it watches (APR's "other child" registry: the MPM's maintenance loop reports their
//! death as it reaps its own children).

use crate::bindings as b;
use crate::server::Pool;
use std::ffi::{CStr, c_void};

/// Something the MPM reports about a watched child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEvent {
    /// It died; the wait status (as waitpid gives it).
    Died(i32),
    /// It vanished without being reaped by us.
    Lost,
    /// Apache restarts or stops (the watch ends).
    Restart,
}

type OnEvent = Box<dyn FnMut(ChildEvent) -> Option<i32>>;

/// One watched process. Lives in its pool (freed by the pool's cleanup, which runs after APR
/// has dropped the registration: it is registered first).
struct Watched {
    proc_: b::apr_proc_t,
    pool: *mut b::apr_pool_t,
    on_event: OnEvent,
}

/// Watches `pid` (a child of this process) for as long as `pool` lives: `on_event` runs in the
/// Apache parent's maintenance loop when the MPM reaps it (or on a restart). When it returns
/// a pid, that process is watched in its place (a replacement was started).
pub fn watch_child(
    pool: &Pool,
    pid: i32,
    on_event: impl FnMut(ChildEvent) -> Option<i32> + 'static,
) {
    // SAFETY: a zeroed apr_proc_t is a valid "no process" value; the pid is set below.
    let mut proc_: b::apr_proc_t = unsafe { std::mem::zeroed() };
    proc_.pid = pid;
    let w = Box::into_raw(Box::new(Watched {
        proc_,
        pool: pool.raw(),
        on_event: Box::new(on_event),
    }));
    let owner = w as usize;
    pool.on_cleanup(move || {
        // SAFETY: produced by Box::into_raw above; this cleanup runs once, after the pool's
        // other-child registrations (registered later, so cleaned up earlier) are gone.
        drop(unsafe { Box::from_raw(owner as *mut Watched) })
    });
    // SAFETY: `w` stays at its address until the cleanup above frees it.
    unsafe { register(w) };
}

/// # Safety
/// `w` must be a live `Watched` that stays at its address until its pool is cleaned up.
unsafe fn register(w: *mut Watched) {
    // SAFETY: per the contract; APR calls `maintenance` with `w` until unregistered.
    unsafe {
        b::apr_proc_other_child_register(
            &raw mut (*w).proc_,
            Some(maintenance),
            w.cast(),
            std::ptr::null_mut(),
            (*w).pool,
        )
    };
}

rwsgi_core::entry! {
    unsafe extern "C" fn maintenance(reason: i32, data: *mut c_void, status: i32) [on panic: ()] {
        let event = match reason {
            b::APR_OC_REASON_DEATH => ChildEvent::Died(status),
            b::APR_OC_REASON_LOST => ChildEvent::Lost,
            b::APR_OC_REASON_RESTART => ChildEvent::Restart,
            _ => return,
        };
        // SAFETY: unregisters this very entry (APR allows it from the callback).
        unsafe { b::apr_proc_other_child_unregister(data) };
        // SAFETY: `data` is the Watched registered by `register`, alive until its pool's
        // cleanup, which runs after APR has dropped every registration of that pool.
        let w = unsafe { &mut *data.cast::<Watched>() };
        if let Some(pid) = (w.on_event)(event) {
            w.proc_.pid = pid;
            // SAFETY: as above: the Watched keeps its address.
            unsafe { register(w) };
        }
    }
}

fn mpm_query(what: i32) -> Option<i32> {
    let mut v = 0i32;
    // SAFETY: ap_mpm_query writes one int.
    (unsafe { b::ap_mpm_query(what, &mut v) } == b::APR_SUCCESS).then_some(v)
}

/// The MPM is stopping (not restarting): a dead child must not be replaced.
pub fn mpm_stopping() -> bool {
    mpm_query(b::AP_MPMQ_MPM_STATE).is_none_or(|s| s == b::AP_MPMQ_STOPPING)
}

/// The MPM runs threads in its children, and how many per child; it forks children, and how
/// many at most (for wsgi.multithread / wsgi.multiprocess).
pub fn mpm_threads_and_daemons() -> (bool, i32, bool, i32) {
    let q = |what| mpm_query(what).unwrap_or(0);
    (
        q(b::AP_MPMQ_IS_THREADED) != b::AP_MPMQ_NOT_SUPPORTED,
        q(b::AP_MPMQ_MAX_THREADS),
        q(b::AP_MPMQ_IS_FORKED) != b::AP_MPMQ_NOT_SUPPORTED,
        q(b::AP_MPMQ_MAX_DAEMONS),
    )
}

/// ServerLimit and ThreadLimit: the most processes and threads per process the MPM can run
/// in this configuration generation.
pub fn mpm_hard_limits() -> (usize, usize) {
    let q = |what| mpm_query(what).unwrap_or(1).max(1) as usize;
    (
        q(b::AP_MPMQ_HARD_LIMIT_DAEMONS),
        q(b::AP_MPMQ_HARD_LIMIT_THREADS),
    )
}

/// Apache is exiting (not restarting).
pub fn exiting() -> bool {
    // SAFETY: a plain query of the server's state.
    unsafe { b::ap_state_query(b::AP_SQ_MAIN_STATE) == b::AP_SQ_MS_EXITING }
}

/// Apache's `User` and `Group` (mod_unixd), with the user's name.
pub fn run_as() -> (u32, u32, Option<String>) {
    // SAFETY: mod_unixd's record is filled while the configuration is read and only read
    // afterwards; the name is copied out.
    unsafe {
        let u = std::ptr::read(&raw const b::ap_unixd_config);
        let name = (!u.user_name.is_null())
            .then(|| CStr::from_ptr(u.user_name).to_string_lossy().into_owned());
        (u.user_id, u.group_id, name)
    }
}

/// The running Apache's version.
pub fn server_version() -> (u32, u32, u32) {
    let mut v = b::ap_version_t::default();
    // SAFETY: ap_get_server_revision fills the struct.
    unsafe { b::ap_get_server_revision(&mut v) };
    (v.major as u32, v.minor as u32, v.patch as u32)
}

/// The main server's `Timeout`.
pub fn server_timeout() -> std::time::Duration {
    // SAFETY: ap_server_conf is set for the life of the configuration once Apache runs.
    let usec = unsafe {
        if b::ap_server_conf.is_null() {
            0
        } else {
            (*b::ap_server_conf).timeout
        }
    };
    if usec > 0 {
        std::time::Duration::from_micros(usec as u64)
    } else {
        std::time::Duration::from_secs(60)
    }
}

/// Adds `component` to Apache's Server banner (`Server: Apache/2.4 rwsgi/0.1`).
pub fn add_version_component(pconf: &Pool, component: &str) {
    if let Ok(c) = std::ffi::CString::new(component) {
        // SAFETY: Apache copies the component into pconf.
        unsafe { b::ap_add_version_component(pconf.raw(), c.as_ptr()) };
    }
}
