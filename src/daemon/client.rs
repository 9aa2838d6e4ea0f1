//! The Apache side of daemon mode: forwards one request to its group's daemon processes over a
//! connection this Apache thread keeps open across requests, feeds the request body as the
//! application asks for it, and relays the response into Apache's output filters.

use super::{GroupSpec, request};
use crate::apache::{Level, Output, Request};
use crate::ipc::channel::{Channel, ChannelError};
use crate::ipc::frame::{Frame, Kind, MAX_PAYLOAD};
use crate::ipc::ring::{self, Inbound, Outbound, SHM_THRESHOLD, SharedMem};
use crate::ipc::{head, msg};
use crate::wsgi::AppRequest;
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

const OK: i32 = 0;
const SERVER_ERROR: i32 = 500;
const BAD_GATEWAY: i32 = 502;
const UNAVAILABLE: i32 = 503;
const GATEWAY_TIMEOUT: i32 = 504;
/// relay(): the daemon said Goodbye before starting the request; send it again elsewhere.
const RETRY: i32 = -1;

/// A connection to a daemon process, with the two shared-memory rings this side created for
/// it (None if the memfds could not be made or the daemon declined them: bodies then travel
/// inline).
struct Conn {
    ch: Channel,
    /// Request ring (we write) and response ring (we read).
    rings: Option<(Outbound, Inbound)>,
    /// The daemon process at the other end (as it says: used only to explain its death).
    pid: u32,
}

thread_local! {
    /// This Apache thread's open connection to each group (by socket path).
    static CONNECTIONS: RefCell<HashMap<std::path::PathBuf, Conn>> = RefCell::new(HashMap::new());
    /// Bytes copied out of (or on their way into) a ring, reused across requests.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Serves `req` through the daemon processes of `spec`; returns the handler status.
pub fn forward(req: Request, app: &AppRequest, spec: &GroupSpec, default_timeout: Duration) -> i32 {
    let mut payload = request::encode(app, req.header_only());
    crate::ipc::seal::seal(&spec.secret, &spec.name, &mut payload);
    let timeout = spec.socket_timeout.unwrap_or(default_timeout);
    // A request is sent again only when a daemon process let go of it unstarted (Goodbye, or
    // the connection closed before it was delivered): while a group restarts (graceful restart,
    // logrotate, maximum-requests), for up to connect-timeout, first at once, then backing off.
    let deadline = Instant::now() + spec.connect_timeout.max(Duration::from_secs(1));
    let retry = |attempt: u32| -> bool {
        if Instant::now() >= deadline {
            return false;
        }
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(5 << attempt.min(5)));
        }
        true
    };
    let mut attempt = 0u32;
    loop {
        let cached = CONNECTIONS
            .with(|c| c.borrow_mut().remove(&spec.socket_path))
            .filter(|conn| !conn.ch.is_stale());
        let mut conn = match cached {
            Some(conn) => conn,
            None => match connect(spec) {
                Ok(ch) => ch,
                Err(e) => {
                    req.log(
                        Level::Error,
                        &format!(
                            "rwsgi: Unable to connect to WSGI daemon process '{}' on '{}' within connect-timeout={}s: {e}",
                            spec.name,
                            spec.socket_path.display(),
                            spec.connect_timeout.as_secs_f64()
                        ),
                    );
                    return UNAVAILABLE;
                }
            },
        };
        if let Some((out, inb)) = conn.rings.as_mut() {
            out.reset();
            inb.reset();
        }
        match send_head(&mut conn, &payload) {
            Ok(()) => {}
            // Nothing was delivered (the daemon closed the connection: it is restarting).
            Err(ChannelError::Closed) if retry(attempt) => {
                attempt += 1;
                continue;
            }
            Err(e) => {
                req.log(
                    Level::Error,
                    &format!(
                        "rwsgi: cannot send the request to daemon process '{}': {e}",
                        spec.name
                    ),
                );
                return BAD_GATEWAY;
            }
        }
        let (status, keep) = relay(&req, &mut conn, spec, timeout);
        // The daemon is done with both rings now (it drained them before finishing).
        if let Some((out, inb)) = conn.rings.as_mut() {
            out.release_if_used();
            inb.release_if_used();
        }
        if status == RETRY {
            if retry(attempt) {
                attempt += 1;
                continue;
            }
            req.log(
                Level::Error,
                &format!(
                    "rwsgi: daemon processes of group '{}' kept turning the request away (restarting) for connect-timeout={}s: {}",
                    spec.name,
                    spec.connect_timeout.as_secs_f64(),
                    req.uri()
                ),
            );
            return UNAVAILABLE;
        }
        if keep {
            CONNECTIONS.with(|c| c.borrow_mut().insert(spec.socket_path.clone(), conn));
        }
        return status;
    }
}

