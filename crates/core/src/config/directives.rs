//! Every directive of mod_wsgi 4.9 and 6.x: where it may appear, and how its arguments are
//! parsed into [`ServerConfig`] / [`DirConfig`]. A directive rwsgi does not implement yet is
//! still recognised and fails the configuration with a clear message, so that nothing a site
//! relies on (an authentication script, say) is silently ignored.

use super::groups::validate_group_value;
use super::model::*;
use super::tokenize::{flag, option, words};
use std::ffi::CStr;

/// Where a directive may appear (mapped onto Apache's override flags by src/apache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Main server configuration only.
    Global,
    /// Server or virtual host, not inside directory sections.
    Server,
    /// Server, virtual host and <Directory>/<Location>/<Files>, not .htaccess.
    ServerDir,
    /// Anywhere, including .htaccess with `AllowOverride FileInfo`.
    FileInfo,
    /// Directory sections and .htaccess with `AllowOverride AuthConfig`.
    AuthConfig,
}

/// Which configuration structure a directive writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Server,
    Dir,
}

/// How far rwsgi implements a directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Implemented,
    /// Parsed and validated; has no effect in rwsgi (documented in README).
    NoEffect,
    /// Recognised but not implemented yet: configuration fails.
    NotYet,
    /// Needs a Python that rwsgi may not be built against: configuration fails, saying which
    /// Python it needs and which one rwsgi has (see [`python_requirement`]).
    NeedsPython(PythonFeature),
}

/// What a directive needs of the Python rwsgi is built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PythonFeature {
    pub min: (u8, u8),
    pub free_threaded: bool,
    /// What it gives, for the error message.
    pub what: &'static str,
}

/// The Python rwsgi is built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltPython {
    pub version: (u8, u8),
    pub free_threaded: bool,
}

/// The configuration error for a directive that needs another Python, or for one whose
/// Python is there but which rwsgi does not implement yet.
pub fn python_requirement(spec: &DirectiveSpec, built: BuiltPython) -> Result<()> {
    let Support::NeedsPython(need) = spec.support else {
        return Ok(());
    };
    let name = spec.name().trim_start_matches('<');
    let (major, minor) = need.min;
    let enough = built.version >= need.min && (built.free_threaded || !need.free_threaded);
    if enough {
        return Err(not_yet(spec));
    }
    Err(format!(
        "{name} needs Python {major}.{minor} or later{} ({}); this rwsgi is built against Python {}.{}{}: rebuild it with PYO3_PYTHON naming such a Python",
        if need.free_threaded {
            ", free-threaded build"
        } else {
            ""
        },
        need.what,
        built.version.0,
        built.version.1,
        if built.free_threaded {
            " (free-threaded)"
        } else {
            ""
        },
    ))
}

pub struct DirectiveSpec {
    /// NUL-terminated so Apache's command table can point at it.
    pub cname: &'static CStr,
    pub scope: Scope,
    pub support: Support,
    pub cusage: &'static CStr,
}

impl DirectiveSpec {
    pub fn name(&self) -> &'static str {
        self.cname.to_str().unwrap_or_default()
    }
    pub fn usage(&self) -> &'static str {
        self.cusage.to_str().unwrap_or_default()
    }
    pub fn target(&self) -> Target {
        match self.scope {
            Scope::Global | Scope::Server => Target::Server,
            _ => Target::Dir,
        }
    }
}

mod table;
pub use table::{DIRECTIVE_COUNT, DIRECTIVE_TABLE, DIRECTIVES};

pub fn find(name: &str) -> Option<&'static DirectiveSpec> {
    DIRECTIVES
        .iter()
        .find(|d| d.name().eq_ignore_ascii_case(name))
}

type Result<T> = std::result::Result<T, String>;

fn one(spec: &DirectiveSpec, raw: &str) -> Result<String> {
    let w = words(raw);
    match w.as_slice() {
        [v] => Ok(v.clone()),
        _ => Err(format!(
            "{} takes one argument: {}",
            spec.name(),
            spec.usage()
        )),
    }
}

fn on_off(spec: &DirectiveSpec, raw: &str) -> Result<bool> {
    let v = one(spec, raw)?;
    flag(&v).ok_or_else(|| format!("{} must be one of: Off | On", spec.name()))
}

