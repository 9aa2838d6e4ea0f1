//! The bytes of a daemon-mode request that travel outside its head: the request body the
//! daemon pulls (read by Apache straight into the request ring when it asks for a bulk read),
//! response body slices (sent by Apache straight from the response ring), files passed for
//! sendfile.

use rwsgi_apache::Request;
use rwsgi_core::ipc::frame::{Frame, Kind, MAX_PAYLOAD};
use rwsgi_core::ipc::msg;
use rwsgi_core::ipc::ring::{self, Inbound, Outbound, RawSlice, SHM_THRESHOLD};
use std::cell::RefCell;
use std::os::fd::OwnedFd;

thread_local! {
    /// Bytes copied out of (or on their way into) a ring, reused across requests.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads up to `want` bytes of the request body for the daemon: through the request ring when
/// the daemon asked for a bulk read and the bytes are many, else inline.
pub fn body_reply(req: &Request<'_>, id: u32, want: usize, ring: Option<&mut Outbound>) -> Frame {
    let mut ring = ring.filter(|_| want >= SHM_THRESHOLD);
    let cap = match &ring {
        Some(o) => ring::max_slice(o.capacity()),
        None => MAX_PAYLOAD as usize,
    };
    let want = want.clamp(1, cap);
    let Some(o) = ring.as_mut() else {
        return SCRATCH.with_borrow_mut(|buf| {
            // Never more than a frame's worth of scratch per Apache thread (it lives as long
            // as the thread).
            if buf.len() < want {
                buf.resize(want, 0);
            }
            match req.read_body(&mut buf[..want]) {
                Ok(0) => Frame::new(Kind::BodyEnd, id, vec![]),
                Ok(n) => Frame::new(Kind::Body, id, buf[..n].to_vec()),
                Err(e) => msg::abort(id, 400, &e.to_string()),
            }
        });
    };
    // The daemon pulls the body, so it has returned every earlier slice before asking
    // again: each slice starts the ring afresh. Apache reads the body straight into it, as
    // much as the client has sent (waiting only if it has sent nothing yet).
    o.reset();
    let filled = match o.stage_raw(0, want) {
        Ok(dst) => match req.read_body_shared(&dst) {
            Ok(n) => n,
            Err(e) => return msg::abort(id, 400, &e.to_string()),
        },
        Err(_) => return msg::abort(id, 500, "request ring unavailable"),
    };
    if filled == 0 {
        return Frame::new(Kind::BodyEnd, id, vec![]);
    }
    match o.announce(filled) {
        Some((off, n)) => Frame::ring_slice(Kind::Body, id, off, n),
        None => msg::abort(id, 500, "request ring unavailable"),
    }
}

/// Validates a response slice announced by the daemon and hands it out in place.
pub fn response_slice<'a>(p: &[u8], ring: Option<&'a mut Inbound>) -> Result<RawSlice<'a>, String> {
    let ring = ring.ok_or("no response ring on this connection")?;
    let (off, n) = ring::decode_slice(p).map_err(|e| e.to_string())?;
    if n > ring.capacity() {
        return Err(format!("slice of {n} bytes"));
    }
    ring.take_raw(off, n).map_err(|e| e.to_string())
}

/// Checks a file passed for sendfile: exactly one descriptor, a regular file, and the slice
/// clamped to the file's size.
pub fn file_slice(p: &[u8], mut fds: Vec<OwnedFd>) -> Result<(OwnedFd, i64, i64), String> {
    let (off, len) = msg::parse_file_slice(p).map_err(|e| e.to_string())?;
    if fds.len() != 1 {
        return Err(format!("{} descriptors", fds.len()));
    }
    let fd = fds.pop().ok_or("no descriptor")?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| e.to_string())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err("not a regular file".into());
    }
    let size = st.st_size.max(0) as u64;
    let off = off.min(size);
    let len = len.min(size - off);
    Ok((fd, off as i64, len as i64))
}
