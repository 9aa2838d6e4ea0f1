//! rwsgi: an Apache httpd 2.4 module that runs Python WSGI applications, a drop-in successor
//! to mod_wsgi (it loads as `wsgi_module` and reads mod_wsgi's directives).
//!
//! The life cycle at a glance (hooks in `apache::hooks`):
//!
//! | Apache calls          | rwsgi does                                                           |
//! |-----------------------|----------------------------------------------------------------------|
//! | directive parsing     | `apache::commands` -> `config::directives` (pure Rust parsing)        |
//! | `post_config`         | `embedded::configure`: global Python settings, default-group rule    |
//! | `child_init`          | `embedded::child_init`: start Python in this child                   |
//! | `translate_name`      | `apache::hooks::translate_name`: WSGIScriptAlias(Match) mapping      |
//! | `handler`             | `handler::handle` -> `wsgi::run` here, or `daemon::client::forward`  |
//! | `pre_connection`      | `apache::stopping`: pools wait while the MPM force-closes sockets    |
//! | `child_stopping`      | `apache::stopping`: the MPM has closed its busy workers' sockets     |
//! | child pool cleanup    | `embedded::child_exit`: atexit callbacks (none while Python is busy) |
//!
//! Layering: `apache` is the only code touching Apache/APR types; `wsgi` knows nothing about
//! Apache (its `ffi` submodule is the only code touching the Python C API); `config` is pure.

pub mod apache;
pub mod config;
pub mod daemon;
pub mod embedded;
pub mod guard;
pub mod handler;
pub mod ipc;
pub mod wsgi;
