//! Starting and stopping daemon process groups from the Apache parent: what Apache knows that
//! daemon mode needs (its User/Group, runtime directory), the "first configuration pass" rule,
//! and the pool cleanup that ends a generation's supervisors.

use super::bindings as b;
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

/// The secret of group `group` for this Apache parent's whole life: the one a previous
/// configuration generation used, else `fresh`. After a graceful restart (logrotate does one
/// every night) children of the old generation still talk to the group's socket, now served
/// by the new generation's processes; a new secret would lock them out (503).
pub(crate) fn stable_secret(s: *mut b::server_rec, group: &str, fresh: Vec<u8>) -> Vec<u8> {
    let Ok(key) = std::ffi::CString::new(format!("rwsgi-secret:{group}")) else {
        return fresh;
    };
    // SAFETY: userdata on the process pool, which lives for the whole Apache parent (unlike
    // this module's statics, which a restart reloads); the key and the bytes are copied into
    // that pool, and the bytes are read back with the length they were stored with.
    unsafe {
        let pool = (*(*s).process).pool;
        let mut data: *mut c_void = std::ptr::null_mut();
        b::apr_pool_userdata_get(&mut data, key.as_ptr(), pool);
        if !data.is_null() {
            return std::slice::from_raw_parts(data.cast::<u8>(), fresh.len()).to_vec();
        }
        let copy = b::apr_pmemdup(pool, fresh.as_ptr().cast(), fresh.len() as _);
        let key = b::apr_pstrdup(pool, key.as_ptr());
        if !copy.is_null() && !key.is_null() {
            b::apr_pool_userdata_set(copy, key, Some(b::apr_pool_cleanup_null), pool);
        }
    }
    fresh
}

/// Closes Apache's listening sockets in a supervisor (it must not accept HTTP connections).
pub fn close_apache_listeners() {
    // SAFETY: runs in the freshly forked supervisor, which never returns into Apache.
    unsafe { b::ap_close_listeners() }
}

/// Sends SIGTERM to this generation's supervisors when `pconf` is cleared (restart) or
/// destroyed (stop). On a stop, the group sockets are removed at once: the supervisors may
/// outlive Apache's parent while their processes finish (or be killed with it by an init
/// system), and stale sockets would pile up in the runtime directory. On a restart they stay:
/// the next generation binds the same paths.
pub(crate) fn stop_on_cleanup(
    pconf: *mut b::apr_pool_t,
    pids: Vec<Pid>,
    sockets: Vec<std::path::PathBuf>,
) {
    // (supervisors, sockets, the Apache parent's pid)
    type Generation = (Vec<Pid>, Vec<std::path::PathBuf>, u32);
    crate::entry! {
        unsafe extern "C" fn cleanup(data: *mut c_void) -> b::apr_status_t [on panic: 0] {
            // SAFETY: produced by Box::into_raw below, run once.
            let generation = unsafe { Box::from_raw(data.cast::<Generation>()) };
            // Only the parent owns the groups: a child that tears its copy of the pools
            // down on exit must not stop them.
            if generation.2 != std::process::id() {
                return 0;
            }
            crate::daemon::groups::stop(&generation.0);
            // SAFETY: a plain query of the server's state.
            let state = unsafe { b::ap_state_query(b::AP_SQ_MAIN_STATE) };
            if state == b::AP_SQ_MS_EXITING {
                for path in &generation.1 {
                    let _ = std::fs::remove_file(path);
                }
            }
            0
        }
    }
    let data = Box::into_raw(Box::new((pids, sockets, std::process::id()))).cast::<c_void>();
    // SAFETY: the cleanup owns `data` and frees it exactly once; the child cleanup is a no-op
    // (Apache children never exec).
    unsafe {
        b::apr_pool_cleanup_register(pconf, data, Some(cleanup), Some(b::apr_pool_cleanup_null))
    };
}
