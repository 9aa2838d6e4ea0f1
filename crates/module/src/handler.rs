//! Where a request enters rwsgi (the `wsgi-script` handler): decides what to run (script,
//! callable, application group, process group), builds the CGI variables mod_wsgi would, and
//! hands over to embedded mode ([`crate::embedded::run`], in this process) or daemon mode
//! ([`crate::forward::forward`]).

use crate::embedded::settings;
use crate::mapping::{HANDLER, HANDLER_ALT};
use crate::{notes, routing};
use rwsgi_apache::hooks::Handled;
use rwsgi_apache::{FileType, Request};
use rwsgi_core::Level;
use rwsgi_core::config::alias::collapse_slashes;
use rwsgi_core::config::groups::{ExpandContext, GLOBAL, expand_application_group};
use rwsgi_core::config::{DirConfig, MapHeadToGet};
use rwsgi_core::http::Status;
use rwsgi_core::proxy;
use rwsgi_core::{AppRequest, Environ};

/// Serves one request whose handler is `wsgi-script` (else declines).
pub fn handle(req: Request<'_>) -> Handled {
    match req.handler() {
        Some(h) if h == HANDLER.to_str().unwrap_or_default() || h == HANDLER_ALT => {}
        _ => return Handled::Declined,
    }
    let filename = req.filename().into_owned();
    let alias_forced = req.note(notes::ALIAS_FORCED_TYPE).is_some();
    if let Err(status) = check_target(&req, &filename, alias_forced) {
        return Handled::Status(status);
    }
    let s = settings::current();
    let dir: &DirConfig = req.dir_config();
    let process_group = req
        .note(notes::PROCESS_GROUP)
        .or_else(|| dir.process_group.clone())
        .unwrap_or_default();
    let process_group = expand(&req, &process_group, "");
    let daemon = match routing::daemon_group(&req, &process_group, dir) {
        Ok(g) => g,
        Err(e) => {
            req.log(Level::Error, &format!("rwsgi: {e}: {filename}"));
            return Handled::Status(Status::INTERNAL_SERVER_ERROR);
        }
    };
    if daemon.is_none() {
        if let Err(e) = s.embedded_ready() {
            req.log(Level::Error, &format!("rwsgi: {e}: {filename}"));
            return Handled::Status(Status::INTERNAL_SERVER_ERROR);
        }
    }
    if let Err(status) = setup_body(&req, dir, &filename) {
        return Handled::Status(status);
    }
    let app = app_request(
        &req,
        dir,
        process_group,
        daemon.is_some(),
        alias_forced,
        filename,
    );
    match daemon {
        Some(group) => crate::forward::forward(req, &app, &group),
        None => crate::embedded::run(req, app),
    }
}

