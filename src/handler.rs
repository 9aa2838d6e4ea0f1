//! Where a request enters rwsgi (the `wsgi-script` handler): decides what to run (script,
//! callable, application group, process group), builds the CGI variables mod_wsgi would, and
//! hands over to embedded mode (`crate::wsgi::run` in this process) or daemon mode
//! (`crate::daemon::client::forward`).

use crate::apache::{FileType, Level, Request, log};
use crate::config::alias::collapse_slashes;
use crate::config::groups::{ExpandContext, expand_application_group};
use crate::embedded::settings;
use crate::embedded::transport::{ApacheTransport, level};
use crate::wsgi::{self, AppRequest, Environ, Outcome};

const OK: i32 = 0;
const NOT_FOUND: i32 = 404;
const FORBIDDEN: i32 = 403;
const SERVER_ERROR: i32 = 500;

/// Serves one request whose handler is `wsgi-script`; returns the handler status.
pub fn handle(req: Request) -> i32 {
    let filename = req.filename().into_owned();
    let alias_forced = req.note("alias-forced-type").is_some();
    if !alias_forced && !req.allows_exec_cgi() {
        req.log(
            Level::Error,
            &format!("rwsgi: Options ExecCGI is off in this directory: {filename}"),
        );
        return FORBIDDEN;
    }
    match req.file_type() {
        FileType::Regular => {}
        FileType::Directory => {
            req.log(
                Level::Error,
                &format!("rwsgi: Attempt to invoke directory as WSGI application: {filename}"),
            );
            return FORBIDDEN;
        }
        _ => {
            req.log(
                Level::Error,
                &format!("rwsgi: Target WSGI script not found or unable to stat: {filename}"),
            );
            return NOT_FOUND;
        }
    }
    if !req.path_info().is_empty() && req.rejects_path_info() {
        req.log(
            Level::Info,
            &format!(
                "rwsgi: path info not accepted (AcceptPathInfo Off): {}",
                req.uri()
            ),
        );
        return NOT_FOUND;
    }
    let s = settings::current();
    // SAFETY-free: the merged directory configuration of this request.
    let dir = settings::dir_config(&req);

    let process_group = req
        .note("mod_wsgi.process_group")
        .or_else(|| dir.process_group.clone())
        .unwrap_or_default();
    let process_group = expand(&req, &process_group, "");
    let (server_name, _) = req.server_identity();
    let daemon = match crate::config::daemon::resolve_process_group(
        &process_group,
        dir.restrict_process.as_deref(),
        &server_name,
        crate::daemon::groups::find,
    ) {
        Ok(g) => g,
        Err(e) => {
            req.log(Level::Error, &format!("rwsgi: {e}: {filename}"));
            return SERVER_ERROR;
        }
    };
    if daemon.is_none() && s.restrict_embedded {
        req.log(
            Level::Error,
            &format!(
                "rwsgi: Embedded mode of mod_wsgi disabled by runtime configuration: {filename}"
            ),
        );
        return SERVER_ERROR;
    }
    if daemon.is_none() && !s.python_ready() {
        req.log(
            Level::Error,
            "rwsgi: Python is not initialised in this process (see errors at child start)",
        );
        return SERVER_ERROR;
    }
    if let Err(status) = req.setup_body(dir.chunked_request.unwrap_or(false)) {
        if status == 411 {
            req.log(
                Level::Error,
                &format!(
                    "rwsgi: Received request requiring chunked transfer encoding, but optional support for chunked transfer encoding has not been enabled (WSGIChunkedRequest On).: {filename}"
                ),
            );
        }
        return status;
    }

    let application_group = match req
        .note("mod_wsgi.application_group")
        .or_else(|| dir.application_group.clone())
    {
        Some(g) => g,
        // rwsgi's default: the only application this process can run gets the main
        // interpreter (C extensions and PyO3 packages work there); otherwise one
        // sub-interpreter per script, as mod_wsgi's %{RESOURCE}.
        None if alias_forced && s.sole_script_of(&process_group) == Some(filename.as_str()) => {
            "%{GLOBAL}".into()
        }
        None => "%{RESOURCE}".into(),
    };
    let callable = req
        .note("mod_wsgi.callable_object")
        .or_else(|| dir.callable_object.clone())
        .unwrap_or_else(|| "application".into());
    let pass_auth = match req.note("mod_wsgi.pass_authorization") {
        Some(v) => v == "1",
        None => dir.pass_authorization.unwrap_or(false),
    };
    let reload = dir.script_reloading.unwrap_or(true);

    let (mut environ, script_name) = cgi_environ(&req, pass_auth);
    // WSGIMapHEADToGET On: the application sees GET for HEAD (Apache drops the body). Auto
    // behaves as Off, which is what mod_wsgi 4.9 effectively does.
    if dir.map_head_to_get == Some(crate::config::MapHeadToGet::On)
        && req.header_only()
        && environ.get("REQUEST_METHOD") == Some(b"HEAD")
    {
        environ.set("REQUEST_METHOD", b"GET");
    }
    let application_group = expand(&req, &application_group, &script_name);
    let https = req.is_https()
        || matches!(
            req.subprocess_env("HTTPS")
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("on") | Some("1")
        );
    add_mod_wsgi_keys(
        &req,
        &mut environ,
        &process_group,
        &application_group,
        &callable,
        reload,
        dir.enable_sendfile.unwrap_or(false),
        dir.ignore_activity.unwrap_or(false),
    );
    if daemon.is_some() {
        // mod_wsgi's daemon-mode keys: when the request was queued for the daemon, how many
        // connections and restarts that took.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        environ.push("mod_wsgi.queue_start", now.to_string().as_bytes());
        environ.push("mod_wsgi.daemon_connects", b"1");
        environ.push("mod_wsgi.daemon_restarts", b"0");
    }

    let app = AppRequest {
        script: filename,
        script_mtime: req.file_mtime(),
        callable,
        application_group,
        process_group,
        reload,
        environ,
        https,
    };
    if let Some(group) = daemon {
        return crate::daemon::client::forward(req, &app, &group, settings::server_timeout());
    }
    let (transport, log) = ApacheTransport::new(req);
    match wsgi::run(app, Box::new(transport), log) {
        Outcome::Sent => OK,
        Outcome::ServerError => SERVER_ERROR,
    }
}

