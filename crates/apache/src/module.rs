//! The module record Apache looks up by name. It must be a Rust `#[no_mangle]` static (a struct
//! defined in the C shim is not exported from a cdylib), declared by the module crate with
//! [`declare_module!`](crate::declare_module); this crate keeps a pointer to it for the module
//! index every configuration lookup needs.

use crate::bindings as b;
use std::sync::atomic::{AtomicPtr, Ordering};

static RECORD: AtomicPtr<b::module> = AtomicPtr::new(std::ptr::null_mut());

/// Called by the declared record's register_hooks, before anything else of the module runs.
///
/// # Safety
/// `record` must be the module's own `#[no_mangle]` static record.
#[doc(hidden)]
pub unsafe fn set_record(record: *mut b::module) {
    RECORD.store(record, Ordering::Release);
}

/// This module's index in Apache's configuration vectors (-1 before it is loaded).
pub fn index() -> i32 {
    let r = RECORD.load(Ordering::Acquire);
    if r.is_null() {
        return -1;
    }
    // SAFETY: the record is a static of this module; Apache writes module_index once while
    // loading the module, before any configuration callback runs; afterwards it is only read.
    unsafe { (*r).module_index }
}

/// Declares the module record Apache loads (`LoadModule <name> ...`):
///
/// ```ignore
/// rwsgi_apache::declare_module! {
///     wsgi_module = "mod_wsgi.c", server_config: ServerConf, dir_config: DirConfig,
///     commands: &TABLE, register_hooks: hooks::register
/// }
/// ```
///
/// The configuration records are the given types (see [`conf::Merge`](crate::conf::Merge));
/// `register_hooks(&Pool)` runs once per load of the module, with the pool it is loaded in.
#[macro_export]
macro_rules! declare_module {
    (
        $name:ident = $record_name:literal,
        server_config: $sc:ty,
        dir_config: $dc:ty,
        commands: $cmds:expr,
        register_hooks: $register:path $(,)?
    ) => {
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static mut $name: $crate::bindings::module = $crate::bindings::module {
            version: $crate::bindings::consts::MMN_MAJOR,
            minor_version: $crate::bindings::consts::MMN_MINOR,
            module_index: -1,
            name: $record_name.as_ptr(),
            dynamic_load_handle: ::std::ptr::null_mut(),
            next: ::std::ptr::null_mut(),
            magic: $crate::bindings::consts::MAGIC_COOKIE,
            rewrite_args: None,
            create_dir_config: Some($crate::conf::create_dir::<$dc>),
            merge_dir_config: Some($crate::conf::merge_dir::<$dc>),
            create_server_config: Some($crate::conf::create_server::<$sc>),
            merge_server_config: Some($crate::conf::merge_server::<$sc>),
            cmds: $cmds,
            register_hooks: Some(__rwsgi_register_hooks),
            flags: 0,
        };

        $crate::rwsgi_core::entry! {
            unsafe extern "C" fn __rwsgi_register_hooks(
                p: *mut $crate::bindings::apr_pool_t,
            ) [on panic: ()] {
                // SAFETY: our own record, taken by address (never a reference to a static mut).
                unsafe { $crate::module::set_record(&raw mut $name) };
                // SAFETY: the pool Apache loads the module with, alive until it unloads it.
                if let Some(pool) = unsafe { $crate::server::Pool::from_raw(p) } {
                    $register(&pool)
                }
            }
        }
    };
}
