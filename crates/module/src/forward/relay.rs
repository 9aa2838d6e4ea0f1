//! Relaying one response: each frame from the daemon goes through the pure [`state::step`],
//! and the step is carried out here, against the socket, the rings and Apache's output
//! filters. The Apache side trusts nothing a daemon sends: it re-frames the response itself
//! (hop-by-hop headers dropped, one validated Content-Length, never more body than declared).

use super::body::{body_reply, file_slice, response_slice};
use super::connection::Conn;
use super::state::{self, Budget, Phase, Short, Step};
use rwsgi_apache::hooks::Handled;
use rwsgi_apache::{Output, Request};
use rwsgi_core::Level;
use rwsgi_core::http::Status;
use rwsgi_core::ipc::channel::ChannelError;
use rwsgi_core::ipc::frame::{Frame, Kind};
use rwsgi_core::ipc::{head, msg};
use rwsgi_core::label::DaemonName;
use rwsgi_core::spec::GroupSpec;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// How a relay ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Relayed {
    /// The daemon let go of the request unstarted: send it again (elsewhere).
    Retry,
    /// What the handler answers, and whether the connection is fit for the next request.
    Done { handled: Handled, keep: bool },
}

/// Whether the relay goes on after a step.
enum Flow {
    Continue,
    Finish(Relayed),
}

struct Relay<'a, 'r> {
    req: &'a Request<'r>,
    spec: &'a GroupSpec,
    conn: &'a mut Conn,
    out: Output<'r>,
    phase: Phase,
    budget: Budget,
    /// The last file the daemon sent, held back until the next frame: if that is the end of
    /// the response, both go down the filters together (the byte-range filter needs to see
    /// the whole body at once). At most one is held.
    held_file: Option<(OwnedFd, i64, i64)>,
}

/// Relays frames until the response ends.
pub fn relay(req: &Request<'_>, conn: &mut Conn, spec: &GroupSpec) -> Relayed {
    let _client_timeout = spec
        .options
        .response_socket_timeout
        .map(|t| ClientTimeout::set(req, t));
    let timeout = spec.socket_timeout();
    let mut r = Relay {
        out: Output::new(req),
        req,
        spec,
        conn,
        phase: Phase::START,
        budget: Budget::new(None, true),
        held_file: None,
    };
    loop {
        let (frame, fds) = match r.conn.ch.recv(Some(timeout)) {
            Ok(f) => f,
            Err(e) => return r.lost(e, timeout),
        };
        let (step, next) = state::step(r.phase, &frame.header, r.conn.id);
        r.phase = next;
        if !matches!(step, Step::End | Step::Log) {
            if let Flow::Finish(done) = r.release_held_file() {
                return done;
            }
        }
        let flow = match step {
            Step::Retry => Flow::Finish(Relayed::Retry),
            Step::FeedBody => r.feed_body(&frame),
            Step::Credit => r.credit(&frame),
            Step::Head { whole: false } => r.head(&frame.payload),
            Step::Head { whole: true } => r.whole(&frame.payload),
            Step::Body { in_ring: true, .. } => r.ring_body(&frame.payload),
            Step::Body { last, .. } => r.inline_body(&frame.payload, last),
            Step::Flush => {
                let ok = r.out.write(&[], true, false).is_ok();
                r.written(ok)
            }
            Step::File => r.file(&frame.payload, fds),
            Step::End => r.end(),
            Step::Abort => r.abort(&frame.payload),
            Step::Log => r.log(&frame.payload),
            Step::Violation(what) => {
                let kind = frame.header.kind;
                r.error(&format!(
                    "rwsgi: {} sent {what} ({kind:?}) for {}",
                    DaemonName(spec.name()),
                    r.req.unparsed_uri()
                ));
                r.fail(Status::BAD_GATEWAY, false)
            }
        };
        if let Flow::Finish(done) = flow {
            return done;
        }
    }
}

impl Relay<'_, '_> {
    fn error(&self, msg: &str) {
        self.req.log(Level::Error, msg);
    }

    /// The request fails: with `status` if nothing went out yet, else as a visibly broken
    /// response.
    fn fail(&mut self, status: Status, keep: bool) -> Flow {
        let handled = if self.phase.body_started() {
            self.out.abort();
            Handled::Done
        } else {
            Handled::Status(status)
        };
        Flow::Finish(Relayed::Done { handled, keep })
    }

