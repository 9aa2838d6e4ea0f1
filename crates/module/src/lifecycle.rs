//! The module's life in Apache: hooks registered at load; each reading of the configuration
//! (pre_config, post_config: Python settings, routing rules, daemon groups); each child's start
//! and end.

use crate::conf::ServerConf;
use crate::{commands, daemons, embedded, handler, mapping};
use rwsgi_apache::hooks::Hooks;
use rwsgi_apache::{Pool, Server, log, process};
use rwsgi_core::Level;
use rwsgi_core::config::ServerConfig;
use rwsgi_core::spec::{self, GroupSpec, ParentFacts};

/// From the module record's register_hooks.
pub fn register(pool: &Pool) {
    rwsgi_core::guard::set_reporter(|m| log::server(Level::Crit, m));
    rwsgi_apache::hooks::register(Hooks {
        pre_config,
        post_config,
        child_init,
        translate_name: mapping::translate_name,
        handler: handler::handle,
    });
    rwsgi_apache::auth::register(pool, crate::auth::hooks());
}

/// A reading of the configuration begins (at start-up and on every restart).
pub fn pre_config() {
    commands::new_reading();
}

/// The configuration is read: Python settings and routing rules for the children; on the
/// real pass, the daemon groups (their sockets, supervisors and watch).
pub fn post_config(pconf: &Pool, main: Server<'_>) -> Result<(), String> {
    let crit = |e: String| format!("rwsgi: {e}");
    let servers = distinct_configs(main);
    embedded::configure(&servers).map_err(crit)?;
    process::add_version_component(pconf, &embedded::version_component());
    if daemons::is_first_pass(main) {
        return Ok(());
    }
    let level = main.module_log_level();
    rwsgi_core::errlog::LOG_LEVEL.store(level, std::sync::atomic::Ordering::Relaxed);
    let mut specs = daemon_specs(pconf, &servers).map_err(crit)?;
    let boards = crate::status::create(pconf, &specs);
    if specs.is_empty() {
        return Ok(());
    }
    for spec in &mut specs {
        let fresh = std::mem::take(&mut spec.wire.secret);
        spec.wire.secret = daemons::stable_secret(main, spec.name(), fresh);
    }
    let program = daemons::daemon_program().map_err(crit)?;
    let deaths = daemons::death_table(main)
        .map_err(|e| crit(format!("cannot map the daemon death table: {e}")))?;
    let generation =
        rwsgi_daemon::groups::start(specs, program, deaths, level, boards).map_err(crit)?;
    daemons::watch(pconf, main, generation);
    Ok(())
}

/// Our configuration record of every server, each once, the main server's first, with the
/// scope of its daemon groups set (final only now: ServerName may follow WSGIDaemonProcess).
///
/// A virtual host with no directive of ours has no record of its own: Apache gives it the
/// main server's (the same pointer, see merge_server_configs in server/config.c). Walking the
/// server list naively would see the main server's groups twice (and scope them to that
/// virtual host): Debian's 000-default.conf next to a server-level WSGIDaemonProcess did not
/// start.
fn distinct_configs<'a>(main: Server<'a>) -> Vec<&'a ServerConfig> {
    let mut seen: Vec<*const ServerConf> = Vec::new();
    for (i, s) in main.and_virtual_hosts().enumerate() {
        let conf: *const ServerConf = s.config::<ServerConf>();
        if seen.contains(&conf) {
            continue;
        }
        seen.push(conf);
        let scope = (i > 0).then(|| s.hostname().unwrap_or_default());
        // SAFETY: post_config is single-threaded and nothing holds this record now (each
        // distinct record is visited once).
        unsafe { s.config_mut::<ServerConf>() }
            .config
            .set_daemon_scope(scope.as_deref());
    }
    // SAFETY: the records live in pconf for this whole configuration generation.
    seen.into_iter().map(|c| unsafe { &(*c).config }).collect()
}

/// The runtime settings of every WSGIDaemonProcess of this configuration.
fn daemon_specs(pconf: &Pool, servers: &[&ServerConfig]) -> Result<Vec<GroupSpec>, String> {
    rwsgi_core::config::daemon::check_unique(servers)?;
    let facts = daemons::facts(pconf);
    let defaults = ParentFacts {
        socket_prefix: servers
            .first()
            .and_then(|s| s.socket_prefix.clone())
            .unwrap_or(facts.default_socket_prefix),
        python: servers
            .first()
            .map(|s| s.python.clone())
            .unwrap_or_default(),
        ..facts.parent
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut specs = Vec::new();
    for dp in servers.iter().flat_map(|s| s.daemons.iter()) {
        if !seen.insert(dp.name.clone()) {
            continue;
        }
        let imports = servers
            .iter()
            .flat_map(|s| s.import_scripts.iter())
            .filter(|i| i.process_group == dp.name)
            .map(|i| {
                let g = rwsgi_core::config::groups::interpreter_of(&i.application_group);
                (g.to_string(), i.path.clone())
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        specs.push(spec::from_config(dp, &defaults, imports)?);
        for opt in &dp.ignored {
            log::server(
                Level::Warn,
                &format!(
                    "rwsgi: WSGIDaemonProcess {}: option '{opt}' is accepted but not implemented; ignored",
                    dp.name
                ),
            );
        }
    }
    Ok(specs)
}

/// A child starts: the daemon groups' sockets are not for it; Python starts (embedded mode);
/// at its end, Python's atexit callbacks run.
pub fn child_init(pchild: &Pool) {
    // Before the MPM starts this child's threads (see rwsgi_core::malloc).
    rwsgi_core::malloc::cap_arenas();
    rwsgi_daemon::groups::close_listeners_in_child();
    crate::status::child_init();
    embedded::child_init();
    pchild.on_cleanup(embedded::child_exit);
    // Registered last, runs first: no stack is taken while Python finishes.
    pchild.on_cleanup(crate::status::child_exit);
}
