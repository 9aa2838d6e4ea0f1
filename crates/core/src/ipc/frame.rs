//! The frame: a fixed 16-byte little-endian header followed by `len` payload bytes. Both ends
//! treat every frame from the other as untrusted: decoding checks the magic, the version, the
//! kind and the length against a cap before anything else is looked at.

use super::IpcError;

pub const MAGIC: u16 = 0x5752; // "RW"
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 16;
/// Largest payload one frame may carry. Bulk data larger than this goes through shared memory
/// or several frames; a SOCK_SEQPACKET message must also fit the socket buffer.
pub const MAX_PAYLOAD: u32 = 64 * 1024;

/// What a frame means. Numbers are part of the protocol: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Apache -> daemon, first frame on a connection: protocol version, limits, group secret;
    /// carries the two shared-memory ring fds.
    Hello = 1,
    /// Daemon -> Apache: connection accepted.
    HelloAck = 2,
    /// Apache -> daemon: a request head (environ block).
    RequestHead = 3,
    /// Apache -> daemon: request body bytes (inline or a ring slice).
    Body = 4,
    /// Apache -> daemon: the request body is complete.
    BodyEnd = 5,
    /// Daemon -> Apache: the application wants up to N more body bytes.
    BodyWant = 6,
    /// Either way: N bytes of the receiver's ring were consumed and may be reused.
    Credit = 7,
    /// Daemon -> Apache: status line and headers.
    ResponseHead = 8,
    /// Daemon -> Apache: response body bytes (inline or a ring slice).
    ResponseBody = 9,
    /// Daemon -> Apache: send what you have to the client now.
    ResponseFlush = 10,
    /// Daemon -> Apache: send a regular file (its fd travels with the frame).
    ResponseFile = 11,
    /// Daemon -> Apache: the response is complete.
    ResponseEnd = 12,
    /// Either way: the request failed; the reason is UTF-8 text.
    Abort = 13,
    /// Daemon -> Apache: a line for Apache's error log, in the request's context.
    Log = 14,
    /// Daemon -> Apache: this process is closing the connection and has not started (and will
    /// not start) any request sent on it; the Apache side may send it again elsewhere.
    Goodbye = 15,
}

impl Kind {
    /// The kinds whose payload may be a ring slice instead of inline bytes.
    pub fn may_use_ring(self) -> bool {
        matches!(self, Kind::RequestHead | Kind::Body | Kind::ResponseBody)
    }

    pub fn from_u8(v: u8) -> Result<Kind, IpcError> {
        use Kind::*;
        Ok(match v {
            1 => Hello,
            2 => HelloAck,
            3 => RequestHead,
            4 => Body,
            5 => BodyEnd,
            6 => BodyWant,
            7 => Credit,
            8 => ResponseHead,
            9 => ResponseBody,
            10 => ResponseFlush,
            11 => ResponseFile,
            12 => ResponseEnd,
            13 => Abort,
            14 => Log,
            15 => Goodbye,
            other => return Err(IpcError::UnknownKind(other)),
        })
    }
}

/// Flag bit: the payload is not inline but an (offset, length) slice of the sender's ring.
pub const FLAG_SHM: u16 = 1;
/// Flag bit on ResponseBody: the response ends with these bytes (saves a ResponseEnd frame on
/// every small response). On ResponseHead: the frame is the whole response, its head and then
/// all of its body ([`super::head::whole_prefix`]), one frame where a small response took two.
pub const FLAG_END: u16 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub flags: u16,
    pub request_id: u32,
    pub len: u32,
}

