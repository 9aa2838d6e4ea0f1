//! One request/response exchange as Python sees it: `start_response`, `write`, `wsgi.input`
//! and `wsgi.errors` all act on an [`Exchange`]. It owns the transport (embedded Apache request
//! or daemon connection) for the duration of the request; Python objects that outlive the
//! request find it closed and raise instead of touching freed memory.

use super::ffi::interp::without_gil;
use super::ffi::object::{Obj, Pending, PyResult, exc, pending_from_exc_info, raise};
use super::transport::{Logger, ResponseHead, Transport, TransportError};
use super::validate;

mod input;
use input::Body;
pub use input::read;
use rwsgi_core::Level;
use std::sync::{Arc, Mutex, RwLock};

/// One request as the Python objects of that request see it. They may keep it (an `Arc` in
/// their capsule) long after the request: the transport and the logger, which borrow the
/// request, are then gone and every use raises.
pub struct Exchange {
    state: Mutex<State>,
    /// Separate from `state`: another thread may log while the request thread is blocked in
    /// a write to the client.
    log: RwLock<Option<Logger<'static>>>,
}

/// A kept `wsgi.errors` written to after its request ended (mod_wsgi's wording).
#[derive(Debug)]
pub struct LogExpired;

impl std::fmt::Display for LogExpired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("log object has expired")
    }
}

/// Runs `f` with an exchange over `transport` and `log`, which borrow the request (`'r`).
/// Python objects may keep the exchange past this call; both borrowed parts are taken back
/// out before it returns, also when `f` panics. The transport is handed back (for
/// [`Transport::complete`] once the caller has released the GIL).
/// `body_length`: the request body's announced length (Content-Length), a size hint only (an
/// input filter may change the body).
pub fn scoped<'r, T>(
    transport: Box<dyn Transport + 'r>,
    log: Logger<'r>,
    body_length: Option<u64>,
    f: impl FnOnce(&Arc<Exchange>) -> T,
) -> (T, Option<Box<dyn Transport + 'r>>) {
    // SAFETY: only the lifetime changes (same fat-pointer layout). The 'static values never
    // leave the exchange, every use of them happens under its locks, and `Close` below takes
    // them out under those same locks (waiting for any use in progress on another thread)
    // before this function returns or unwinds: nothing can reach them after 'r.
    let (transport, log) = unsafe {
        (
            std::mem::transmute::<Box<dyn Transport + 'r>, Box<dyn Transport + 'static>>(transport),
            std::mem::transmute::<Logger<'r>, Logger<'static>>(log),
        )
    };
    let ex = Arc::new(Exchange::new(transport, log, body_length));
    struct Close<'a>(&'a Exchange);
    impl Drop for Close<'_> {
        fn drop(&mut self) {
            drop(self.0.close());
        }
    }
    let close = Close(&ex);
    let r = f(&ex);
    std::mem::forget(close);
    let transport = ex.close();
    // SAFETY: back to the lifetime it came with (shorter than 'static); the exchange no
    // longer holds it.
    let transport = transport.map(|t| unsafe {
        std::mem::transmute::<Box<dyn Transport + 'static>, Box<dyn Transport + 'r>>(t)
    });
    (r, transport)
}

struct State {
    transport: Option<Box<dyn Transport>>,
    head: Option<ResponseHead>,
    head_sent: bool,
    body_bytes: u64,
    body: Body,
    client_gone: bool,
    /// The response is complete (a final write or finish() went out).
    finished: bool,
    /// Seconds spent reading the body and writing the response; writes made.
    input_time: f64,
    output_time: f64,
    output_writes: u64,
}

/// What the request read and wrote, for the `request_finished` event: (input reads, input
/// bytes, input seconds, output writes, output bytes, output seconds).
pub type IoStats = (u64, u64, f64, u64, u64, f64);

/// What mod_ssl said.
pub enum SslAnswer {
    Https(bool),
    Var(Option<String>),
}

/// What the response loop needs to know when the application returns.
pub struct Progress {
    pub started: bool,
    pub head_sent: bool,
    pub client_gone: bool,
}

