//! State the threads of one process share under the GIL instead of a lock: only a thread
//! holding it (a [`Py`] token) reaches a [`GilCell`], and the Python references kept in one
//! ([`KeptRef`]) are only counted then.

use super::interp::Py;
use super::object::Obj;
use pyo3_ffi as ffi;
use std::cell::RefCell;
use std::ptr::NonNull;

pub struct GilCell<T>(RefCell<T>);

// SAFETY: the RefCell is only reached through `try_with`, which takes a `Py` token: the
// calling thread holds the GIL (one GIL for every interpreter of the process), so one thread
// at a time touches it, and the GIL's release and acquire order their accesses. A borrow
// still open when code inside it releases the GIL is seen by the next thread's
// `try_borrow_mut`, not raced.
unsafe impl<T: Send> Sync for GilCell<T> {}

impl<T> GilCell<T> {
    pub fn new(v: T) -> GilCell<T> {
        GilCell(RefCell::new(v))
    }

    /// Runs `f` on the value; `None` when it is borrowed already (by a caller further up
    /// this thread, or by a thread that let the GIL go inside `f`).
    pub fn try_with<R>(&self, _py: Py<'_>, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut v = self.0.try_borrow_mut().ok()?;
        Some(f(&mut v))
    }
}

/// A strong reference kept in a [`GilCell`] for the life of the process (interpreters are
/// never destroyed while it serves requests); [`KeptRef::replace`] releases the old object.
pub struct KeptRef(NonNull<ffi::PyObject>);

// SAFETY: a KeptRef is only dereferenced or counted with a `Py` token (the GIL held).
unsafe impl Send for KeptRef {}

impl KeptRef {
    pub fn new(o: Obj) -> KeptRef {
        KeptRef(NonNull::new(o.into_ptr()).expect("an Obj is never NULL"))
    }

    pub fn get(&self, _py: Py<'_>) -> Obj {
        // SAFETY: we hold a reference to the live object; attached (the token).
        unsafe { Obj::borrowed(self.0.as_ptr()) }.expect("kept object")
    }

    /// Keeps `o` instead, releasing the old object (a `str` here: its deallocation runs no
    /// Python code).
    pub fn replace(&mut self, _py: Py<'_>, o: Obj) {
        let old = std::mem::replace(&mut self.0, NonNull::new(o.into_ptr()).expect("non-null"));
        // SAFETY: the reference we held; attached (the token).
        unsafe { ffi::Py_DECREF(old.as_ptr()) };
    }
}
