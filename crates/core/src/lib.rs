//! rwsgi's pure core: everything both sides of daemon mode, the Apache module and the daemon
//! program agree on, with no Apache headers and no libpython — so its unit tests, fuzz targets
//! and micro-benchmarks build and run anywhere.
//!
//! - [`config`]: mod_wsgi's directives, typed (strings in, a typed configuration or a precise
//!   error out), and the rules derived from them (application/process group expansion);
//! - [`ipc`]: the wire between Apache children and daemon processes (frames, variable tables,
//!   response heads, sealed request heads, shared-memory rings, SOCK_SEQPACKET channels);
//! - [`environ`] and [`request`]: the plain-data request a WSGI application is called with,
//!   and its wire form;
//! - [`spec`]: a daemon process group as it runs ([`spec::GroupSpec`]);
//! - [`death`], [`socket`], [`errlog`]: why a daemon process ended, the group sockets, and
//!   error-log lines from processes outside Apache;
//! - [`level`] (the one log level), [`guard`] (the one panic guard).

pub mod config;
pub mod cstr;
pub mod death;
pub mod decimal;
pub mod environ;
pub mod errlog;
pub mod guard;
pub mod http;
pub mod ipc;
pub mod label;
pub mod level;
pub mod malloc;
pub mod proxy;
pub mod request;
pub mod scoreboard;
pub mod socket;
pub mod spec;
pub mod status;

pub use environ::Environ;
pub use level::Level;
pub use request::AppRequest;
