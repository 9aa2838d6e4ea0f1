//! The embedded transport: the WSGI layer reads the body from and writes the response into
//! the Apache request it runs in.

use rwsgi_apache::{Output, OutputError, Request};
use rwsgi_python::transport::latin1_bytes as latin1;
use rwsgi_python::{Logger, ResponseHead, Transport, TransportError};

pub struct ApacheTransport<'r> {
    req: Request<'r>,
    out: Output<'r>,
    finished: bool,
    /// The end of the response, held back until [`Transport::complete`] (no GIL held then).
    held: Option<Held>,
}

enum Held {
    /// A small final write.
    Bytes(Vec<u8>),
    /// A final file, already in the output brigade (a descriptor of the request's own).
    File,
    /// The end of a response whose bytes have all gone out.
    End,
}

impl<'r> ApacheTransport<'r> {
    /// The transport over `req`, and a logger for the request (usable from any thread until
    /// the request ends: both borrow it).
    pub fn new(req: Request<'r>) -> (ApacheTransport<'r>, Logger<'r>) {
        let log = req.logger();
        let transport = ApacheTransport {
            out: Output::new(&req),
            req,
            finished: false,
            held: None,
        };
        (transport, Box::new(move |l, m| log.log(l, m)))
    }
}

/// The largest final write held back until the GIL is released.
const HOLD_BACK: usize = 64 * 1024;

fn gone(_: OutputError) -> TransportError {
    TransportError::ClientGone
}

impl Drop for ApacheTransport<'_> {
    /// A response whose request ended without `complete` (a panic) still goes out whole.
    fn drop(&mut self) {
        self.complete();
    }
}

impl Transport for ApacheTransport<'_> {
    fn read_body(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.req.read_body(buf)
    }

    fn read_body_uninit(
        &mut self,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> std::io::Result<usize> {
        self.req.read_body_uninit(buf)
    }

    fn read_body_now(
        &mut self,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> std::io::Result<Option<usize>> {
        self.req.read_body_now_uninit(buf)
    }

    fn start(&mut self, head: &ResponseHead) {
        self.req
            .set_status(head.status, &latin1(head.status_line()));
        for (k, v) in head.headers() {
            self.req.add_header(k, &latin1(v));
        }
        if head.close_connection {
            self.req.close_connection();
        }
    }

    /// Every write is flushed: Apache writes it from our memory rather than copying it aside
    /// (a 1 MiB response set aside was a 1 MiB malloc, memcpy and 256 page faults), from the
    /// request's own thread (not handed to the MPM's listener: a context switch). A small final
    /// write is held back and goes out in `complete`, once the GIL is released: a request
    /// then takes the GIL once.
    fn write(&mut self, data: &[u8], last: bool) -> Result<(), TransportError> {
        self.finished |= last;
        if last && data.len() <= HOLD_BACK {
            self.held = Some(Held::Bytes(data.to_vec()));
            return Ok(());
        }
        self.out.write(data, true, last).map_err(gone)
    }

    /// A held-back write does not block.
    fn never_blocks(&self, len: usize, last: bool) -> bool {
        last && len <= HOLD_BACK
    }

    fn holds_final_file(&self) -> bool {
        true
    }

    fn finish_never_blocks(&self) -> bool {
        true
    }

    fn complete(&mut self) {
        // The client may be gone: nothing is left to tell the application.
        match self.held.take() {
            Some(Held::Bytes(data)) => {
                let _ = self.out.write(&data, true, true);
            }
            Some(Held::File) => {
                let _ = self.out.write(&[], true, true);
            }
            Some(Held::End) => {
                let _ = self.out.finish();
            }
            None => {}
        }
    }

    fn send_file(
        &mut self,
        fd: i32,
        offset: u64,
        len: u64,
        last: bool,
    ) -> Result<(), TransportError> {
        let (offset, len) = (offset as i64, len as i64);
        if last {
            // Staged now (the bucket reads a duplicate the request pool owns, so the
            // application may close its file), sent in `complete`.
            self.finished = true;
            self.out.stage_final_file(fd, offset, len).map_err(gone)?;
            self.held = Some(Held::File);
            Ok(())
        } else {
            self.out.send_file(fd, offset, len).map_err(gone)
        }
    }

    /// Everything written went out at once; the end (Apache's EOS, and with it a chunked
    /// response's last chunk) follows in `complete`, with the GIL released.
    fn finish(&mut self) -> Result<(), TransportError> {
        if !std::mem::replace(&mut self.finished, true) {
            self.held = Some(Held::End);
        }
        Ok(())
    }

    fn abort(&mut self) {
        if !std::mem::replace(&mut self.finished, true) {
            self.out.abort();
        }
    }

    fn is_head_request(&self) -> bool {
        self.req.header_only()
    }
}
