//! Checks of what an application passes to `start_response`, raising the Python exception a
//! WSGI application gets from mod_wsgi for the same mistake (the request then ends in a 500
//! with the traceback in the error log).

use super::ffi::object::{Obj, PyResult, exc, raise};
use super::transport::ResponseHead;

/// Headers PEP 3333 forbids applications to send: they describe the connection, which the
/// server owns. (mod_wsgi passes them through; a `Transfer-Encoding` from the application
/// breaks the response framing.)
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

fn native_string(v: &Obj, what: &str) -> PyResult<String> {
    if !v.is_str() {
        return Err(raise(
            exc::type_error(),
            &format!(
                "expected unicode object for {what}, value of type {} found",
                v.type_name()
            ),
        ));
    }
    let bytes = v.to_latin1()?;
    Ok(bytes.iter().map(|&b| b as char).collect())
}

/// Parses and checks a status line; returns the code.
pub fn status_code(line: &str) -> Result<u16, String> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return Err(format!("status code is not a 3 digit number: '{line}'"));
    }
    if b.len() == 3 || b[3] != b' ' {
        return Err(format!("no space following status code: '{line}'"));
    }
    if b.iter().any(|&c| c < 0x20 || c == 0x7f) {
        return Err(format!(
            "control character present in status line: '{}'",
            line.escape_debug()
        ));
    }
    let code: u16 = line[..3]
        .parse()
        .map_err(|_| format!("invalid status code: '{line}'"))?;
    if !(100..=999).contains(&code) {
        return Err(format!("invalid status code: '{line}'"));
    }
    Ok(code)
}

/// Checks one header; returns the parsed Content-Length if it is one.
pub fn header(name: &str, value: &str) -> Result<Option<u64>, String> {
    if name.is_empty() || name.bytes().any(|c| c <= 0x20 || c == 0x7f || c == b':') {
        return Err(format!(
            "invalid characters in response header name '{}'",
            name.escape_debug()
        ));
    }
    if value.bytes().any(|c| c == b'\r' || c == b'\n') {
        return Err(format!(
            "embedded newline in response header with name '{name}' and value '{}'",
            value.escape_debug()
        ));
    }
    if value.bytes().any(|c| c == 0) {
        return Err(format!(
            "embedded NUL in response header with name '{name}'"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if HOP_BY_HOP.contains(&lower.as_str()) {
        return Err(format!(
            "hop-by-hop header '{name}' is not allowed in a WSGI response (PEP 3333)"
        ));
    }
    if lower == "content-length" {
        let v = value.trim();
        return match v.parse::<u64>() {
            Ok(n) if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) => Ok(Some(n)),
            _ => Err(format!("invalid content length '{value}'")),
        };
    }
    Ok(None)
}

pub fn response_head(status: &Obj, headers: &Obj) -> PyResult<ResponseHead> {
    let status_line = native_string(status, "status")?;
    let code = status_code(&status_line).map_err(|m| raise(exc::value_error(), &m))?;
    if !headers.is_list() {
        return Err(raise(
            exc::type_error(),
            &format!(
                "expected list object for response headers, value of type {} found",
                headers.type_name()
            ),
        ));
    }
    let n = headers.size()?;
    let mut out = Vec::with_capacity(n);
    let mut content_length = None;
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
                    "expected tuple object for response header, value of type {} found",
                    item.type_name()
                ),
            ));
        }
        if item.size()? != 2 {
            return Err(raise(
                exc::value_error(),
                &format!("tuple of length 2 expected, length is {}", item.size()?),
            ));
        }
        let (Some(k), Some(v)) = (item.seq_item(0), item.seq_item(1)) else {
            return Err(raise(exc::value_error(), "malformed response header"));
        };
        let name = native_string(&k, "header name")?;
        let value = native_string(&v, "header value")?;
        if let Some(cl) = header(&name, &value).map_err(|m| raise(exc::value_error(), &m))? {
            content_length = Some(cl);
        }
        out.push((name, value));
    }
    Ok(ResponseHead {
        status: code,
        status_line,
        headers: out,
        content_length,
    })
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
        assert!(status_code("20x OK").is_err());
        assert!(status_code("200 O\nK").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(header("Content-Type", "text/plain"), Ok(None));
        assert_eq!(header("Content-Length", "12"), Ok(Some(12)));
        assert!(header("Content-Length", "abc").is_err());
        assert!(header("Content-Length", "-1").is_err());
        assert!(
            header("X-A", "a\r\nSet-Cookie: x")
                .unwrap_err()
                .contains("X-A")
        );
        assert!(header("Bad Name", "v").is_err());
        assert!(
            header("Transfer-Encoding", "chunked")
                .unwrap_err()
                .contains("hop-by-hop")
        );
        assert!(header("connection", "close").is_err());
    }
}
