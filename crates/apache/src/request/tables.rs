//! The request's tables (notes, headers, subprocess environment) and the strings rwsgi puts
//! into its pool: these run several times per request, so they allocate from the pool or the
//! stack, not the heap.

use super::{Request, cstr};
use crate::bindings as b;
use rwsgi_core::cstr::with_cstr;
use std::ffi::{CStr, CString, c_char};

impl Request<'_> {
    fn pool(&self) -> *mut b::apr_pool_t {
        self.rec().pool
    }

    pub(super) fn pstr(&self, s: &str) -> *const c_char {
        self.pbytes(s.as_bytes())
    }

    /// A NUL-terminated copy of `s` in the request pool, NUL bytes left out (C strings
    /// cannot hold them). Made in place: these run several times per request.
    pub(super) fn pbytes(&self, s: &[u8]) -> *const c_char {
        self.pjoin(&[s])
    }

    /// The parts one after another, as [`pbytes`](Self::pbytes) copies one.
    pub(super) fn pjoin(&self, parts: &[&[u8]]) -> *const c_char {
        let len: usize = parts.iter().map(|s| s.len()).sum();
        // SAFETY: apr_palloc returns len + 1 writable bytes from the request pool, which
        // outlives every use; at most len bytes and the terminator are written.
        unsafe {
            let p = b::apr_palloc(self.pool(), (len + 1) as b::apr_size_t).cast::<u8>();
            let mut n = 0;
            for part in parts.iter().flat_map(|s| s.split(|&c| c == 0)) {
                std::ptr::copy_nonoverlapping(part.as_ptr(), p.add(n), part.len());
                n += part.len();
            }
            *p.add(n) = 0;
            p.cast()
        }
    }

    pub(super) fn table_get(t: *mut b::apr_table_t, key: &str) -> Option<String> {
        with_cstr(key, |k| {
            // SAFETY: `t` is one of the request's tables; apr_table_get returns a borrowed
            // value.
            cstr(unsafe { b::apr_table_get(t, k.as_ptr()) }).map(|v| v.into_owned())
        })?
    }
    fn table_set(&self, t: *mut b::apr_table_t, key: &str, val: &str) {
        let (k, v) = (self.pstr(key), self.pstr(val));
        // SAFETY: both strings live in the request pool.
        unsafe { b::apr_table_setn(t, k, v) }
    }

    pub fn note(&self, key: &str) -> Option<String> {
        Self::table_get(self.rec().notes, key)
    }
    pub fn set_note(&self, key: &str, val: &str) {
        self.table_set(self.rec().notes, key, val)
    }
    pub fn header_in(&self, key: &str) -> Option<String> {
        Self::table_get(self.rec().headers_in, key)
    }
    pub fn subprocess_env(&self, key: &str) -> Option<String> {
        Self::table_get(self.rec().subprocess_env, key)
    }

    /// Drops request headers whose names contain anything but letters, digits and '-': they
    /// would become ambiguous HTTP_* variables (X_Foo vs X-Foo spoofing), as mod_wsgi does.
    pub fn drop_invalid_headers(&self) {
        let t = self.rec().headers_in;
        let valid = |k: &CStr| {
            k.to_bytes()
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        };
        // (copies only of the rare bad names: unsetting changes the array being read)
        let mut bad: Vec<CString> = Vec::new();
        // SAFETY: headers_in is one of the live request's tables.
        unsafe {
            each_entry(t, |k, _| {
                if !valid(k) {
                    bad.push(k.to_owned());
                }
            })
        };
        for k in bad {
            // SAFETY: removes an entry from the request's own table.
            unsafe { b::apr_table_unset(t, k.as_ptr()) };
        }
    }
}

/// Calls `f` with each entry of `t` (name, value; a NULL value as empty), in table order,
/// without copying either.
///
/// # Safety
/// `t` must be one of the live request's tables, not changed while this runs.
pub(super) unsafe fn each_entry(t: *const b::apr_table_t, mut f: impl FnMut(&CStr, &[u8])) {
    // SAFETY: the caller's contract; apr_table_elts exposes the table's array of
    // apr_table_entry_t, entries with a NULL key are deleted slots, keys and values are
    // NUL-terminated strings of the request.
    unsafe {
        let arr = b::apr_table_elts(t);
        let elts = (*arr).elts as *const b::apr_table_entry_t;
        for i in 0..(*arr).nelts as usize {
            let e = &*elts.add(i);
            if e.key.is_null() {
                continue;
            }
            let v = if e.val.is_null() {
                &[][..]
            } else {
                CStr::from_ptr(e.val).to_bytes()
            };
            f(CStr::from_ptr(e.key), v);
        }
    }
}
