//! The request body: the reading policy, reads, the client timeout while reading.

use super::Request;
use crate::bindings as b;
use crate::socket_bucket::ReadSize;

impl Request<'_> {
    /// Sets the body-reading policy (chunked bodies accepted or refused with 411).
    pub fn setup_body(&self, allow_chunked: bool) -> Result<(), i32> {
        let policy = if allow_chunked {
            b::REQUEST_CHUNKED_DECHUNK
        } else {
            b::REQUEST_CHUNKED_ERROR
        };
        // SAFETY: standard call on the live request before reading the body.
        let rc = unsafe { b::ap_setup_client_block(self.raw(), policy) };
        if rc == b::OK { Ok(()) } else { Err(rc) }
    }

    /// Sets the timeout of the client connection's socket (what the core output filter waits
    /// for a slow client) and returns the previous one, to be restored.
    pub fn set_client_timeout(&self, t: std::time::Duration) -> Option<std::time::Duration> {
        // SAFETY: the connection and its socket live as long as the request.
        unsafe {
            let s = b::ap_get_conn_socket((*self.raw()).connection);
            if s.is_null() {
                return None;
            }
            let mut prev: b::apr_interval_time_t = 0;
            b::apr_socket_timeout_get(s, &mut prev);
            b::apr_socket_timeout_set(s, t.as_micros().min(i64::MAX as u128) as i64);
            u64::try_from(prev)
                .ok()
                .map(std::time::Duration::from_micros)
        }
    }

    /// Reads up to `buf.len()` body bytes, waiting for the client only if none is at hand; 0
    /// at the end of the body.
    pub fn read_body(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: `fill` writes at most buf.len() bytes into buf.
        unsafe { self.fill(buf.as_mut_ptr(), buf.len(), true) }.map(|n| n.unwrap_or(0))
    }

    /// `read_body` into memory that need not be initialised; returns how many bytes at the
    /// front of `buf` were written.
    pub fn read_body_uninit(
        &self,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> std::io::Result<usize> {
        // SAFETY: `fill` writes at most buf.len() bytes into buf (and reads none of it); the
        // caller treats only the first n bytes as initialised.
        unsafe { self.fill(buf.as_mut_ptr().cast(), buf.len(), true) }.map(|n| n.unwrap_or(0))
    }

    /// Body bytes Apache has at hand, read without waiting for the client: `Ok(None)` when
    /// none is there yet, `Ok(Some(0))` at the end of the body.
    pub fn read_body_now_uninit(
        &self,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> std::io::Result<Option<usize>> {
        // SAFETY: as read_body_uninit.
        unsafe { self.fill(buf.as_mut_ptr().cast(), buf.len(), false) }
    }

    /// `read_body` straight into shared memory (a request ring).
    pub fn read_body_shared(
        &self,
        dst: &rwsgi_core::ipc::ring::RawSlice<'_>,
    ) -> std::io::Result<usize> {
        // SAFETY: a RawSlice is `len` bytes of a mapping that stays mapped while it lives;
        // Apache only memcpys body bytes into it (never reads them back).
        unsafe { self.fill(dst.as_ptr(), dst.len(), true) }.map(|n| n.unwrap_or(0))
    }

    /// Up to `len` body bytes into `at`, [`PIECE`] at a time: if `wait`, the first piece
    /// waits for the client; then only what is at hand. `Ok(None)`: nothing at hand and not
    /// waiting. An error after some bytes drops them: the request has failed either way, and
    /// a body must never look complete when it is not.
    ///
    /// # Safety
    /// `at` must be valid for writes of `len` bytes.
    unsafe fn fill(&self, at: *mut u8, len: usize, wait: bool) -> std::io::Result<Option<usize>> {
        let mut filled = 0;
        if wait && len > 0 {
            let piece = len.min(PIECE);
            let _wanting = self.socket_reads_for(piece);
            // SAFETY: the caller's contract; piece <= len.
            let n = unsafe { self.client_block(at, piece) }?;
            if n < piece {
                return Ok(Some(n));
            }
            filled = n;
        }
        while filled < len {
            let piece = (len - filled).min(PIECE);
            let _wanting = self.socket_reads_for(piece);
            // SAFETY: the caller's contract; filled + piece <= len.
            match unsafe { self.brigade_now(at.add(filled), piece) }? {
                Some(n) => {
                    filled += n;
                    if n < piece {
                        break;
                    }
                }
                None if filled == 0 && !wait => return Ok(None),
                None => break,
            }
        }
        Ok(Some(filled))
    }

    /// While the returned guard lives, one `recv` may take what a read of `piece` body bytes
    /// wants: no more than the body still has when its length is known, so that a small body
    /// does not read (and hold) 64 KiB of what follows it.
    fn socket_reads_for(&self, piece: usize) -> ReadSize {
        let r = self.raw();
        // SAFETY: r is the live request; plain field reads on its own thread.
        let (chunked, length, read) =
            unsafe { ((*r).read_chunked != 0, (*r).remaining, (*r).read_length) };
        // `remaining` stays the Content-Length until the end of the body; `read_length` counts
        // what was read of it.
        let wanted = if chunked {
            piece
        } else {
            piece.min(length.saturating_sub(read).max(0) as usize)
        };
        ReadSize::wanting(wanted)
    }

    /// ap_get_client_block into `len` bytes at `at`.
    ///
    /// # Safety
    /// `at` must be valid for writes of `len` bytes.
    unsafe fn client_block(&self, at: *mut u8, len: usize) -> std::io::Result<usize> {
        // SAFETY: the caller's contract; Apache writes at most `len` bytes there.
        let n = unsafe { b::ap_get_client_block(self.raw(), at.cast(), len as _) };
        if n < 0 {
            Err(body_read_error())
        } else {
            Ok(n as usize)
        }
    }

    /// A non-blocking ap_get_brigade of up to `len` bytes into `at`, keeping the request's
    /// body state as ap_get_client_block does: `Ok(None)` when nothing is at hand,
    /// `Ok(Some(0))` at the end of the body.
    ///
    /// # Safety
    /// `at` must be valid for writes of `len` bytes.
    unsafe fn brigade_now(&self, at: *mut u8, len: usize) -> std::io::Result<Option<usize>> {
        let r = self.raw();
        // SAFETY: r is the live request, used from its own thread; the brigade is made from
        // the request's pool and destroyed before returning; apr_brigade_flatten writes at
        // most `len` bytes at `at` (the caller's contract).
        unsafe {
            if (*r).remaining < 0 || ((*r).read_chunked == 0 && (*r).remaining == 0) {
                return Ok(Some(0));
            }
            let bb = b::apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc);
            let rv = b::ap_get_brigade(
                (*r).input_filters,
                bb,
                b::ap_input_mode_t_AP_MODE_READBYTES,
                b::apr_read_type_e_APR_NONBLOCK_READ,
                len as b::apr_off_t,
            );
            let result = if rv == libc::EAGAIN || (rv == 0 && b::rwsgi_brigade_empty(bb) != 0) {
                Ok(None)
            } else if rv != 0 {
                (*(*r).connection).keepalive = b::ap_conn_keepalive_e_AP_CONN_CLOSE;
                Err(body_read_error())
            } else {
                let eos = b::rwsgi_brigade_ends_with_eos(bb) != 0;
                if eos {
                    (*r).remaining = if (*r).read_chunked != 0 { -1 } else { 0 };
                }
                let mut got = len as b::apr_size_t;
                if b::apr_brigade_flatten(bb, at.cast(), &mut got) != 0 {
                    Err(body_read_error())
                } else {
                    (*r).read_length += got as b::apr_off_t;
                    Ok((got > 0 || eos).then_some(got as usize))
                }
            };
            b::apr_brigade_destroy(bb);
            result
        }
    }
}

/// The most body bytes one filter-chain read asks for, and so the most one `recv` takes
/// (`socket_bucket`). The core input filter reads all it is asked for at once. When it did
/// so in APR's 8 KB heap buckets (freed into the connection's allocator, which keeps up to
/// MaxMemFree of them), 256 KiB pieces left each connection holding 256 KiB; against 16 KiB,
/// 64 KiB saved 5-8 % of the CPU per 1 MiB body for 6-10 % more memory. With the socket
/// bucket's malloc'd buffers, 256 KiB pieces were measured again (A/B, 3 reps): embedded
/// `read(256k)` +8 % req/s but 33 % more PSS, `read(1m)` -7 %, daemon mode 2-7 % slower.
const PIECE: usize = 64 * 1024;

/// What a failed body read says (Apache's status code is not told apart by its callers either).
fn body_read_error() -> std::io::Error {
    std::io::Error::other(
        "request body read error (client disconnected, timed out or sent a malformed body)",
    )
}
