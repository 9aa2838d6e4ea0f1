//! Owned Python object references and the handful of C-API operations the WSGI code needs.
//! These are plain C-API calls: no process-wide caches, so they work the same in the main
//! interpreter and in sub-interpreters (pyo3's high-level API does not). Every function here
//! must be called with the current thread attached to an interpreter (see `interp`).

use pyo3_ffi as ffi;
use std::ffi::{CStr, CString, c_char};
use std::ptr::NonNull;

pub use super::interp::Py;
// The exception half of the C API lives in `error`; callers see one `object` vocabulary.
pub(crate) use super::error::raise;
pub use super::error::{Pending, err_occurred, exc, pending_from_exc_info};

/// A Python exception is set in the current thread state.
#[derive(Debug)]
pub struct Raised;

pub type PyResult<T> = Result<T, Raised>;

/// An owned (strong) reference. Dropping it decrements the reference count, so it must be
/// dropped while attached; it is deliberately neither Send nor Sync.
pub struct Obj(NonNull<ffi::PyObject>);

impl Drop for Obj {
    fn drop(&mut self) {
        // SAFETY: we own one reference; callers keep Obj values on attached threads only.
        unsafe { ffi::Py_DECREF(self.0.as_ptr()) }
    }
}

impl Clone for Obj {
    fn clone(&self) -> Obj {
        // SAFETY: adds a reference to a live object.
        unsafe { ffi::Py_INCREF(self.0.as_ptr()) };
        Obj(self.0)
    }
}

impl Obj {
    /// Takes ownership of a new reference; NULL means an exception is set.
    ///
    /// # Safety
    /// `p` is NULL or a new (owned) reference to a live object, and the calling thread is
    /// attached to the object's interpreter.
    pub unsafe fn owned(p: *mut ffi::PyObject) -> PyResult<Obj> {
        NonNull::new(p).map(Obj).ok_or(Raised)
    }

    /// Adds a reference to a borrowed pointer.
    ///
    /// # Safety
    /// `p` is NULL or points to a live object, and the calling thread is attached to the
    /// object's interpreter.
    pub(crate) unsafe fn borrowed(p: *mut ffi::PyObject) -> Option<Obj> {
        let nn = NonNull::new(p)?;
        // SAFETY: per the contract.
        unsafe { ffi::Py_INCREF(p) };
        Some(Obj(nn))
    }

    pub fn as_ptr(&self) -> *mut ffi::PyObject {
        self.0.as_ptr()
    }

