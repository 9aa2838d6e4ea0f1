//! The ONLY code that touches Apache/APR C types: generated bindings, the module record, the
//! command table, hooks, configuration records, and safe wrappers for the request, its body and
//! its output. Every `extern "C"` entry point catches panics (see [`guard`]).

pub mod bindings;
mod commands;
pub mod conf;
pub mod guard;
pub mod hooks;
pub mod log;
pub mod module;
pub mod output;
pub mod request;

pub use log::Level;
pub use output::{Output, OutputError};
pub use request::{FileType, Request};

/// The running Apache's version ("2.4.71").
pub fn server_version() -> String {
    let mut v = bindings::ap_version_t::default();
    // SAFETY: ap_get_server_revision fills the struct.
    unsafe { bindings::ap_get_server_revision(&mut v) };
    format!("{}.{}.{}", v.major, v.minor, v.patch)
}
