//! Dicts: the environ and its template, module dicts, keyword arguments.

use super::interp::Py;
use super::object::{Obj, PyResult, check};
use pyo3_ffi as ffi;
use std::ffi::{CStr, CString};

unsafe extern "C" {
    // Exported by every CPython 3 (cpython/dictobject.h); not in pyo3-ffi, which skips
    // private names.
    fn _PyDict_NewPresized(minused: ffi::Py_ssize_t) -> *mut ffi::PyObject;
}

impl Obj {
    pub fn new_dict(_py: Py<'_>) -> PyResult<Obj> {
        // SAFETY: plain constructor; attached.
        unsafe { Obj::owned(ffi::PyDict_New()) }
    }

    pub fn dict_set(&self, key: &Obj, v: &Obj) -> PyResult<()> {
        // SAFETY: the dict does not steal references.
        check(unsafe { ffi::PyDict_SetItem(self.as_ptr(), key.as_ptr(), v.as_ptr()) })
    }

    pub fn dict_set_str(&self, key: &CStr, v: &Obj) -> PyResult<()> {
        // SAFETY: as above with a C-string key.
        check(unsafe { ffi::PyDict_SetItemString(self.as_ptr(), key.as_ptr(), v.as_ptr()) })
    }

    pub fn dict_get(&self, key: &Obj) -> Option<Obj> {
        // SAFETY: borrowed lookup; errors (unhashable keys) cannot happen for str keys.
        unsafe { Obj::borrowed(ffi::PyDict_GetItem(self.as_ptr(), key.as_ptr())) }
    }

    pub fn dict_get_str(&self, key: &str) -> Option<Obj> {
        rwsgi_core::cstr::with_cstr(key, |k| {
            // SAFETY: borrowed lookup.
            unsafe { Obj::borrowed(ffi::PyDict_GetItemString(self.as_ptr(), k.as_ptr())) }
        })?
    }

    pub fn dict_del_str(&self, key: &str) {
        let Ok(k) = CString::new(key) else { return };
        // SAFETY: deletes if present; a missing key only sets KeyError, which we clear.
        unsafe {
            if ffi::PyDict_DelItemString(self.as_ptr(), k.as_ptr()) != 0 {
                ffi::PyErr_Clear();
            }
        }
    }

    pub fn dict_copy(&self) -> PyResult<Obj> {
        // SAFETY: shallow copy of a dict.
        unsafe { Obj::owned(ffi::PyDict_Copy(self.as_ptr())) }
    }

    /// A copy of this dict with room for `extra` more entries: ~45 request variables
    /// inserted into a `PyDict_Copy` of the environ template resized it twice.
    pub fn dict_copy_with_room(&self, _py: Py<'_>, extra: usize) -> PyResult<Obj> {
        // SAFETY: a new dict, filled from a dict's borrowed entries while attached; the
        // template is not changed while it is walked (nothing here runs Python code).
        unsafe {
            let n = ffi::PyDict_Size(self.as_ptr()).max(0) as usize;
            let d = Obj::owned(_PyDict_NewPresized((n + extra) as ffi::Py_ssize_t))?;
            let (mut pos, mut k, mut v) = (0, std::ptr::null_mut(), std::ptr::null_mut());
            while ffi::PyDict_Next(self.as_ptr(), &mut pos, &mut k, &mut v) != 0 {
                check(ffi::PyDict_SetItem(d.as_ptr(), k, v))?;
            }
            Ok(d)
        }
    }
}
