//! C strings for lookups by name (Apache tables, Python dicts), without a heap allocation
//! for the short names rwsgi looks up several times per request.

use std::ffi::{CStr, CString};

/// Runs `f` with `s` as a C string, on the stack when short; None if `s` holds a NUL byte.
pub fn with_cstr<T>(s: &str, f: impl FnOnce(&CStr) -> T) -> Option<T> {
    let mut buf = [0u8; 64];
    if s.len() < buf.len() {
        buf[..s.len()].copy_from_slice(s.as_bytes());
        CStr::from_bytes_with_nul(&buf[..=s.len()]).ok().map(f)
    } else {
        CString::new(s).ok().map(|c| f(&c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_long_and_nul() {
        assert_eq!(
            with_cstr("HTTP_HOST", |c| c.to_bytes().to_vec()),
            Some(b"HTTP_HOST".to_vec())
        );
        let long = "x".repeat(200);
        assert_eq!(with_cstr(&long, |c| c.to_bytes().len()), Some(200));
        let edge = "y".repeat(63);
        assert_eq!(with_cstr(&edge, |c| c.to_bytes().len()), Some(63));
        assert_eq!(with_cstr("a\0b", |_| ()), None);
        assert_eq!(with_cstr("", |c| c.to_bytes().len()), Some(0));
    }
}
