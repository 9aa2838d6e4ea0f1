//! The daemon side of a request: the WSGI layer's Transport over the connection to the Apache
//! child. The request body is pulled as the application reads it (BodyWant), so a large upload
//! the application never reads cannot deadlock against a large response.

use super::rings::{SharedRings, await_credit, lock, take_request_slice_into};
use rwsgi_core::ipc::channel::{Channel, ChannelError};
use rwsgi_core::ipc::frame::{FLAG_END, FLAG_SHM, Frame, Kind, MAX_PAYLOAD};
use rwsgi_core::ipc::ring::{self, SHM_THRESHOLD};
use rwsgi_core::ipc::{head, msg};
use rwsgi_python::transport::latin1_bytes as latin1;
use rwsgi_python::{Logger, ResponseHead, Transport, TransportError};
use std::sync::Arc;
use std::time::Duration;

pub struct RemoteTransport {
    ch: Arc<Channel>,
    rings: Option<SharedRings>,
    id: u32,
    timeout: Option<Duration>,
    header_only: bool,
    body_eof: bool,
    ended: bool,
    /// The encoded response head, held until the body's first bytes (or the end) so that a
    /// small response goes out as one frame ([`head::whole_prefix`]): one send here and one
    /// receive on the Apache side fewer per request.
    head: Option<Vec<u8>>,
    /// The end of the response, held back until [`Transport::complete`]: it then goes out
    /// with the GIL released, and after every log line the request writes until it is over
    /// (an exception from `close()`, `wsgi.errors` written there): the Apache side stops
    /// listening for the request at its end.
    held: Option<Held>,
    /// Body bytes pulled ahead of the application's reads: `ahead[pos..end]` are still to go.
    ahead: Vec<u8>,
    ahead_pos: usize,
    ahead_end: usize,
}

/// What [`RemoteTransport::held`] holds back.
enum Held {
    /// The final body bytes (then the end).
    Bytes(Vec<u8>),
    /// The end alone.
    End,
}

/// The largest final write held back (as a copy) until the request is over; a larger one
/// goes out at once, with the GIL released.
const HOLD_BACK: usize = 8192;