    fn done(keep: bool) -> Flow {
        Flow::Finish(Relayed::Done {
            handled: Handled::Done,
            keep,
        })
    }

    /// A write to the client failed (it went away, or a filter failed on the body, e.g.
    /// mod_deflate could not read a file the daemon truncated): the response is marked broken
    /// so that the client cannot take it for complete, and the connection, mid-response, is
    /// dropped.
    fn written(&mut self, ok: bool) -> Flow {
        if ok {
            return Flow::Continue;
        }
        self.out.abort();
        Self::done(false)
    }

    /// The connection failed while waiting for the next frame.
    fn lost(&mut self, e: ChannelError, timeout: Duration) -> Relayed {
        let (status, msg) = match e {
            ChannelError::Closed => (
                Status::BAD_GATEWAY,
                died(self.req, self.spec, self.conn.pid),
            ),
            ChannelError::Timeout => (
                Status::GATEWAY_TIMEOUT,
                format!(
                    "Timeout when reading response from {} ({}s) for {}",
                    DaemonName(self.spec.name()),
                    timeout.as_secs_f64(),
                    self.req.unparsed_uri()
                ),
            ),
            e => (
                Status::BAD_GATEWAY,
                format!("bad response from {}: {e}", DaemonName(self.spec.name())),
            ),
        };
        self.error(&format!("rwsgi: {msg}"));
        match self.fail(status, false) {
            Flow::Finish(done) => done,
            Flow::Continue => unreachable!("fail always finishes"),
        }
    }

    fn feed_body(&mut self, frame: &Frame) -> Flow {
        let want = msg::parse_u32(&frame.payload).unwrap_or(0) as usize;
        let ring = self.conn.rings.as_mut().map(|(o, _)| o);
        let reply = body_reply(self.req, self.conn.id, want, ring);
        if self.conn.ch.send(&reply).is_err() {
            return self.fail(Status::BAD_GATEWAY, false);
        }
        Flow::Continue
    }

    fn credit(&mut self, frame: &Frame) -> Flow {
        let credited = match (msg::parse_u32(&frame.payload), self.conn.rings.as_mut()) {
            (Ok(n), Some((o, _))) => o.credit(n as usize).is_ok(),
            _ => false,
        };
        if credited {
            return Flow::Continue;
        }
        self.error(&format!(
            "rwsgi: {} returned credit it was not given",
            DaemonName(self.spec.name())
        ));
        self.fail(Status::BAD_GATEWAY, false)
    }

    /// The daemon sent something unusable as `what`: logged, and a 502.
    fn invalid(&mut self, what: &str, e: impl std::fmt::Display) -> Flow {
        self.error(&format!(
            "rwsgi: invalid {what} from {} for {}: {e}",
            DaemonName(self.spec.name()),
            self.req.unparsed_uri()
        ));
        self.fail(Status::BAD_GATEWAY, false)
    }

    /// Sets the response head, re-framed by this side: hop-by-hop headers dropped
    /// (`Connection: close` honoured), one validated Content-Length.
    fn head(&mut self, payload: &[u8]) -> Flow {
        let decoded = head::decode(payload).and_then(|mut h| head::framing(&mut h).map(|f| (h, f)));
        let (h, framing) = match decoded {
            Ok(v) => v,
            Err(e) => return self.invalid("response head", e),
        };
        let limit = self.spec.options.header_buffer_size;
        if let Some(len) = too_long_header(&h, limit) {
            self.error(&format!(
                "rwsgi: Response header line too long from {} ({len} bytes; header-buffer-size={}): {}",
                DaemonName(self.spec.name()),
                limit.unwrap_or(0),
                self.req.unparsed_uri()
            ));
            return self.fail(Status::INTERNAL_SERVER_ERROR, false);
        }
        // `Connection: close` is how the daemon passes on an application's wish to close.
        let unexpected = framing
            .dropped
            .iter()
            .any(|d| !(framing.close && d.eq_ignore_ascii_case("connection")));
        if unexpected {
            self.req.log(
                Level::Warn,
                &format!(
                    "rwsgi: {} sent hop-by-hop header(s) {} for {}; dropped",
                    DaemonName(self.spec.name()),
                    framing.dropped.join(", "),
                    self.req.unparsed_uri()
                ),
            );
        }
        self.req.set_status(h.status, &h.status_line);
        for (k, v) in &h.headers {
            self.req.add_header(&String::from_utf8_lossy(k), v);
        }
        if let Some(n) = framing.content_length {
            let n = rwsgi_core::decimal::Decimal::new(n.into());
            self.req.add_header("Content-Length", n.as_bytes());
        }
        if framing.close {
            self.req.close_connection();
        }
        self.budget = Budget::new(
            framing.content_length,
            self.req.header_only() || matches!(h.status, 100..=199 | 204 | 304),
        );
        Flow::Continue
    }

