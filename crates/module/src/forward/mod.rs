//! The Apache side of daemon mode: forwards one request to its group's daemon processes over one
//! of the connections this Apache child keeps open across requests ([`connection`]), feeds the request
//! body as the application asks for it ([`body`]), and relays the response into Apache's
//! output filters ([`relay`], driven by the pure state machine of [`state`]).

mod body;
mod connection;
mod idle;
mod relay;
mod state;

use connection::Conn;
use relay::Relayed;
use rwsgi_apache::Request;
use rwsgi_apache::hooks::Handled;
use rwsgi_core::http::Status;
use rwsgi_core::ipc::channel::ChannelError;
use rwsgi_core::label::DaemonName;
use rwsgi_core::spec::GroupSpec;
use rwsgi_core::{AppRequest, Level, request};
use std::time::{Duration, Instant};

thread_local! {
    /// The request-head buffer, kept by the Apache thread between requests.
    static HEAD_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A request head is ~2 KiB; one that took more (large headers) is not kept.
const HEAD_BUF_KEPT: usize = 16 * 1024;

/// This thread's request-head buffer, emptied, given back when dropped.
struct HeadBuf(Vec<u8>);

impl HeadBuf {
    fn take() -> HeadBuf {
        let mut v = HEAD_BUF.take();
        v.clear();
        HeadBuf(v)
    }
}

impl Drop for HeadBuf {
    fn drop(&mut self) {
        if self.0.capacity() <= HEAD_BUF_KEPT {
            HEAD_BUF.set(std::mem::take(&mut self.0));
        }
    }
}

/// Serves `req` through the daemon processes of `spec`.
pub fn forward(req: Request<'_>, app: &AppRequest, spec: &GroupSpec) -> Handled {
    let mut head = HeadBuf::take();
    let payload = &mut head.0;
    request::encode_into(payload, app, req.header_only());
    rwsgi_core::ipc::seal::seal(&spec.wire.secret, spec.name(), payload);
    let payload = &payload[..];
    // A request is sent again only when a daemon process let go of it unstarted (Goodbye, or
    // the connection closed before it was delivered): while a group restarts (graceful
    // restart, logrotate, maximum-requests), for up to connect-timeout, first at once, then
    // backing off.
    let deadline = Instant::now() + spec.connect_timeout().max(Duration::from_secs(1));
    let mut attempt = 0u32;
    let mut again = || -> bool {
        if Instant::now() >= deadline {
            return false;
        }
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(5 << attempt.min(5)));
        }
        attempt += 1;
        true
    };
    loop {
        let mut conn = match Conn::take_or_connect(spec) {
            Ok(c) => c,
            Err(e) => {
                req.log(
                    Level::Error,
                    &format!(
                        "rwsgi: Unable to connect to WSGI {} on '{}' within connect-timeout={}s: {e}",
                        DaemonName(spec.name()),
                        spec.wire.socket_path.display(),
                        spec.connect_timeout().as_secs_f64()
                    ),
                );
                return Handled::Status(Status::SERVICE_UNAVAILABLE);
            }
        };
        conn.begin_request();
        match conn.send_head(payload) {
            Ok(()) => {}
            // Nothing was delivered (the daemon closed the connection: it is restarting).
            Err(ChannelError::Closed) if again() => continue,
            Err(e) => {
                req.log(
                    Level::Error,
                    &format!(
                        "rwsgi: cannot send the request to {}: {e}",
                        DaemonName(spec.name())
                    ),
                );
                return Handled::Status(Status::BAD_GATEWAY);
            }
        }
        let relayed = relay::relay(&req, &mut conn, spec);
        conn.end_request();
        match relayed {
            Relayed::Retry if again() => continue,
            Relayed::Retry => {
                req.log(
                    Level::Error,
                    &format!(
                        "rwsgi: daemon processes of group '{}' kept turning the request away (restarting) for connect-timeout={}s: {}",
                        spec.name(),
                        spec.connect_timeout().as_secs_f64(),
                        req.uri()
                    ),
                );
                return Handled::Status(Status::SERVICE_UNAVAILABLE);
            }
            Relayed::Done { handled, keep } => {
                if keep {
                    conn.put_back();
                }
                return handled;
            }
        }
    }
}
