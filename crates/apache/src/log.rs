//! Logging into Apache's error log under this module's index, so `LogLevel wsgi:debug` works.
//! Messages are always passed as a "%s" argument (csrc/shim.c), never as a format string.

use super::bindings as b;
use rwsgi_core::Level;
use std::ffi::CString;

fn raw(l: Level) -> i32 {
    match l {
        Level::Crit => b::APLOG_CRIT,
        Level::Error => b::APLOG_ERR,
        Level::Warn => b::APLOG_WARNING,
        Level::Notice => b::APLOG_NOTICE,
        Level::Info => b::APLOG_INFO,
        Level::Debug => b::APLOG_DEBUG,
    }
}

fn cstring(msg: &str) -> CString {
    CString::new(msg.replace('\0', "\\0")).unwrap_or_default()
}

/// Logs against the main server (no request context).
pub fn server(level: Level, msg: &str) {
    server_rec(level, std::ptr::null(), msg)
}

pub(crate) fn server_rec(level: Level, s: *const b::server_rec, msg: &str) {
    let m = cstring(msg);
    // SAFETY: ap_log_error_ accepts a NULL server_rec (main server); `m` outlives the call and
    // is passed as the argument of a constant "%s" format.
    unsafe {
        b::rwsgi_log_error(
            c"rwsgi".as_ptr(),
            0,
            crate::module::index(),
            raw(level),
            0,
            s,
            m.as_ptr(),
        )
    }
}

pub(crate) fn request(level: Level, r: *const b::request_rec, msg: &str) {
    let m = cstring(msg);
    // SAFETY: `r` is the live request this call is made for; `m` outlives the call.
    unsafe {
        b::rwsgi_log_rerror(
            c"rwsgi".as_ptr(),
            0,
            crate::module::index(),
            raw(level),
            0,
            r,
            m.as_ptr(),
        )
    }
}