/// The mapped file must be a regular file that may run here.
fn check_target(req: &Request<'_>, filename: &str, alias_forced: bool) -> Result<(), Status> {
    if !alias_forced && !req.allows_exec_cgi() {
        req.log(
            Level::Error,
            &format!("rwsgi: Options ExecCGI is off in this directory: {filename}"),
        );
        return Err(Status::FORBIDDEN);
    }
    match req.file_type() {
        FileType::Regular => {}
        FileType::Directory => {
            req.log(
                Level::Error,
                &format!("rwsgi: Attempt to invoke directory as WSGI application: {filename}"),
            );
            return Err(Status::FORBIDDEN);
        }
        _ => {
            req.log(
                Level::Error,
                &format!("rwsgi: Target WSGI script not found or unable to stat: {filename}"),
            );
            return Err(Status::NOT_FOUND);
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
        return Err(Status::NOT_FOUND);
    }
    Ok(())
}

/// The request body policy: chunked bodies only with WSGIChunkedRequest On (else 411).
fn setup_body(req: &Request<'_>, dir: &DirConfig, filename: &str) -> Result<(), Status> {
    req.setup_body(dir.chunked_request.unwrap_or(false))
        .map_err(|code| {
            if code == Status::LENGTH_REQUIRED.code() as i32 {
                req.log(
                    Level::Error,
                    &format!(
                        "rwsgi: Received request requiring chunked transfer encoding, but optional support for chunked transfer encoding has not been enabled (WSGIChunkedRequest On).: {filename}"
                    ),
                );
            }
            Status::new(code as u16).unwrap_or(Status::INTERNAL_SERVER_ERROR)
        })
}

/// Everything the application is called with: script, callable, application group, the
/// environ's variables.
fn app_request(
    req: &Request<'_>,
    dir: &DirConfig,
    process_group: String,
    in_daemon: bool,
    alias_forced: bool,
    filename: String,
) -> AppRequest {
    let s = settings::current();
    let application_group = match req
        .note(notes::APPLICATION_GROUP)
        .or_else(|| dir.application_group.clone())
    {
        Some(g) => g,
        // rwsgi's default: the only application this process can run gets the main
        // interpreter (C extensions and PyO3 packages work there); otherwise one
        // sub-interpreter per script, as mod_wsgi's %{RESOURCE}.
        None if alias_forced && s.routes.sole_script_of(&process_group) == Some(&filename) => {
            GLOBAL.into()
        }
        None => "%{RESOURCE}".into(),
    };
    let callable = req
        .note(notes::CALLABLE_OBJECT)
        .or_else(|| dir.callable_object.clone())
        .unwrap_or_else(|| "application".into());
    let pass_auth = match req.note(notes::PASS_AUTHORIZATION) {
        Some(v) => notes::is_set(&v),
        None => dir.pass_authorization.unwrap_or(false),
    };
    let reload = dir.script_reloading.unwrap_or(true);
    let (mut environ, script_name) = cgi_environ(req, pass_auth);
    // WSGIMapHEADToGET On: the application sees GET for HEAD (Apache drops the body). Auto
    // behaves as Off, which is what mod_wsgi 4.9 effectively does.
    if dir.map_head_to_get == Some(MapHeadToGet::On)
        && req.header_only()
        && environ.get("REQUEST_METHOD") == Some(b"HEAD")
    {
        environ.set("REQUEST_METHOD", b"GET");
    }
    let application_group = expand(req, &application_group, &script_name);
    add_mod_wsgi_keys(
        req,
        &mut environ,
        &RunInfo {
            process_group: &process_group,
            application_group: &application_group,
            callable: &callable,
            reload,
            sendfile: dir.enable_sendfile.unwrap_or(false),
            ignore_activity: dir.ignore_activity.unwrap_or(false),
        },
    );
    // After mod_wsgi.script_name/path_info, which keep what Apache saw.
    let https = forwarded(req, dir, &mut environ);
    if in_daemon {
        add_daemon_keys(&mut environ);
    }
    AppRequest {
        script: filename,
        script_mtime: req.file_mtime(),
        callable,
        application_group,
        process_group,
        reload,
        environ,
        https,
    }
}

/// Applies the trusted proxy headers; returns whether the request counts as HTTPS: a
/// forwarded scheme header the admin trusts decides, else `SetEnv HTTPS` / mod_ssl.
fn forwarded(req: &Request<'_>, dir: &DirConfig, environ: &mut Environ) -> bool {
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
fn add_daemon_keys(environ: &mut Environ) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    environ.push("mod_wsgi.queue_start", now.to_string().as_bytes());
    environ.push("mod_wsgi.daemon_connects", b"1");
    environ.push("mod_wsgi.daemon_restarts", b"0");
}

/// `%{...}` in an application or process group, with this request's values.
fn expand(req: &Request<'_>, value: &str, script_name: &str) -> String {
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
fn cgi_environ(req: &Request<'_>, pass_auth: bool) -> (Environ, String) {
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
struct RunInfo<'a> {
    process_group: &'a str,
    application_group: &'a str,
    callable: &'a str,
    reload: bool,
    sendfile: bool,
    ignore_activity: bool,
}

fn add_mod_wsgi_keys(req: &Request<'_>, vars: &mut Environ, run: &RunInfo<'_>) {
    let RunInfo {
        process_group,
        application_group,
        callable,
        reload,
        sendfile,
        ignore_activity,
    } = *run;
    let get = |vars: &Environ, k: &str| vars.get(k).unwrap_or_default().to_vec();
    let script_name = get(vars, "SCRIPT_NAME");
    let path_info = get(vars, "PATH_INFO");
    let (listener_host, listener_port) = req.listener();
    let listener_port = listener_port.to_string();
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
        ("mod_wsgi.listener_host", listener_host.as_bytes()),
        ("mod_wsgi.listener_port", listener_port.as_bytes()),
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
