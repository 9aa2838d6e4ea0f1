//! Which process runs a request, and which interpreter: the rules derived from the whole
//! configuration once (post_config) — the only script a process group can ever run gets the
//! main interpreter (C extensions and PyO3 packages work there) — and the daemon group a
//! request may use (WSGIProcessGroup, WSGIRestrictProcess, virtual-host scope).

use rwsgi_apache::Request;
use rwsgi_core::config::{DirConfig, ServerConfig};
use rwsgi_core::spec::GroupSpec;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The scripts each process group can run, when there is exactly one.
#[derive(Debug, Default, Clone)]
pub struct Routes {
    /// The only script any WSGIScriptAlias can run embedded, when there is exactly one.
    pub sole_script: Option<String>,
    /// The same per daemon process group: (group, its only script).
    pub sole_daemon_scripts: Vec<(String, String)>,
}

impl Routes {
    pub fn of(servers: &[&ServerConfig]) -> Routes {
        Routes {
            sole_script: sole_embedded_script(servers),
            sole_daemon_scripts: sole_daemon_scripts(servers),
        }
    }

    /// The only script the process group (embedded: `""` or `%{GLOBAL}`) can run, if there is
    /// exactly one.
    pub fn sole_script_of(&self, process_group: &str) -> Option<&str> {
        use rwsgi_core::config::groups::ProcessGroup;
        match ProcessGroup::of(process_group) {
            ProcessGroup::Embedded => self.sole_script.as_deref(),
            ProcessGroup::Daemon(g) => self
                .sole_daemon_scripts
                .iter()
                .find(|(name, _)| name == g)
                .map(|(_, s)| s.as_str()),
        }
    }
}

/// The daemon group `process_group` names for this request (`None`: embedded), or why it may
/// not use it.
pub fn daemon_group(
    req: &Request<'_>,
    process_group: &str,
    dir: &DirConfig,
) -> Result<Option<Arc<GroupSpec>>, String> {
    let (server_name, _) = req.server_identity();
    rwsgi_core::config::daemon::resolve_process_group(
        process_group,
        dir.restrict_process.as_deref(),
        &server_name,
        rwsgi_daemon::groups::find,
    )
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
    counts: impl Fn(&rwsgi_core::config::ScriptAlias) -> bool,
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

#[cfg(test)]
mod tests {
    use super::*;
    use rwsgi_core::config::ServerConfig;
    use rwsgi_core::config::{AliasOptions, AliasPattern, ScriptAlias};

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
        let group = rwsgi_core::config::daemon::DaemonProcess::new;
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
