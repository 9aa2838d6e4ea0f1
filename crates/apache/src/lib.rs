//! Apache httpd 2.4 for Rust: the generated bindings and the safe wrappers rwsgi uses. This is
//! the only crate that touches Apache/APR types, and it calls nothing above it: the module
//! crate (mod_rwsgi) says what the hooks and directives do.
//!
//! - [`module`]: the module record ([`declare_module!`]) and its index;
//! - [`hooks`]: hook registration with typed callbacks; [`cmd`]: the command table;
//! - [`conf`]: configuration records ([`conf::Merge`]); [`server`]: servers, pools, the process
//!   pool; [`process`]: the MPM, Apache's user, watched child processes;
//! - [`request`], [`output`], [`log`]: one request, its response brigade, the error log;
//! - [`regex`]: Apache's regular expressions; [`stopping`]: a guard for MPM stops;
//!   `socket_bucket`: the client socket's reads, sized for request bodies.
//!
//! Every `extern "C"` function here is declared with `rwsgi_core::entry!`: a panic never
//! unwinds into Apache.

pub mod auth;
pub mod bindings;
pub mod cmd;
pub mod conf;
pub mod hooks;
pub mod log;
pub mod module;
pub mod output;
pub mod process;
pub mod regex;
pub mod request;
pub mod scoreboard;
pub mod server;
mod socket_bucket;
mod stopping;

pub use output::{Output, OutputError};
pub use request::{FileType, Request, RequestLog};
pub use rwsgi_core;
pub use server::{Pool, ProcessPool, Server};