impl Exchange {
    fn new(
        transport: Box<dyn Transport>,
        log: Logger<'static>,
        body_length: Option<u64>,
    ) -> Exchange {
        Exchange {
            state: Mutex::new(State {
                transport: Some(transport),
                head: None,
                head_sent: false,
                body_bytes: 0,
                body: Body {
                    expected: body_length,
                    ..Body::default()
                },
                client_gone: false,
                finished: false,
                input_time: 0.0,
                output_time: 0.0,
                output_writes: 0,
            }),
            log: RwLock::new(Some(log)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn log(&self, level: Level, msg: &str) -> Result<(), LogExpired> {
        match &*self.log.read().unwrap_or_else(|e| e.into_inner()) {
            Some(log) => {
                log(level, msg);
                Ok(())
            }
            None => Err(LogExpired),
        }
    }

    /// Ends the request: Python objects that still refer to the exchange will see it closed.
    fn close(&self) -> Option<Box<dyn Transport>> {
        let transport = {
            let mut s = self.lock();
            // A kept wsgi.input raises from now on, also for bytes it had buffered.
            s.body.expire();
            s.transport.take()
        };
        drop(self.log.write().unwrap_or_else(|e| e.into_inner()).take());
        transport
    }

    /// `mod_ssl.is_https()` / `mod_ssl.var_lookup(name)` (`name` None: is_https).
    pub fn ssl(&self, name: Option<&str>) -> Result<SslAnswer, TransportError> {
        let s = self.lock();
        let t = s.transport.as_ref().ok_or(TransportError::Closed)?;
        Ok(match (t.ssl(), name) {
            (None, None) => SslAnswer::Https(false),
            (None, Some(_)) => SslAnswer::Var(None),
            (Some(ssl), None) => SslAnswer::Https(ssl.is_https()),
            (Some(ssl), Some(n)) => SslAnswer::Var(ssl.var(n)),
        })
    }

    pub fn io_stats(&self) -> IoStats {
        let s = self.lock();
        (
            s.body.reads,
            s.body.read_bytes,
            s.input_time,
            s.output_writes,
            s.body_bytes,
            s.output_time,
        )
    }

    /// The hop-by-hop headers the application's response head had (dropped from it).
    pub fn dropped_headers(&self) -> Vec<String> {
        self.lock()
            .head
            .as_ref()
            .map(|h| h.dropped.clone())
            .unwrap_or_default()
    }

    pub fn progress(&self) -> Progress {
        let s = self.lock();
        Progress {
            started: s.head.is_some(),
            head_sent: s.head_sent,
            client_gone: s.client_gone,
        }
    }

    /// The validated head (for the file_wrapper fast path, which may add Content-Length).
    pub fn with_head<T>(&self, f: impl FnOnce(Option<&mut ResponseHead>) -> T) -> T {
        f(self.lock().head.as_mut())
    }

    /// Sends body bytes (and the head first, if not sent yet). Called attached; blocks with
    /// the GIL released. `last` lets the transport finish the response in the same write.
    pub fn send(&self, data: &[u8], last: bool) -> Result<(), TransportError> {
        let mut s = self.lock();
        // Releasing the GIL costs a hand-over to another thread; skip it when the transport
        // says this write cannot block (a small final write is only buffered).
        if s.transport
            .as_ref()
            .is_some_and(|t| t.never_blocks(data.len(), last))
        {
            return s.send(data, last);
        }
        drop(s);
        without_gil(|| self.lock().send(data, last))
    }

    /// Sends `len` bytes of `fd`. `last`: the caller sends nothing after it; the response is
    /// then ended with it when the file completes the Content-Length (a short one is left for
    /// `finish` to report).
    pub fn send_file(
        &self,
        fd: i32,
        offset: u64,
        len: u64,
        last: bool,
    ) -> Result<(), TransportError> {
        let go = |s: &mut State| {
            s.begin()?;
            let last = last && s.completed_by(len);
            let t = s.transport.as_mut().ok_or(TransportError::Closed)?;
            let r = t.send_file(fd, offset, len, last);
            if r.is_ok() {
                s.body_bytes += len;
                s.finished |= last;
            }
            r
        };
        {
            // A transport that holds the final file back does no I/O now: keep the GIL.
            let mut s = self.lock();
            if last
                && s.completed_by(len)
                && s.transport.as_ref().is_some_and(|t| t.holds_final_file())
            {
                return go(&mut s);
            }
        }
        without_gil(|| go(&mut self.lock()))
    }

    /// Ends the response. `Err(Truncated)` when the body was shorter than the Content-Length
    /// promised: the caller logs why, then [`Exchange::abort`]s (in daemon mode the abort ends
    /// the request for the Apache side, which reads nothing of it after that).
    pub fn finish(&self) -> Result<(), TransportError> {
        let go = |s: &mut State| {
            s.begin()?;
            let short = match s.head.as_ref().and_then(|h| h.content_length) {
                Some(cl) if s.body_bytes < cl => Some(cl),
                _ => None,
            };
            let header_only = s.transport.as_ref().is_some_and(|t| t.is_head_request());
            s.finished = true;
            let sent = s.body_bytes;
            let t = s.transport.as_mut().ok_or(TransportError::Closed)?;
            match short {
                Some(cl) if !header_only => Err(TransportError::Truncated { promised: cl, sent }),
                _ => t.finish(),
            }
        };
        {
            // When ending the response cannot block, keep the GIL: handing it over and
            // waiting to get it back costs more than the end itself.
            let mut s = self.lock();
            if s.finished {
                return Ok(());
            }
            if s.transport
                .as_ref()
                .is_some_and(|t| t.finish_never_blocks())
            {
                return go(&mut s);
            }
        }
        without_gil(|| go(&mut self.lock()))
    }

    /// Aborts a response whose head was already sent, so the client sees it is incomplete.
    pub fn abort(&self) {
        without_gil(|| {
            if let Some(t) = self.lock().transport.as_mut() {
                t.abort();
            }
        })
    }
}

impl State {
    /// Whether `len` more body bytes complete the Content-Length the application announced.
    fn completed_by(&self, len: u64) -> bool {
        self.head.as_ref().and_then(|h| h.content_length) == Some(self.body_bytes + len)
    }

    /// Hands the head to the transport if that was not done yet (which may hold it until the
    /// body or the end follows).
    fn begin(&mut self) -> Result<(), TransportError> {
        if self.client_gone {
            return Err(TransportError::ClientGone);
        }
        let Some(t) = self.transport.as_mut() else {
            return Err(TransportError::Closed);
        };
        if !self.head_sent {
            let head = self.head.as_ref().ok_or(TransportError::NotStarted)?;
            t.start(head);
            self.head_sent = true;
        }
        Ok(())
    }

    fn send(&mut self, data: &[u8], last: bool) -> Result<(), TransportError> {
        self.begin()?;
        let Some(t) = self.transport.as_mut() else {
            return Err(TransportError::Closed);
        };
        // Never send more than the application's own Content-Length.
        let data = match self.head.as_ref().and_then(|h| h.content_length) {
            Some(cl) => {
                let room = cl.saturating_sub(self.body_bytes) as usize;
                &data[..data.len().min(room)]
            }
            None => data,
        };
        self.body_bytes += data.len() as u64;
        if data.is_empty() && !last {
            return Ok(());
        }
        let t0 = std::time::Instant::now();
        let r = t.write(data, last);
        self.output_time += t0.elapsed().as_secs_f64();
        self.output_writes += u64::from(!data.is_empty());
        self.finished |= last && r.is_ok();
        if matches!(r, Err(TransportError::ClientGone)) {
            self.client_gone = true;
        }
        r
    }
}

/// `start_response(status, headers, exc_info=None)`.
pub fn start_response(
    ex: &Exchange,
    status: &Obj,
    headers: &Obj,
    exc_info: Option<Obj>,
) -> PyResult<()> {
    if ex.lock().transport.is_none() {
        return Err(raise(
            exc::runtime_error(),
            &TransportError::Closed.to_string(),
        ));
    }
    if let Some(info) = &exc_info {
        // PEP 3333: exc_info is what sys.exc_info() returned.
        if !info.is_tuple() {
            return Err(raise(
                exc::runtime_error(),
                "exception info must be a tuple",
            ));
        }
        if info.size()? != 3 {
            return Err(raise(exc::type_error(), "exc_info must be a 3-tuple"));
        }
    }
    let head_sent = ex.lock().head_sent;
    match exc_info {
        // After the head went out, the only thing left is to re-raise.
        Some(info) if head_sent => {
            return Err(pending_from_exc_info(&info)
                .map(Pending::restore)
                .unwrap_or_else(|| raise(exc::type_error(), "exc_info must be a 3-tuple")));
        }
        // A second call without exc_info can no longer change the response (mod_wsgi's
        // wording).
        None if head_sent => {
            return Err(raise(
                exc::runtime_error(),
                "headers have already been sent",
            ));
        }
        _ => {}
    }
    let head = validate::response_head(status, headers)?;
    ex.lock().head = Some(head);
    Ok(())
}

/// The `write(data)` callable returned by start_response.
pub fn write(ex: &Exchange, data: &Obj) -> PyResult<()> {
    let Some(bytes) = data.as_bytes() else {
        return Err(raise(
            exc::type_error(),
            &format!(
                "byte string value expected, value of type {} found",
                data.type_name()
            ),
        ));
    };
    if ex.lock().transport.is_none() {
        return Err(raise(
            exc::runtime_error(),
            &TransportError::Closed.to_string(),
        ));
    }
    if !ex.progress().started {
        return Err(raise(exc::runtime_error(), "response has not been started"));
    }
    match ex.send(bytes, false) {
        Ok(()) => Ok(()),
        Err(TransportError::ClientGone) => {
            Err(raise(exc::os_error(), "rwsgi: client connection closed"))
        }
        Err(e) => Err(raise(exc::runtime_error(), &e.to_string())),
    }
}

/// One line written to `wsgi.errors` (`ex`: its request), or to `sys.stdout` / `sys.stderr`
/// (`None`: the request the calling thread serves, if any, else the server's log).
pub fn log_line(ex: Option<&Exchange>, text: &str) -> Result<(), LogExpired> {
    if let Some(ex) = ex {
        return ex.log(Level::Error, text);
    }
    log_current(Level::Error, text);
    Ok(())
}

/// A line at `level` in the context of the request this thread serves, if any, else in the
/// server's log (mod_wsgi.LogHandler, event callback errors).
pub fn log_current(level: Level, text: &str) {
    let served = super::current::exchange();
    // A thread whose request has just ended may still name it as current: its output then
    // goes to the server's log.
    if served.is_none_or(|ex| ex.log(level, text).is_err()) {
        super::transport::server_log(level, text);
    }
}
