//! PEP 3333 over the Python C API, independent of Apache and of sockets: interpreters and
//! application groups, script loading and reloading, the environ, `start_response`,
//! `wsgi.input` / `wsgi.errors` / `wsgi.file_wrapper`, and the response loop. A transport
//! (embedded Apache request, daemon connection) plugs in through [`transport::Transport`].
//! [`ffi`] is the only code that calls the Python C API.

mod app;
mod current;
pub mod exchange;
pub mod ffi;
mod head;
pub mod hooks;
pub mod interpreters;
mod life;
mod metrics;
pub use metrics::set_scoreboard;
pub mod response;
pub mod stacks;
pub mod transport;
pub mod validate;

pub use app::startup as script_startup;
pub use ffi::interp::InitConfig;
pub use interpreters::ProcessInfo;
pub use response::{NewerScript, Outcome, run};
pub use rwsgi_core::{AppRequest, Environ};
pub use transport::{Logger, ResponseHead, Transport, TransportError};

/// The Python this build links against ("3.11"), from the build (PYO3_PYTHON).
pub const PYTHON_VERSION: &str = env!("RWSGI_PYTHON_VERSION");

/// The Python this crate is built against, for directives that need a particular one.
pub const BUILT_PYTHON: rwsgi_core::config::directives::BuiltPython =
    rwsgi_core::config::directives::BuiltPython {
        version: (
            parse_u8(env!("RWSGI_PYTHON_MAJOR")),
            parse_u8(env!("RWSGI_PYTHON_MINOR")),
        ),
        free_threaded: matches!(env!("RWSGI_PYTHON_FREE_THREADED").as_bytes(), b"1"),
    };

const fn parse_u8(s: &str) -> u8 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n: u8 = 0;
    while i < b.len() {
        n = n * 10 + (b[i] - b'0');
        i += 1;
    }
    n
}
