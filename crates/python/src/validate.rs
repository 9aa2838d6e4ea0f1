//! Checks of what an application passes to `start_response`, raising the Python exception a
//! WSGI application gets from mod_wsgi for the same mistake (the request then ends in a 500
//! with the traceback in the error log).

use super::ffi::object::{Obj, Pending, PyResult, exc, raise};
use super::transport::ResponseHead;
use std::borrow::Cow;

/// Headers PEP 3333 forbids applications to send: they describe the connection, which the
/// server owns. They are dropped (mod_wsgi passes them through, and a `Transfer-Encoding`
/// from the application then breaks the response framing); `Connection: close` is honoured.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// A `str` whose characters all fit in Latin-1 (PEP 3333 "native string"); returned with one
/// char per byte, borrowed from the object when it is ASCII.
fn native_string(v: &Obj) -> PyResult<Cow<'_, str>> {
    if !v.is_str() {
        return Err(raise(
            exc::type_error(),
            &format!(
                "expected unicode object, value of type {} found",
                v.type_name()
            ),
        ));
    }
    // ASCII (nearly every status line and header) is its own latin-1: borrowed, not encoded.
    match v.as_str() {
        Ok(s) if s.is_ascii() => return Ok(s.into()),
        Ok(_) => {}
        // (lone surrogates: the latin-1 encoding below refuses them with the usual message)
        Err(_) => drop(Pending::fetch()),
    }
    match v.to_latin1() {
        Ok(bytes) => Ok(bytes.iter().map(|&b| b as char).collect::<String>().into()),
        Err(_) => {
            drop(Pending::fetch());
            Err(raise(
                exc::value_error(),
                "unicode object contains non latin-1 characters",
            ))
        }
    }
}

/// Parses and checks a status line (mod_wsgi's wording); returns the code.
pub fn status_code(line: &str) -> Result<u16, String> {
    let b = line.as_bytes();
    if b.len() < 3
        || !b[..3].iter().all(u8::is_ascii_digit)
        || b.get(3).is_some_and(u8::is_ascii_digit)
    {
        return Err(format!(
            "status code is not a 3 digit integer: '{}'",
            line.escape_debug()
        ));
    }
    if b.len() == 3 || b[3] != b' ' {
        return Err(format!(
            "no space following status code: '{}'",
            line.escape_debug()
        ));
    }
    if b.iter().any(|&c| c < 0x20 || c == 0x7f) {
        return Err(format!(
            "control character present in reason phrase: '{}'",
            line.escape_debug()
        ));
    }
    let code: u16 = line[..3]
        .parse()
        .map_err(|_| format!("status code is not a 3 digit integer: '{line}'"))?;
    if code < 100 {
        return Err(format!("status code is not a 3 digit integer: '{line}'"));
    }
    Ok(code)
}

/// What a valid response header is to the server.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderKind {
    Plain,
    ContentLength(u64),
    /// A hop-by-hop header: not passed on.
    HopByHop,
}

/// Checks one header (mod_wsgi's wording, plus the header named).
pub fn header(name: &str, value: &str) -> Result<HeaderKind, String> {
    if name.is_empty() {
        return Err("header name is empty".into());
    }
    if name.bytes().any(|c| c == b' ' || c == b'\t') {
        return Err(format!(
            "space character present in header name '{}'",
            name.escape_debug()
        ));
    }
    if name.bytes().any(|c| c < 0x20 || c == 0x7f || c == b':') {
        return Err(format!(
            "control character present in header name '{}'",
            name.escape_debug()
        ));
    }
    if value.bytes().any(|c| c == b'\r' || c == b'\n') {
        return Err(format!(
            "carriage return/line feed character present in header value of '{name}': '{}'",
            value.escape_debug()
        ));
    }
    if value.bytes().any(|c| c == 0) {
        return Err(format!("NUL character present in header value of '{name}'"));
    }
    if HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name)) {
        return Ok(HeaderKind::HopByHop);
    }
    if name.eq_ignore_ascii_case("content-length") {
        let v = value.trim();
        return match v.parse::<u64>() {
            Ok(n) if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) => {
                Ok(HeaderKind::ContentLength(n))
            }
            _ => Err(format!("invalid content length: '{value}'")),
        };
    }
    Ok(HeaderKind::Plain)
}