fn not_yet(spec: &DirectiveSpec) -> String {
    format!(
        "{} is not supported yet by rwsgi (see the README's list of supported directives)",
        spec.name().trim_start_matches('<')
    )
}

/// Parses the options following WSGIScriptAlias(Match) targets.
fn alias_options(spec: &DirectiveSpec, words: &[String]) -> Result<AliasOptions> {
    let mut o = AliasOptions::default();
    for w in words {
        let Some((k, v)) = option(w) else {
            return Err(format!(
                "Invalid option to WSGI script alias definition: '{w}' ({})",
                spec.usage()
            ));
        };
        match k {
            "process-group" => {
                validate_group_value(v)?;
                o.process_group = Some(v.to_string());
            }
            "application-group" => {
                validate_group_value(v)?;
                o.application_group = Some(v.to_string());
            }
            "callable-object" => o.callable_object = Some(v.to_string()),
            "pass-authorization" => {
                o.pass_authorization =
                    Some(flag(v).ok_or_else(|| {
                        format!("pass-authorization must be On or Off, not '{v}'")
                    })?)
            }
            _ => {
                return Err(format!(
                    "Invalid option to WSGI script alias definition: '{k}'"
                ));
            }
        }
    }
    Ok(o)
}

/// Applies a server-target directive. `server_root_relative` resolves relative paths.
pub fn apply_server(
    spec: &DirectiveSpec,
    cfg: &mut ServerConfig,
    raw: &str,
    resolve: &dyn Fn(&str) -> String,
) -> Result<()> {
    if matches!(spec.support, Support::NotYet | Support::NeedsPython(_)) {
        return Err(not_yet(spec));
    }
    let py = &mut cfg.python;
    match spec.name() {
        "WSGIScriptAlias" | "WSGIScriptAliasMatch" => script_alias(spec, cfg, raw, resolve)?,
        "WSGIImportScript" => import_script(spec, cfg, raw, resolve)?,
        "WSGIDaemonProcess" => {
            let d = super::daemon::parse(raw)?;
            if cfg.daemons.iter().any(|o| o.name == d.name) {
                return Err(format!(
                    "Name duplicates previous WSGI daemon definition: '{}'",
                    d.name
                ));
            }
            cfg.daemons.push(d);
        }
        "WSGIPythonHome" => py.home = Some(one(spec, raw)?),
        "WSGIPythonPath" => py.path.extend(
            one(spec, raw)?
                .split(':')
                .filter(|s| !s.is_empty())
                .map(String::from),
        ),
        "WSGIPythonEggs" => py.eggs = Some(one(spec, raw)?),
        "WSGINewRelicConfigFile" => py.newrelic_config_file = Some(resolve(&one(spec, raw)?)),
        "WSGINewRelicEnvironment" => py.newrelic_environment = Some(one(spec, raw)?),
        "WSGIPythonOptimize" => py.optimize = Some(optimize(&one(spec, raw)?)?),
        "WSGIPythonHashSeed" => py.hash_seed = Some(hash_seed(&one(spec, raw)?)?),
        "WSGIPythonWarnings" => py.warnings.push(one(spec, raw)?),
        "WSGIDontWriteBytecode" => py.dont_write_bytecode = Some(on_off(spec, raw)?),
        "WSGIDestroyInterpreter" => py.destroy_interpreter = Some(on_off(spec, raw)?),
        "WSGIRestrictEmbedded" => py.restrict_embedded = Some(on_off(spec, raw)?),
        "WSGIRestrictStdin" => py.restrict_stdin = Some(on_off(spec, raw)?),
        "WSGIRestrictStdout" => py.restrict_stdout = Some(on_off(spec, raw)?),
        "WSGIRestrictSignal" => py.restrict_signal = Some(on_off(spec, raw)?),
        "WSGICaseSensitivity" => py.case_sensitivity = Some(on_off(spec, raw)?),
        "WSGILazyInitialization" => {
            if !on_off(spec, raw)? {
                return Err("WSGILazyInitialization Off is not supported by rwsgi: Python is never initialised in the Apache parent process".into());
            }
        }
        "WSGISocketPrefix" => cfg.socket_prefix = Some(resolve(&one(spec, raw)?)),
        "WSGIServerMetrics" => py.server_metrics = Some(on_off(spec, raw)?),
        "WSGISocketRotation" | "WSGIVerboseDebugging" => {
            on_off(spec, raw)?;
        }
        "WSGIAcceptMutex" => {
            one(spec, raw)?;
        }
        "WSGISwitchInterval" => py.switch_interval = Some(switch_interval(&one(spec, raw)?)?),
        "WSGISlowRequests" => py.slow_request_time = slow_requests(&one(spec, raw)?)?,
        other => return Err(format!("{other} cannot be used here")),
    }
    Ok(())
}

