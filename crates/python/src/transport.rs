//! The contract between the WSGI layer and whatever carries the request: the embedded Apache
//! request, or a daemon connection. PEP 3333 logic exists once, above this trait.

use rwsgi_core::Level;
use std::sync::OnceLock;

/// Response strings hold one char per byte (validated latin-1): back to bytes. ASCII (nearly
/// every status line and header) is its own latin-1 and is borrowed.
pub fn latin1_bytes(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if s.is_ascii() {
        s.as_bytes().into()
    } else {
        s.chars()
            .map(|c| c as u32 as u8)
            .collect::<Vec<u8>>()
            .into()
    }
}

pub use crate::head::ResponseHead;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("client connection closed")]
    ClientGone,
    /// The request ended; a callable or object the application kept was used afterwards
    /// (mod_wsgi's wording).
    #[error("request object has expired")]
    Closed,
    #[error("response has not been started")]
    NotStarted,
    #[error("response body shorter than its Content-Length ({sent} of {promised} bytes)")]
    Truncated { promised: u64, sent: u64 },
}

/// Logs with a request's context, from any thread, for as long as the request lasts (`'r`).
pub type Logger<'r> = Box<dyn Fn(Level, &str) + Send + Sync + 'r>;

/// mod_ssl's view of the request (`mod_ssl.is_https()`, `mod_ssl.var_lookup(name)` in the
/// environ): only where the request is served, in the Apache child.
pub trait SslView: Send + Sync {
    fn is_https(&self) -> bool;
    fn var(&self, name: &str) -> Option<String>;
}

pub trait Transport: Send {
    /// mod_ssl, when it is loaded and the request is in this process.
    fn ssl(&self) -> Option<&dyn SslView> {
        None
    }
    /// Reads request body bytes into `buf`; `Ok(0)` at the end of the body. Called with the
    /// GIL released.
    fn read_body(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// `read_body` into memory that need not be initialised (a new bytes object the body
    /// goes straight into); returns how many bytes at the front of `buf` it wrote. The
    /// default reads through a bounce buffer; transports that can write directly override it.
    fn read_body_uninit(
        &mut self,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> std::io::Result<usize> {
        let mut bounce = vec![0u8; buf.len().min(256 * 1024)];
        let n = self.read_body(&mut bounce)?;
        copy_into(&mut buf[..n], &bounce[..n]);
        Ok(n)
    }
    /// Body bytes the transport has at hand, read without waiting (called with the GIL
    /// held, so a read whose bytes are already there costs no GIL hand-off): `Ok(None)` when
    /// none are, `Ok(Some(0))` at the end of the body. By default none ever are.
    fn read_body_now(
        &mut self,
        _buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> std::io::Result<Option<usize>> {
        Ok(None)
    }
    /// Sets the response status and headers (before the first body bytes). The transport may
    /// hold them until the body's first bytes or the end follow (to send a small response
    /// whole); Apache sends nothing to the client before either anyway.
    fn start(&mut self, head: &ResponseHead);
    /// Sends body bytes; `last` means nothing follows and the response can be completed now.
    fn write(&mut self, data: &[u8], last: bool) -> Result<(), TransportError>;
    /// True when `write(data, last)` of `len` bytes is known not to block (so the caller may
    /// keep the GIL).
    fn never_blocks(&self, _len: usize, _last: bool) -> bool {
        false
    }
    /// Sends `len` bytes of an open regular file from `offset` (sendfile where possible).
    /// `last`: the file completes the response (the transport may end it in the same step).
    fn send_file(
        &mut self,
        fd: i32,
        offset: u64,
        len: u64,
        last: bool,
    ) -> Result<(), TransportError>;
    /// Completes the response (no-op if `write(.., last = true)` already did).
    fn finish(&mut self) -> Result<(), TransportError>;
    /// Marks a response that failed after its head was sent as broken for the client.
    fn abort(&mut self);
    /// True when `send_file(.., last = true)` only stages the file for [`Transport::complete`]
    /// (no I/O: the caller may keep the GIL).
    fn holds_final_file(&self) -> bool {
        false
    }
    /// True when `finish` cannot block (it only marks the end of the response for
    /// [`Transport::complete`]): the caller may keep the GIL.
    fn finish_never_blocks(&self) -> bool {
        false
    }
    /// What the transport still has to do once the application's part is over, called with
    /// no interpreter attached (a final write it held back, so that the request takes the GIL
    /// once and does its I/O outside it).
    fn complete(&mut self) {}
    /// HEAD request: the body is discarded downstream.
    fn is_head_request(&self) -> bool;
}

static SERVER_LOGGER: OnceLock<fn(Level, &str)> = OnceLock::new();

/// Where messages without a request go (set once by the process embedding Python).
pub fn set_server_logger(f: fn(Level, &str)) {
    let _ = SERVER_LOGGER.set(f);
}

pub fn server_log(level: Level, msg: &str) {
    match SERVER_LOGGER.get() {
        Some(f) => f(level, msg),
        None => eprintln!("{msg}"),
    }
}

/// Copies `src` into the front of `dst` (memory that need not be initialised; `dst` at least
/// as long). MaybeUninit's own copy needs Rust 1.93; this compiles to the same memcpy.
pub fn copy_into(dst: &mut [std::mem::MaybeUninit<u8>], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        d.write(*s);
    }
}
