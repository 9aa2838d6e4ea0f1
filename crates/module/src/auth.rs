//! Python authentication, authorisation and host access, as mod_wsgi provides them: the `wsgi`
//! authn provider calls `WSGIAuthUserScript`'s `check_password` (Basic) or `get_realm_hash`
//! (Digest), the `wsgi-group` authz provider `WSGIAuthGroupScript`'s `groups_for_user`, the
//! access checker `WSGIAccessScript`'s `allow_access`. They run in the Apache child, whatever
//! the request's process group, as with mod_wsgi (see README, Differences).

use crate::hooks::{Prepared, logger};
use rwsgi_apache::Request;
use rwsgi_apache::auth::{Access, AuthHooks, Authn, Authz};
use rwsgi_core::config::DirConfig;
use rwsgi_core::config::scripts::HookScript;
use rwsgi_core::config::tokenize::words;
use rwsgi_core::{Environ, Level};
use rwsgi_python::hooks::{self as py, HookError};

pub fn hooks() -> AuthHooks {
    AuthHooks {
        check_password,
        get_realm_hash,
        check_group,
        access,
    }
}

fn pid() -> u32 {
    std::process::id()
}

/// The environ mod_wsgi gives these hooks: the request's CGI variables without credentials,
/// the authenticated user or the script file, plus the hook's own interpreter.
fn environ(req: &Request<'_>) -> Environ {
    req.drop_invalid_headers();
    let mut vars = req.cgi_variables();
    vars.retain_keys(|k| {
        !matches!(
            k,
            "HTTP_AUTHORIZATION"
                | "HTTP_PROXY_AUTHORIZATION"
                | "REMOTE_USER"
                | "AUTH_TYPE"
                | "SCRIPT_FILENAME"
                | "GATEWAY_INTERFACE"
                | "PATH"
                | "HTTPS"
        )
    });
    vars
}

fn prepare<'r>(req: &Request<'r>, dir: &DirConfig, script: &HookScript) -> Option<Prepared<'r>> {
    let mut hook = Prepared::new(req, dir, script, environ(req))?;
    hook.environ.push("mod_wsgi.process_group", b"");
    let own = hook.application_group.clone();
    hook.environ
        .push("mod_wsgi.application_group", own.as_bytes());
    hook.auth_environ = true;
    Some(hook)
}

fn user_script<'d>(req: &Request<'_>, dir: &'d DirConfig) -> Option<&'d HookScript> {
    let s = dir.auth_user_script.as_ref();
    if s.is_none() {
        req.log(
            Level::Error,
            &format!(
                "rwsgi (pid={}): Location of WSGI user authentication script not provided.",
                pid()
            ),
        );
    }
    s
}

fn no_provider(req: &Request<'_>, script: &str, what: &str) {
    req.log(
        Level::Error,
        &format!(
            "rwsgi (pid={}): Target WSGI user authentication script '{script}' does not provide '{what}' auth provider.",
            pid()
        ),
    );
}

fn check_password(req: &Request<'_>, user: &str, password: &str) -> Authn {
    let dir: &DirConfig = req.dir_config();
    let Some(script) = user_script(req, dir) else {
        return Authn::GeneralError;
    };
    let Some(hook) = prepare(req, dir, script) else {
        return Authn::GeneralError;
    };
    match py::check_password(&hook.call(), logger(req), user, password) {
        Ok(py::Authn::Granted(name)) => {
            if let Some(n) = name {
                req.set_user(&n);
            }
            Authn::Granted
        }
        Ok(py::Authn::Denied) => Authn::Denied,
        Ok(py::Authn::UserNotFound) => Authn::UserNotFound,
        Ok(py::Authn::Hash(_)) => Authn::GeneralError,
        Err(HookError::NoFunction) => {
            no_provider(req, &script.path, "Basic");
            Authn::GeneralError
        }
        Err(_) => Authn::GeneralError,
    }
}

fn get_realm_hash(req: &Request<'_>, user: &str, realm: &str) -> Result<Vec<u8>, Authn> {
    let dir: &DirConfig = req.dir_config();
    let script = user_script(req, dir).ok_or(Authn::GeneralError)?;
    let hook = prepare(req, dir, script).ok_or(Authn::GeneralError)?;
    match py::get_realm_hash(&hook.call(), logger(req), user, realm) {
        Ok(py::Authn::Hash(h)) => Ok(h),
        Ok(py::Authn::UserNotFound) => Err(Authn::UserNotFound),
        Ok(_) => Err(Authn::GeneralError),
        Err(HookError::NoFunction) => {
            no_provider(req, &script.path, "Digest");
            Err(Authn::GeneralError)
        }
        Err(_) => Err(Authn::GeneralError),
    }
}

/// `Require wsgi-group G1 G2 ...`: granted when `groups_for_user` names one of them. Every
/// failure is a denial (401), never a 500, as with mod_wsgi.
fn check_group(req: &Request<'_>, require_line: &str) -> Authz {
    let Some(user) = req.user().map(|u| u.into_owned()) else {
        return Authz::DeniedNoUser;
    };
    let dir: &DirConfig = req.dir_config();
    let Some(script) = dir.auth_group_script.as_ref() else {
        req.log(
            Level::Error,
            &format!(
                "rwsgi (pid={}): Location of WSGI group authorization script not provided.",
                pid()
            ),
        );
        return Authz::Denied;
    };
    let Some(hook) = prepare(req, dir, script) else {
        return Authz::Denied;
    };
    let groups = match py::groups_for_user(&hook.call(), logger(req), &user) {
        Ok(g) => g,
        Err(HookError::NoFunction) => {
            req.log(
                Level::Error,
                &format!(
                    "rwsgi (pid={}): Target WSGI group authentication script '{}' does not provide group provider.",
                    pid(),
                    script.path
                ),
            );
            return Authz::Denied;
        }
        Err(_) => return Authz::Denied,
    };
    let wanted = words(require_line);
    if wanted
        .iter()
        .any(|w| groups.iter().any(|g| g == w.as_bytes()))
    {
        return Authz::Granted;
    }
    let why = if groups.is_empty() {
        "User is not a member of any groups."
    } else {
        "User is not a member of designated groups."
    };
    req.log(
        Level::Error,
        &format!(
            "rwsgi (pid={}): Authorization of user '{user}' to access '{}' failed. {why}",
            pid(),
            req.uri()
        ),
    );
    Authz::Denied
}

/// `allow_access(environ, host)`: True lets the request through this check, None has no
/// opinion, False, anything else or a failure answers 403.
fn access(req: &Request<'_>) -> Access {
    let dir: &DirConfig = req.dir_config();
    let Some(script) = dir.access_script.as_ref() else {
        return Access::NoOpinion;
    };
    let host = req.client_ip().into_owned();
    let answer =
        prepare(req, dir, script).map(|hook| py::allow_access(&hook.call(), logger(req), &host));
    match answer {
        Some(Ok(py::Access::Allow)) => return Access::Allow,
        Some(Ok(py::Access::NoOpinion)) => return Access::NoOpinion,
        Some(Err(HookError::NoFunction)) => req.log(
            Level::Error,
            &format!(
                "rwsgi (pid={}): Target WSGI host access script '{}' does not provide host validator.",
                pid(),
                script.path
            ),
        ),
        _ => {}
    }
    req.log(
        Level::Error,
        &format!(
            "rwsgi (pid={}): Client denied by server configuration: '{}'.",
            pid(),
            req.filename()
        ),
    );
    Access::Forbidden
}