/// The request head goes inline when it fits a frame, else through the request ring.
fn send_head(conn: &mut Conn, payload: &[u8]) -> Result<(), ChannelError> {
    if payload.len() <= MAX_PAYLOAD as usize {
        return conn
            .ch
            .send(&Frame::new(Kind::RequestHead, 1, payload.to_vec()));
    }
    let out = match conn.rings.as_mut() {
        Some((out, _)) if payload.len() <= out.capacity() => out,
        other => {
            let max = other.map_or(MAX_PAYLOAD as usize, |(o, _)| o.capacity());
            return Err(ChannelError::Protocol(crate::ipc::IpcError::TooLarge {
                what: "request head",
                len: payload.len() as u64,
                max: max as u64,
            }));
        }
    };
    match out.put_all(payload) {
        Some((off, n)) if n == payload.len() => {
            conn.ch
                .send(&Frame::ring_slice(Kind::RequestHead, 1, off, n))
        }
        _ => Err(ChannelError::Protocol(crate::ipc::IpcError::Invalid(
            "request ring busy",
        ))),
    }
}

/// Makes the two rings of a new connection; None (bodies inline) if memfds are unavailable.
/// The request ring is at least 1 MiB: a request head (up to Apache's LimitRequestFields x
/// LimitRequestFieldSize, ~800 KiB by default) must fit it whole. Untouched pages cost nothing.
fn make_rings(size: usize) -> Option<(SharedMem, SharedMem)> {
    Some((
        SharedMem::create("rwsgi-request", size.max(1 << 20)).ok()?,
        SharedMem::create("rwsgi-response", size).ok()?,
    ))
}

