//! The response head a daemon sends: status line and headers, validated on receipt as if an
//! attacker wrote them (the Apache child must never emit a split or malformed response).

use super::IpcError;
use super::frame::Reader;

/// Caps that keep a hostile daemon from making the Apache child allocate without bound.
pub const MAX_HEADERS: usize = 1000;
pub const MAX_HEAD_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// The whole status line as the application gave it ("200 OK"), latin-1 bytes.
    pub status_line: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

pub fn encode(h: &ResponseHead) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&h.status.to_le_bytes());
    out.extend_from_slice(&(h.status_line.len() as u32).to_le_bytes());
    out.extend_from_slice(&h.status_line);
    out.extend_from_slice(&(h.headers.len() as u32).to_le_bytes());
    for (k, v) in &h.headers {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

pub fn decode(buf: &[u8]) -> Result<ResponseHead, IpcError> {
    if buf.len() > MAX_HEAD_BYTES {
        return Err(IpcError::TooLarge {
            what: "response head",
            len: buf.len() as u64,
            max: MAX_HEAD_BYTES as u64,
        });
    }
    let mut r = Reader::new(buf);
    let status = r.u16()?;
    let line_len = r.u32()? as usize;
    let status_line = r.bytes(line_len)?.to_vec();
    if !(100..=999).contains(&status)
        || status_line.len() < 3
        || status_line[..3] != *status.to_string().as_bytes()
        || status_line.iter().any(|&c| c < 0x20 || c == 0x7f)
    {
        return Err(IpcError::Invalid("status line"));
    }
    let count = r.u32()? as usize;
    if count > MAX_HEADERS {
        return Err(IpcError::TooLarge {
            what: "header count",
            len: count as u64,
            max: MAX_HEADERS as u64,
        });
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let kl = r.u32()? as usize;
        let k = r.bytes(kl)?;
        let vl = r.u32()? as usize;
        let v = r.bytes(vl)?;
        if k.is_empty() || !k.iter().all(|&c| is_tchar(c)) {
            return Err(IpcError::Invalid("header name"));
        }
        if v.iter().any(|&c| c == b'\r' || c == b'\n' || c == 0) {
            return Err(IpcError::Invalid("header value"));
        }
        headers.push((k.to_vec(), v.to_vec()));
    }
    r.finish()?;
    Ok(ResponseHead {
        status,
        status_line,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> ResponseHead {
        ResponseHead {
            status: 200,
            status_line: b"200 OK".to_vec(),
            headers: vec![
                (b"Content-Type".to_vec(), b"text/plain".to_vec()),
                (b"X-L".to_vec(), b"caf\xe9".to_vec()),
            ],
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode(&encode(&head())).unwrap(), head());
    }

    #[test]
    fn rejects_response_splitting_and_nonsense() {
        let mut h = head();
        h.headers[0].1 = b"text/plain\r\nSet-Cookie: x=1".to_vec();
        assert!(decode(&encode(&h)).is_err());
        let mut h = head();
        h.headers[0].0 = b"Bad Name".to_vec();
        assert!(decode(&encode(&h)).is_err());
        let mut h = head();
        h.status_line = b"404 OK".to_vec();
        assert!(decode(&encode(&h)).is_err());
        let mut h = head();
        h.status = 42;
        h.status_line = b"42 X".to_vec();
        assert!(decode(&encode(&h)).is_err());
        let mut enc = encode(&head());
        enc.push(1);
        assert!(matches!(decode(&enc), Err(IpcError::TrailingBytes(1))));
        let enc = encode(&head());
        for cut in 0..enc.len() {
            assert!(
                decode(&enc[..cut]).is_err(),
                "prefix of {cut} bytes accepted"
            );
        }
    }
}
