//! mod_rwsgi: the Apache module that runs Python WSGI applications, a drop-in successor to
//! mod_wsgi (it loads as `wsgi_module` and reads mod_wsgi's directives). This crate says what
//! happens; `rwsgi_apache` is how it talks to Apache, `rwsgi_python` how it runs Python,
//! `rwsgi_daemon` the daemon processes, `rwsgi_core` what they all share.
//!
//! The life cycle at a glance:
//!
//! | Apache calls          | rwsgi does                                                          |
//! |-----------------------|---------------------------------------------------------------------|
//! | directive parsing     | [`commands`] -> `rwsgi_core::config::directives` (pure parsing)     |
//! | `pre_config`          | [`lifecycle::pre_config`]: forget the group names of the last read  |
//! | `post_config`         | [`lifecycle::post_config`]: Python settings, routing rules; daemon  |
//! |                       | groups' sockets and supervisors ([`daemons`])                       |
//! | `child_init`          | [`embedded::child_init`]: start Python in this child                |
//! | `translate_name`      | [`mapping::translate_name`]: WSGIScriptAlias(Match)                 |
//! | `handler`             | [`handler::handle`] -> `rwsgi_python::run` here ([`embedded`]), or  |
//! |                       | [`forward::forward`] to a daemon group                              |
//! | (any of the above)    | [`status`]: the status board each request is counted on, and the   |
//! |                       | `rwsgi-status` page ([`status::page`])                              |
//! | child pool cleanup    | [`embedded::child_exit`]: atexit callbacks (none while Python runs) |

pub mod auth;
pub mod commands;
pub mod conf;
pub mod daemons;
pub mod embedded;
pub mod forward;
pub mod handler;
pub mod hooks;
pub mod lifecycle;
pub mod mapping;
pub mod notes;
pub mod routing;
pub mod status;

use rwsgi_apache::cmd::CommandTable;

static COMMANDS: CommandTable = CommandTable::build::<commands::Directives>();

// `LoadModule wsgi_module .../mod_rwsgi.so`; the record's name is mod_wsgi's, so that
// `<IfModule mod_wsgi.c>` keeps working.
rwsgi_apache::declare_module! {
    wsgi_module = c"mod_wsgi.c",
    server_config: conf::ServerConf,
    dir_config: rwsgi_core::config::DirConfig,
    commands: COMMANDS.as_ptr(),
    register_hooks: lifecycle::register,
}
