//! `wsgi.file_wrapper` over a real file: the descriptor goes to the transport (Apache sends
//! it with sendfile, or the daemon passes it to Apache) instead of its bytes through Python.

use super::{Failure, transport_failure};
use crate::exchange::Exchange;
use crate::ffi::interp::Py;
use crate::ffi::object::{Obj, Pending, PyResult, Raised};
use crate::transport::TransportError;

/// The wsgi.file_wrapper fast path: a real regular file goes out with sendfile. Returns
/// false to fall back to iteration.
pub(super) fn try_sendfile(_py: Py<'_>, ex: &Exchange, wrapper: &Obj) -> Result<bool, Failure> {
    if ex.progress().head_sent {
        return Ok(false);
    }
    let probe = (|| -> PyResult<Option<(Obj, i32, u64, u64)>> {
        let filelike = wrapper.getattr(c"filelike")?;
        let Some(fileno) = filelike.getattr_opt(c"fileno")? else {
            return Ok(None);
        };
        let fd = match fileno.call(&[]) {
            Ok(fd) => fd.to_i64()? as i32,
            Err(Raised) => {
                drop(Pending::fetch());
                return Ok(None);
            }
        };
        let Some((size, raw_pos)) = regular_file_size_and_position(fd) else {
            return Ok(None);
        };
        // Where the application's file object stands. A descriptor still at 0 has had nothing
        // read from it or sought on it, so no buffered object over it can be anywhere else:
        // no need to ask `tell()`, whose lseek releases the GIL (one more hand-over per
        // response when other threads wait for it). Otherwise its own answer counts (a
        // buffered reader's is behind the descriptor's by what it holds).
        let offset = match filelike.getattr_opt(c"tell")? {
            Some(tell) if raw_pos != 0 => tell.call(&[])?.to_i64()?.max(0) as u64,
            _ => 0,
        };
        Ok(Some((filelike, fd, offset, size.saturating_sub(offset))))
    })();
    let (filelike, fd, offset, remaining) = match probe {
        Ok(Some(v)) => v,
        Ok(None) => return Ok(false),
        Err(Raised) => return Err(Failure::Python),
    };
    let len = ex.with_head(|h| {
        h.map(|h| match h.content_length {
            Some(cl) => cl.min(remaining),
            None => {
                h.content_length = Some(remaining);
                h.push_header("Content-Length", &remaining.to_string());
                remaining
            }
        })
    });
    let Some(len) = len else {
        return Err(transport_failure(TransportError::NotStarted));
    };
    // Sent by offset (sendfile, or the descriptor passed to Apache): the file's own position
    // stays where the application left it, as with mod_wsgi. A Python `seek` to the end here
    // cost one more GIL hand-over per response.
    drop(filelike);
    ex.send_file(fd, offset, len, true)
        .map_err(transport_failure)?;
    Ok(true)
}

/// The size of `fd` and its position if it is a regular file. fstat and lseek with the GIL
/// held, as mod_wsgi does: neither blocks, and `os.fstat` (or a file object's `tell`) would
/// hand the GIL to another thread and wait to get it back.
fn regular_file_size_and_position(fd: i32) -> Option<(u64, u64)> {
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is the file object's own descriptor (its fileno()), open for as long as
    // the file wrapper holds the object, which outlives this call; fstat and lseek only use
    // it (SEEK_CUR by 0 moves nothing).
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let st = nix::sys::stat::fstat(fd).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    let pos = nix::unistd::lseek(fd, 0, nix::unistd::Whence::SeekCur).ok()?;
    Some((st.st_size.max(0) as u64, pos.max(0) as u64))
}
