//! `wsgi.file_wrapper` over a real file: the descriptor goes to the transport (Apache sends
//! it with sendfile, or the daemon passes it to Apache) instead of its bytes through Python.

use super::{Failure, transport_failure};
use crate::exchange::Exchange;
use crate::ffi::interp::Py;
use crate::ffi::object::{Obj, Pending, PyResult, Raised, cstring, import};
use crate::transport::TransportError;

/// The wsgi.file_wrapper fast path: a real regular file goes out with sendfile. Returns
/// false to fall back to iteration.
pub(super) fn try_sendfile(py: Py<'_>, ex: &Exchange, wrapper: &Obj) -> Result<bool, Failure> {
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
        let os = import(py, c"os")?;
        let st = os.call_method(c"fstat", &[&Obj::int(py, fd as i64)?])?;
        let mode = st.getattr(c"st_mode")?;
        let is_reg = import(py, c"stat")?.call_method(c"S_ISREG", &[&mode])?;
        // SAFETY-free truthiness: S_ISREG returns a bool.
        if is_reg.as_ptr() != Obj::bool(py, true).as_ptr() {
            return Ok(None);
        }
        let size = st.getattr(c"st_size")?.to_i64()?.max(0) as u64;
        let offset = match filelike.getattr_opt(c"tell")? {
            Some(tell) => tell.call(&[])?.to_i64()?.max(0) as u64,
            None => 0,
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
                h.headers
                    .push(("Content-Length".into(), remaining.to_string()));
                remaining
            }
        })
    });
    let Some(len) = len else {
        return Err(transport_failure(TransportError::NotStarted));
    };
    ex.send_file(fd, offset, len, true)
        .map_err(transport_failure)?;
    // Leave the file where a reader that consumed the data would have left it.
    let seek = cstring("seek");
    let _ =
        Obj::int(py, (offset + len) as i64).and_then(|pos| filelike.call_method(&seek, &[&pos]));
    drop(Pending::fetch());
    Ok(true)
}