fn script_alias(
    spec: &DirectiveSpec,
    cfg: &mut ServerConfig,
    raw: &str,
    resolve: &dyn Fn(&str) -> String,
) -> Result<()> {
    let w = words(raw);
    if w.len() < 2 {
        return Err(format!(
            "{} takes at least two arguments: {}",
            spec.name(),
            spec.usage()
        ));
    }
    let options = alias_options(spec, &w[2..])?;
    let pattern = if spec.name() == "WSGIScriptAlias" {
        AliasPattern::Prefix(w[0].clone())
    } else {
        AliasPattern::Regex(w[0].clone())
    };
    cfg.aliases.push(ScriptAlias {
        pattern,
        target: resolve(&w[1]),
        options,
    });
    Ok(())
}

fn import_script(
    spec: &DirectiveSpec,
    cfg: &mut ServerConfig,
    raw: &str,
    resolve: &dyn Fn(&str) -> String,
) -> Result<()> {
    let w = words(raw);
    let Some((path, rest)) = w.split_first() else {
        return Err(format!(
            "WSGIImportScript takes arguments: {}",
            spec.usage()
        ));
    };
    let o = alias_options(spec, rest)?;
    let (Some(pg), Some(ag)) = (o.process_group, o.application_group) else {
        return Err("WSGIImportScript requires both process-group= and application-group=".into());
    };
    cfg.import_scripts.push(ImportScript {
        path: resolve(path),
        process_group: pg,
        application_group: ag,
    });
    Ok(())
}

fn optimize(v: &str) -> Result<u8> {
    match v {
        "0" => Ok(0),
        "1" => Ok(1),
        "2" => Ok(2),
        _ => Err(format!("WSGIPythonOptimize must be 0, 1 or 2, not '{v}'")),
    }
}

fn hash_seed(v: &str) -> Result<HashSeed> {
    if v == "random" {
        return Ok(HashSeed::Random);
    }
    v.parse()
        .map(HashSeed::Fixed)
        .map_err(|_| format!("WSGIPythonHashSeed must be 'random' or 0..4294967295, not '{v}'"))
}

fn switch_interval(v: &str) -> Result<f64> {
    let secs: f64 = v
        .parse()
        .map_err(|_| format!("WSGISwitchInterval must be a number of seconds, not '{v}'"))?;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err("WSGISwitchInterval must be greater than zero".into());
    }
    Ok(secs)
}

/// mod_wsgi 6's threshold: seconds, 0 = off.
fn slow_requests(v: &str) -> Result<Option<f64>> {
    match v.parse::<f64>() {
        Ok(0.0) => Ok(None),
        Ok(s) if s > 0.0 && s.is_finite() => Ok(Some(s)),
        _ => Err(format!(
            "WSGISlowRequests must be a number of seconds (0 = off), not '{v}'"
        )),
    }
}