    /// Gives up ownership (for returning a new reference to Python).
    pub fn into_ptr(self) -> *mut ffi::PyObject {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    pub fn none(_py: Py<'_>) -> Obj {
        // SAFETY: Py_None is immortal in practice; we take a real reference anyway (attached).
        unsafe { Obj::borrowed(ffi::Py_None()) }.expect("None")
    }

    /// A nameless capsule holding `addr`, which Python code can only pass on (to ctypes).
    ///
    /// # Safety
    /// The address is handed to the application as is; whoever uses it must know what it
    /// points to and for how long (apache.request_rec: the request being served).
    pub unsafe fn opaque_capsule(_py: Py<'_>, addr: usize) -> PyResult<Obj> {
        // SAFETY: a capsule without destructor over a non-null pointer; attached.
        unsafe {
            Obj::owned(ffi::PyCapsule_New(
                addr as *mut std::ffi::c_void,
                std::ptr::null(),
                None,
            ))
        }
    }

    /// Python truth (`bool(x)`).
    pub fn is_true(&self) -> PyResult<bool> {
        // SAFETY: PyObject_IsTrue on a live object; -1 means an exception is set.
        match unsafe { ffi::PyObject_IsTrue(self.as_ptr()) } {
            -1 => Err(Raised),
            n => Ok(n != 0),
        }
    }

    pub fn is_none(&self) -> bool {
        // SAFETY: pointer comparison only.
        self.as_ptr() == unsafe { ffi::Py_None() }
    }

    pub fn bool(_py: Py<'_>, v: bool) -> Obj {
        // SAFETY: PyBool_FromLong cannot fail (attached: the token).
        unsafe { Obj::owned(ffi::PyBool_FromLong(v as _)) }.expect("bool")
    }

    pub fn int(_py: Py<'_>, v: i64) -> PyResult<Obj> {
        // SAFETY: plain constructor, attached.
        unsafe { Obj::owned(ffi::PyLong_FromLongLong(v)) }
    }

    pub fn float(_py: Py<'_>, v: f64) -> PyResult<Obj> {
        // SAFETY: plain constructor, attached.
        unsafe { Obj::owned(ffi::PyFloat_FromDouble(v)) }
    }

    pub fn str(_py: Py<'_>, s: &str) -> PyResult<Obj> {
        // SAFETY: the buffer is valid UTF-8 of the given length; attached.
        unsafe {
            Obj::owned(ffi::PyUnicode_FromStringAndSize(
                s.as_ptr().cast(),
                s.len() as _,
            ))
        }
    }

    /// A str whose code points are the bytes of `s` (PEP 3333 "native strings").
    pub fn latin1(py: Py<'_>, s: &[u8]) -> PyResult<Obj> {
        if s.is_ascii() {
            // SAFETY: ASCII is valid UTF-8.
            return Obj::str(py, unsafe { std::str::from_utf8_unchecked(s) });
        }
        // SAFETY: decoding a byte buffer of the given length; attached.
        unsafe {
            Obj::owned(ffi::PyUnicode_DecodeLatin1(
                s.as_ptr().cast(),
                s.len() as _,
                std::ptr::null(),
            ))
        }
    }

    pub fn bytes(_py: Py<'_>, b: &[u8]) -> PyResult<Obj> {
        // SAFETY: copies the buffer; attached.
        unsafe {
            Obj::owned(ffi::PyBytes_FromStringAndSize(
                b.as_ptr().cast(),
                b.len() as _,
            ))
        }
    }

    pub fn list(_py: Py<'_>, items: Vec<Obj>) -> PyResult<Obj> {
        // SAFETY: a new list of the right size; PyList_SetItem steals each reference.
        unsafe {
            let l = Obj::owned(ffi::PyList_New(items.len() as _))?;
            for (i, it) in items.into_iter().enumerate() {
                ffi::PyList_SetItem(l.as_ptr(), i as _, it.into_ptr());
            }
            Ok(l)
        }
    }

    pub fn tuple(_py: Py<'_>, items: Vec<Obj>) -> PyResult<Obj> {
        // SAFETY: PyTuple_SetItem steals each reference into the new tuple.
        unsafe {
            let t = Obj::owned(ffi::PyTuple_New(items.len() as _))?;
            for (i, it) in items.into_iter().enumerate() {
                ffi::PyTuple_SetItem(t.as_ptr(), i as _, it.into_ptr());
            }
            Ok(t)
        }
    }

    // ---- type checks ----------------------------------------------------------------------

    pub fn is_bytes(&self) -> bool {
        // SAFETY: type check on a live object.
        unsafe { ffi::PyBytes_Check(self.as_ptr()) != 0 }
    }
    pub fn is_str(&self) -> bool {
        // SAFETY: as above.
        unsafe { ffi::PyUnicode_Check(self.as_ptr()) != 0 }
    }
    /// A list or a tuple, not an instance of a subclass.
    pub fn is_exact_list_or_tuple(&self) -> bool {
        // SAFETY: reads the type of a live object.
        unsafe {
            ffi::PyList_CheckExact(self.as_ptr()) != 0
                || ffi::PyTuple_CheckExact(self.as_ptr()) != 0
        }
    }
    pub fn is_list(&self) -> bool {
        // SAFETY: as above.
        unsafe { ffi::PyList_Check(self.as_ptr()) != 0 }
    }
    pub fn is_tuple(&self) -> bool {
        // SAFETY: as above.
        unsafe { ffi::PyTuple_Check(self.as_ptr()) != 0 }
    }
    pub fn is_exact_type(&self, t: *mut ffi::PyObject) -> bool {
        // SAFETY: reads the object's type pointer.
        unsafe { ffi::Py_TYPE(self.as_ptr()).cast::<ffi::PyObject>() == t }
    }
    pub fn type_name(&self) -> String {
        // SAFETY: tp_name is a NUL-terminated string owned by the type.
        unsafe { CStr::from_ptr((*ffi::Py_TYPE(self.as_ptr())).tp_name) }
            .to_string_lossy()
            .into_owned()
    }

    // ---- content access -------------------------------------------------------------------

    /// The bytes of a `bytes` object, borrowed for as long as `self` lives.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        if !self.is_bytes() {
            return None;
        }
        // SAFETY: bytes objects are immutable; the buffer lives as long as the object, which
        // `self` keeps alive.
        unsafe {
            let p = ffi::PyBytes_AsString(self.as_ptr());
            let n = ffi::PyBytes_Size(self.as_ptr());
            Some(std::slice::from_raw_parts(p.cast::<u8>(), n as usize))
        }
    }

    /// A `str`'s UTF-8, borrowed from the object (which caches it for its lifetime); fails on
    /// lone surrogates.
    pub fn as_str(&self) -> PyResult<&str> {
        let mut n: ffi::Py_ssize_t = 0;
        // SAFETY: the buffer belongs to the str object, which outlives the borrow of `self`;
        // Python's UTF-8 is always valid (lone surrogates fail the call instead).
        unsafe {
            let p = ffi::PyUnicode_AsUTF8AndSize(self.as_ptr(), &mut n);
            if p.is_null() {
                return Err(Raised);
            }
            Ok(std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                p.cast::<u8>(),
                n as usize,
            )))
        }
    }

    /// A `str` as an owned UTF-8 copy (fails on lone surrogates).
    pub fn to_str(&self) -> PyResult<String> {
        self.as_str().map(str::to_owned)
    }

    /// A `str` encoded as Latin-1 (raises UnicodeEncodeError otherwise).
    pub fn to_latin1(&self) -> PyResult<Vec<u8>> {
        // SAFETY: encodes into a new bytes object.
        let b = unsafe { Obj::owned(ffi::PyUnicode_AsLatin1String(self.as_ptr())) }?;
        Ok(b.as_bytes().unwrap_or_default().to_vec())
    }

    pub fn to_i64(&self) -> PyResult<i64> {
        // SAFETY: conversion with error reporting through the exception state.
        let v = unsafe { ffi::PyLong_AsLongLong(self.as_ptr()) };
        if v == -1 && err_occurred() {
            Err(Raised)
        } else {
            Ok(v)
        }
    }

    pub fn size(&self) -> PyResult<usize> {
        // SAFETY: generic length protocol.
        let n = unsafe { ffi::PyObject_Size(self.as_ptr()) };
        if n < 0 { Err(Raised) } else { Ok(n as usize) }
    }

    /// Item `i` of a list or tuple (checked by the caller).
    pub fn seq_item(&self, i: usize) -> Option<Obj> {
        // SAFETY: borrowed item of a list/tuple, bounds checked by the C API.
        unsafe {
            let p = if self.is_list() {
                ffi::PyList_GetItem(self.as_ptr(), i as _)
            } else {
                ffi::PyTuple_GetItem(self.as_ptr(), i as _)
            };
            if p.is_null() {
                ffi::PyErr_Clear();
            }
            Obj::borrowed(p)
        }
    }

    // ---- attributes, calls, iteration -----------------------------------------------------

    pub fn getattr(&self, name: &CStr) -> PyResult<Obj> {
        // SAFETY: attribute lookup by C string.
        unsafe { Obj::owned(ffi::PyObject_GetAttrString(self.as_ptr(), name.as_ptr())) }
    }

    /// Like getattr, but a missing attribute is `None` (other errors propagate).
    pub fn getattr_opt(&self, name: &CStr) -> PyResult<Option<Obj>> {
        // SAFETY: as getattr; AttributeError is cleared.
        unsafe {
            let p = ffi::PyObject_GetAttrString(self.as_ptr(), name.as_ptr());
            if p.is_null() {
                if ffi::PyErr_ExceptionMatches(ffi::PyExc_AttributeError) != 0 {
                    ffi::PyErr_Clear();
                    return Ok(None);
                }
                return Err(Raised);
            }
            Ok(Some(Obj(NonNull::new_unchecked(p))))
        }
    }

    pub fn setattr(&self, name: &CStr, v: &Obj) -> PyResult<()> {
        // SAFETY: attribute assignment by C string.
        check(unsafe { ffi::PyObject_SetAttrString(self.as_ptr(), name.as_ptr(), v.as_ptr()) })
    }

    pub fn call(&self, args: &[&Obj]) -> PyResult<Obj> {
        // (the few arguments of a call on the stack: several calls per request)
        let mut few = [std::ptr::null_mut::<ffi::PyObject>(); 4];
        let many: Vec<*mut ffi::PyObject>;
        let ptrs: &[*mut ffi::PyObject] = if args.len() <= few.len() {
            for (p, a) in few.iter_mut().zip(args) {
                *p = a.as_ptr();
            }
            &few[..args.len()]
        } else {
            many = args.iter().map(|a| a.as_ptr()).collect();
            &many
        };
        // SAFETY: vectorcall with a borrowed argument array that outlives the call.
        unsafe {
            Obj::owned(ffi::PyObject_Vectorcall(
                self.as_ptr(),
                ptrs.as_ptr(),
                ptrs.len(),
                std::ptr::null_mut(),
            ))
        }
    }

    pub fn call_method(&self, name: &CStr, args: &[&Obj]) -> PyResult<Obj> {
        self.getattr(name)?.call(args)
    }

    pub fn iter(&self) -> PyResult<Obj> {
        // SAFETY: iterator protocol.
        unsafe { Obj::owned(ffi::PyObject_GetIter(self.as_ptr())) }
    }

    /// Next item of an iterator; `Ok(None)` at the end.
    pub fn next(&self) -> PyResult<Option<Obj>> {
        // SAFETY: iterator protocol; NULL without an exception means exhausted.
        let p = unsafe { ffi::PyIter_Next(self.as_ptr()) };
        if p.is_null() {
            if err_occurred() {
                Err(Raised)
            } else {
                Ok(None)
            }
        } else {
            Ok(Some(Obj(NonNull::new(p).expect("non-null"))))
        }
    }
}

