//! `WSGIDispatchScript`: after the directives, the script's `process_group(environ)`,
//! `application_group(environ)` and `callable_object(environ)` decide per request (`None`
//! keeps the configured value). A script that cannot be loaded is logged and ignored, as
//! mod_wsgi does; one that raises or answers with the wrong type fails the request (500).

use super::Plan;
use crate::hooks::{Prepared, logger};
use rwsgi_apache::Request;
use rwsgi_core::Environ;
use rwsgi_core::config::DirConfig;
use rwsgi_core::config::scripts::HookScript;
use rwsgi_core::http::Status;
use rwsgi_python::hooks::{self, HookError};

pub fn run(
    req: &Request<'_>,
    dir: &DirConfig,
    script: &HookScript,
    vars: &Environ,
    plan: &mut Plan<'_>,
) -> Result<(), Status> {
    let mut environ = vars.clone();
    environ.retain_keys(|k| k != "mod_wsgi.callable_object");
    let Some(mut hook) = Prepared::new(req, dir, script, environ) else {
        return Err(Status::INTERNAL_SERVER_ERROR);
    };
    // What mod_wsgi tells the dispatch script: not yet decided, and its own interpreter.
    hook.environ.set("mod_wsgi.process_group", b"");
    let own = hook.application_group.clone();
    hook.environ
        .set("mod_wsgi.application_group", own.as_bytes());
    match hooks::dispatch(&hook.call(), logger(req)) {
        Ok(d) => {
            if let Some(g) = d.process_group {
                plan.process_group = g.into();
            }
            if let Some(g) = d.application_group {
                plan.application_group = Some(g.into());
            }
            if let Some(c) = d.callable_object {
                plan.callable = c.into();
            }
            Ok(())
        }
        Err(HookError::Load) => Ok(()),
        Err(_) => Err(Status::INTERNAL_SERVER_ERROR),
    }
}
