//! Where a request enters rwsgi (the content handler, for `wsgi-script` or a
//! `WSGIHandlerScript` name): decides what to run (script, callable, application group,
//! process group — the dispatch script has the last word), builds the variables mod_wsgi
//! would, and hands over to embedded mode ([`crate::embedded::run`], in this process) or
//! daemon mode ([`crate::forward::forward`]).

mod dispatch;
pub mod environ;
mod target;

use crate::embedded::settings;
use crate::{notes, routing};
use environ::{RunInfo, add_daemon_keys, add_mod_wsgi_keys, cgi_environ, expand, forwarded};
use rwsgi_apache::Request;
use rwsgi_apache::hooks::Handled;
use rwsgi_core::AppRequest;
use rwsgi_core::Level;
use rwsgi_core::config::groups::GLOBAL;
use rwsgi_core::config::{DirConfig, MapHeadToGet};
use rwsgi_core::http::Status;
use std::borrow::Cow;
use target::Target;

/// What runs, as the configuration says before the dispatch script: group names unexpanded.
/// Borrowed from the directory's configuration where they come from there (one heap string
/// each per request otherwise).
pub struct Plan<'a> {
    pub process_group: Cow<'a, str>,
    /// `None`: rwsgi's default (see [`application_group`]).
    pub application_group: Option<Cow<'a, str>>,
    pub callable: Cow<'a, str>,
}

/// Serves one request whose handler is `wsgi-script` or a handler script's name (else
/// declines).
pub fn handle(req: Request<'_>) -> Handled {
    if req.handler().as_deref() == Some(crate::status::page::HANDLER) {
        return crate::status::page::serve(req);
    }
    let dir: &DirConfig = req.dir_config();
    let Some(target) = Target::of(&req, dir) else {
        return Handled::Declined;
    };
    if let Err(status) = target.check(&req) {
        return Handled::Status(status);
    }
    let mut plan = target.plan(&req, dir);
    if let Err(status) = setup_body(&req, dir, &target.filename) {
        return Handled::Status(status);
    }
    let reload = dir.script_reloading.unwrap_or(true);
    let (mut vars, script_name) = cgi_environ(&req, target.pass_authorization(&req, dir));
    // WSGIMapHEADToGET On: the application sees GET for HEAD (Apache drops the body). Auto
    // behaves as Off, which is what mod_wsgi 4.9 effectively does.
    if dir.map_head_to_get == Some(MapHeadToGet::On)
        && req.header_only()
        && vars.get("REQUEST_METHOD") == Some(b"HEAD")
    {
        vars.set("REQUEST_METHOD", b"GET");
    }
    let configured_group = expand(&req, &plan.process_group, "");
    add_mod_wsgi_keys(
        &req,
        &mut vars,
        &RunInfo {
            process_group: &configured_group,
            application_group: plan.application_group.as_deref().unwrap_or(""),
            callable: &plan.callable,
            handler_script: target.handler_script(),
            reload,
            sendfile: dir.enable_sendfile.unwrap_or(false),
            ignore_activity: dir.ignore_activity.unwrap_or(false),
        },
    );
    if let Some(script) = &dir.dispatch_script {
        if let Err(status) = dispatch::run(&req, dir, script, &vars, &mut plan) {
            return Handled::Status(status);
        }
    }
    let process_group = expand(&req, &plan.process_group, "");
    let daemon = match route(&req, dir, &process_group) {
        Ok(d) => d,
        Err(e) => {
            req.log(Level::Error, &format!("rwsgi: {e}: {}", target.filename));
            return Handled::Status(Status::INTERNAL_SERVER_ERROR);
        }
    };
    let application_group = application_group(&req, &target, &plan, &process_group);
    let application_group = expand(&req, application_group, &script_name).into_owned();
    let callable = environ::expand_callable(&req, &plan.callable).into_owned();
    let process_group = process_group.into_owned();
    environ::set_run_keys(&mut vars, &process_group, &application_group, &callable);
    // After mod_wsgi.script_name/path_info, which keep what Apache saw.
    let https = forwarded(&req, dir, &mut vars);
    if daemon.is_some() {
        add_daemon_keys(&mut vars);
    }
    // apache.request_rec only where the application runs in this process.
    let request_rec =
        (daemon.is_none() && dir.pass_apache_request == Some(true)).then(|| req.address());
    let script_mtime = target.script_mtime(&req);
    let app = AppRequest {
        script: target.into_script(),
        script_mtime,
        callable,
        application_group,
        process_group,
        reload,
        environ: vars,
        https,
        request_rec,
    };
    run(req, app, daemon)
}

/// Runs the request here or in its daemon group, counted on the status board.
fn run(
    mut req: Request<'_>,
    app: AppRequest,
    daemon: Option<std::sync::Arc<rwsgi_core::spec::GroupSpec>>,
) -> Handled {
    let recording = crate::status::begin(&req, daemon.as_ref().map(|g| g.name()));
    let handled = match daemon {
        Some(group) => crate::forward::forward(req.reborrow(), &app, &group),
        None => crate::embedded::run(req.reborrow(), app),
    };
    recording.end(&req, handled);
    handled
}

/// The daemon group the request goes to (`None`: this process), or why it cannot run.
fn route(
    req: &Request<'_>,
    dir: &DirConfig,
    process_group: &str,
) -> Result<Option<std::sync::Arc<rwsgi_core::spec::GroupSpec>>, String> {
    let daemon = routing::daemon_group(req, process_group, dir)?;
    if daemon.is_none() {
        settings::current().embedded_ready().map_err(String::from)?;
    }
    Ok(daemon)
}

/// The application group, unexpanded. rwsgi's default when none is configured: the only
/// application this process can run gets the main interpreter (C extensions and PyO3
/// packages work there); otherwise one sub-interpreter per script, as mod_wsgi's %{RESOURCE}.
fn application_group<'a>(
    req: &Request<'_>,
    target: &Target,
    plan: &'a Plan<'_>,
    process_group: &str,
) -> &'a str {
    if let Some(g) = &plan.application_group {
        return g;
    }
    let sole = settings::current().routes.sole_script_of(process_group) == Some(target.script());
    if target.alias_forced(req) && sole {
        GLOBAL
    } else {
        "%{RESOURCE}"
    }
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

/// The notes `WSGIScriptAlias` options left, over the directory's directives.
fn configured<'a>(req: &Request<'_>, dir: &'a DirConfig) -> Plan<'a> {
    let or_dir = |note: &str, directive: &'a Option<String>| {
        req.note(note)
            .map(Cow::Owned)
            .or_else(|| directive.as_deref().map(Cow::Borrowed))
    };
    Plan {
        process_group: or_dir(notes::PROCESS_GROUP, &dir.process_group).unwrap_or_default(),
        application_group: or_dir(notes::APPLICATION_GROUP, &dir.application_group),
        callable: or_dir(notes::CALLABLE_OBJECT, &dir.callable_object)
            .unwrap_or(Cow::Borrowed("application")),
    }
}
