//! `wsgi.input`: the request body as the application reads it — buffered for lines, read
//! straight into the result for sized reads (the length the request announced sizes the
//! bytes object), with the GIL released only around transport I/O.

use super::{Exchange, State};
use crate::ffi::interp::{Py, without_gil};
use crate::ffi::object::{BytesBuilder, Obj, PyResult, Raised, exc, raise};
use crate::transport::{Transport, TransportError};

#[derive(Default)]
pub(super) struct Body {
    pub(super) buf: Vec<u8>,
    pub(super) pos: usize,
    pub(super) eof: bool,
    pub(super) failed: Option<String>,
    /// Body bytes the transport should still hold, if the length was announced (a hint).
    pub(super) expected: Option<u64>,
    /// Reads from the transport that returned data, and their bytes (request_finished).
    pub(super) reads: u64,
    pub(super) read_bytes: u64,
}

impl Body {
    /// The buffer goes back to this thread's spare (the next request's refill takes it).
    pub(super) fn expire(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.capacity() == READ_CHUNK {
            // emptied here, so no request ever sees another's bytes
            buf.clear();
            SPARE.with(|s| s.set(buf));
        }
        self.pos = 0;
        self.eof = false;
    }

    /// Moves buffered bytes into `out` (up to `limit`, or through the first newline for a
    /// line read); true when that completes the read.
    fn take_buffered(&mut self, out: &mut Vec<u8>, limit: usize, line: bool) -> bool {
        let avail = &self.buf[self.pos..];
        if avail.is_empty() {
            return false;
        }
        let mut take = avail.len().min(limit - out.len());
        let mut done = false;
        if line {
            if let Some(nl) = avail[..take].iter().position(|&c| c == b'\n') {
                take = nl + 1;
                done = true;
            }
        }
        out.extend_from_slice(&avail[..take]);
        self.pos += take;
        done || out.len() >= limit
    }

