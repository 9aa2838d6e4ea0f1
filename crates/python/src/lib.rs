//! PEP 3333 over the Python C API, independent of Apache and of sockets: interpreters and
//! application groups, script loading and reloading, the environ, `start_response`,
//! `wsgi.input` / `wsgi.errors` / `wsgi.file_wrapper`, and the response loop. A transport
//! (embedded Apache request, daemon connection) plugs in through [`transport::Transport`].
//! [`ffi`] is the only code that calls the Python C API.

mod app;
mod current;
pub mod exchange;
pub mod ffi;
pub mod interpreters;
pub mod response;
pub mod transport;
pub mod validate;

pub use app::startup as script_startup;
pub use ffi::interp::InitConfig;
pub use interpreters::ProcessInfo;
pub use response::{Outcome, run};
pub use rwsgi_core::{AppRequest, Environ};
pub use transport::{Logger, ResponseHead, Transport, TransportError};

/// The Python this build links against ("3.11"), from the build (PYO3_PYTHON).
pub const PYTHON_VERSION: &str = env!("RWSGI_PYTHON_VERSION");
