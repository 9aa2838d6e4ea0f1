//! The wire between Apache children and daemon processes: frames, the request-variable table
//! and the response head. No Apache, no Python: plain bytes in, validated values or a precise
//! error out. Everything decoded here came from another process and is treated as hostile.

pub mod channel;
pub mod frame;
pub mod head;
pub mod ring;
pub mod seal;
pub mod vars;

pub use frame::{Frame, Header, Kind};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpcError {
    #[error("truncated frame")]
    Truncated,
    #[error("bad magic {0:#06x}")]
    BadMagic(u16),
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("unknown flags {0:#06x}")]
    BadFlags(u16),
    #[error("{what} of {len} exceeds the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: u64,
        max: u64,
    },
    #[error("payload length {actual} differs from the declared {declared}")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("offset or length out of bounds")]
    OutOfBounds,
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Small payloads of the control frames.
pub mod msg {
    use super::IpcError;
    use super::frame::{Frame, Kind, Reader};

    /// The payload of a `Credit` frame: the receiver of a ring slice of `n` bytes has copied it
    /// out. Sent with [`crate::ipc::channel::Channel::send_parts`] (no allocation per slice).
    pub fn credit_payload(n: u32) -> [u8; 4] {
        n.to_le_bytes()
    }

    /// `HelloAck`: whether the daemon mapped the connection's rings, and its pid (so that the
    /// Apache side can find out why the process died if the connection breaks; untrusted, it
    /// only ever selects which death record explains a 502).
    pub fn hello_ack(rings_mapped: bool, pid: u32) -> Frame {
        let mut p = vec![u8::from(rings_mapped)];
        p.extend_from_slice(&pid.to_le_bytes());
        Frame::new(Kind::HelloAck, 0, p)
    }

    pub fn parse_hello_ack(payload: &[u8]) -> Result<(bool, u32), IpcError> {
        let mut r = Reader::new(payload);
        let mapped = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(IpcError::Invalid("HELLO_ACK ring flag")),
        };
        let pid = r.u32()?;
        r.finish()?;
        Ok((mapped, pid))
    }

    pub fn body_want(id: u32, n: u32) -> Frame {
        Frame::new(Kind::BodyWant, id, n.to_le_bytes().to_vec())
    }

    pub fn parse_u32(payload: &[u8]) -> Result<u32, IpcError> {
        let mut r = Reader::new(payload);
        let v = r.u32()?;
        r.finish()?;
        Ok(v)
    }

    /// `Goodbye`: this daemon process takes no request on the connection (it is stopping); a
    /// request the Apache side sent after it is known unstarted and goes elsewhere.
    pub fn goodbye() -> Frame {
        Frame::new(Kind::Goodbye, 0, vec![])
    }

    /// `Abort`: the HTTP status the Apache side should answer if nothing was sent yet, and a
    /// reason for its log.
    pub fn abort(id: u32, status: u16, reason: &str) -> Frame {
        let mut p = status.to_le_bytes().to_vec();
        p.extend_from_slice(&reason.as_bytes()[..reason.len().min(4096)]);
        Frame::new(Kind::Abort, id, p)
    }

    pub fn parse_abort(payload: &[u8]) -> Result<(u16, String), IpcError> {
        let mut r = Reader::new(payload);
        let status = r.u16()?;
        if !(400..=599).contains(&status) {
            return Err(IpcError::Invalid("abort status"));
        }
        Ok((status, String::from_utf8_lossy(r.rest()).into_owned()))
    }

    /// `ResponseFile`: the slice of the file (its descriptor travels with the frame).
    pub fn file_slice(id: u32, offset: u64, len: u64) -> Frame {
        let mut p = offset.to_le_bytes().to_vec();
        p.extend_from_slice(&len.to_le_bytes());
        Frame::new(Kind::ResponseFile, id, p)
    }

    pub fn parse_file_slice(payload: &[u8]) -> Result<(u64, u64), IpcError> {
        let mut r = Reader::new(payload);
        let v = (r.u64()?, r.u64()?);
        r.finish()?;
        Ok(v)
    }

    /// `Log`: a line for Apache's error log in the request's context; the level travels as
    /// its APLOG number (a daemon cannot log above error: crit and worse become error).
    pub fn log(id: u32, level: crate::Level, text: &str) -> Frame {
        let mut p = vec![level.aplog() as u8];
        p.extend_from_slice(&text.as_bytes()[..text.len().min(8192)]);
        Frame::new(Kind::Log, id, p)
    }

    pub fn parse_log(payload: &[u8]) -> Result<(crate::Level, String), IpcError> {
        let (&level, text) = payload.split_first().ok_or(IpcError::Truncated)?;
        Ok((
            crate::Level::from_aplog(level as i32).max(crate::Level::Error),
            String::from_utf8_lossy(text).replace(['\r', '\n'], " "),
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn control_payloads() {
            assert_eq!(parse_u32(&body_want(1, 77).payload).unwrap(), 77);
            assert!(parse_u32(&[1, 2]).is_err());
            assert_eq!(
                parse_abort(&abort(1, 502, "x").payload).unwrap(),
                (502, "x".into())
            );
            assert!(parse_abort(&abort(1, 200, "x").payload).is_err());
            assert_eq!(
                parse_log(&log(1, crate::Level::Info, "a\nb").payload).unwrap(),
                (crate::Level::Info, "a b".into())
            );
            // a daemon cannot log at crit (or above): it becomes error
            assert_eq!(
                parse_log(&[0, b'x']).unwrap(),
                (crate::Level::Error, "x".into())
            );
            assert_eq!(
                parse_file_slice(&file_slice(1, 7, 9).payload).unwrap(),
                (7, 9)
            );
            assert!(parse_file_slice(&[0; 15]).is_err());
        }
    }
}