/// Applies a directory-target directive.
pub fn apply_dir(
    spec: &DirectiveSpec,
    cfg: &mut DirConfig,
    raw: &str,
    resolve: &dyn Fn(&str) -> String,
) -> Result<()> {
    if matches!(spec.support, Support::NotYet | Support::NeedsPython(_)) {
        return Err(not_yet(spec));
    }
    match spec.name() {
        "WSGIProcessGroup" => {
            let v = one(spec, raw)?;
            validate_group_value(&v)?;
            cfg.process_group = Some(v);
        }
        "WSGIApplicationGroup" => {
            let v = one(spec, raw)?;
            validate_group_value(&v)?;
            cfg.application_group = Some(v);
        }
        "WSGIDispatchScript"
        | "WSGIAccessScript"
        | "WSGIAuthUserScript"
        | "WSGIAuthGroupScript"
        | "WSGIHandlerScript" => apply_script(spec, cfg, raw, resolve)?,
        "WSGIPassApacheRequest" => cfg.pass_apache_request = Some(on_off(spec, raw)?),
        // Apache 2.4's provider chain decides what happens after a provider: these are
        // accepted (as mod_wsgi on 2.4 accepts WSGIGroupAuthoritative) and change nothing.
        "WSGIUserAuthoritative" | "WSGIGroupAuthoritative" => {
            on_off(spec, raw)?;
        }
        "WSGITrustedProxyHeaders" | "WSGITrustedProxies" => apply_proxies(spec, cfg, raw)?,
        "WSGIRestrictProcess" => {
            let groups: Vec<String> = words(raw)
                .into_iter()
                .map(|g| super::groups::interpreter_of(&g).to_string())
                .collect();
            if groups.is_empty() {
                return Err(format!(
                    "WSGIRestrictProcess takes at least one process group name: {}",
                    spec.usage()
                ));
            }
            cfg.restrict_process = Some(groups);
        }
        "WSGICallableObject" => cfg.callable_object = Some(one(spec, raw)?),
        "WSGIPassAuthorization" => cfg.pass_authorization = Some(on_off(spec, raw)?),
        "WSGIScriptReloading" => cfg.script_reloading = Some(on_off(spec, raw)?),
        "WSGIErrorOverride" => cfg.error_override = Some(on_off(spec, raw)?),
        "WSGIChunkedRequest" => cfg.chunked_request = Some(on_off(spec, raw)?),
        "WSGIIgnoreActivity" => cfg.ignore_activity = Some(on_off(spec, raw)?),
        "WSGIEnableSendfile" => cfg.enable_sendfile = Some(on_off(spec, raw)?),
        "WSGIMapHEADToGET" => {
            let v = one(spec, raw)?;
            cfg.map_head_to_get = Some(match v.to_ascii_lowercase().as_str() {
                "on" => MapHeadToGet::On,
                "off" => MapHeadToGet::Off,
                "auto" => MapHeadToGet::Auto,
                _ => {
                    return Err(format!(
                        "WSGIMapHEADToGET must be On, Off or Auto, not '{v}'"
                    ));
                }
            });
        }
        other => return Err(format!("{other} cannot be used here")),
    }
    Ok(())
}

/// WSGITrustedProxyHeaders / WSGITrustedProxies: repeating one in a context appends.
fn apply_proxies(spec: &DirectiveSpec, cfg: &mut DirConfig, raw: &str) -> Result<()> {
    if spec.name() == "WSGITrustedProxyHeaders" {
        let mut list = cfg.trusted_proxy_headers.take().unwrap_or_default();
        for name in words(raw) {
            list.push(crate::proxy::header_key(&name)?);
        }
        cfg.trusted_proxy_headers = Some(list);
    } else {
        let mut list = cfg.trusted_proxies.take().unwrap_or_default();
        for net in words(raw) {
            list.push(crate::proxy::Subnet::parse(&net)?);
        }
        cfg.trusted_proxies = Some(list);
    }
    Ok(())
}

/// The hook and handler script directives.
fn apply_script(
    spec: &DirectiveSpec,
    cfg: &mut DirConfig,
    raw: &str,
    resolve: &dyn Fn(&str) -> String,
) -> Result<()> {
    use super::scripts::{Hook, parse_handler, parse_hook};
    let hook = |h| parse_hook(h, raw, resolve).map(Some);
    match spec.name() {
        "WSGIDispatchScript" => cfg.dispatch_script = hook(Hook::Dispatch)?,
        "WSGIAccessScript" => cfg.access_script = hook(Hook::Access)?,
        "WSGIAuthUserScript" => cfg.auth_user_script = hook(Hook::AuthUser)?,
        "WSGIAuthGroupScript" => cfg.auth_group_script = hook(Hook::AuthGroup)?,
        _ => {
            let h = parse_handler(raw, resolve)?;
            let list = cfg.handler_scripts.get_or_insert_with(Vec::new);
            list.retain(|o| o.name != h.name);
            list.push(h);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
