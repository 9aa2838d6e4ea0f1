//! Per-server and per-directory configuration records. Apache stores an opaque pointer per
//! module; ours point to Rust values (the module's own types, see [`Merge`]) allocated with Box
//! and freed by a cleanup on the pool that owns them (pconf: cleared at every restart).

use super::bindings as b;
pub use rwsgi_core::config::Merge;
use std::ffi::c_void;

rwsgi_core::entry! {
    unsafe extern "C" fn drop_box<T>(data: *mut c_void) -> b::apr_status_t [on panic: 0] {
        // SAFETY: registered once for a pointer produced by Box::into_raw::<T>.
        drop(unsafe { Box::from_raw(data.cast::<T>()) });
        0
    }
}

fn pool_box<T>(pool: *mut b::apr_pool_t, value: T) -> *mut c_void {
    let ptr = Box::into_raw(Box::new(value)).cast::<c_void>();
    // SAFETY: the cleanup frees the box exactly once when `pool` is cleared or destroyed.
    unsafe {
        b::apr_pool_cleanup_register(
            pool,
            ptr,
            Some(drop_box::<T>),
            Some(b::apr_pool_cleanup_null),
        )
    };
    ptr
}

rwsgi_core::entry! {
    #[doc(hidden)]
    pub unsafe extern "C" fn create_server<T: Merge>(
        p: *mut b::apr_pool_t,
        _s: *mut b::server_rec,
    ) -> *mut c_void [on panic: std::ptr::null_mut()] {
        pool_box(p, T::default())
    }

    #[doc(hidden)]
    pub unsafe extern "C" fn merge_server<T: Merge>(
        p: *mut b::apr_pool_t,
        base: *mut c_void,
        add: *mut c_void,
    ) -> *mut c_void [on panic: std::ptr::null_mut()] {
        // SAFETY: both pointers were produced by create_server/merge_server::<T>.
        let (base, add) = unsafe { (&*base.cast::<T>(), &*add.cast::<T>()) };
        pool_box(p, T::merge(base, add))
    }

    #[doc(hidden)]
    pub unsafe extern "C" fn create_dir<T: Merge>(
        p: *mut b::apr_pool_t,
        _dir: *mut std::ffi::c_char,
    ) -> *mut c_void [on panic: std::ptr::null_mut()] {
        pool_box(p, T::default())
    }

    #[doc(hidden)]
    pub unsafe extern "C" fn merge_dir<T: Merge>(
        p: *mut b::apr_pool_t,
        base: *mut c_void,
        add: *mut c_void,
    ) -> *mut c_void [on panic: std::ptr::null_mut()] {
        // SAFETY: both pointers were produced by create_dir/merge_dir::<T>.
        let (base, add) = unsafe { (&*base.cast::<T>(), &*add.cast::<T>()) };
        pool_box(p, T::merge(base, add))
    }
}

/// The module's record in a configuration vector.
///
/// # Safety
/// `vector` must be a server's `module_config` or a request's `per_dir_config` whose record
/// for this module was made by `create_*::<T>` / `merge_*::<T>`, alive for `'a`.
pub(crate) unsafe fn record<'a, T>(vector: *mut b::ap_conf_vector_t) -> &'a T {
    // SAFETY: per the contract.
    unsafe {
        &*b::rwsgi_get_module_config(vector as *const *mut c_void, crate::module::index())
            .cast::<T>()
    }
}

/// As [`record`], writable.
///
/// # Safety
/// As [`record`], and nothing else may use the record meanwhile (configuration parsing is
/// single-threaded).
pub(crate) unsafe fn record_mut<'a, T>(vector: *mut b::ap_conf_vector_t) -> &'a mut T {
    // SAFETY: per the contract.
    unsafe {
        &mut *b::rwsgi_get_module_config(vector as *const *mut c_void, crate::module::index())
            .cast::<T>()
    }
}