    /// Reads up to `limit` bytes straight into `out`, grown geometrically, rather than through
    /// the line buffer (a fresh zero-filled buffer per refill cost a 1 MiB read(n) ~128 x
    /// 1 MiB of memset).
    fn read_bulk(
        &mut self,
        t: &mut dyn Transport,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ReadError> {
        let mut filled = out.len();
        while filled < limit {
            if out.len() == filled {
                // Past the announced length only an end (or an input filter's extra bytes)
                // is expected: a small first buffer.
                let first = if self.expected == Some(0) {
                    512
                } else {
                    READ_CHUNK
                };
                let grow = out.len().max(first).min(limit - filled);
                out.resize(filled + grow, 0);
            }
            match t.read_body(&mut out[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    filled += n;
                    self.consumed(n);
                }
                Err(e) => {
                    out.truncate(filled);
                    return Err(self.fail(e));
                }
            }
        }
        out.truncate(filled);
        Ok(())
    }

    /// Refills the line buffer with one read of up to READ_CHUNK bytes.
    /// The buffer is read into uninitialised: no 64 KiB memset per refill.
    /// The line buffer, this thread's spare (empty) when the request has none yet.
    fn take_spare(&mut self) {
        if self.buf.capacity() == 0 {
            self.buf = SPARE.with(|s| s.take());
        }
    }

    fn refill(&mut self, t: &mut dyn Transport) -> Result<(), ReadError> {
        self.take_spare();
        self.buf.clear();
        self.pos = 0;
        self.buf.reserve_exact(READ_CHUNK);
        let spare = &mut self.buf.spare_capacity_mut()[..READ_CHUNK];
        match t.read_body_uninit(spare) {
            Ok(0) => {
                self.eof = true;
                Ok(())
            }
            Ok(n) => {
                // SAFETY: read_body_uninit initialised the first n bytes of the spare capacity.
                unsafe { self.buf.set_len(n) };
                self.consumed(n);
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn consumed(&mut self, n: usize) {
        self.reads += 1;
        self.read_bytes += n as u64;
        if let Some(e) = &mut self.expected {
            *e = e.saturating_sub(n as u64);
        }
    }

    /// How many bytes a bulk read of `limit` will most likely return: what is buffered plus
    /// what the body still holds, when that is known.
    fn likely(&self, limit: usize) -> Option<usize> {
        let buffered = (self.buf.len() - self.pos) as u64;
        let e = self.expected?;
        Some(limit.min(usize::try_from(buffered + e).unwrap_or(usize::MAX)))
    }

    /// Fills `out` (buffered bytes first, then the transport) until full or the body ends —
    /// with `wait` false, only with what the transport has at hand; returns how many bytes at
    /// the front of `out` it wrote.
    fn fill(
        &mut self,
        t: &mut dyn Transport,
        out: &mut [std::mem::MaybeUninit<u8>],
        wait: bool,
    ) -> Result<usize, ReadError> {
        let avail = &self.buf[self.pos..];
        let mut filled = avail.len().min(out.len());
        crate::transport::copy_into(&mut out[..filled], &avail[..filled]);
        self.pos += filled;
        while filled < out.len() && !self.eof {
            if let Some(e) = &self.failed {
                return Err(ReadError::Io(e.clone()));
            }
            let got = if wait {
                t.read_body_uninit(&mut out[filled..]).map(Some)
            } else {
                t.read_body_now(&mut out[filled..])
            };
            match got {
                Ok(None) => break,
                Ok(Some(0)) => self.eof = true,
                Ok(Some(n)) => {
                    filled += n;
                    self.consumed(n);
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(filled)
    }

    /// Adds to the line buffer what the transport has at hand, without waiting (what is left
    /// unread moves to the front); true when that changed anything (bytes, or the end).
    fn top_up_now(&mut self, t: &mut dyn Transport) -> Result<bool, ReadError> {
        if self.eof || self.failed.is_some() {
            return Ok(false);
        }
        self.take_spare();
        self.buf.drain(..self.pos);
        self.pos = 0;
        if self.buf.len() >= READ_CHUNK {
            return Ok(false);
        }
        self.buf.reserve_exact(READ_CHUNK - self.buf.len());
        let room = READ_CHUNK - self.buf.len();
        let spare = &mut self.buf.spare_capacity_mut()[..room];
        match t.read_body_now(spare) {
            Ok(None) => Ok(false),
            Ok(Some(0)) => {
                self.eof = true;
                Ok(true)
            }
            Ok(Some(n)) => {
                let len = self.buf.len();
                // SAFETY: read_body_now initialised the first n bytes of the spare capacity.
                unsafe { self.buf.set_len(len + n) };
                self.consumed(n);
                Ok(true)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// A read error is remembered: every later read raises it again.
    fn fail(&mut self, e: std::io::Error) -> ReadError {
        let msg = format!("rwsgi request data read error: {e}");
        self.failed = Some(msg.clone());
        ReadError::Io(msg)
    }
}

/// A bulk read whose size is known from Content-Length: the body goes straight into the bytes
/// object the application gets. Should the body hold more than announced (an input filter
/// changed it), the rest of `limit` follows through the general path.
fn read_sized(py: Py<'_>, ex: &Exchange, n: usize, limit: usize) -> PyResult<Obj> {
    let mut bytes = BytesBuilder::new(py, n)?;
    let buf = bytes.buf();
    // What is at hand first, with the GIL held, for reads up to READ_CHUNK (the multipart
    // parsers' size): a read whose bytes are all there costs no GIL hand-off, each a likely
    // wait for the GIL when other requests run Python (Django's 1 MiB upload: 10 % more
    // req/s, and a third of the memory, fewer requests being inside the interpreter at
    // once). Larger reads copy with the GIL released: holding it through 1 MiB of copying
    // cost read() 16 % and tripled its p99.
    let fill = |wait: bool, buf: &mut [std::mem::MaybeUninit<u8>]| {
        let mut s = ex.lock();
        let State {
            transport, body, ..
        } = &mut *s;
        let t = transport.as_mut().ok_or(ReadError::Expired)?;
        body.fill(t.as_mut(), buf, wait)
    };
    let filled = if n > READ_CHUNK {
        without_gil(|| fill(true, &mut *buf))
    } else {
        match fill(false, &mut *buf) {
            Ok(now) if now < n && !ex.lock().body.eof => {
                without_gil(|| fill(true, &mut buf[now..])).map(|rest| now + rest)
            }
            other => other,
        }
    };
    let filled = match filled {
        Ok(f) => f,
        Err(e) => return Err(read_error(e)),
    };
    let more = filled == n && n < limit && !ex.lock().body.eof;
    if more {
        let rest = read_io(py, ex, limit - n, false)?;
        if rest.as_bytes().is_some_and(|r| !r.is_empty()) {
            // SAFETY: Body::fill wrote the first `filled` bytes (it counts only what it wrote).
            let first = unsafe { bytes.finish(py, filled) }?;
            let mut all = first.as_bytes().unwrap_or_default().to_vec();
            all.extend_from_slice(rest.as_bytes().unwrap_or_default());
            return Obj::bytes(py, &all);
        }
    }
    // SAFETY: as above.
    unsafe { bytes.finish(py, filled) }
}

fn read_error(e: ReadError) -> Raised {
    match e {
        ReadError::Io(msg) => raise(exc::os_error(), &msg),
        ReadError::Expired => raise(exc::runtime_error(), &TransportError::Closed.to_string()),
    }
}

const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// One read buffer per thread, kept between requests: allocating and freeing 64 KiB per
    /// request kept moving the top of the thread's malloc arena (fresh pages faulted in,
    /// trimmed, faulted in again: ~50 page faults per request in an 8 KiB read loop).
    static SPARE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `wsgi.input.read(size)` (`line = false`) or `readline(size)` (`line = true`); a negative
/// size means "no limit". read(n) returns n bytes unless the body ends first.
///
/// What the buffer already holds is answered at once: the GIL stays held, no clock is read,
/// one bytes object is made from the buffer (a readline loop over 1 MiB of short lines is 16k
/// calls; a GIL hand-off each made it 1.5x mod_wsgi's CPU, two clock reads each 17 %).
/// Reads smaller than the buffer go through it, so a read(8192) loop releases the GIL once per
/// 64 KiB rather than once per call; larger ones go straight into the result.
pub fn read(py: Py<'_>, ex: &Exchange, size: i64, line: bool) -> PyResult<Obj> {
    let limit = if size < 0 { usize::MAX } else { size as usize };
    {
        let mut s = ex.lock();
        let mut answer = s.body.answer_from_buffer(limit, line);
        // Small reads and lines: bytes the transport has at hand top the buffer up with the
        // GIL held; only a read that must wait for the client releases it.
        if limit < READ_CHUNK || line {
            while answer.is_none() {
                let State {
                    transport, body, ..
                } = &mut *s;
                let Some(t) = transport.as_mut() else { break };
                match body.top_up_now(t.as_mut()) {
                    Ok(true) => answer = body.answer_from_buffer(limit, line),
                    Ok(false) => break,
                    Err(e) => return Err(read_error(e)),
                }
            }
        }
        if let Some(r) = answer {
            let out = Obj::bytes(py, &s.body.buf[r.clone()]);
            s.body.pos = r.end;
            return out;
        }
    }
    let t0 = std::time::Instant::now();
    let r = read_io(py, ex, limit, line);
    ex.lock().input_time += t0.elapsed().as_secs_f64();
    r
}

impl Body {
    /// The part of the buffer that is the whole answer to this read, if it is there: a line
    /// (through its newline, at most `limit`), `limit` bytes, or what is left at the end.
    fn answer_from_buffer(&self, limit: usize, line: bool) -> Option<std::ops::Range<usize>> {
        let avail = &self.buf[self.pos..];
        let cap = avail.len().min(limit);
        let take = if line {
            match memchr_nl(&avail[..cap]) {
                Some(nl) => nl + 1,
                None if cap == limit || self.eof => cap,
                None => return None,
            }
        } else if cap == limit || self.eof {
            cap
        } else {
            return None;
        };
        Some(self.pos..self.pos + take)
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// A read the buffer cannot answer alone: transport I/O with the GIL released.
fn read_io(py: Py<'_>, ex: &Exchange, limit: usize, line: bool) -> PyResult<Obj> {
    if !line && limit >= READ_CHUNK {
        // (the lock is released before read_sized takes it again)
        let likely = ex.lock().body.likely(limit);
        if let Some(n) = likely.filter(|&n| n >= READ_CHUNK) {
            return read_sized(py, ex, n, limit);
        }
    }
    let mut out: Vec<u8> = Vec::new();
    let result = without_gil(move || {
        let mut s = ex.lock();
        let State {
            transport, body, ..
        } = &mut *s;
        loop {
            if body.take_buffered(&mut out, limit, line) || body.eof || limit == 0 {
                return Ok(out);
            }
            if let Some(e) = &body.failed {
                return Err(ReadError::Io(e.clone()));
            }
            let t = transport.as_mut().ok_or(ReadError::Expired)?;
            if !line && limit - out.len() >= READ_CHUNK {
                body.read_bulk(t.as_mut(), &mut out, limit)?;
                return Ok(out);
            }
            body.refill(t.as_mut())?;
        }
    });
    match result {
        Ok(v) => Obj::bytes(py, &v),
        Err(e) => Err(read_error(e)),
    }
}

enum ReadError {
    /// The request ended (a kept `wsgi.input` read later).
    Expired,
    Io(String),
}
