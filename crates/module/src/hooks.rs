//! Calling the Python hook scripts (dispatch, authentication, group, access) from an Apache
//! child: they run in this process's Python, in the interpreter their directive names (the
//! main interpreter by default), with a plain environ built from the request.

use crate::embedded::settings;
use crate::handler::environ::expand;
use rwsgi_apache::Request;
use rwsgi_apache::request::RequestSsl;
use rwsgi_core::config::DirConfig;
use rwsgi_core::config::scripts::HookScript;
use rwsgi_core::{Environ, Level};
use rwsgi_python::Logger;
use rwsgi_python::hooks::HookCall;
use rwsgi_python::transport::SslView;

/// A hook script ready to call: expanded group, file time, the environ it gets.
pub struct Prepared<'r> {
    pub script: String,
    pub mtime: i64,
    pub reload: bool,
    pub application_group: String,
    pub environ: Environ,
    pub request_rec: Option<usize>,
    /// An authentication/authorisation/access hook (their environ differs a little).
    pub auth_environ: bool,
    ssl: Option<Ssl<'r>>,
}

impl<'r> Prepared<'r> {
    /// `None` (logged) when Python cannot run in this process.
    pub fn new(
        req: &Request<'r>,
        dir: &DirConfig,
        script: &HookScript,
        environ: Environ,
    ) -> Option<Prepared<'r>> {
        if let Err(e) = settings::python() {
            req.log(
                Level::Error,
                &format!("rwsgi: cannot run '{}': {e}", script.path),
            );
            return None;
        }
        let group = script.application_group.as_deref().unwrap_or("%{GLOBAL}");
        Some(Prepared {
            script: script.path.clone(),
            mtime: mtime_us(&script.path),
            reload: dir.script_reloading.unwrap_or(true),
            application_group: expand(req, group, "").into_owned(),
            environ,
            request_rec: (dir.pass_apache_request == Some(true)).then(|| req.address()),
            auth_environ: false,
            ssl: req.ssl().map(Ssl),
        })
    }

    pub fn call(&self) -> HookCall<'_> {
        HookCall {
            script: &self.script,
            script_mtime: self.mtime,
            reload: self.reload,
            application_group: &self.application_group,
            environ: &self.environ,
            request_rec: self.request_rec,
            ssl: self.ssl.as_ref().map(|s| s as &dyn SslView),
            auth_environ: self.auth_environ,
        }
    }
}

/// The request's logger for a hook call (it borrows the request).
pub fn logger<'r>(req: &Request<'r>) -> Logger<'r> {
    let log = req.logger();
    Box::new(move |l, m| log.log(l, m))
}

/// Modification time in microseconds (0 when missing: the load then reports the file).
pub fn mtime_us(path: &str) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as i64)
}

/// mod_ssl's view of the request, for the hook scripts' `mod_ssl.is_https` /
/// `mod_ssl.var_lookup`.
pub struct Ssl<'r>(pub RequestSsl<'r>);

impl SslView for Ssl<'_> {
    fn is_https(&self) -> bool {
        self.0.is_https()
    }
    fn var(&self, name: &str) -> Option<String> {
        self.0.var(name)
    }
}
