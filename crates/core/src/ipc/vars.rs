//! The request head: CGI-style variables as a table of (offset, length) pairs into a byte
//! arena. Offsets are relative to the arena, so validating one is a single checked addition
//! against the arena's length.

use super::IpcError;
use super::frame::Reader;

/// More variables than any real request has (Apache's default header limit is 100).
pub const MAX_VARS: usize = 1024;
const ENTRY_LEN: usize = 16;

/// Encodes `vars` (keys and values are byte strings without NUL; keys without '=').
pub fn encode<K: AsRef<[u8]>, V: AsRef<[u8]>>(vars: &[(K, V)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(
        &mut out,
        vars.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
        0,
    );
    out
}

/// Appends the table of `vars` to `out`, with room for `room` more bytes after it. `vars` is
/// walked three times (sizes, table, arena), so the caller needs no list of its own and `out`
/// can be a buffer kept between requests (a request head is ~2 KiB: two such allocations per
/// request were glibc's large-chunk path, malloc_consolidate included).
pub fn encode_into<'a, I>(out: &mut Vec<u8>, vars: I, room: usize)
where
    I: Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    let (count, arena_len) = vars.clone().fold((0usize, 0usize), |(n, len), (k, v)| {
        (n + 1, len + k.len() + v.len())
    });
    out.reserve(4 + count * ENTRY_LEN + arena_len + room);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    let mut off = 0u32;
    for (k, v) in vars.clone() {
        for part in [k, v] {
            out.extend_from_slice(&off.to_le_bytes());
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            off += part.len() as u32;
        }
    }
    for (k, v) in vars {
        out.extend_from_slice(k);
        out.extend_from_slice(v);
    }
}

/// Decodes and validates a variable table; the slices borrow from `buf`.
/// One decoded variable: name and value, borrowed from the payload.
pub type Var<'a> = (&'a [u8], &'a [u8]);

pub fn decode(buf: &[u8]) -> Result<Vec<Var<'_>>, IpcError> {
    let mut r = Reader::new(buf);
    let count = r.u32()? as usize;
    if count > MAX_VARS {
        return Err(IpcError::TooLarge {
            what: "variable count",
            len: count as u64,
            max: MAX_VARS as u64,
        });
    }
    let table_len = count.checked_mul(ENTRY_LEN).ok_or(IpcError::Truncated)?;
    let table = r.bytes(table_len)?;
    let arena = r.rest();
    let slice = |off: u32, len: u32| -> Result<&[u8], IpcError> {
        let start = off as usize;
        let end = start
            .checked_add(len as usize)
            .ok_or(IpcError::OutOfBounds)?;
        arena.get(start..end).ok_or(IpcError::OutOfBounds)
    };
    let mut t = Reader::new(table);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let (ko, kl, vo, vl) = (t.u32()?, t.u32()?, t.u32()?, t.u32()?);
        let key = slice(ko, kl)?;
        let val = slice(vo, vl)?;
        if key.is_empty() || key.iter().any(|&c| c == 0 || c == b'=') {
            return Err(IpcError::Invalid("variable name"));
        }
        if val.contains(&0) {
            return Err(IpcError::Invalid("variable value (NUL)"));
        }
        out.push((key, val));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let vars = vec![
            ("REQUEST_METHOD", &b"GET"[..]),
            ("PATH_INFO", &b"/caf\xe9"[..]),
            ("EMPTY", &b""[..]),
        ];
        let enc = encode(&vars);
        let dec = decode(&enc).unwrap();
        assert_eq!(dec.len(), 3);
        assert_eq!(dec[1], (&b"PATH_INFO"[..], &b"/caf\xe9"[..]));
        assert_eq!(dec[2].1, b"");
    }

    #[test]
    fn rejects_hostile_tables() {
        let enc = encode(&[("A", "b")]);
        // offset beyond the arena
        let mut bad = enc.clone();
        bad[4..8].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(decode(&bad), Err(IpcError::OutOfBounds)));
        // offset + length overflowing u32 arithmetic
        let mut bad = enc.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&bad).is_err());
        // count larger than the table
        let mut bad = enc.clone();
        bad[0..4].copy_from_slice(&5u32.to_le_bytes());
        assert!(decode(&bad).is_err());
        // absurd count
        let mut bad = enc.clone();
        bad[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&bad), Err(IpcError::TooLarge { .. })));
        // NUL and '=' in names, NUL in values
        assert!(decode(&encode(&[("A=B", "v")])).is_err());
        assert!(decode(&encode(&[("A\0", "v")])).is_err());
        assert!(decode(&encode(&[("", "v")])).is_err());
        assert!(decode(&encode(&[("A", "v\0")])).is_err());
        assert!(decode(&[]).is_err());
    }
}
