//! The ONLY code that touches Apache/APR C types: generated bindings, the module record, the
//! command table, hooks, configuration records, and safe wrappers for the request, its body and
//! its output. Every `extern "C"` entry point is declared with `crate::entry!`, so a panic never
//! unwinds into Apache.

pub mod bindings;
mod commands;
pub mod conf;
pub mod daemons;
pub mod hooks;
pub mod log;
pub mod module;
pub mod output;
pub mod request;
pub mod stopping;

pub use log::Level;
pub use output::{Output, OutputError};
pub use request::{FileType, Request, RequestLog};

/// The running Apache's version ("2.4.71").
pub fn server_version() -> String {
    let mut v = bindings::ap_version_t::default();
    // SAFETY: ap_get_server_revision fills the struct.
    unsafe { bindings::ap_get_server_revision(&mut v) };
    format!("{}.{}.{}", v.major, v.minor, v.patch)
}

/// The main server's `Timeout`.
pub fn server_timeout() -> std::time::Duration {
    // SAFETY: ap_server_conf is set for the life of the configuration once Apache runs.
    let usec = unsafe {
        if bindings::ap_server_conf.is_null() {
            0
        } else {
            (*bindings::ap_server_conf).timeout
        }
    };
    if usec > 0 {
        std::time::Duration::from_micros(usec as u64)
    } else {
        std::time::Duration::from_secs(60)
    }
}
