//! The wire between Apache children and daemon processes: frames, the request-variable table
//! and the response head. No Apache, no Python: plain bytes in, validated values or a precise
//! error out. Everything decoded here came from another process and is treated as hostile.

pub mod frame;
pub mod head;
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
