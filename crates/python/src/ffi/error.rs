//! Python exceptions from Rust's side: raising one, the standard types, and taking the
//! pending one out of the thread state to restore or print later.

use super::interp::Py;
use super::object::{Obj, PyResult, Raised, import};
use pyo3_ffi as ffi;
use std::ffi::CString;

pub fn err_occurred() -> bool {
    // SAFETY: reads the current thread's exception state.
    unsafe { !ffi::PyErr_Occurred().is_null() }
}

/// Raises `exc(msg)` in the current thread state.
pub(crate) fn raise(exc: *mut ffi::PyObject, msg: &str) -> Raised {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: sets the exception; `c` is copied by Python.
    unsafe { ffi::PyErr_SetString(exc, c.as_ptr()) };
    Raised
}

/// The standard exception types used by the WSGI layer.
pub mod exc {
    use super::ffi;
    pub fn type_error() -> *mut ffi::PyObject {
        // SAFETY: the address of a static built-in exception type.
        unsafe { ffi::PyExc_TypeError }
    }
    pub fn value_error() -> *mut ffi::PyObject {
        // SAFETY: the address of a static built-in exception type.
        unsafe { ffi::PyExc_ValueError }
    }
    pub fn runtime_error() -> *mut ffi::PyObject {
        // SAFETY: the address of a static built-in exception type.
        unsafe { ffi::PyExc_RuntimeError }
    }
    pub fn os_error() -> *mut ffi::PyObject {
        // SAFETY: the address of a static built-in exception type.
        unsafe { ffi::PyExc_OSError }
    }
    pub fn system_error() -> *mut ffi::PyObject {
        // SAFETY: the address of a static built-in exception type.
        unsafe { ffi::PyExc_SystemError }
    }
    pub fn assertion_error() -> *mut ffi::PyObject {
        // SAFETY: the address of a static built-in exception type.
        unsafe { ffi::PyExc_AssertionError }
    }
}

/// The pending exception, taken out of the thread state (so it can be re-raised later).
pub struct Pending {
    ty: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
    tb: *mut ffi::PyObject,
}

impl Pending {
    pub fn fetch() -> Option<Pending> {
        let (mut ty, mut value, mut tb) = (
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        // SAFETY: moves the exception triple (new references) out of the thread state.
        unsafe {
            ffi::PyErr_Fetch(&mut ty, &mut value, &mut tb);
            if ty.is_null() {
                return None;
            }
            ffi::PyErr_NormalizeException(&mut ty, &mut value, &mut tb);
        }
        Some(Pending { ty, value, tb })
    }

    /// Puts the exception back (ownership moves to the thread state).
    pub fn restore(self) -> Raised {
        let p = std::mem::ManuallyDrop::new(self);
        // SAFETY: PyErr_Restore steals the three references.
        unsafe { ffi::PyErr_Restore(p.ty, p.value, p.tb) };
        Raised
    }

    /// `traceback.format_exception(...)` lines, or a fallback description.
    /// `(type, value, traceback)` as `sys.exc_info()` gives it (new references; the
    /// exception stays held here).
    pub fn exc_info(&self, py: Py<'_>) -> PyResult<Obj> {
        let part = |p: *mut ffi::PyObject| {
            // SAFETY: a held (owned) reference or NULL; borrowed takes a new one.
            unsafe { Obj::borrowed(p) }.unwrap_or_else(|| Obj::none(py))
        };
        Obj::tuple(py, vec![part(self.ty), part(self.value), part(self.tb)])
    }

    /// `SystemExit` (mod_wsgi logs it as ignored, without a traceback).
    /// Whether the exception is an instance of the class `ty`.
    pub fn is_instance_of(&self, ty: &super::object::Obj) -> bool {
        // SAFETY: compares the held exception type with a live class object.
        unsafe { ffi::PyErr_GivenExceptionMatches(self.ty, ty.as_ptr()) != 0 }
    }

    pub fn is_system_exit(&self) -> bool {
        // SAFETY: compares the held exception type with the static SystemExit type.
        unsafe { ffi::PyErr_GivenExceptionMatches(self.ty, ffi::PyExc_SystemExit) != 0 }
    }

    pub fn format(&self) -> Vec<String> {
        // SAFETY: a Pending only exists between `fetch` and `restore`, on the thread that
        // fetched it (it is not Send), which is attached: fetching needs the GIL.
        let py = unsafe { Py::assume() };
        let lines = (|| -> PyResult<Vec<String>> {
            let tb_mod = import(py, c"traceback")?;
            let f = tb_mod.getattr(c"format_exception")?;
            let args: Vec<Obj> = [self.ty, self.value, self.tb]
                .iter()
                // SAFETY: the exception's parts are live (or NULL) while it is pending.
                .map(|p| unsafe { Obj::borrowed(*p) }.unwrap_or_else(|| Obj::none(py)))
                .collect();
            let list = f.call(&[&args[0], &args[1], &args[2]])?;
            let mut out = Vec::new();
            let it = list.iter()?;
            while let Some(s) = it.next()? {
                out.extend(s.to_str()?.lines().map(String::from));
            }
            Ok(out)
        })();
        match lines {
            Ok(l) => l,
            Err(_) => {
                // SAFETY: discard the secondary error raised while formatting.
                unsafe { ffi::PyErr_Clear() };
                vec!["<exception could not be formatted>".into()]
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // SAFETY: we own these references (they may be NULL).
        unsafe {
            ffi::Py_XDECREF(self.ty);
            ffi::Py_XDECREF(self.value);
            ffi::Py_XDECREF(self.tb);
        }
    }
}

/// Builds a Pending from an `exc_info` tuple (for start_response's re-raise rule).
pub fn pending_from_exc_info(info: &Obj) -> Option<Pending> {
    if !info.is_tuple() || info.size().ok()? != 3 {
        return None;
    }
    let get = |i| {
        info.seq_item(i)
            .map(Obj::into_ptr)
            .unwrap_or(std::ptr::null_mut())
    };
    Some(Pending {
        ty: get(0),
        value: get(1),
        tb: get(2),
    })
}
