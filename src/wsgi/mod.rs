//! PEP 3333 over the Python C API, independent of Apache and of sockets: interpreters and
//! application groups, script loading and reloading, the environ, `start_response`,
//! `wsgi.input` / `wsgi.errors` / `wsgi.file_wrapper`, and the response loop. A transport
//! (embedded Apache request, daemon connection) plugs in through [`transport::Transport`].

mod app;
mod current;
pub mod environ;
pub mod exchange;
pub mod ffi;
pub mod interpreters;
pub mod response;
pub mod transport;
pub mod validate;

pub use app::startup as script_startup;
pub use environ::Environ;
pub use ffi::interp::InitConfig;
pub use interpreters::ProcessInfo;
pub use response::{AppRequest, Outcome, run};
pub use transport::{LogLevel, Logger, ResponseHead, Transport, TransportError};
