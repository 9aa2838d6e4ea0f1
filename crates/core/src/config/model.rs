//! Typed configuration: what the directives of one server (virtual host) and one directory
//! context say. Every field is an Option ("unset") so that merging can tell inheritance from
//! an explicit default.

pub use super::daemon::DaemonProcess;
use super::scripts::{HandlerScript, HookScript};

/// How a `WSGIScriptAlias` / `WSGIScriptAliasMatch` matches the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasPattern {
    Prefix(String),
    Regex(String),
}

/// Options accepted after the target of WSGIScriptAlias(Match) and WSGIImportScript.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasOptions {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
    pub pass_authorization: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptAlias {
    pub pattern: AliasPattern,
    pub target: String,
    pub options: AliasOptions,
}

impl ScriptAlias {
    /// The single script this alias can run, when that is decidable from the configuration
    /// (a prefix alias, or a regex alias whose target has no `$` substitution) and it names
    /// a file rather than a directory.
    pub fn fixed_script(&self) -> Option<&str> {
        let fixed = match self.pattern {
            AliasPattern::Prefix(_) => true,
            AliasPattern::Regex(_) => !self.target.contains('$'),
        };
        (fixed && !self.target.ends_with('/')).then_some(self.target.as_str())
    }

    /// Runs embedded (no daemon process group named).
    pub fn is_embedded(&self) -> bool {
        self.options.process_group.as_deref().is_none_or(|g| {
            super::groups::ProcessGroup::of(g) == super::groups::ProcessGroup::Embedded
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportScript {
    pub path: String,
    pub process_group: String,
    pub application_group: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HashSeed {
    Random,
    Fixed(u32),
}

/// Per-server (virtual host) configuration. The Python settings are global: only the main
/// server's values are used.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    pub aliases: Vec<ScriptAlias>,
    pub import_scripts: Vec<ImportScript>,
    pub python: PythonSettings,
    pub socket_prefix: Option<String>,
    /// The WSGIDaemonProcess groups declared in this server (virtual host) itself; never
    /// inherited (names are unique server-wide, see [`super::daemon::check_unique`]).
    pub daemons: Vec<DaemonProcess>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PythonSettings {
    pub home: Option<String>,
    pub path: Vec<String>,
    pub optimize: Option<u8>,
    pub warnings: Vec<String>,
    pub hash_seed: Option<HashSeed>,
    pub dont_write_bytecode: Option<bool>,
    pub eggs: Option<String>,
    pub restrict_embedded: Option<bool>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_signal: Option<bool>,
    pub case_sensitivity: Option<bool>,
    pub destroy_interpreter: Option<bool>,
    pub switch_interval: Option<f64>,
    /// WSGISlowRequests (mod_wsgi 6): requests that take longer are logged with their URI.
    pub slow_request_time: Option<f64>,
    /// WSGINewRelicConfigFile / WSGINewRelicEnvironment: the New Relic agent is initialised
    /// in each interpreter and wraps each application (embedded mode).
    pub newrelic_config_file: Option<String>,
    pub newrelic_environment: Option<String>,
    /// WSGIServerMetrics: `mod_wsgi.server_metrics()` reads Apache's scoreboard (embedded).
    pub server_metrics: Option<bool>,
}

impl ServerConfig {
    /// mod_alias/mod_wsgi merge: the virtual host's aliases are tried first, then the main
    /// server's; global settings come from the main server.
    ///
    /// Apache merges virtual hosts only, so the result keeps just the virtual host's own daemon
    /// groups and marks them as belonging to a virtual host whose ServerName is not known yet
    /// (`scope = Some("")`, which no request matches) until [`Self::set_daemon_scope`] names it:
    /// forgetting that call fails closed.
    pub fn merge(base: &ServerConfig, add: &ServerConfig) -> ServerConfig {
        let mut aliases = add.aliases.clone();
        aliases.extend(base.aliases.iter().cloned());
        let mut import_scripts = base.import_scripts.clone();
        import_scripts.extend(add.import_scripts.iter().cloned());
        ServerConfig {
            aliases,
            import_scripts,
            python: base.python.clone(),
            socket_prefix: add
                .socket_prefix
                .clone()
                .or_else(|| base.socket_prefix.clone()),
            daemons: add
                .daemons
                .iter()
                .map(|d| DaemonProcess {
                    scope: Some(d.scope.clone().unwrap_or_default()),
                    ..d.clone()
                })
                .collect(),
        }
    }

    /// Records where this server's daemon groups were declared: `None` for the main server,
    /// `Some(ServerName)` for a virtual host. The Apache layer calls it for every server after
    /// the configuration is read (ServerName may follow WSGIDaemonProcess inside a
    /// <VirtualHost>, so the name is not final while directives are parsed). mod_wsgi compares
    /// `server_hostname` at request time; this is the same value.
    pub fn set_daemon_scope(&mut self, server_name: Option<&str>) {
        for d in &mut self.daemons {
            d.scope = server_name.map(String::from);
        }
    }
}

/// WSGIMapHEADToGET values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapHeadToGet {
    On,
    Off,
    Auto,
}

/// Per-directory configuration (server and virtual-host level values land here too, through
/// Apache's per-server default directory configuration).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirConfig {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
    pub pass_authorization: Option<bool>,
    pub script_reloading: Option<bool>,
    pub error_override: Option<bool>,
    pub chunked_request: Option<bool>,
    pub map_head_to_get: Option<MapHeadToGet>,
    pub ignore_activity: Option<bool>,
    pub enable_sendfile: Option<bool>,
    /// WSGIRestrictProcess: the only process groups selectable here (`%{GLOBAL}` stored as
    /// `""`). An inner list replaces an outer one.
    pub restrict_process: Option<Vec<String>>,
    /// WSGITrustedProxyHeaders, as CGI names in directive order (`HTTP_X_FORWARDED_FOR`).
    /// Repeating the directive appends; an inner context replaces the outer list.
    pub trusted_proxy_headers: Option<Vec<String>>,
    /// WSGITrustedProxies; `None`: every peer is trusted, `Some([])`: none is.
    pub trusted_proxies: Option<Vec<crate::proxy::Subnet>>,
    pub dispatch_script: Option<HookScript>,
    pub access_script: Option<HookScript>,
    pub auth_user_script: Option<HookScript>,
    pub auth_group_script: Option<HookScript>,
    /// WSGIHandlerScript entries; see [`super::scripts::merge_handlers`].
    pub handler_scripts: Option<Vec<HandlerScript>>,
    pub pass_apache_request: Option<bool>,
}

impl DirConfig {
    pub fn merge(base: &DirConfig, add: &DirConfig) -> DirConfig {
        fn pick<T: Clone>(add: &Option<T>, base: &Option<T>) -> Option<T> {
            add.clone().or_else(|| base.clone())
        }
        DirConfig {
            process_group: pick(&add.process_group, &base.process_group),
            application_group: pick(&add.application_group, &base.application_group),
            callable_object: pick(&add.callable_object, &base.callable_object),
            pass_authorization: pick(&add.pass_authorization, &base.pass_authorization),
            script_reloading: pick(&add.script_reloading, &base.script_reloading),
            error_override: pick(&add.error_override, &base.error_override),
            chunked_request: pick(&add.chunked_request, &base.chunked_request),
            map_head_to_get: pick(&add.map_head_to_get, &base.map_head_to_get),
            ignore_activity: pick(&add.ignore_activity, &base.ignore_activity),
            enable_sendfile: pick(&add.enable_sendfile, &base.enable_sendfile),
            restrict_process: pick(&add.restrict_process, &base.restrict_process),
            trusted_proxy_headers: pick(&add.trusted_proxy_headers, &base.trusted_proxy_headers),
            trusted_proxies: pick(&add.trusted_proxies, &base.trusted_proxies),
            dispatch_script: pick(&add.dispatch_script, &base.dispatch_script),
            access_script: pick(&add.access_script, &base.access_script),
            auth_user_script: pick(&add.auth_user_script, &base.auth_user_script),
            auth_group_script: pick(&add.auth_group_script, &base.auth_group_script),
            handler_scripts: super::scripts::merge_handlers(
                &base.handler_scripts,
                &add.handler_scripts,
            ),
            pass_apache_request: pick(&add.pass_apache_request, &base.pass_apache_request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_merge_prefers_inner() {
        let base = DirConfig {
            application_group: Some("a".into()),
            script_reloading: Some(false),
            ..Default::default()
        };
        let add = DirConfig {
            application_group: Some("b".into()),
            ..Default::default()
        };
        let m = DirConfig::merge(&base, &add);
        assert_eq!(m.application_group.as_deref(), Some("b"));
        assert_eq!(m.script_reloading, Some(false));
    }

    #[test]
    fn server_merge_orders_vhost_first() {
        let alias = |p: &str| ScriptAlias {
            pattern: AliasPattern::Prefix(p.into()),
            target: "/x.wsgi".into(),
            options: AliasOptions::default(),
        };
        let base = ServerConfig {
            aliases: vec![alias("/main")],
            ..Default::default()
        };
        let add = ServerConfig {
            aliases: vec![alias("/vhost")],
            ..Default::default()
        };
        let m = ServerConfig::merge(&base, &add);
        assert_eq!(m.aliases[0].pattern, AliasPattern::Prefix("/vhost".into()));
        assert_eq!(m.aliases[1].pattern, AliasPattern::Prefix("/main".into()));
    }

    #[test]
    fn fixed_script() {
        let mut a = ScriptAlias {
            pattern: AliasPattern::Regex("^/(a)".into()),
            target: "/srv/$1.wsgi".into(),
            options: AliasOptions::default(),
        };
        assert_eq!(a.fixed_script(), None);
        a.target = "/srv/app.wsgi".into();
        assert_eq!(a.fixed_script(), Some("/srv/app.wsgi"));
        a.pattern = AliasPattern::Prefix("/".into());
        a.target = "/srv/dir/".into();
        assert_eq!(a.fixed_script(), None);
    }
}