pub(super) fn check(rc: i32) -> PyResult<()> {
    if rc < 0 { Err(Raised) } else { Ok(()) }
}

pub fn import(_py: Py<'_>, name: &CStr) -> PyResult<Obj> {
    // SAFETY: standard import.
    unsafe { Obj::owned(ffi::PyImport_ImportModule(name.as_ptr())) }
}

/// `sys.modules` of the current interpreter (borrowed as owned).
pub fn sys_modules(_py: Py<'_>) -> Obj {
    // SAFETY: the module dict of the current interpreter always exists.
    unsafe { Obj::borrowed(ffi::PyImport_GetModuleDict()) }.expect("sys.modules")
}

pub fn builtins(_py: Py<'_>) -> Obj {
    // SAFETY: the builtins dict of the current frame/interpreter.
    unsafe { Obj::borrowed(ffi::PyEval_GetBuiltins()) }.expect("builtins")
}

/// Runs `code` (already compiled) with `globals` as globals and locals.
pub fn eval_code(code: &Obj, globals: &Obj) -> PyResult<Obj> {
    // SAFETY: evaluates a code object in the given namespace.
    unsafe {
        Obj::owned(ffi::PyEval_EvalCode(
            code.as_ptr(),
            globals.as_ptr(),
            globals.as_ptr(),
        ))
    }
}

