//! What each directive does to the configuration: the raw argument string goes to
//! `rwsgi_core::config::directives` (pure parsing); here are the checks that need the whole
//! configuration or the filesystem: daemon group names unique server-wide (with both places in
//! the error), and a socket directory nobody but root can write to.

use crate::conf::ServerConf;
use rwsgi_apache::cmd::Cmd;
use rwsgi_core::Level;
use rwsgi_core::config::daemon::GroupNames;
use rwsgi_core::config::directives::{
    DirectiveSpec, Scope, Support, Target, apply_dir, apply_server, python_requirement,
};
use rwsgi_core::config::{DirConfig, ServerConfig};
use std::sync::Mutex;

/// The module's directives (see [`rwsgi_apache::cmd::Directives`]).
pub struct Directives;

impl rwsgi_apache::cmd::Directives for Directives {
    type DirConfig = DirConfig;

    fn apply(
        cmd: &Cmd<'_>,
        spec: &'static DirectiveSpec,
        dir: &mut DirConfig,
        raw: &str,
    ) -> Result<(), String> {
        if spec.scope == Scope::Global {
            cmd.check_global()?;
        }
        python_requirement(spec, rwsgi_python::BUILT_PYTHON)?;
        if matches!(
            spec.name(),
            "WSGIDispatchScript"
                | "WSGIAccessScript"
                | "WSGIAuthUserScript"
                | "WSGIAuthGroupScript"
        ) {
            crate::embedded::settings::python_needed_by_hooks(true);
        }
        if spec.support == Support::NoEffect {
            rwsgi_apache::log::server(
                Level::Debug,
                &format!(
                    "rwsgi: {} is accepted for compatibility and has no effect",
                    spec.name()
                ),
            );
        }
        match spec.target() {
            Target::Server => {
                // SAFETY: directives are applied while the configuration is read, one at a
                // time; nothing else holds the server's record meanwhile.
                let conf = unsafe { cmd.server().config_mut::<ServerConf>() };
                let resolve = |p: &str| cmd.server_root_relative(p);
                apply_server(spec, &mut conf.config, raw, &resolve)?;
                match spec.name() {
                    "WSGIDaemonProcess" => claim_group_name(cmd, &mut conf.config)?,
                    "WSGISocketPrefix" => check_socket_prefix(&conf.config)?,
                    _ => {}
                }
                conf.compile_new_patterns()
            }
            Target::Dir => apply_dir(spec, dir, raw, &|p: &str| cmd.server_root_relative(p)),
        }
    }
}

/// Daemon process group names declared so far in this reading of the configuration, with
/// where: a name is unique across the main server and every virtual host, and a duplicate
/// must fail `apache2 -t` with both places (as mod_wsgi does), not only the start.
static GROUP_NAMES: Mutex<GroupNames> = Mutex::new(GroupNames::new());

/// A new reading of the configuration begins (pre_config runs before any directive).
pub fn new_reading() {
    crate::embedded::settings::python_needed_by_hooks(false);
    GROUP_NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

/// Records the group the WSGIDaemonProcess just parsed declares; a name already declared
/// elsewhere takes it back out and is an error naming the first declaration.
fn claim_group_name(cmd: &Cmd<'_>, conf: &mut ServerConfig) -> Result<(), String> {
    let Some(name) = conf.daemons.last().map(|d| d.name.clone()) else {
        return Ok(());
    };
    let claimed = GROUP_NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .claim(&name, &cmd.place());
    if let Err(e) = claimed {
        conf.daemons.pop();
        return Err(e);
    }
    Ok(())
}

/// The daemon sockets go where WSGISocketPrefix says; a directory another user can write to
/// would let that user put their own socket in a group's place and receive its requests.
fn check_socket_prefix(conf: &ServerConfig) -> Result<(), String> {
    let Some(prefix) = conf.socket_prefix.as_deref() else {
        return Ok(());
    };
    let dir = std::path::Path::new(prefix)
        .parent()
        .unwrap_or(std::path::Path::new("/"));
    rwsgi_core::socket::check_dir(dir, nix::unistd::geteuid().as_raw())
        .map_err(|e| format!("WSGISocketPrefix {prefix}: {e}"))
}
