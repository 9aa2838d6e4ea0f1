//! The variables a WSGI application is called with: Apache's CGI variables adjusted as
//! mod_wsgi adjusts them, mod_wsgi's own `mod_wsgi.*` keys, the trusted proxy headers, and
//! the `%{...}` expansion of group names.

use crate::embedded::settings;
use rwsgi_apache::Request;
use rwsgi_core::config::DirConfig;
use rwsgi_core::config::alias::collapse_slashes;
use rwsgi_core::config::groups::{ExpandContext, expand_application_group, literal};
use rwsgi_core::decimal::Decimal;
use rwsgi_core::{Environ, proxy};
use std::borrow::Cow;

/// Applies the trusted proxy headers; returns whether the request counts as HTTPS: a
/// forwarded scheme header the admin trusts decides, else `SetEnv HTTPS` / mod_ssl.
pub fn forwarded(req: &Request<'_>, dir: &DirConfig, environ: &mut Environ) -> bool {
    let env_https = matches!(
        req.subprocess_env("HTTPS")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("on") | Some("1")
    );
    match &dir.trusted_proxy_headers {
        Some(headers) => proxy::apply(environ, headers, dir.trusted_proxies.as_deref(), env_https),
        None => None,
    }
    .unwrap_or_else(|| env_https || req.is_https())
}

/// mod_wsgi's daemon-mode keys: when the request was queued for the daemon, how many
/// connections and restarts that took.
pub fn add_daemon_keys(environ: &mut Environ) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    environ.push(
        "mod_wsgi.queue_start",
        Decimal::new(now.try_into().unwrap_or(i128::MAX)).as_bytes(),
    );
    environ.push("mod_wsgi.daemon_connects", b"1");
    environ.push("mod_wsgi.daemon_restarts", b"0");
}

/// `%{...}` in an application or process group, with this request's values.
pub fn expand<'v>(req: &Request<'_>, value: &'v str, script_name: &str) -> Cow<'v, str> {
    if let Some(name) = literal(value) {
        return name.into();
    }
    let (server_hostname, server_port) = req.server_identity();
    let host = req.hostname();
    let ctx = ExpandContext {
        server_hostname: &server_hostname,
        server_port,
        request_host: if host.is_empty() {
            &server_hostname
        } else {
            &host
        },
        script_name,
        case_insensitive: settings::current().case_insensitive,
    };
    let env = |k: &str| {
        req.note(k)
            .or_else(|| req.subprocess_env(k))
            .or_else(|| std::env::var(k).ok())
    };
    expand_application_group(value, &ctx, &env).into()
}

/// Apache's CGI variables adjusted as mod_wsgi adjusts them; returns them and SCRIPT_NAME.
pub fn cgi_environ(req: &Request<'_>, pass_auth: bool) -> (Environ, String) {
    req.drop_invalid_headers();
    let mut vars = req.cgi_variables();
    vars.retain_keys(|k| k != "PATH" && k != "HTTPS");
    if pass_auth {
        if let Some(a) = req.header_in("Authorization") {
            vars.push("HTTP_AUTHORIZATION", a.as_bytes());
        }
    }
    let script_name = match vars.get("SCRIPT_NAME").map(collapse_slashes) {
        Some(s) => {
            vars.set("SCRIPT_NAME", &s);
            String::from_utf8_lossy(&s).into_owned()
        }
        None => String::new(),
    };
    match vars.get("PATH_INFO").map(collapse_slashes) {
        Some(p) => vars.set("PATH_INFO", &p),
        None => vars.push("PATH_INFO", b""),
    }
    (vars, script_name)
}

/// What mod_wsgi adds to the CGI variables about how the request is run.
pub struct RunInfo<'a> {
    pub process_group: &'a str,
    pub application_group: &'a str,
    pub callable: &'a str,
    pub handler_script: &'a str,
    pub reload: bool,
    pub sendfile: bool,
    pub ignore_activity: bool,
}

pub fn add_mod_wsgi_keys(req: &Request<'_>, vars: &mut Environ, run: &RunInfo<'_>) {
    let RunInfo {
        process_group,
        application_group,
        callable,
        handler_script,
        reload,
        sendfile,
        ignore_activity,
    } = *run;
    let (listener_host, listener_port) = req.listener();
    let listener_port = Decimal::new(listener_port.into());
    let flag = |b: bool| -> &'static [u8] { if b { b"1" } else { b"0" } };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let request_handler = req.handler().unwrap_or_default();
    let request_start = Decimal::new(req.request_time().into());
    let request_id = req.log_id().unwrap_or_default();
    for (k, v) in [
        ("mod_wsgi.process_group", process_group.as_bytes()),
        ("mod_wsgi.application_group", application_group.as_bytes()),
        ("mod_wsgi.callable_object", callable.as_bytes()),
        ("mod_wsgi.request_handler", request_handler.as_bytes()),
        ("mod_wsgi.handler_script", handler_script.as_bytes()),
        ("mod_wsgi.script_reloading", flag(reload)),
        ("mod_wsgi.listener_host", listener_host.as_bytes()),
        ("mod_wsgi.listener_port", listener_port.as_bytes()),
        ("mod_wsgi.enable_sendfile", flag(sendfile)),
        ("mod_wsgi.ignore_activity", flag(ignore_activity)),
        ("mod_wsgi.request_start", request_start.as_bytes()),
        (
            "mod_wsgi.script_start",
            Decimal::new(now.try_into().unwrap_or(i128::MAX)).as_bytes(),
        ),
        ("mod_wsgi.request_id", request_id.as_bytes()),
    ] {
        vars.push(k, v);
    }
    vars.push_copy("mod_wsgi.script_name", "SCRIPT_NAME");
    vars.push_copy("mod_wsgi.path_info", "PATH_INFO");
}

/// Sets the keys that say what runs, once the dispatch script has had its say.
pub fn set_run_keys(
    vars: &mut Environ,
    process_group: &str,
    application_group: &str,
    callable: &str,
) {
    vars.set("mod_wsgi.process_group", process_group.as_bytes());
    vars.set("mod_wsgi.application_group", application_group.as_bytes());
    vars.set("mod_wsgi.callable_object", callable.as_bytes());
}

/// A callable name: `%{ENV:NAME}` takes the variable (unset or empty: `application`).
pub fn expand_callable<'v>(req: &Request<'_>, value: &'v str) -> Cow<'v, str> {
    let Some(name) = value
        .strip_prefix("%{ENV:")
        .and_then(|v| v.strip_suffix('}'))
    else {
        return value.into();
    };
    req.note(name)
        .or_else(|| req.subprocess_env(name))
        .or_else(|| std::env::var(name).ok())
        .filter(|v| !v.is_empty())
        .map_or("application".into(), Cow::Owned)
}