    /// A whole response in one frame: the head, then the body as its final bytes.
    fn whole(&mut self, payload: &[u8]) -> Flow {
        let (head, body) = match head::split_body(payload) {
            Ok(v) => v,
            Err(e) => return self.invalid("response", e),
        };
        if let Flow::Finish(done) = self.head(head) {
            return Flow::Finish(done);
        }
        // As if a final ResponseBody frame had followed the head.
        self.phase = Phase::Body { started: true };
        self.inline_body(body, true)
    }

    /// A body slice in the response ring: written from the ring, then credited back (the
    /// daemon fills the ring's other slices meanwhile; Apache's filters have copied whatever
    /// they keep by the time the write returns).
    fn ring_body(&mut self, payload: &[u8]) -> Flow {
        let Relay {
            conn, out, budget, ..
        } = self;
        let sent = response_slice(payload, conn.rings.as_mut().map(|(_, i)| i)).map(|src| {
            let n = src.len();
            let admitted = budget.admit(n as u64);
            let ok = out
                .write_shared(&src.prefix(admitted.len as usize), false, false)
                .is_ok();
            (n, ok)
        });
        let sent = sent.and_then(|(n, ok)| {
            conn.ch
                .send_parts(Kind::Credit, conn.id, 0, &[&msg::credit_payload(n as u32)])
                .map(|()| ok)
                .map_err(|e| e.to_string())
        });
        match sent {
            Ok(_) if self.budget.over() => self.overlong(),
            Ok(ok) => self.written(ok),
            Err(e) => {
                self.error(&format!(
                    "rwsgi: bad response body slice from {}: {e}",
                    DaemonName(self.spec.name())
                ));
                self.fail(Status::BAD_GATEWAY, false)
            }
        }
    }

    fn inline_body(&mut self, payload: &[u8], last: bool) -> Flow {
        let admitted = self.budget.admit(payload.len() as u64);
        let p = &payload[..admitted.len as usize];
        if admitted.over {
            let _ = self.out.write(p, false, false);
            return self.overlong();
        }
        if !last {
            let ok = self.out.write(p, false, false).is_ok();
            return self.written(ok);
        }
        if let Err(short) = self.budget.complete() {
            let _ = self.out.write(p, false, false);
            return self.short_body(short);
        }
        // The final bytes and the end of the stream in one pass down the filters. The daemon
        // is done either way: its connection stays usable.
        let _ = self.out.write(p, false, true);
        Self::done(true)
    }

    fn file(&mut self, payload: &[u8], fds: Vec<OwnedFd>) -> Flow {
        match file_slice(payload, fds) {
            Ok((fd, off, len)) => {
                let admitted = self.budget.admit(len as u64);
                let len = admitted.len as i64;
                if admitted.over {
                    let ok = len == 0 || self.out.send_file(fd.as_raw_fd(), off, len).is_ok();
                    return if ok {
                        self.overlong()
                    } else {
                        self.written(false)
                    };
                }
                if len > 0 {
                    self.held_file = Some((fd, off, len));
                }
                Flow::Continue
            }
            Err(e) => {
                self.error(&format!(
                    "rwsgi: {} sent an unusable file: {e}",
                    DaemonName(self.spec.name())
                ));
                self.fail(Status::BAD_GATEWAY, false)
            }
        }
    }

    /// Sends the held file (if any) on its own, before what the daemon sent next.
    fn release_held_file(&mut self) -> Flow {
        match self.held_file.take() {
            Some((fd, off, len)) => {
                let ok = self.out.send_file(fd.as_raw_fd(), off, len).is_ok();
                self.written(ok)
            }
            None => Flow::Continue,
        }
    }

