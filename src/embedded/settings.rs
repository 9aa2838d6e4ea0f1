//! Process-wide embedded-mode settings, computed in the Apache parent after configuration
//! (post_config) and inherited by the children, which start Python from them (child_init).

use crate::apache::{Request, conf, log};
use crate::config::{DirConfig, ServerConfig};
use crate::wsgi::{self, ProcessInfo};
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct Settings {
    pub python: crate::config::PythonSettings,
    pub restrict_embedded: bool,
    pub case_insensitive: bool,
    /// The only script any WSGIScriptAlias can run embedded, when there is exactly one.
    pub sole_script: Option<String>,
    /// The same per daemon process group: (group, its only script).
    pub sole_daemon_scripts: Vec<(String, String)>,
    /// WSGIImportScript entries for embedded mode: (application group, script).
    pub preload: Vec<(String, String)>,
    python_ready: bool,
}

impl Settings {
    pub fn python_ready(&self) -> bool {
        self.python_ready
    }

    /// The only script the process group (`""`: embedded) can run, if there is exactly one.
    pub fn sole_script_of(&self, process_group: &str) -> Option<&str> {
        if process_group.is_empty() || process_group == "%{GLOBAL}" {
            return self.sole_script.as_deref();
        }
        self.sole_daemon_scripts
            .iter()
            .find(|(g, _)| g == process_group)
            .map(|(_, s)| s.as_str())
    }
}

static SETTINGS: RwLock<Option<Arc<Settings>>> = RwLock::new(None);

pub fn current() -> Arc<Settings> {
    SETTINGS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

fn store(s: Settings) {
    *SETTINGS.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(s));
}

/// The script of the single embedded WSGIScriptAlias(Match) mount of this configuration, if
/// there is exactly one and it names a fixed file. The same mount repeated in several virtual
/// hosts (or inherited from the main server) counts once; the same file mounted at two URLs
/// is two applications, as with mod_wsgi's %{RESOURCE}.
pub fn sole_embedded_script(servers: &[&ServerConfig]) -> Option<String> {
    sole_script(servers, |a| a.is_embedded())
}

/// For each daemon process group, its only script by the same rule. A mount counts for a group
/// when its `process-group=` names the group, or when it has none or a computed one
/// (`WSGIProcessGroup` or `%{ENV:..}` may send it anywhere): so a group keeps the main
/// interpreter only when no other application could possibly reach it.
pub fn sole_daemon_scripts(servers: &[&ServerConfig]) -> Vec<(String, String)> {
    let mut names: Vec<&str> = servers
        .iter()
        .flat_map(|s| s.daemons.iter())
        .map(|d| d.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|g| {
            let script = sole_script(servers, |a| {
                a.options
                    .process_group
                    .as_deref()
                    .is_none_or(|pg| pg == g || pg.contains("%{"))
            })?;
            Some((g.to_string(), script))
        })
        .collect()
}

fn sole_script(
    servers: &[&ServerConfig],
    counts: impl Fn(&crate::config::ScriptAlias) -> bool,
) -> Option<String> {
    let mut mounts = BTreeSet::new();
    for a in servers
        .iter()
        .flat_map(|s| s.aliases.iter())
        .filter(|a| counts(a))
    {
        a.fixed_script()?;
        mounts.insert((format!("{:?}", a.pattern), a.target.clone()));
    }
    if mounts.len() == 1 {
        mounts.pop_first().map(|(_, target)| target)
    } else {
        None
    }
}

