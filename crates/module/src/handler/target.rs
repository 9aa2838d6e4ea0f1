//! What the request runs: a WSGI script the URL maps to (`wsgi-script`: WSGIScriptAlias,
//! AddHandler/SetHandler), or a `WSGIHandlerScript` serving the requested file through its
//! `handle_request`.

use super::{Plan, configured};
use crate::mapping::{HANDLER, HANDLER_ALT};
use crate::notes;
use rwsgi_apache::{FileType, Request};
use rwsgi_core::Level;
use rwsgi_core::config::DirConfig;
use rwsgi_core::config::scripts::HandlerScript;
use rwsgi_core::http::Status;

pub struct Target {
    /// The requested file (r->filename: SCRIPT_FILENAME).
    pub filename: String,
    handler: Option<HandlerScript>,
}

impl Target {
    /// `None` when the request's handler is not ours.
    pub fn of(req: &Request<'_>, dir: &DirConfig) -> Option<Target> {
        let h = req.handler()?;
        let filename = req.filename().into_owned();
        if h == HANDLER.to_str().unwrap_or_default() || h == HANDLER_ALT {
            return Some(Target {
                filename,
                handler: None,
            });
        }
        let entry = dir
            .handler_scripts
            .as_ref()?
            .iter()
            .find(|e| e.name == h)?
            .clone();
        Some(Target {
            filename,
            handler: Some(entry),
        })
    }

    /// The script that runs: the file itself, or the handler script.
    pub fn script(&self) -> &str {
        self.handler.as_ref().map_or(&self.filename, |h| &h.path)
    }

    pub fn into_script(self) -> String {
        match self.handler {
            Some(h) => h.path,
            None => self.filename,
        }
    }

    /// A WSGI script must be a regular file that may run here; a handler script serves
    /// whatever was requested (mod_wsgi checks nothing there either).
    pub fn check(&self, req: &Request<'_>) -> Result<(), Status> {
        match self.handler {
            Some(_) => Ok(()),
            None => check_script(req, &self.filename, self.alias_forced(req)),
        }
    }

    pub fn alias_forced(&self, req: &Request<'_>) -> bool {
        self.handler.is_none() && req.note(notes::ALIAS_FORCED_TYPE).is_some()
    }

    /// The configuration's choice; a handler script's own options win over the directives,
    /// and its callable is always `handle_request`.
    pub fn plan<'a>(&'a self, req: &Request<'_>, dir: &'a DirConfig) -> Plan<'a> {
        let mut plan = configured(req, dir);
        if let Some(h) = &self.handler {
            plan.callable = "handle_request".into();
            if let Some(g) = &h.process_group {
                plan.process_group = g.into();
            }
            if let Some(g) = &h.application_group {
                plan.application_group = Some(g.into());
            }
        }
        plan
    }

    pub fn pass_authorization(&self, req: &Request<'_>, dir: &DirConfig) -> bool {
        if let Some(v) = self.handler.as_ref().and_then(|h| h.pass_authorization) {
            return v;
        }
        match req.note(notes::PASS_AUTHORIZATION) {
            Some(v) => notes::is_set(&v),
            None => dir.pass_authorization.unwrap_or(false),
        }
    }

    /// `mod_wsgi.handler_script`.
    pub fn handler_script(&self) -> &str {
        self.handler.as_ref().map_or("", |h| h.path.as_str())
    }

    /// The modification time of the script that runs (microseconds), for reloading.
    pub fn script_mtime(&self, req: &Request<'_>) -> i64 {
        if self.handler.is_none() {
            return req.file_mtime();
        }
        std::fs::metadata(self.script())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_micros() as i64)
    }
}

/// The mapped file must be a regular file that may run here.
fn check_script(req: &Request<'_>, filename: &str, alias_forced: bool) -> Result<(), Status> {
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