    fn end(&mut self) -> Flow {
        if let Err(short) = self.budget.complete() {
            if let Flow::Finish(done) = self.release_held_file() {
                return Flow::Finish(done);
            }
            return self.short_body(short);
        }
        let _ = match self.held_file.take() {
            Some((fd, off, len)) => self.out.end_with_file(fd.as_raw_fd(), off, len),
            None => self.out.finish(),
        };
        Self::done(true)
    }

    fn abort(&mut self, payload: &[u8]) -> Flow {
        // Only an error status (parse_abort checks): a daemon does not get to make Apache
        // answer 200 with nothing, or a code it does not know.
        let (status, reason) = match msg::parse_abort(payload) {
            Ok((s, r)) => (Status::new(s).unwrap_or(Status::BAD_GATEWAY), r),
            Err(_) => (Status::BAD_GATEWAY, "malformed abort".into()),
        };
        self.req.log(
            Level::Info,
            &format!(
                "rwsgi: {} ended the request: {reason}",
                DaemonName(self.spec.name())
            ),
        );
        self.fail(status, true)
    }

    fn log(&mut self, payload: &[u8]) -> Flow {
        if let Ok((level, text)) = msg::parse_log(payload) {
            self.req.log(level, &text);
        }
        Flow::Continue
    }

    /// The daemon sent more body than its Content-Length: what was declared went out (the
    /// client has a complete response); the rest is dropped with the daemon connection.
    fn overlong(&mut self) -> Flow {
        self.error(&format!(
            "rwsgi: {} sent more than the Content-Length it declared for {}; the excess was dropped",
            DaemonName(self.spec.name()),
            self.req.unparsed_uri()
        ));
        let _ = self.out.finish();
        Self::done(false)
    }

    /// The daemon ended a body short of its Content-Length: the client must see a broken
    /// response (connection closed), not wait for bytes that never come.
    fn short_body(&mut self, short: Short) -> Flow {
        self.error(&format!(
            "rwsgi: {} ended the response for {} after {} of the {} bytes its Content-Length declared",
            DaemonName(self.spec.name()),
            self.req.unparsed_uri(),
            short.sent,
            short.declared
        ));
        self.out.abort();
        Self::done(true)
    }
}

/// The daemon process at the other end of the connection is gone mid-request: what its
/// supervisor found out about its death (reaped within milliseconds), for the log line and
/// the client's 502 page (which gets the short form only).
fn died(req: &Request<'_>, spec: &GroupSpec, pid: u32) -> String {
    let cause = rwsgi_daemon::groups::deaths()
        .and_then(|t| t.wait_for(pid as i32, Duration::from_millis(500)));
    let serving = format!("{} {}", req.method(), req.unparsed_uri());
    match cause {
        Some(c) => {
            req.set_note(
                "error-notes",
                &format!(
                    "The WSGI daemon process serving this request {}.",
                    c.brief()
                ),
            );
            format!(
                "daemon process {pid} of group '{}' {c}, while serving {serving}",
                spec.name()
            )
        }
        None => format!(
            "daemon process {pid} of group '{}' closed the connection while serving {serving} (it crashed, was killed or restarted; its supervisor's log line says why)",
            spec.name()
        ),
    }
}

/// The length of the first header line (`Name: value`) over header-buffer-size, if any.
fn too_long_header(h: &head::ResponseHead, limit: Option<u64>) -> Option<usize> {
    let limit = limit? as usize;
    h.headers
        .iter()
        .map(|(k, v)| k.len() + 2 + v.len())
        .find(|&n| n > limit)
}

/// response-socket-timeout: the client socket's timeout while this request relays its
/// response; the previous one comes back on drop.
struct ClientTimeout<'a, 'r> {
    req: &'a Request<'r>,
    prev: Option<Duration>,
}

impl<'a, 'r> ClientTimeout<'a, 'r> {
    fn set(req: &'a Request<'r>, t: Duration) -> ClientTimeout<'a, 'r> {
        let prev = req.set_client_timeout(t);
        ClientTimeout { req, prev }
    }
}

impl Drop for ClientTimeout<'_, '_> {
    fn drop(&mut self) {
        if let Some(p) = self.prev {
            self.req.set_client_timeout(p);
        }
    }
}