/// WSGIImportScript entries to run in Apache children, deduplicated (virtual hosts inherit
/// the main server's), or an error naming the first one rwsgi cannot honour.
pub fn embedded_preloads(servers: &[&ServerConfig]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for i in servers.iter().flat_map(|s| s.import_scripts.iter()) {
        if !(i.process_group.is_empty() || i.process_group == "%{GLOBAL}") {
            // A daemon group's scripts are preloaded by its own processes.
            if crate::config::daemon::find_daemon(servers, &i.process_group).is_none() {
                return Err(format!(
                    "WSGIImportScript {}: WSGI process group '{}' is not configured",
                    i.path, i.process_group
                ));
            }
            continue;
        }
        let group = match i.application_group.as_str() {
            "%{GLOBAL}" => String::new(),
            g if g.starts_with("%{") => {
                return Err(format!(
                    "WSGIImportScript {}: application-group must be %{{GLOBAL}} or a name, not {g}",
                    i.path
                ));
            }
            g => g.to_string(),
        };
        let entry = (group, i.path.clone());
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// post_config: `servers[0]` is the main server.
pub fn configure(servers: &[&ServerConfig]) -> Result<(), String> {
    let python = servers
        .first()
        .map(|s| s.python.clone())
        .unwrap_or_default();
    store(Settings {
        restrict_embedded: python.restrict_embedded.unwrap_or(false),
        case_insensitive: python.case_sensitivity == Some(false),
        sole_script: sole_embedded_script(servers),
        sole_daemon_scripts: sole_daemon_scripts(servers),
        preload: embedded_preloads(servers)?,
        python,
        python_ready: false,
    });
    Ok(())
}

pub fn version_component() -> String {
    format!("rwsgi/{} Python/3.11", env!("CARGO_PKG_VERSION"))
}

/// child_init: start Python in this Apache child, unless embedded mode is off.
pub fn child_init() {
    let s = current();
    if s.restrict_embedded {
        return;
    }
    wsgi::transport::set_server_logger(crate::handler::server_log);
    let p = &s.python;
    let init = wsgi::interpreters::init_config(p, p.home.clone());
    let (threaded, threads, forked, daemons) = Request::mpm_threads_and_daemons();
    let process = ProcessInfo {
        multithread: threaded && threads != 1,
        multiprocess: forked && daemons != 1,
        process_group: String::new(),
        apache_version: apache_version(),
        restrict_stdin: p.restrict_stdin.unwrap_or(false),
        restrict_stdout: p.restrict_stdout.unwrap_or(false),
        restrict_signal: p.restrict_signal.unwrap_or(true),
        python_path: p.path.clone(),
        switch_interval: p.switch_interval,
        eggs: p.eggs.clone(),
    };
    match wsgi::interpreters::start(&init, process) {
        Ok(()) => {
            store(Settings {
                python: s.python.clone(),
                restrict_embedded: s.restrict_embedded,
                case_insensitive: s.case_insensitive,
                sole_script: s.sole_script.clone(),
                sole_daemon_scripts: s.sole_daemon_scripts.clone(),
                preload: s.preload.clone(),
                python_ready: true,
            });
            log::server(
                crate::apache::Level::Info,
                &format!("rwsgi (pid={}): Python initialised.", std::process::id()),
            );
            for (group, script) in &s.preload {
                if let Err(e) = wsgi::interpreters::preload(group, script) {
                    let pid = std::process::id();
                    log::server(
                        crate::apache::Level::Error,
                        &format!("rwsgi (pid={pid}): WSGIImportScript '{script}' failed:"),
                    );
                    for line in e.lines() {
                        log::server(crate::apache::Level::Error, line);
                    }
                }
            }
        }
        Err(e) => log::server(
            crate::apache::Level::Crit,
            &format!(
                "rwsgi (pid={}): cannot initialise Python: {e} (check WSGIPythonHome)",
                std::process::id()
            ),
        ),
    }
}

/// Child exit: run `atexit` callbacks in every interpreter. Python is not finalised (the
/// process is exiting; finalisation is where Python >= 3.9 shutdown hangs come from).
///
/// Skipped while a thread is still inside Python: the threaded MPMs run this after joining
/// their workers, but prefork runs it from its SIGTERM handler, on top of whatever the child
/// was doing — taking the GIL that the interrupted request holds would hang the child until
/// Apache SIGKILLs it, and running Python there is not safe anyway. Nothing is logged in that
/// case: the interrupted code may hold the allocator's lock, and logging allocates.
pub fn child_exit() {
    if wsgi::interpreters::threads_in_python() > 0 {
        return;
    }
    wsgi::interpreters::run_atexit();
}

fn apache_version() -> (u32, u32, u32) {
    let v = crate::apache::server_version();
    let mut it = v.split('.').map(|p| p.parse().unwrap_or(0));
    (
        it.next().unwrap_or(2),
        it.next().unwrap_or(4),
        it.next().unwrap_or(0),
    )
}

pub fn dir_config(req: &Request) -> DirConfig {
    conf::request_dir_config(req)
}

/// Apache's `Timeout` (the default for daemon socket-timeout).
pub fn server_timeout() -> std::time::Duration {
    crate::apache::server_timeout()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AliasOptions, AliasPattern, ScriptAlias};

    fn alias(url: &str, target: &str, pg: Option<&str>) -> ScriptAlias {
        ScriptAlias {
            pattern: AliasPattern::Prefix(url.into()),
            target: target.into(),
            options: AliasOptions {
                process_group: pg.map(String::from),
                ..Default::default()
            },
        }
    }

    #[test]
    fn sole_script_rule() {
        let one = ServerConfig {
            aliases: vec![alias("/", "/a.wsgi", None)],
            ..Default::default()
        };
        let vhost = one.clone();
        assert_eq!(
            sole_embedded_script(&[&one, &vhost]).as_deref(),
            Some("/a.wsgi")
        );
        let two_mounts = ServerConfig {
            aliases: vec![alias("/", "/a.wsgi", None), alias("/x", "/a.wsgi", None)],
            ..Default::default()
        };
        assert_eq!(sole_embedded_script(&[&two_mounts]), None);
        let two = ServerConfig {
            aliases: vec![alias("/", "/a.wsgi", None), alias("/b", "/b.wsgi", None)],
            ..Default::default()
        };
        assert_eq!(sole_embedded_script(&[&two]), None);
        let daemon = ServerConfig {
            aliases: vec![
                alias("/", "/a.wsgi", None),
                alias("/b", "/b.wsgi", Some("d")),
            ],
            ..Default::default()
        };
        assert_eq!(sole_embedded_script(&[&daemon]).as_deref(), Some("/a.wsgi"));
        let dir = ServerConfig {
            aliases: vec![alias("/", "/srv/apps/", None)],
            ..Default::default()
        };
        assert_eq!(sole_embedded_script(&[&dir]), None);
        assert_eq!(sole_embedded_script(&[]), None);
    }

    #[test]
    fn sole_script_rule_per_daemon_group() {
        let group = crate::config::daemon::DaemonProcess::new;
        // the classic site: one group, one mount routed by WSGIProcessGroup (no option)
        let site = ServerConfig {
            aliases: vec![alias("/", "/srv/app.wsgi", None)],
            daemons: vec![group("example.com")],
            ..Default::default()
        };
        assert_eq!(
            sole_daemon_scripts(&[&site]),
            vec![("example.com".to_string(), "/srv/app.wsgi".to_string())]
        );
        // two groups, each mount naming its own group
        let two = ServerConfig {
            aliases: vec![
                alias("/a", "/a.wsgi", Some("ga")),
                alias("/b", "/b.wsgi", Some("gb")),
            ],
            daemons: vec![group("ga"), group("gb")],
            ..Default::default()
        };
        assert_eq!(
            sole_daemon_scripts(&[&two]),
            vec![
                ("ga".to_string(), "/a.wsgi".to_string()),
                ("gb".to_string(), "/b.wsgi".to_string())
            ]
        );
        // a mount without process-group= could be sent to either group: neither is sole
        let open = ServerConfig {
            aliases: vec![
                alias("/a", "/a.wsgi", Some("ga")),
                alias("/x", "/x.wsgi", None),
            ],
            daemons: vec![group("ga")],
            ..Default::default()
        };
        assert_eq!(sole_daemon_scripts(&[&open]), vec![]);
    }
}