impl Header {
    pub fn new(kind: Kind, request_id: u32, len: usize) -> Header {
        Header {
            kind,
            flags: 0,
            request_id,
            len: len as u32,
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        b[2] = VERSION;
        b[3] = self.kind as u8;
        b[4..6].copy_from_slice(&self.flags.to_le_bytes());
        // b[6..8] reserved, zero
        b[8..12].copy_from_slice(&self.request_id.to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Header, IpcError> {
        if b.len() < HEADER_LEN {
            return Err(IpcError::Truncated);
        }
        let magic = u16::from_le_bytes([b[0], b[1]]);
        if magic != MAGIC {
            return Err(IpcError::BadMagic(magic));
        }
        if b[2] != VERSION {
            return Err(IpcError::BadVersion(b[2]));
        }
        let kind = Kind::from_u8(b[3])?;
        let flags = u16::from_le_bytes([b[4], b[5]]);
        if flags & !(FLAG_SHM | FLAG_END) != 0 || b[6] != 0 || b[7] != 0 {
            return Err(IpcError::BadFlags(flags));
        }
        if flags & FLAG_SHM != 0 && !kind.may_use_ring() {
            return Err(IpcError::BadFlags(flags));
        }
        if flags & FLAG_END != 0 && !matches!(kind, Kind::ResponseBody | Kind::ResponseHead) {
            return Err(IpcError::BadFlags(flags));
        }
        let request_id = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        let len = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        if len > MAX_PAYLOAD {
            return Err(IpcError::TooLarge {
                what: "frame payload",
                len: len as u64,
                max: MAX_PAYLOAD as u64,
            });
        }
        Ok(Header {
            kind,
            flags,
            request_id,
            len,
        })
    }
}

/// One whole frame as received (SOCK_SEQPACKET delivers exactly one per message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(kind: Kind, request_id: u32, payload: Vec<u8>) -> Frame {
        Frame {
            header: Header::new(kind, request_id, payload.len()),
            payload,
        }
    }

    /// A frame whose payload is the `(offset, len)` slice of the sender's ring.
    pub fn ring_slice(kind: Kind, request_id: u32, off: usize, len: usize) -> Frame {
        let mut f = Frame::new(
            kind,
            request_id,
            super::ring::encode_slice(off, len).to_vec(),
        );
        f.header.flags = FLAG_SHM;
        f
    }

    pub fn in_ring(&self) -> bool {
        self.header.flags & FLAG_SHM != 0
    }

    /// Marks a ResponseBody frame as the last of its response (a ResponseHead frame as the
    /// whole response).
    pub fn ending(mut self) -> Frame {
        self.header.flags |= FLAG_END;
        self
    }

    pub fn ends_response(&self) -> bool {
        self.header.flags & FLAG_END != 0
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Decodes one message; the payload must be exactly as long as the header says.
    pub fn decode(msg: &[u8]) -> Result<Frame, IpcError> {
        let header = Header::decode(msg)?;
        let body = &msg[HEADER_LEN..];
        if body.len() != header.len as usize {
            return Err(IpcError::LengthMismatch {
                declared: header.len as usize,
                actual: body.len(),
            });
        }
        Ok(Frame {
            header,
            payload: body.to_vec(),
        })
    }
}

/// A little-endian reader over an untrusted payload: every read is bounds-checked.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], IpcError> {
        let end = self.pos.checked_add(n).ok_or(IpcError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(IpcError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8, IpcError> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, IpcError> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, IpcError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, IpcError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    pub fn finish(&self) -> Result<(), IpcError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(IpcError::TrailingBytes(self.buf.len() - self.pos))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = Header {
            kind: Kind::ResponseBody,
            flags: FLAG_SHM,
            request_id: 7,
            len: 42,
        };
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn frame_round_trip_and_length_check() {
        let f = Frame::new(Kind::Log, 3, b"hello".to_vec());
        let bytes = f.encode();
        assert_eq!(Frame::decode(&bytes).unwrap(), f);
        assert!(matches!(
            Frame::decode(&bytes[..bytes.len() - 1]),
            Err(IpcError::LengthMismatch { .. })
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Frame::decode(&longer),
            Err(IpcError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn rejects_bad_headers() {
        let good = Header::new(Kind::Credit, 1, 4).encode();
        let mut b = good;
        b[0] = 0;
        assert!(matches!(Header::decode(&b), Err(IpcError::BadMagic(_))));
        let mut b = good;
        b[2] = 9;
        assert!(matches!(Header::decode(&b), Err(IpcError::BadVersion(9))));
        let mut b = good;
        b[3] = 200;
        assert!(matches!(
            Header::decode(&b),
            Err(IpcError::UnknownKind(200))
        ));
        let mut b = good;
        b[4] = 0x80;
        assert!(matches!(Header::decode(&b), Err(IpcError::BadFlags(_))));
        let mut b = good;
        b[4] = FLAG_END as u8; // only a ResponseBody or a whole ResponseHead can end a response
        assert!(matches!(Header::decode(&b), Err(IpcError::BadFlags(_))));
        let mut b = good;
        b[4] = FLAG_SHM as u8; // a Credit cannot point into a ring
        assert!(matches!(Header::decode(&b), Err(IpcError::BadFlags(_))));
        let mut b = good;
        b[12..16].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
        assert!(matches!(Header::decode(&b), Err(IpcError::TooLarge { .. })));
        assert!(matches!(
            Header::decode(&good[..15]),
            Err(IpcError::Truncated)
        ));
    }

    #[test]
    fn reader_is_bounds_checked() {
        let mut r = Reader::new(&[1, 0, 2, 0, 0, 0]);
        assert_eq!(r.u16().unwrap(), 1);
        assert_eq!(r.u32().unwrap(), 2);
        assert!(r.u16().is_err());
        r.finish().unwrap();
        let mut r = Reader::new(&[1, 2, 3]);
        assert!(r.bytes(usize::MAX).is_err());
        assert_eq!(r.bytes(1).unwrap(), &[1]);
        assert!(r.finish().is_err());
    }
}