pub fn new_module(_py: Py<'_>, name: &str) -> PyResult<Obj> {
    let c =
        CString::new(name).map_err(|_| raise(exc::value_error(), "module name contains NUL"))?;
    // SAFETY: creates a fresh module object.
    unsafe { Obj::owned(ffi::PyModule_New(c.as_ptr())) }
}

pub fn module_dict(m: &Obj) -> Obj {
    // SAFETY: a module's __dict__ (borrowed).
    unsafe { Obj::borrowed(ffi::PyModule_GetDict(m.as_ptr())) }.expect("module dict")
}

/// C string helper for dynamic attribute names.
pub fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

pub type CChar = c_char;

/// A new `bytes` object filled in place before any Python code can see it (the C API's
/// `PyBytes_FromStringAndSize(NULL, n)` idiom): a request body read lands in the object the
/// application gets, without an intermediate buffer.
pub struct BytesBuilder {
    obj: Obj,
    data: *mut u8,
    len: usize,
}

impl BytesBuilder {
    /// Room for `len` bytes, not initialised: whoever fills it says how much it wrote.
    pub fn new(_py: Py<'_>, len: usize) -> PyResult<BytesBuilder> {
        // SAFETY: a new bytes object of `len` bytes; attached (the token).
        let obj =
            unsafe { Obj::owned(ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as _)) }?;
        // SAFETY: a bytes object's buffer, `len` bytes long; nobody else refers to it yet.
        let data = unsafe { ffi::PyBytes_AsString(obj.as_ptr()) }.cast::<u8>();
        Ok(BytesBuilder { obj, data, len })
    }

    /// The bytes to fill. Needs no GIL: the object is referenced by this builder only.
    pub fn buf(&mut self) -> &mut [std::mem::MaybeUninit<u8>] {
        // SAFETY: `len` bytes owned by the object, which only this builder references until
        // `finish`; MaybeUninit makes no claim about their contents; the borrow of `self`
        // keeps the builder alive.
        unsafe { std::slice::from_raw_parts_mut(self.data.cast(), self.len) }
    }

    /// The object holding the first `used` bytes.
    ///
    /// # Safety
    /// The first `used` bytes of [`Self::buf`] (at most its length) have been written.
    pub unsafe fn finish(self, py: Py<'_>, used: usize) -> PyResult<Obj> {
        if used >= self.len {
            return Ok(self.obj);
        }
        // SAFETY: the first `used` bytes were written (the caller's promise).
        let written = unsafe { std::slice::from_raw_parts(self.data, used) };
        Obj::bytes(py, written)
    }
}
