//! The embedded transport: the WSGI layer reads the body from and writes the response into
//! the Apache request it runs in.

use rwsgi_apache::{Output, OutputError, Request};
use rwsgi_python::transport::latin1_bytes as latin1;
use rwsgi_python::{Logger, ResponseHead, Transport, TransportError};

pub struct ApacheTransport<'r> {
    req: Request<'r>,
    out: Output<'r>,
    finished: bool,
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
        };
        (transport, Box::new(move |l, m| log.log(l, m)))
    }
}

fn gone(_: OutputError) -> TransportError {
    TransportError::ClientGone
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

    fn start(&mut self, head: &ResponseHead) {
        self.req.set_status(head.status, &latin1(&head.status_line));
        for (k, v) in &head.headers {
            self.req.add_header(k, &latin1(v));
        }
        if head.close_connection {
            self.req.close_connection();
        }
    }

    fn write(&mut self, data: &[u8], last: bool) -> Result<(), TransportError> {
        self.finished |= last;
        self.out.write(data, !last, last).map_err(gone)
    }

    /// Apache's core output filter only blocks for a FLUSH or once more than 64 KiB are
    /// pending; a final write (EOS, no FLUSH) below that is set aside, never waited for.
    fn never_blocks(&self, len: usize, last: bool) -> bool {
        last && len <= 64 * 1024
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
            self.finished = true;
            self.out.end_with_file(fd, offset, len).map_err(gone)
        } else {
            self.out.send_file(fd, offset, len).map_err(gone)
        }
    }

    fn finish(&mut self) -> Result<(), TransportError> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        self.out.finish().map_err(gone)
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
