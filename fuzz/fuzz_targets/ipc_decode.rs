//! Everything an Apache child decodes from a daemon (and a daemon from an Apache child) must
//! reject hostile bytes with an error, never a panic, an overflow or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwsgi_core::ipc::{Frame, head, msg, ring, vars};

fuzz_target!(|data: &[u8]| {
    let _ = Frame::decode(data);
    let _ = vars::decode(data);
    let _ = head::decode(data);
    let _ = msg::parse_u32(data);
    let _ = msg::parse_abort(data);
    let _ = msg::parse_log(data);
    let _ = msg::parse_hello_ack(data);
    if let Ok(mut h) = head::decode(data) {
        if let Ok(f) = head::framing(&mut h) {
            assert!(!h.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(b"transfer-encoding")));
            let _ = f;
        }
    }
    let _ = rwsgi_core::ipc::seal::open(b"key", "group", data);
    let _ = rwsgi_core::request::decode(data, "group");
    // Ring slices a hostile peer announces: a sequence of (offset, len) pairs against a small
    // ring must be accepted or refused, never lead outside it.
    let mut reader = ring::RingReader::new(4096);
    for pair in data.chunks_exact(8) {
        if let Ok((off, len)) = ring::decode_slice(pair) {
            if reader.accept(off, len).is_ok() {
                assert!(off + len <= 4096 && len > 0);
            }
        }
    }
    let mut writer = ring::RingWriter::new(4096);
    for &b in data {
        match writer.reserve(b as usize * 16 + 1) {
            Some((off, n)) if b % 3 != 0 => {
                assert!(off + n <= 4096);
                writer.commit(off, n);
            }
            _ => {
                let _ = writer.credit(b as usize * 16);
            }
        }
        assert!(writer.in_flight() <= 4096);
    }
    // A valid frame header in front of the data exercises the payload decoders too.
    if let Ok(f) = Frame::decode(data) {
        let _ = head::decode(&f.payload);
        let _ = vars::decode(&f.payload);
    }
});
