//! The daemon side of a request: the WSGI layer's Transport over the connection to the Apache
//! child. The request body is pulled as the application reads it (BodyWant), so a large upload
//! the application never reads cannot deadlock against a large response.

use crate::ipc::channel::{Channel, ChannelError};
use crate::ipc::frame::{Frame, Kind, MAX_PAYLOAD};
use crate::ipc::{head, msg};
use crate::wsgi::{LogLevel, Logger, ResponseHead, Transport, TransportError};
use std::sync::Arc;
use std::time::Duration;

pub struct RemoteTransport {
    ch: Arc<Channel>,
    id: u32,
    timeout: Option<Duration>,
    header_only: bool,
    body_eof: bool,
    ended: bool,
}

impl RemoteTransport {
    pub fn new(
        ch: Arc<Channel>,
        id: u32,
        timeout: Option<Duration>,
        header_only: bool,
    ) -> RemoteTransport {
        RemoteTransport {
            ch,
            id,
            timeout,
            header_only,
            body_eof: false,
            ended: false,
        }
    }

    fn send(&self, f: Frame) -> Result<(), TransportError> {
        self.ch.send(&f).map_err(|_| TransportError::ClientGone)
    }
}

fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

impl Transport for RemoteTransport {
    fn read_body(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.body_eof || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(MAX_PAYLOAD as usize) as u32;
        self.ch
            .send(&msg::body_want(self.id, want))
            .map_err(std::io::Error::other)?;
        match self.ch.recv(self.timeout) {
            Ok((f, _)) if f.header.kind == Kind::Body && f.payload.len() <= want as usize => {
                buf[..f.payload.len()].copy_from_slice(&f.payload);
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

    fn start(&mut self, h: &ResponseHead) {
        let head = head::ResponseHead {
            status: h.status,
            status_line: latin1(&h.status_line),
            headers: h
                .headers
                .iter()
                .map(|(k, v)| (latin1(k), latin1(v)))
                .collect(),
        };
        let _ = self.send(Frame::new(Kind::ResponseHead, self.id, head::encode(&head)));
    }

    fn write(&mut self, data: &[u8], last: bool) -> Result<(), TransportError> {
        for chunk in data.chunks(MAX_PAYLOAD as usize) {
            self.send(Frame::new(Kind::ResponseBody, self.id, chunk.to_vec()))?;
        }
        if last {
            self.ended = true;
            self.send(Frame::new(Kind::ResponseEnd, self.id, vec![]))
        } else if !data.is_empty() {
            self.send(Frame::new(Kind::ResponseFlush, self.id, vec![]))
        } else {
            Ok(())
        }
    }

    fn send_file(&mut self, fd: i32, offset: u64, len: u64) -> Result<(), TransportError> {
        // The descriptor itself goes to Apache, which sends it with sendfile.
        self.ch
            .send_with_fds(&msg::file_slice(self.id, offset, len), &[fd])
            .map_err(|_| TransportError::ClientGone)
    }

    fn finish(&mut self) -> Result<(), TransportError> {
        if std::mem::replace(&mut self.ended, true) {
            return Ok(());
        }
        self.send(Frame::new(Kind::ResponseEnd, self.id, vec![]))
    }

    fn abort(&mut self) {
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

    fn logger(&self) -> Logger {
        let (ch, id) = (self.ch.clone(), self.id);
        Box::new(move |level, text| {
            let l = match level {
                LogLevel::Error => 0,
                LogLevel::Warning => 1,
                LogLevel::Info => 2,
                LogLevel::Debug => 3,
            };
            // one frame per line: SOCK_SEQPACKET sends are atomic, so threads may share it
            let _ = ch.send(&msg::log(id, l, text));
        })
    }
}
