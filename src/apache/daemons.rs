//! Starting and stopping daemon process groups from the Apache parent: what Apache knows that
//! daemon mode needs (its User/Group, runtime directory), the "first configuration pass" rule,
//! and the pool cleanup that ends a generation's supervisors.

use super::bindings as b;
use super::guard::guard;
use nix::unistd::Pid;
use std::ffi::{CStr, c_void};

/// What the Apache parent knows that daemon groups default to.
pub struct ApacheFacts {
    pub uid: u32,
    pub gid: u32,
    pub user_name: Option<String>,
    /// `<DefaultRuntimeDir>/rwsgi`, the default WSGISocketPrefix.
    pub default_socket_prefix: String,
    pub version: (u32, u32, u32),
}

pub(crate) fn facts(pconf: *mut b::apr_pool_t) -> ApacheFacts {
    let root = nix::unistd::geteuid().is_root();
    // SAFETY: mod_unixd's configuration record is filled while the configuration is read and
    // only read afterwards; the runtime path is copied out of pconf at once.
    unsafe {
        let u = std::ptr::read(&raw const b::ap_unixd_config);
        let name = (!u.user_name.is_null())
            .then(|| CStr::from_ptr(u.user_name).to_string_lossy().into_owned());
        let rel = b::ap_runtime_dir_relative(pconf, c"rwsgi".as_ptr());
        let prefix = if rel.is_null() {
            "/var/run/apache2/rwsgi".into()
        } else {
            CStr::from_ptr(rel).to_string_lossy().into_owned()
        };
        let v = super::server_version();
        let mut it = v.split('.').map(|p| p.parse().unwrap_or(0));
        ApacheFacts {
            uid: if root {
                u.user_id
            } else {
                nix::unistd::getuid().as_raw()
            },
            gid: if root {
                u.group_id
            } else {
                nix::unistd::getgid().as_raw()
            },
            user_name: if root { name } else { None },
            default_socket_prefix: prefix,
            version: (
                it.next().unwrap_or(2),
                it.next().unwrap_or(4),
                it.next().unwrap_or(0),
            ),
        }
    }
}

/// Apache reads its configuration twice at start-up and runs post_config both times; daemons
/// are started only on the second (real) pass, as mod_wsgi does. True on the first pass.
pub(crate) fn is_first_pass(s: *mut b::server_rec) -> bool {
    const KEY: &CStr = c"rwsgi-first-pass-done";
    // SAFETY: userdata on the process pool, which lives for the whole Apache parent.
    unsafe {
        let pool = (*(*s).process).pool;
        let mut data: *mut c_void = std::ptr::null_mut();
        b::apr_pool_userdata_get(&mut data, KEY.as_ptr(), pool);
        if data.is_null() {
            b::apr_pool_userdata_set(
                std::ptr::dangling::<c_void>(),
                KEY.as_ptr(),
                Some(b::apr_pool_cleanup_null),
                pool,
            );
            return true;
        }
    }
    false
}

/// Closes Apache's listening sockets in a supervisor (it must not accept HTTP connections).
pub fn close_apache_listeners() {
    // SAFETY: runs in the freshly forked supervisor, which never returns into Apache.
    unsafe { b::ap_close_listeners() }
}

/// Sends SIGTERM to this generation's supervisors when `pconf` is cleared (restart) or
/// destroyed (stop).
pub(crate) fn stop_on_cleanup(pconf: *mut b::apr_pool_t, pids: Vec<Pid>) {
    unsafe extern "C" fn cleanup(data: *mut c_void) -> b::apr_status_t {
        guard("daemon cleanup", 0, || {
            // SAFETY: produced by Box::into_raw below, run once.
            let pids = unsafe { Box::from_raw(data.cast::<Vec<Pid>>()) };
            crate::daemon::groups::stop(&pids);
            0
        })
    }
    let data = Box::into_raw(Box::new(pids)).cast::<c_void>();
    // SAFETY: the cleanup owns `data` and frees it exactly once; the child cleanup is a no-op
    // (Apache children never exec).
    unsafe {
        b::apr_pool_cleanup_register(pconf, data, Some(cleanup), Some(b::apr_pool_cleanup_null))
    };
}