thread_local! {
    /// The read-ahead buffer, kept by the request thread between requests (no allocation
    /// per request).
    static AHEAD: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Drop for RemoteTransport {
    fn drop(&mut self) {
        // What is held back goes out even when the request ended without `complete` (a
        // panic); a head still held goes out as it would have without the hold (whatever
        // follows, an abort, then finds the response started).
        self.complete();
        let _ = self.send_head();
        let ahead = std::mem::take(&mut self.ahead);
        if !ahead.is_empty() {
            AHEAD.with(|a| a.set(ahead));
        }
    }
}

impl RemoteTransport {
    pub fn new(
        ch: Arc<Channel>,
        rings: Option<SharedRings>,
        id: u32,
        timeout: Option<Duration>,
        header_only: bool,
    ) -> RemoteTransport {
        RemoteTransport {
            ch,
            rings,
            id,
            timeout,
            header_only,
            body_eof: false,
            ended: false,
            head: None,
            held: None,
            ahead: Vec::new(),
            ahead_pos: 0,
            ahead_end: 0,
        }
    }

    /// A ring slice's size, when bodies come through a ring.
    fn slice_size(&self) -> Option<usize> {
        let r = self.rings.as_ref()?;
        Some(ring::max_slice(lock(r).request.capacity()))
    }

    /// Serves a read smaller than a ring slice from bytes pulled a slice at a time: a 64 KiB
    /// read loop (Django's and werkzeug's multipart parsers) costs one round trip to the
    /// Apache side per 256 KiB instead of one per read. Apache answers with what the client
    /// has sent so far, so asking for more never waits for more.
    fn read_ahead(
        &mut self,
        buf: &mut [std::mem::MaybeUninit<u8>],
        slice: usize,
    ) -> std::io::Result<usize> {
        if self.ahead_pos == self.ahead_end {
            let mut ahead = std::mem::take(&mut self.ahead);
            if ahead.len() != slice {
                ahead = AHEAD.with(|a| a.take());
                ahead.resize(slice, 0);
            }
            // SAFETY: pull writes only initialised bytes into the (initialised) buffer.
            let got = self.pull(unsafe { ring::as_uninit(&mut ahead) });
            self.ahead = ahead;
            self.ahead_pos = 0;
            // An error leaves nothing stale to serve.
            self.ahead_end = *got.as_ref().unwrap_or(&0);
            got?;
        }
        let n = buf.len().min(self.ahead_end - self.ahead_pos);
        rwsgi_python::transport::copy_into(
            &mut buf[..n],
            &self.ahead[self.ahead_pos..self.ahead_pos + n],
        );
        self.ahead_pos += n;
        Ok(n)
    }

    /// One round trip: asks the Apache side for up to `buf.len()` body bytes (BodyWant) and
    /// takes what it sends (inline, or a slice of the request ring).
    fn pull(&mut self, buf: &mut [std::mem::MaybeUninit<u8>]) -> std::io::Result<usize> {
        if self.body_eof {
            return Ok(0);
        }
        // Bulk reads may come back through the request ring, a slice at a time.
        let cap = match &self.rings {
            Some(r) if buf.len() >= SHM_THRESHOLD => ring::max_slice(lock(r).request.capacity()),
            _ => MAX_PAYLOAD as usize,
        };
        let want = buf.len().min(cap);
        self.ch
            .send(&msg::body_want(self.id, want as u32))
            .map_err(std::io::Error::other)?;
        let mut reply = self.ch.recv(self.timeout);
        // Credit for response slices may arrive first when the application interleaves
        // writing and reading.
        while let (Ok((f, _)), Some(r)) = (&reply, &self.rings) {
            if f.header.kind != Kind::Credit {
                break;
            }
            let n = msg::parse_u32(&f.payload).map_err(std::io::Error::other)?;
            lock(r)
                .response
                .credit(n as usize)
                .map_err(std::io::Error::other)?;
            reply = self.ch.recv(self.timeout);
        }
        match reply {
            Ok((f, _)) if f.header.kind == Kind::Body && f.in_ring() => take_request_slice_into(
                &self.ch,
                self.rings.as_ref(),
                self.id,
                &f.payload,
                &mut buf[..want],
            )
            .map_err(std::io::Error::other),
            Ok((f, _)) if f.header.kind == Kind::Body && f.payload.len() <= want => {
                rwsgi_python::transport::copy_into(&mut buf[..f.payload.len()], &f.payload);
                Ok(f.payload.len())
            }
            Ok((f, _)) if f.header.kind == Kind::BodyEnd => {
                self.body_eof = true;
                Ok(0)
            }
            Ok((f, _)) if f.header.kind == Kind::Abort => {
                self.body_eof = true;
                let (_, reason) = msg::parse_abort(&f.payload).unwrap_or((400, "aborted".into()));
                Err(std::io::Error::other(format!(
                    "request body read failed in Apache: {reason}"
                )))
            }
            Ok((f, _)) => Err(std::io::Error::other(format!(
                "unexpected {:?} frame while reading the body",
                f.header.kind
            ))),
            Err(ChannelError::Timeout) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out reading the request body",
            )),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    fn send(&self, f: Frame) -> Result<(), TransportError> {
        self.ch.send(&f).map_err(|_| TransportError::ClientGone)
    }

    /// Sends a ResponseBody frame of `parts`, from where they are.
    fn send_parts(&self, flags: u16, parts: &[&[u8]]) -> Result<(), TransportError> {
        self.ch
            .send_parts(Kind::ResponseBody, self.id, flags, parts)
            .map_err(|_| TransportError::ClientGone)
    }

    /// Sends the held response head, if any.
    fn send_head(&mut self) -> Result<(), TransportError> {
        match self.head.take() {
            Some(h) => self.send(Frame::new(Kind::ResponseHead, self.id, h)),
            None => Ok(()),
        }
    }

    /// Sends the held head with `body` as the whole response, if both fit one inline frame;
    /// false (nothing sent) otherwise.
    fn send_whole(&mut self, body: &[u8]) -> Result<bool, TransportError> {
        let Some(h) = &self.head else {
            return Ok(false);
        };
        let prefix = head::whole_prefix(h);
        let inline = self.rings.is_none() || body.len() < SHM_THRESHOLD;
        if !inline || prefix.len() + h.len() + body.len() > MAX_PAYLOAD as usize {
            return Ok(false);
        }
        let parts = [&prefix[..], h, body];
        let sent = self
            .ch
            .send_parts(Kind::ResponseHead, self.id, FLAG_END, &parts);
        self.head = None;
        self.ended = true;
        sent.map(|()| true).map_err(|_| TransportError::ClientGone)
    }
}

impl Transport for RemoteTransport {
    fn read_body(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: read_body_uninit only writes initialised bytes into `buf`.
        self.read_body_uninit(unsafe { ring::as_uninit(buf) })
    }

    /// A large read goes straight into the caller's memory (the application's bytes object),
    /// from the ring or the frame, no bounce buffer; a smaller one through the read-ahead.
    fn read_body_uninit(
        &mut self,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.slice_size() {
            _ if self.ahead_pos < self.ahead_end => self.read_ahead(buf, 0),
            Some(slice) if buf.len() < slice => self.read_ahead(buf, slice),
            _ => self.pull(buf),
        }
    }

    fn start(&mut self, h: &ResponseHead) {
        let mut headers: Vec<_> = h.headers().map(|(k, v)| (latin1(k), latin1(v))).collect();
        if h.close_connection {
            // The Apache side honours it (and takes it out of the response).
            headers.push((b"Connection"[..].into(), b"close"[..].into()));
        }
        let head = head::ResponseHead {
            status: h.status,
            status_line: latin1(h.status_line()),
            headers,
        };
        // Held for the first body bytes or the end: see `head`.
        self.head = Some(head::encode(&head));
    }

    /// A held-back write does no I/O.
    fn never_blocks(&self, len: usize, last: bool) -> bool {
        last && len <= HOLD_BACK
    }

    fn finish_never_blocks(&self) -> bool {
        true
    }

    fn complete(&mut self) {
        // The Apache side may be gone: nothing is left to tell the application.
        match self.held.take() {
            Some(Held::Bytes(data)) => {
                let _ = self.write_now(&data, true);
            }
            Some(Held::End) => {
                let _ = self.end_now();
            }
            None => {}
        }
    }

    /// A small final write is held back and goes out in `complete`: the request then does
    /// its I/O without the GIL, and its end follows every log line of the request.
    fn write(&mut self, data: &[u8], last: bool) -> Result<(), TransportError> {
        self.ended |= last;
        if last && data.len() <= HOLD_BACK {
            self.held = Some(Held::Bytes(data.to_vec()));
            return Ok(());
        }
        self.write_now(data, last)
    }

    /// `last`: the end of the response follows in `complete`, and the Apache side sends the
    /// file and the end down its filters together.
    fn send_file(
        &mut self,
        fd: i32,
        offset: u64,
        len: u64,
        last: bool,
    ) -> Result<(), TransportError> {
        self.send_head()?;
        // The descriptor itself goes to Apache, which sends it with sendfile.
        self.ch
            .send_with_fds(&msg::file_slice(self.id, offset, len), &[fd])
            .map_err(|_| TransportError::ClientGone)?;
        if last {
            self.finish()?;
        }
        Ok(())
    }

    /// The end goes out in `complete` (see [`RemoteTransport::held`]).
    fn finish(&mut self) -> Result<(), TransportError> {
        if !std::mem::replace(&mut self.ended, true) {
            self.held = Some(Held::End);
        }
        Ok(())
    }

    /// A response whose end is held back is complete: the failure that follows (in
    /// `close()`) is only logged, as it is in embedded mode.
    fn abort(&mut self) {
        let _ = self.send_head();
        if !std::mem::replace(&mut self.ended, true) {
            let _ = self.send(msg::abort(
                self.id,
                500,
                "application failed after the response started",
            ));
        }
    }

    fn is_head_request(&self) -> bool {
        self.header_only
    }
}

impl RemoteTransport {
    /// Sends body bytes now; `last`: they end the response.
    fn write_now(&mut self, data: &[u8], last: bool) -> Result<(), TransportError> {
        if last && self.send_whole(data)? {
            return Ok(());
        }
        self.send_head()?;
        let flush = !last && !data.is_empty();
        let mut data = data;
        if let Some(rings) = &self.rings {
            while data.len() >= SHM_THRESHOLD {
                let put = lock(rings).response.put(data);
                match put {
                    Some((off, n)) => {
                        self.send_parts(FLAG_SHM, &[&ring::encode_slice(off, n)])?;
                        data = &data[n..];
                    }
                    None => await_credit(&self.ch, rings, self.timeout)
                        .map_err(|_| TransportError::ClientGone)?,
                }
            }
        }
        let mut chunks = data.chunks(MAX_PAYLOAD as usize).peekable();
        while let Some(chunk) = chunks.next() {
            if last && chunks.peek().is_none() {
                // The last bytes end the response: no separate ResponseEnd frame.
                return self.send_parts(FLAG_END, &[chunk]);
            }
            self.send_parts(0, &[chunk])?;
        }
        if last {
            self.send(Frame::new(Kind::ResponseEnd, self.id, vec![]))
        } else if flush {
            self.send(Frame::new(Kind::ResponseFlush, self.id, vec![]))
        } else {
            Ok(())
        }
    }

    /// Sends the end of the response now (with the held head, if any, as one frame).
    fn end_now(&mut self) -> Result<(), TransportError> {
        if self.send_whole(&[])? {
            return Ok(());
        }
        self.send_head()?;
        self.send(Frame::new(Kind::ResponseEnd, self.id, vec![]))
    }

    /// Log lines of this request go to the Apache side, which logs them with the request's
    /// context.
    pub fn logger(&self) -> Logger<'static> {
        let (ch, id) = (self.ch.clone(), self.id);
        Box::new(move |level, text| {
            // one frame per line: SOCK_SEQPACKET sends are atomic, so threads may share it
            let _ = ch.send(&msg::log(id, level, text));
        })
    }
}