fn connect(spec: &GroupSpec) -> Result<Conn, String> {
    let deadline = Instant::now() + spec.connect_timeout;
    let mut delay = Duration::from_millis(20);
    loop {
        let err = match Channel::connect(&spec.socket_path) {
            // SO_PEERCRED both ways: whoever listens on the group's path must be its
            // supervisor, not a process that managed to put a socket there.
            Ok(ch) if !ch.peer_uid().is_ok_and(|u| u == spec.supervisor_uid) => {
                return Err(format!(
                    "the socket is not served by this server's daemon processes (peer uid {:?}, expected {})",
                    ch.peer_uid().ok(),
                    spec.supervisor_uid
                ));
            }
            Ok(ch) => {
                let rings = make_rings(spec.ring_size);
                let hello = Frame::new(Kind::Hello, 0, spec.secret.clone());
                let sent = match &rings {
                    Some((a, b)) => {
                        ch.send_with_fds(&hello, &[a.fd().as_raw_fd(), b.fd().as_raw_fd()])
                    }
                    None => ch.send(&hello),
                };
                // The socket outlives supervisors (the Apache parent holds it): connecting
                // succeeds while a group restarts, and the answer is what connect-timeout bounds.
                let wait = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(100));
                let answer = sent.and_then(|()| ch.recv(Some(wait)));
                match answer {
                    Ok((f, _)) if f.header.kind == Kind::HelloAck => {
                        // The daemon says whether it mapped the rings, and who it is.
                        let (mapped, pid) = msg::parse_hello_ack(&f.payload)
                            .map_err(|e| format!("bad HELLO_ACK: {e}"))?;
                        let rings = rings
                            .filter(|_| mapped)
                            .map(|(a, b)| (Outbound::new(a), Inbound::new(b)));
                        return Ok(Conn { ch, rings, pid });
                    }
                    // A process that is stopping accepted us and let go: try the next one.
                    Ok((f, _)) if f.header.kind == Kind::Goodbye => {
                        "the daemon process is restarting".to_string()
                    }
                    Err(ChannelError::Closed) => {
                        "the daemon process closed the connection".to_string()
                    }
                    Ok((f, _)) => {
                        return Err(format!("unexpected {:?} answer to HELLO", f.header.kind));
                    }
                    Err(e) => return Err(format!("no answer to HELLO: {e}")),
                }
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() + delay >= deadline {
            return Err(err);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

/// Relays frames until the response ends. Returns the handler status and whether the
/// connection is still usable.
fn relay(req: &Request, conn: &mut Conn, spec: &GroupSpec, timeout: Duration) -> (i32, bool) {
    let Conn { ch, rings, pid } = conn;
    let _client_timeout = spec
        .response_socket_timeout
        .map(|t| ClientTimeout::set(req, t));
    let mut out = Output::new(req);
    let mut head_set = false;
    let mut budget = Budget::new(None, true);
    let mut body_started = false;
    let mut body_requested = false;
    let fail = |out: &mut Output, started: bool, status: i32, keep: bool| -> (i32, bool) {
        if started {
            out.abort();
            (OK, keep)
        } else {
            (status, keep)
        }
    };
    loop {
        let (frame, fds) = match ch.recv(Some(timeout)) {
            Ok(f) => f,
            Err(ChannelError::Closed) => {
                let why = died(req, spec, *pid);
                req.log(Level::Error, &format!("rwsgi: {why}"));
                return fail(&mut out, body_started, BAD_GATEWAY, false);
            }
            Err(ChannelError::Timeout) => {
                req.log(
                    Level::Error,
                    &format!("rwsgi: Timeout when reading response from daemon process '{}' ({}s) for {}", spec.name, timeout.as_secs_f64(), req.uri()),
                );
                return fail(&mut out, body_started, GATEWAY_TIMEOUT, false);
            }
            Err(e) => {
                req.log(
                    Level::Error,
                    &format!(
                        "rwsgi: bad response from daemon process '{}': {e}",
                        spec.name
                    ),
                );
                return fail(&mut out, body_started, BAD_GATEWAY, false);
            }
        };
        let id = frame.header.request_id;
        let p = &frame.payload;
        match frame.header.kind {
            Kind::Goodbye if !head_set && !body_requested => return (RETRY, false),
            Kind::BodyWant => {
                body_requested = true;
                let want = msg::parse_u32(p).unwrap_or(0) as usize;
                let reply = body_reply(req, id, want, rings.as_mut().map(|(o, _)| o));
                if ch.send(&reply).is_err() {
                    return fail(&mut out, body_started, BAD_GATEWAY, false);
                }
            }
            Kind::Credit => {
                let credited = match (msg::parse_u32(p), rings.as_mut()) {
                    (Ok(n), Some((o, _))) => o.credit(n as usize).is_ok(),
                    _ => false,
                };
                if !credited {
                    req.log(
                        Level::Error,
                        &format!(
                            "rwsgi: daemon process '{}' returned credit it was not given",
                            spec.name
                        ),
                    );
                    return fail(&mut out, body_started, BAD_GATEWAY, false);
                }
            }
            Kind::ResponseHead if !head_set => {
                let decoded =
                    head::decode(p).and_then(|mut h| head::framing(&mut h).map(|f| (h, f)));
                let (h, framing) = match decoded {
                    Ok(v) => v,
                    Err(e) => {
                        req.log(
                            Level::Error,
                            &format!(
                                "rwsgi: invalid response head from daemon process '{}' for {}: {e}",
                                spec.name,
                                req.uri()
                            ),
                        );
                        return fail(&mut out, body_started, BAD_GATEWAY, false);
                    }
                };
                if let Some(len) = too_long_header(&h, spec.header_buffer_size) {
                    req.log(
                        Level::Error,
                        &format!(
                            "rwsgi: Response header line too long from daemon process '{}' ({len} bytes; header-buffer-size={}): {}",
                            spec.name,
                            spec.header_buffer_size.unwrap_or(0),
                            req.uri()
                        ),
                    );
                    return fail(&mut out, body_started, SERVER_ERROR, false);
                }
                if !framing.dropped.is_empty() {
                    req.log(
                        Level::Warning,
                        &format!(
                            "rwsgi: daemon process '{}' sent hop-by-hop header(s) {} for {}; dropped",
                            spec.name,
                            framing.dropped.join(", "),
                            req.uri()
                        ),
                    );
                }
                req.set_status(h.status, &h.status_line);
                for (k, v) in &h.headers {
                    req.add_header(&String::from_utf8_lossy(k), v);
                }
                if let Some(n) = framing.content_length {
                    req.add_header("Content-Length", n.to_string().as_bytes());
                }
                if framing.close {
                    req.close_connection();
                }
                budget = Budget::new(
                    framing.content_length,
                    req.header_only() || matches!(h.status, 100..=199 | 204 | 304),
                );
                head_set = true;
            }
            Kind::ResponseBody | Kind::ResponseFlush | Kind::ResponseFile | Kind::ResponseEnd
                if !head_set =>
            {
                req.log(
                    Level::Error,
                    &format!(
                        "rwsgi: daemon process '{}' sent a body before the response head",
                        spec.name
                    ),
                );
                return fail(&mut out, body_started, BAD_GATEWAY, false);
            }
            Kind::ResponseBody if frame.in_ring() => {
                body_started = true;
                let sent = SCRATCH.with_borrow_mut(|buf| {
                    let n = copy_slice(p, rings.as_mut().map(|(_, i)| i), buf)?;
                    // Credit before the (possibly slow) write to the client, so the daemon
                    // can refill the ring meanwhile.
                    ch.send(&msg::credit(id, n as u32))
                        .map_err(|e| e.to_string())?;
                    let admitted = budget.admit(n as u64);
                    let ok = out
                        .write(&buf[..admitted.len as usize], false, false)
                        .is_ok();
                    Ok::<_, String>(ok && !admitted.over)
                });
                match sent {
                    Ok(true) => {}
                    Ok(false) if budget.over() => return overlong(req, spec, &mut out),
                    Ok(false) => return output_failed(&mut out),
                    Err(e) => {
                        req.log(
                            Level::Error,
                            &format!(
                                "rwsgi: bad response body slice from daemon process '{}': {e}",
                                spec.name
                            ),
                        );
                        return fail(&mut out, true, BAD_GATEWAY, false);
                    }
                }
            }
            Kind::ResponseBody => {
                body_started = true;
                let admitted = budget.admit(p.len() as u64);
                let p = &p[..admitted.len as usize];
                if admitted.over {
                    let _ = out.write(p, false, false);
                    return overlong(req, spec, &mut out);
                }
                if frame.ends_response() {
                    if let Err(short) = budget.complete() {
                        let _ = out.write(p, false, false);
                        return short_body(req, spec, &mut out, short);
                    }
                    // The final bytes and the end of the stream in one pass down the filters.
                    // The daemon is done either way: its connection stays usable.
                    let _ = out.write(p, false, true);
                    return (OK, true);
                }
                if out.write(p, false, false).is_err() {
                    return output_failed(&mut out);
                }
            }
            Kind::ResponseFlush => {
                body_started = true;
                if out.write(&[], true, false).is_err() {
                    return output_failed(&mut out);
                }
            }
            Kind::ResponseFile => {
                body_started = true;
                match file_slice(p, fds) {
                    Ok((fd, off, len)) => {
                        let admitted = budget.admit(len as u64);
                        let len = admitted.len as i64;
                        if len > 0 && out.send_file(fd.as_raw_fd(), off, len).is_err() {
                            return output_failed(&mut out);
                        }
                        if admitted.over {
                            return overlong(req, spec, &mut out);
                        }
                    }
                    Err(e) => {
                        req.log(
                            Level::Error,
                            &format!(
                                "rwsgi: daemon process '{}' sent an unusable file: {e}",
                                spec.name
                            ),
                        );
                        return fail(&mut out, true, BAD_GATEWAY, false);
                    }
                }
            }
            Kind::ResponseEnd => {
                if let Err(short) = budget.complete() {
                    return short_body(req, spec, &mut out, short);
                }
                let _ = out.finish();
                return (OK, true);
            }
            Kind::Abort => {
                let (status, reason) = match msg::parse_abort(p) {
                    // Only an error status: a daemon does not get to make Apache answer 200
                    // with nothing, or a code it does not know.
                    Ok((s, r)) if (400..=599).contains(&s) => (s, r),
                    Ok((s, r)) => (502, format!("{r} (unusable status {s})")),
                    Err(_) => (502, "malformed abort".into()),
                };
                req.log(
                    Level::Info,
                    &format!(
                        "rwsgi: daemon process '{}' ended the request: {reason}",
                        spec.name
                    ),
                );
                return fail(&mut out, body_started, status as i32, true);
            }
            Kind::Log => {
                if let Ok((level, text)) = msg::parse_log(p) {
                    let l = match level {
                        0 => Level::Error,
                        1 => Level::Warning,
                        2 => Level::Info,
                        _ => Level::Debug,
                    };
                    req.log(l, &text);
                }
            }
            other => {
                req.log(
                    Level::Error,
                    &format!(
                        "rwsgi: unexpected {other:?} frame from daemon process '{}'",
                        spec.name
                    ),
                );
                return fail(&mut out, body_started, BAD_GATEWAY, false);
            }
        }
    }
}

/// The daemon process at the other end of the connection is gone mid-request: what its
/// supervisor found out about its death (reaped within milliseconds), for the log line and
/// the client's 502 page (which gets the short form only).
fn died(req: &Request, spec: &GroupSpec, pid: u32) -> String {
    let cause =
        super::groups::deaths().and_then(|t| t.wait_for(pid as i32, Duration::from_millis(500)));
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
                spec.name
            )
        }
        None => format!(
            "daemon process {pid} of group '{}' closed the connection while serving {serving} (it crashed, was killed or restarted; its supervisor's log line says why)",
            spec.name
        ),
    }
}

/// The client went away, or a filter failed on the body (e.g. mod_deflate could not read a
/// file the daemon truncated): the response is marked broken so that the client cannot take
/// it for complete, and the daemon connection, mid-response, is dropped.
fn output_failed(out: &mut Output) -> (i32, bool) {
    out.abort();
    (OK, false)
}

/// The daemon sent more body than its Content-Length: what was declared went out (the client
/// has a complete response); the rest is dropped with the daemon connection.
fn overlong(req: &Request, spec: &GroupSpec, out: &mut Output) -> (i32, bool) {
    req.log(
        Level::Error,
        &format!(
            "rwsgi: daemon process '{}' sent more than the Content-Length it declared for {}; the excess was dropped",
            spec.name,
            req.uri()
        ),
    );
    let _ = out.finish();
    (OK, false)
}

/// The daemon ended a body short of its Content-Length: the client must see a broken
/// response (connection closed), not wait for bytes that never come.
fn short_body(req: &Request, spec: &GroupSpec, out: &mut Output, short: Short) -> (i32, bool) {
    req.log(
        Level::Error,
        &format!(
            "rwsgi: daemon process '{}' ended the response for {} after {} of the {} bytes its Content-Length declared",
            spec.name,
            req.uri(),
            short.sent,
            short.declared
        ),
    );
    out.abort();
    (OK, true)
}

/// A body that ended before its declared length.
#[derive(Debug, PartialEq, Eq)]
struct Short {
    sent: u64,
    declared: u64,
}

/// What may still go out of a response body (pure; the relay enforces it).
#[derive(Debug)]
struct Budget {
    declared: Option<u64>,
    sent: u64,
    /// HEAD, 1xx, 204, 304: no body follows whatever Content-Length says.
    bodiless: bool,
    over: bool,
}

/// How much of a chunk may be sent, and whether the chunk went past the declared length.
#[derive(Debug, PartialEq, Eq)]
struct Admitted {
    len: u64,
    over: bool,
}

impl Budget {
    fn new(declared: Option<u64>, bodiless: bool) -> Budget {
        Budget {
            declared,
            sent: 0,
            bodiless,
            over: false,
        }
    }

    fn admit(&mut self, n: u64) -> Admitted {
        let room = self.declared.map_or(u64::MAX, |d| d - self.sent);
        let len = n.min(room);
        self.sent += len;
        self.over |= n > room;
        Admitted {
            len,
            over: n > room,
        }
    }

    fn over(&self) -> bool {
        self.over
    }

    fn complete(&self) -> Result<(), Short> {
        match self.declared {
            Some(d) if self.sent < d && !self.bodiless => Err(Short {
                sent: self.sent,
                declared: d,
            }),
            _ => Ok(()),
        }
    }
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

/// The length of the first header line (`Name: value`) over header-buffer-size, if any.
fn too_long_header(h: &head::ResponseHead, limit: Option<usize>) -> Option<usize> {
    let limit = limit?;
    h.headers
        .iter()
        .map(|(k, v)| k.len() + 2 + v.len())
        .find(|&n| n > limit)
}

/// Reads up to `want` bytes of the request body for the daemon: through the request ring when
/// the daemon asked for a bulk read and the bytes are many, else inline.
fn body_reply(req: &Request, id: u32, want: usize, ring: Option<&mut Outbound>) -> Frame {
    let mut ring = ring.filter(|_| want >= SHM_THRESHOLD);
    let cap = match &ring {
        Some(o) => ring::max_slice(o.capacity()),
        None => MAX_PAYLOAD as usize,
    };
    let want = want.clamp(1, cap);
    SCRATCH.with_borrow_mut(|buf| {
        // Never more than a frame's worth of scratch per Apache thread (it lives as long as
        // the thread): a bulk read is copied into the ring a piece at a time.
        let step = want.min(MAX_PAYLOAD as usize);
        if buf.len() < step {
            buf.resize(step, 0);
        }
        let Some(o) = ring.as_mut() else {
            return match req.read_body(&mut buf[..step]) {
                Ok(0) => Frame::new(Kind::BodyEnd, id, vec![]),
                Ok(n) => Frame::new(Kind::Body, id, buf[..n].to_vec()),
                Err(e) => msg::abort(id, 400, &e.to_string()),
            };
        };
        // The daemon pulls the body, so it has returned every earlier slice before asking
        // again: each slice starts the ring afresh.
        o.reset();
        let mut filled = 0;
        while filled < want {
            let chunk = step.min(want - filled);
            let n = match req.read_body(&mut buf[..chunk]) {
                Ok(n) => n,
                Err(e) if filled == 0 => return msg::abort(id, 400, &e.to_string()),
                // What was read so far goes now; the error comes back on the next read.
                Err(_) => break,
            };
            if n > 0 && o.stage(filled, &buf[..n]).is_err() {
                return msg::abort(id, 500, "request ring unavailable");
            }
            filled += n;
            // Stop at a short read: the client has sent no more yet (or the body ended).
            if n < chunk {
                break;
            }
        }
        if filled == 0 {
            return Frame::new(Kind::BodyEnd, id, vec![]);
        }
        match o.announce(filled) {
            Some((off, n)) => Frame::ring_slice(Kind::Body, id, off, n),
            None => msg::abort(id, 500, "request ring unavailable"),
        }
    })
}

/// Validates a response slice announced by the daemon and copies it out of the ring into
/// `buf`; returns its length.
fn copy_slice(p: &[u8], ring: Option<&mut Inbound>, buf: &mut Vec<u8>) -> Result<usize, String> {
    let ring = ring.ok_or("no response ring on this connection")?;
    let (off, n) = ring::decode_slice(p).map_err(|e| e.to_string())?;
    if n > ring.capacity() {
        return Err(format!("slice of {n} bytes"));
    }
    if buf.len() < n {
        buf.resize(n, 0);
    }
    ring.take(off, &mut buf[..n]).map_err(|e| e.to_string())?;
    Ok(n)
}

/// Checks a file passed for sendfile: exactly one descriptor, a regular file, and the slice
/// clamped to the file's size.
fn file_slice(p: &[u8], mut fds: Vec<OwnedFd>) -> Result<(OwnedFd, i64, i64), String> {
    let (off, len) = msg::parse_file_slice(p).map_err(|e| e.to_string())?;
    if fds.len() != 1 {
        return Err(format!("{} descriptors", fds.len()));
    }
    let fd = fds.pop().ok_or("no descriptor")?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| e.to_string())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err("not a regular file".into());
    }
    let size = st.st_size.max(0) as u64;
    let off = off.min(size);
    let len = len.min(size - off);
    Ok((fd, off as i64, len as i64))
}

#[cfg(test)]
mod tests {
    use super::{Admitted, Budget, Short};

    #[test]
    fn never_more_than_declared() {
        let mut b = Budget::new(Some(10), false);
        assert_eq!(
            b.admit(4),
            Admitted {
                len: 4,
                over: false
            }
        );
        assert_eq!(
            b.complete(),
            Err(Short {
                sent: 4,
                declared: 10
            })
        );
        assert_eq!(
            b.admit(6),
            Admitted {
                len: 6,
                over: false
            }
        );
        assert_eq!(b.complete(), Ok(()));
        assert_eq!(b.admit(1), Admitted { len: 0, over: true });
        assert!(b.over());
        let mut b = Budget::new(Some(3), false);
        assert_eq!(b.admit(5), Admitted { len: 3, over: true });
    }

    #[test]
    fn undeclared_and_bodiless() {
        let mut b = Budget::new(None, false);
        assert_eq!(
            b.admit(1 << 40),
            Admitted {
                len: 1 << 40,
                over: false
            }
        );
        assert_eq!(b.complete(), Ok(()));
        assert_eq!(Budget::new(Some(7), true).complete(), Ok(()));
    }
}
