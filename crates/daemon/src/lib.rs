//! Daemon mode's processes. The Apache parent runs each `WSGIDaemonProcess` group through
//! [`groups`] (the group's socket, its supervisor, a new supervisor when one dies); a
//! [`supervisor`] (Python-free) starts each daemon process by fork + exec of the daemon program,
//! relays its output and explains its death; the daemon program ([`worker`], bin
//! `rwsgi-daemon`) drops privileges, starts Python and serves connections from Apache children,
//! answering each request through `worker::transport`, the WSGI transport over that connection.

pub mod groups;
pub mod supervisor;
mod sys;
pub mod worker;
