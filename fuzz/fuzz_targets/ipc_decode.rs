//! Everything an Apache child decodes from a daemon (and a daemon from an Apache child) must
//! reject hostile bytes with an error, never a panic, an overflow or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mod_rwsgi::ipc::{Frame, head, msg, vars};

fuzz_target!(|data: &[u8]| {
    let _ = Frame::decode(data);
    let _ = vars::decode(data);
    let _ = head::decode(data);
    let _ = msg::parse_u32(data);
    let _ = msg::parse_abort(data);
    let _ = msg::parse_log(data);
    let _ = mod_rwsgi::daemon::request::decode(data, "group");
    // A valid frame header in front of the data exercises the payload decoders too.
    if let Ok(f) = Frame::decode(data) {
        let _ = head::decode(&f.payload);
        let _ = vars::decode(&f.payload);
    }
});