/// `Connection: close` (a comma-separated token list, any case).
fn asks_close(name: &str, value: &str) -> bool {
    name.eq_ignore_ascii_case("connection")
        && value
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
}

pub fn response_head(status: &Obj, headers: &Obj) -> PyResult<ResponseHead> {
    let status_line = native_string(status)?;
    let code = status_code(&status_line).map_err(|m| raise(exc::value_error(), &m))?;
    if !headers.is_list() {
        return Err(raise(
            exc::type_error(),
            &format!(
                "start_response() argument 2 must be list, not {}",
                headers.type_name()
            ),
        ));
    }
    let n = headers.size()?;
    let mut head = ResponseHead::new(code, &status_line, n);
    for i in 0..n {
        let item = headers.seq_item(i).ok_or_else(|| {
            raise(
                exc::value_error(),
                "response headers changed while being read",
            )
        })?;
        if !item.is_tuple() {
            return Err(raise(
                exc::type_error(),
                &format!(
                    "list of tuple values expected, value of type {} found",
                    item.type_name()
                ),
            ));
        }
        if item.size()? != 2 {
            return Err(raise(
                exc::value_error(),
                &format!(
                    "tuple of length 2 expected for header, length is {}",
                    item.size()?
                ),
            ));
        }
        let (Some(k), Some(v)) = (item.seq_item(0), item.seq_item(1)) else {
            return Err(raise(exc::value_error(), "malformed response header"));
        };
        let name = native_string(&k)?;
        let value = native_string(&v)?;
        match header(&name, &value).map_err(|m| raise(exc::value_error(), &m))? {
            HeaderKind::Plain => {}
            HeaderKind::ContentLength(n) => head.content_length = Some(n),
            HeaderKind::HopByHop => {
                head.close_connection |= asks_close(&name, &value);
                if !head.dropped.iter().any(|d| d.eq_ignore_ascii_case(&name)) {
                    head.dropped.push(name.into_owned());
                }
                continue;
            }
        }
        head.push_header(&name, &value);
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_code("200 OK"), Ok(200));
        assert_eq!(status_code("404 not found"), Ok(404));
        assert!(status_code("2000 OK").is_err());
        assert!(status_code("200").unwrap_err().contains("no space"));
        assert!(
            status_code("2000 OK")
                .unwrap_err()
                .contains("3 digit integer")
        );
        assert!(status_code("20x OK").is_err());
        assert!(status_code("200 O\nK").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(header("Content-Type", "text/plain"), Ok(HeaderKind::Plain));
        assert_eq!(
            header("Content-Length", "12"),
            Ok(HeaderKind::ContentLength(12))
        );
        assert!(header("Content-Length", "abc").is_err());
        assert!(header("Content-Length", "-1").is_err());
        assert!(
            header("X-A", "a\r\nSet-Cookie: x")
                .unwrap_err()
                .contains("X-A")
        );
        assert!(header("Bad Name", "v").is_err());
        assert_eq!(
            header("Transfer-Encoding", "chunked"),
            Ok(HeaderKind::HopByHop)
        );
        assert_eq!(header("connection", "close"), Ok(HeaderKind::HopByHop));
    }

    #[test]
    fn connection_close_is_a_token() {
        assert!(asks_close("Connection", "close"));
        assert!(asks_close("connection", "Upgrade, CLOSE"));
        assert!(!asks_close("Connection", "keep-alive"));
        assert!(!asks_close("Keep-Alive", "close"));
        assert!(!asks_close("Connection", "closed"));
    }
}
