//! The response head a daemon sends: status line and headers, validated on receipt as if an
//! attacker wrote them (the Apache child must never emit a split or malformed response).

use super::IpcError;
use super::frame::Reader;
use std::borrow::Cow;

/// Caps that keep a hostile daemon from making the Apache child allocate without bound.
pub const MAX_HEADERS: usize = 1000;
pub const MAX_HEAD_BYTES: usize = 1 << 20;

/// Borrowed from the frame it was decoded from (the Apache side copies it into the request's
/// pool anyway), owned where the daemon builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    pub status: u16,
    /// The whole status line as the application gave it ("200 OK"), latin-1 bytes.
    pub status_line: Cow<'a, [u8]>,
    pub headers: Vec<Header<'a>>,
}

/// A header's name and value.
pub type Header<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

pub fn encode(h: &ResponseHead<'_>) -> Vec<u8> {
    let len = 2
        + 4
        + h.status_line.len()
        + 4
        + h.headers
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(len);
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

/// A whole response in one frame (ResponseHead with FLAG_END) is this prefix (the encoded
/// head's length), the encoded head, then the entire body.
pub fn whole_prefix(head: &[u8]) -> [u8; 4] {
    (head.len() as u32).to_le_bytes()
}

/// The encoded head and the body of a whole-response payload ([`whole_prefix`]).
pub fn split_body(payload: &[u8]) -> Result<(&[u8], &[u8]), IpcError> {
    let mut r = Reader::new(payload);
    let len = r.u32()? as usize;
    let head = r.bytes(len)?;
    Ok((head, r.rest()))
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

pub fn decode(buf: &[u8]) -> Result<ResponseHead<'_>, IpcError> {
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
    let status_line = r.bytes(line_len)?;
    if !(100..=999).contains(&status)
        || status_line.len() < 3
        || status_line[..3] != *crate::decimal::Decimal::new(status.into()).as_bytes()
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
        headers.push((Cow::Borrowed(k), Cow::Borrowed(v)));
    }
    r.finish()?;
    Ok(ResponseHead {
        status,
        status_line: Cow::Borrowed(status_line),
        headers,
    })
}

/// Headers that describe one HTTP connection, not the response: Apache owns them. A daemon
/// that sends one is not trusted with it (PEP 3333 forbids them in applications; a raw frame
/// writer can still send them).
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// How the Apache side frames a daemon's response, decided from its head alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framing {
    /// The body has exactly this many bytes (the one Content-Length the head declared).
    pub content_length: Option<u64>,
    /// The daemon asked for `Connection: close`: honoured, the client connection closes.
    pub close: bool,
    /// The hop-by-hop headers that were dropped (by name, as sent).
    pub dropped: Vec<String>,
}

/// Removes the hop-by-hop headers from `h` and checks its Content-Length: an empty,
/// signed, non-numeric or overflowing value, or two different values, is an error (the
/// response cannot be framed; the Apache side answers 502).
pub fn framing(h: &mut ResponseHead<'_>) -> Result<Framing, IpcError> {
    let mut f = Framing {
        content_length: None,
        close: false,
        dropped: Vec::new(),
    };
    let mut err = None;
    h.headers.retain(|(k, v)| {
        let name = String::from_utf8_lossy(k);
        if name.eq_ignore_ascii_case("content-length") {
            match content_length(v) {
                Some(n) if f.content_length.is_none_or(|m| m == n) => f.content_length = Some(n),
                Some(_) => err = Some(IpcError::Invalid("Content-Length (two different values)")),
                None => err = Some(IpcError::Invalid("Content-Length")),
            }
            // One Content-Length goes out, from `content_length`.
            return false;
        }
        if !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            return true;
        }
        if name.eq_ignore_ascii_case("connection") {
            f.close |= v
                .split(|&c| c == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        f.dropped.push(name.into_owned());
        false
    });
    match err {
        Some(e) => Err(e),
        None => Ok(f),
    }
}

/// A Content-Length value: digits only (optional surrounding blanks), at most 19 of them.
fn content_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with<'a>(headers: &[(&'a str, &'a str)]) -> ResponseHead<'a> {
        ResponseHead {
            status: 200,
            status_line: Cow::Borrowed(b"200 OK"),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_bytes().into(), v.as_bytes().into()))
                .collect(),
        }
    }

    fn with_body(head: &[u8], body: &[u8]) -> Vec<u8> {
        [&whole_prefix(head)[..], head, body].concat()
    }

    #[test]
    fn a_whole_response_splits_into_its_head_and_body() {
        let h = encode(&with(&[("Content-Length", "5")]));
        let p = with_body(&h, b"hello");
        let (head, body) = split_body(&p).unwrap();
        assert_eq!(decode(head).unwrap(), with(&[("Content-Length", "5")]));
        assert_eq!(body, b"hello");
        assert_eq!(split_body(&with_body(&h, b"")).unwrap().1, b"");
        // a head length past the payload is refused, not read past
        let mut bad = p.clone();
        bad[..4].copy_from_slice(&(p.len() as u32).to_le_bytes());
        assert!(split_body(&bad).is_err());
        assert!(split_body(&p[..3]).is_err());
    }

    #[test]
    fn framing_drops_hop_by_hop_and_honours_close() {
        let mut h = with(&[
            ("Content-Type", "text/plain"),
            ("Transfer-Encoding", "chunked"),
            ("connection", "keep-alive, Close"),
            ("Keep-Alive", "timeout=5"),
            ("Upgrade", "h2c"),
            ("TE", "trailers"),
            ("Trailer", "X-T"),
            ("Content-Length", " 12 "),
            ("Content-Length", "12"),
        ]);
        let f = framing(&mut h).unwrap();
        assert_eq!(f.content_length, Some(12));
        assert!(f.close);
        assert_eq!(f.dropped.len(), 6);
        assert_eq!(h.headers, with(&[("Content-Type", "text/plain")]).headers);
        let f = framing(&mut with(&[("Connection", "keep-alive")])).unwrap();
        assert!(!f.close && f.content_length.is_none());
    }

    #[test]
    fn framing_refuses_unusable_content_lengths() {
        for bad in [
            "",
            " ",
            "-1",
            "+5",
            "1e3",
            "0x10",
            "12 13",
            "99999999999999999999",
        ] {
            assert!(
                framing(&mut with(&[("Content-Length", bad)])).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(
            framing(&mut with(&[
                ("Content-Length", "1"),
                ("content-length", "2")
            ]))
            .is_err()
        );
        assert_eq!(
            framing(&mut with(&[("Content-Length", "0")]))
                .unwrap()
                .content_length,
            Some(0)
        );
    }

    fn head() -> ResponseHead<'static> {
        ResponseHead {
            status: 200,
            status_line: Cow::Borrowed(b"200 OK"),
            headers: vec![
                (b"Content-Type"[..].into(), b"text/plain"[..].into()),
                (b"X-L"[..].into(), b"caf\xe9"[..].into()),
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
        h.headers[0].1 = b"text/plain\r\nSet-Cookie: x=1"[..].into();
        assert!(decode(&encode(&h)).is_err());
        let mut h = head();
        h.headers[0].0 = b"Bad Name"[..].into();
        assert!(decode(&encode(&h)).is_err());
        let mut h = head();
        h.status_line = b"404 OK"[..].into();
        assert!(decode(&encode(&h)).is_err());
        let mut h = head();
        h.status = 42;
        h.status_line = b"42 X"[..].into();
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
