//! Embedded mode: Python inside the Apache children. `settings` starts Python in each child
//! (child_init) from the configuration the parent computed; `transport` lets the WSGI layer
//! read the request body from and write the response into the Apache request it runs in.

pub mod settings;
pub mod transport;

pub use settings::{child_exit, child_init, configure, version_component};

use rwsgi_apache::Request;
use rwsgi_apache::hooks::Handled;
use rwsgi_core::AppRequest;
use rwsgi_core::http::Status;

/// Runs the application in this process for `req`.
pub fn run(req: Request<'_>, app: AppRequest) -> Handled {
    let (transport, log) = transport::ApacheTransport::new(req);
    let newer = rwsgi_python::NewerScript::Reimport;
    match rwsgi_python::run(app, Box::new(transport), log, newer) {
        rwsgi_python::Outcome::Sent => Handled::Done,
        // ScriptChanged only comes with NewerScript::HandBack (daemon mode)
        rwsgi_python::Outcome::ServerError | rwsgi_python::Outcome::ScriptChanged => {
            Handled::Status(Status::INTERNAL_SERVER_ERROR)
        }
        rwsgi_python::Outcome::TimedOut => Handled::Status(Status::GATEWAY_TIMEOUT),
    }
}
