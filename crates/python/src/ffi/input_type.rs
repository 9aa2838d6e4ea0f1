//! `wsgi.input` as a native type (`mod_wsgi.Input`), as mod_wsgi's is: `read`, `readline`,
//! `readlines`, iteration and `close` go from the bytecode straight to `exchange::read`
//! with no Python frame in between (a Python class over native primitives cost a frame, an
//! attribute lookup and a capsule check per line of a `for line in wsgi.input` loop).
//!
//! The type is a heap type made once per interpreter (types cannot be shared between
//! interpreters); each instance holds one `Arc<Exchange>` reference, given back in dealloc.

use super::interp::Py;
use super::object::{Obj, PyResult, Raised, exc, raise};
use crate::exchange::{self, Exchange};
use pyo3_ffi as ffi;
use std::ffi::{c_int, c_void};
use std::sync::{Arc, OnceLock};

/// The instance layout: the object header, then the exchange (from `Arc::into_raw`).
#[repr(C)]
struct RawInput {
    ob_base: ffi::PyObject,
    ex: *const Exchange,
}

/// The exchange of an instance of the type.
///
/// # Safety
/// `slf` is a live instance of the type made by [`new_type`] (CPython passes `self` of the
/// type's own slots and methods only).
unsafe fn exchange(slf: *mut ffi::PyObject) -> &'static Exchange {
    // SAFETY: per the contract, `ex` is the Arc reference the instance owns until dealloc;
    // the borrow is used only inside the method call, while `self` is alive.
    unsafe { &*(*slf.cast::<RawInput>()).ex }
}

/// A size argument: absent or None means -1 (no limit), else an int.
fn size_arg(a: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t, what: &str) -> PyResult<i64> {
    let n = (nargs as usize) & !(1usize << (usize::BITS - 1));
    match n {
        0 => Ok(-1),
        1 => {
            // SAFETY: CPython passes `n` valid borrowed argument pointers.
            let arg = unsafe { Obj::borrowed(*a) }.ok_or(Raised)?;
            if arg.is_none() { Ok(-1) } else { arg.to_i64() }
        }
        _ => Err(raise(
            exc::type_error(),
            &format!("{what}() takes at most 1 argument ({n} given)"),
        )),
    }
}

fn finish(r: PyResult<Obj>) -> *mut ffi::PyObject {
    r.map_or(std::ptr::null_mut(), Obj::into_ptr)
}

fn panicked() -> *mut ffi::PyObject {
    raise(
        exc::system_error(),
        "rwsgi: internal error (panic) in wsgi.input",
    );
    std::ptr::null_mut()
}

fn readlines(py: Py<'_>, ex: &Exchange, hint: i64) -> PyResult<Obj> {
    let mut lines = Vec::new();
    let mut total = 0i64;
    loop {
        let line = exchange::read(py, ex, -1, true)?;
        let len = line.as_bytes().map_or(0, <[u8]>::len) as i64;
        if len == 0 {
            break;
        }
        lines.push(line);
        total += len;
        if hint > 0 && total >= hint {
            break;
        }
    }
    Obj::list(py, lines)
}

