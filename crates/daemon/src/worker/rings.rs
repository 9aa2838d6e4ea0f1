//! A connection's shared-memory rings as the daemon side sees them: request bodies taken out
//! of the request ring (with the Credit that hands the space back), response space waited
//! for until Apache credits it.

use rwsgi_core::ipc::channel::Channel;
use rwsgi_core::ipc::frame::Kind;
use rwsgi_core::ipc::msg;
use rwsgi_core::ipc::ring::{self, Inbound, Outbound};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The shared-memory rings of one connection, as this side sees them.
pub struct Rings {
    /// Request heads and bodies from Apache.
    pub request: Inbound,
    /// Response bodies to Apache.
    pub response: Outbound,
}

pub type SharedRings = Arc<Mutex<Rings>>;

pub(super) fn lock(r: &SharedRings) -> MutexGuard<'_, Rings> {
    r.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits for the next Credit frame and returns it to the response ring.
pub(super) fn await_credit(
    ch: &Channel,
    rings: &SharedRings,
    timeout: Option<Duration>,
) -> Result<(), String> {
    match ch.recv(timeout) {
        Ok((f, _)) if f.header.kind == Kind::Credit => {
            let n = msg::parse_u32(&f.payload).map_err(|e| e.to_string())?;
            lock(rings)
                .response
                .credit(n as usize)
                .map_err(|e| e.to_string())
        }
        Ok((f, _)) => Err(format!(
            "unexpected {:?} frame while waiting for ring credit",
            f.header.kind
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// After a response: collects the credit for every slice still out, so the connection is
/// quiet (and the ring empty) before it waits for the next request. False: drop it.
pub fn drain_credits(ch: &Channel, rings: Option<&SharedRings>, timeout: Option<Duration>) -> bool {
    let Some(rings) = rings else { return true };
    while lock(rings).response.in_flight() > 0 {
        if await_credit(ch, rings, timeout).is_err() {
            return false;
        }
    }
    true
}

/// Copies a request slice announced by Apache out of the request ring into `buf` (exactly its
/// length) and returns the credit. Used for ring-borne request heads and bodies.
pub fn take_request_slice(
    ch: &Channel,
    rings: Option<&SharedRings>,
    id: u32,
    payload: &[u8],
    max: usize,
) -> Result<Vec<u8>, String> {
    let (_, n) = ring::decode_slice(payload).map_err(|e| e.to_string())?;
    if n > max {
        return Err(format!("slice of {n} bytes exceeds the {max} asked for"));
    }
    let mut buf = Vec::with_capacity(n);
    let got = take_request_slice_into(ch, rings, id, payload, &mut buf.spare_capacity_mut()[..n])?;
    // SAFETY: take_request_slice_into initialised the first `got` (= n) bytes.
    unsafe { buf.set_len(got) };
    Ok(buf)
}

/// The same, straight into `dst` (the application's read buffer); returns the slice's length.
pub fn take_request_slice_into(
    ch: &Channel,
    rings: Option<&SharedRings>,
    id: u32,
    payload: &[u8],
    dst: &mut [std::mem::MaybeUninit<u8>],
) -> Result<usize, String> {
    let rings = rings.ok_or("ring slice on a connection without rings")?;
    let (off, n) = ring::decode_slice(payload).map_err(|e| e.to_string())?;
    let asked = dst.len();
    let dst = dst
        .get_mut(..n)
        .ok_or_else(|| format!("slice of {n} bytes exceeds the {asked} asked for"))?;
    lock(rings)
        .request
        .take_uninit(off, dst)
        .map_err(|e| e.to_string())?;
    ch.send_parts(Kind::Credit, id, 0, &[&msg::credit_payload(n as u32)])
        .map_err(|e| e.to_string())?;
    Ok(n)
}
