//! The module record Apache looks up by name (`wsgi_module`, record name "mod_wsgi.c" so that
//! `<IfModule mod_wsgi.c>` keeps working) and hook registration. The record must be a Rust
//! `#[no_mangle]` static: a struct defined in the C shim is not exported from a cdylib.

use super::bindings::{self as b, consts};
use super::{commands, conf, hooks, stopping};
use std::ptr::{null, null_mut};

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut wsgi_module: b::module = b::module {
    version: consts::MMN_MAJOR,
    minor_version: consts::MMN_MINOR,
    module_index: -1,
    name: c"mod_wsgi.c".as_ptr(),
    dynamic_load_handle: null_mut(),
    next: null_mut(),
    magic: consts::MAGIC_COOKIE,
    rewrite_args: None,
    create_dir_config: Some(conf::create_dir_config),
    merge_dir_config: Some(conf::merge_dir_config),
    create_server_config: Some(conf::create_server_config),
    merge_server_config: Some(conf::merge_server_config),
    cmds: &raw const commands::TABLE.0 as *const b::command_rec,
    register_hooks: Some(register_hooks),
    flags: 0,
};

/// This module's index in Apache's configuration vectors (-1 before it is loaded).
pub fn module_index() -> i32 {
    // SAFETY: Apache writes module_index once while loading the module, before any request or
    // configuration callback can run; afterwards it is only read.
    unsafe { wsgi_module.module_index }
}

rwsgi_core::entry! {
    unsafe extern "C" fn register_hooks(_p: *mut b::apr_pool_t) [on panic: ()] {
        crate::guard::set_reporter(|m| super::log::server(super::log::Level::Crit, m));
        // SAFETY: called by Apache while it loads the module, single-threaded, before any
        // directive of ours is parsed; the table is 'static.
        unsafe {
            let order = b::APR_HOOK_MIDDLE;
            b::ap_hook_pre_config(Some(hooks::pre_config), null(), null(), order);
            b::ap_hook_post_config(Some(hooks::post_config), null(), null(), order);
            b::ap_hook_child_init(Some(hooks::child_init), null(), null(), order);
            // After mod_alias (which is MIDDLE) as mod_wsgi does, so Alias wins over WSGIScriptAlias
            // only when declared for the same URL and mod_alias matched first.
            static AFTER: ModuleList<2> = ModuleList([c"mod_alias.c".as_ptr(), null()]);
            static BEFORE: ModuleList<3> = ModuleList([
                c"mod_userdir.c".as_ptr(),
                c"mod_vhost_alias.c".as_ptr(),
                null(),
            ]);
            b::ap_hook_translate_name(
                Some(hooks::translate_name),
                AFTER.0.as_ptr(),
                BEFORE.0.as_ptr(),
                order,
            );
            b::ap_hook_handler(Some(hooks::handler), null(), null(), order);
            // First, so its pool cleanup runs as late as possible (cleanups run in reverse).
            b::ap_hook_pre_connection(
                Some(stopping::pre_connection),
                null(),
                null(),
                b::APR_HOOK_REALLY_FIRST,
            );
            b::ap_hook_child_stopping(Some(stopping::child_stopping), null(), null(), order);
        }
    }
}

/// A NULL-terminated list of module names for hook ordering.
struct ModuleList<const N: usize>([*const std::ffi::c_char; N]);
// SAFETY: the pointers are to 'static C string literals and are never written.
unsafe impl<const N: usize> Sync for ModuleList<N> {}