rwsgi_core::entry! {
    unsafe extern "C" fn read(
        slf: *mut ffi::PyObject,
        a: *mut *mut ffi::PyObject,
        n: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        // SAFETY: CPython calls methods attached, with `self` an instance of the type.
        let (py, ex) = unsafe { (Py::assume(), exchange(slf)) };
        finish(size_arg(a.cast_const(), n, "read").and_then(|size| exchange::read(py, ex, size, false)))
    }

    unsafe extern "C" fn readline(
        slf: *mut ffi::PyObject,
        a: *mut *mut ffi::PyObject,
        n: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        // SAFETY: as in `read`.
        let (py, ex) = unsafe { (Py::assume(), exchange(slf)) };
        finish(size_arg(a.cast_const(), n, "readline").and_then(|size| exchange::read(py, ex, size, true)))
    }

    unsafe extern "C" fn readlines_method(
        slf: *mut ffi::PyObject,
        a: *mut *mut ffi::PyObject,
        n: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        // SAFETY: as in `read`.
        let (py, ex) = unsafe { (Py::assume(), exchange(slf)) };
        finish(size_arg(a.cast_const(), n, "readlines").and_then(|hint| readlines(py, ex, hint)))
    }

    unsafe extern "C" fn close(
        _slf: *mut ffi::PyObject,
        _a: *mut *mut ffi::PyObject,
        _n: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject [on panic: panicked()] {
        // SAFETY: attached (a method call).
        finish(Ok(Obj::none(unsafe { Py::assume() })))
    }

    /// The next line, or NULL with no exception set at the end (tp_iternext's protocol).
    unsafe extern "C" fn iternext(slf: *mut ffi::PyObject) -> *mut ffi::PyObject
        [on panic: panicked()]
    {
        // SAFETY: as in `read`.
        let (py, ex) = unsafe { (Py::assume(), exchange(slf)) };
        match exchange::read(py, ex, -1, true) {
            Ok(line) if line.as_bytes().is_some_and(<[u8]>::is_empty) => std::ptr::null_mut(),
            r => finish(r),
        }
    }

    unsafe extern "C" fn dealloc(slf: *mut ffi::PyObject) [on panic: ()] {
        // SAFETY: the instance is being destroyed: its Arc reference is given back once, then
        // its memory is freed by the type's tp_free and the type loses the reference every
        // heap-type instance holds.
        unsafe {
            let raw = slf.cast::<RawInput>();
            let ex = std::mem::replace(&mut (*raw).ex, std::ptr::null());
            if !ex.is_null() {
                drop(Arc::from_raw(ex));
            }
            let tp = ffi::Py_TYPE(slf);
            let free = ffi::PyType_GetSlot(tp, ffi::Py_tp_free);
            if !free.is_null() {
                let free: ffi::freefunc = std::mem::transmute(free);
                free(slf.cast::<c_void>());
            }
            ffi::Py_DECREF(tp.cast::<ffi::PyObject>());
        }
    }
}

/// The type's spec: built once, immutable, pointing at 'static data.
struct Spec {
    spec: ffi::PyType_Spec,
    _slots: Vec<ffi::PyType_Slot>,
    _methods: Vec<ffi::PyMethodDef>,
}
// SAFETY: never written after creation; every pointer in it is to 'static data it owns.
unsafe impl Sync for Spec {}
unsafe impl Send for Spec {}

static SPEC: OnceLock<Spec> = OnceLock::new();

fn method(name: &'static std::ffi::CStr, f: ffi::PyCFunctionFast) -> ffi::PyMethodDef {
    ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunctionFast: f },
        ml_flags: ffi::METH_FASTCALL,
        ml_doc: std::ptr::null(),
    }
}

fn spec() -> &'static Spec {
    SPEC.get_or_init(|| {
        let mut methods = vec![
            method(c"read", read),
            method(c"readline", readline),
            method(c"readlines", readlines_method),
            method(c"close", close),
            ffi::PyMethodDef::zeroed(),
        ];
        let slot = |slot: c_int, pfunc: *mut c_void| ffi::PyType_Slot { slot, pfunc };
        let mut slots = vec![
            slot(ffi::Py_tp_dealloc, dealloc as *mut c_void),
            slot(ffi::Py_tp_iter, ffi::PyObject_SelfIter as *mut c_void),
            slot(ffi::Py_tp_iternext, iternext as *mut c_void),
            slot(ffi::Py_tp_methods, methods.as_mut_ptr().cast::<c_void>()),
            slot(0, std::ptr::null_mut()),
        ];
        let spec = ffi::PyType_Spec {
            name: c"mod_wsgi.Input".as_ptr(),
            basicsize: std::mem::size_of::<RawInput>() as c_int,
            itemsize: 0,
            flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION) as _,
            slots: slots.as_mut_ptr(),
        };
        Spec {
            spec,
            _slots: slots,
            _methods: methods,
        }
    })
}

/// The type, made in the calling thread's interpreter.
pub fn new_type(_py: Py<'_>) -> PyResult<Obj> {
    let spec = std::ptr::from_ref(&spec().spec).cast_mut();
    // SAFETY: the spec is 'static and complete; CPython copies what it needs from it.
    unsafe { Obj::owned(ffi::PyType_FromSpec(spec)) }
}

/// A `wsgi.input` over `ex`; `ty` is this interpreter's type from [`new_type`].
pub fn new(_py: Py<'_>, ty: &Obj, ex: &Arc<Exchange>) -> PyResult<Obj> {
    // SAFETY: `ty` is a type object made by new_type (so its basicsize is RawInput's);
    // GenericAlloc returns a zeroed instance holding a reference to the type, or NULL.
    let obj = unsafe { Obj::owned(ffi::PyType_GenericAlloc(ty.as_ptr().cast(), 0)) }?;
    // SAFETY: a fresh instance of the type; its `ex` field is ours to set once.
    unsafe { (*obj.as_ptr().cast::<RawInput>()).ex = Arc::into_raw(ex.clone()) };
    Ok(obj)
}