fn expand(req: &Request, value: &str, script_name: &str) -> String {
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
    expand_application_group(value, &ctx, &env)
}

/// Apache's CGI variables adjusted as mod_wsgi adjusts them; returns them and SCRIPT_NAME.
fn cgi_environ(req: &Request, pass_auth: bool) -> (Environ, String) {
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

#[allow(clippy::too_many_arguments)]
fn add_mod_wsgi_keys(
    req: &Request,
    vars: &mut Environ,
    process_group: &str,
    application_group: &str,
    callable: &str,
    reload: bool,
    sendfile: bool,
    ignore_activity: bool,
) {
    let get = |vars: &Environ, k: &str| vars.get(k).unwrap_or_default().to_vec();
    let script_name = get(vars, "SCRIPT_NAME");
    let path_info = get(vars, "PATH_INFO");
    let listener_host = get(vars, "SERVER_ADDR");
    let listener_port = get(vars, "SERVER_PORT");
    let flag = |b: bool| -> &'static [u8] { if b { b"1" } else { b"0" } };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let request_handler = req.handler().unwrap_or_default();
    let request_start = req.request_time().to_string();
    let request_id = req.log_id().unwrap_or_default();
    for (k, v) in [
        ("mod_wsgi.process_group", process_group.as_bytes()),
        ("mod_wsgi.application_group", application_group.as_bytes()),
        ("mod_wsgi.callable_object", callable.as_bytes()),
        ("mod_wsgi.request_handler", request_handler.as_bytes()),
        ("mod_wsgi.handler_script", b""),
        ("mod_wsgi.script_reloading", flag(reload)),
        ("mod_wsgi.listener_host", &listener_host),
        ("mod_wsgi.listener_port", &listener_port),
        ("mod_wsgi.enable_sendfile", flag(sendfile)),
        ("mod_wsgi.ignore_activity", flag(ignore_activity)),
        ("mod_wsgi.request_start", request_start.as_bytes()),
        ("mod_wsgi.script_start", now.to_string().as_bytes()),
        ("mod_wsgi.request_id", request_id.as_bytes()),
        ("mod_wsgi.script_name", &script_name),
        ("mod_wsgi.path_info", &path_info),
    ] {
        vars.push(k, v);
    }
}

/// Where rwsgi's own messages without a request go.
pub(crate) fn server_log(l: wsgi::LogLevel, m: &str) {
    log::server(level(l), m)
}
