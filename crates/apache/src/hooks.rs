//! Hook registration with typed callbacks: the module says what runs ([`Hooks`]); this crate
//! owns the `extern "C"` trampolines Apache calls (each declared with `entry!`).

use crate::bindings as b;
use crate::request::Request;
use crate::server::{Pool, Server};
use rwsgi_core::http::Status;
use std::ptr::null;
use std::sync::OnceLock;

/// What a request hook did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Not ours: the next module's turn.
    Declined,
    /// Done (the response went out, or the URL is mapped).
    Done,
    /// Apache answers with this status (its error document).
    Status(Status),
}

impl Handled {
    fn raw(self) -> i32 {
        match self {
            Handled::Declined => b::DECLINED,
            Handled::Done => b::OK,
            Handled::Status(s) => s.code() as i32,
        }
    }
}

/// The module's hooks.
pub struct Hooks {
    /// A reading of the configuration begins (start-up, every restart), before any directive.
    pub pre_config: fn(),
    /// The configuration is read (on `main`, the server list is complete); `Err` stops Apache,
    /// with the message in the error log.
    pub post_config: fn(pconf: &Pool, main: Server<'_>) -> Result<(), String>,
    /// A child starts (its pool ends with the child).
    pub child_init: fn(pchild: &Pool),
    /// URL to file mapping.
    pub translate_name: fn(Request<'_>) -> Handled,
    /// The content handler.
    pub handler: fn(Request<'_>) -> Handled,
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

fn hooks() -> &'static Hooks {
    HOOKS.get().expect("hooks registered")
}

/// A NULL-terminated list of module names for hook ordering.
pub(crate) struct ModuleList<const N: usize>(pub(crate) [*const std::ffi::c_char; N]);
// SAFETY: the pointers are to 'static C string literals and are never written.
unsafe impl<const N: usize> Sync for ModuleList<N> {}

/// Registers the module's hooks (from its register_hooks, once per load of the module).
pub fn register(h: Hooks) {
    let _ = HOOKS.set(h);
    let order = b::APR_HOOK_MIDDLE;
    // After mod_alias (which is MIDDLE) as mod_wsgi does, so Alias wins over WSGIScriptAlias
    // only when declared for the same URL and mod_alias matched first.
    static AFTER: ModuleList<2> = ModuleList([c"mod_alias.c".as_ptr(), null()]);
    static BEFORE: ModuleList<3> = ModuleList([
        c"mod_userdir.c".as_ptr(),
        c"mod_vhost_alias.c".as_ptr(),
        null(),
    ]);
    // SAFETY: called while Apache loads the module, single-threaded; the trampolines and the
    // ordering lists are 'static.
    unsafe {
        b::ap_hook_pre_config(Some(pre_config), null(), null(), order);
        b::ap_hook_post_config(Some(post_config), null(), null(), order);
        b::ap_hook_child_init(Some(child_init), null(), null(), order);
        b::ap_hook_translate_name(
            Some(translate_name),
            AFTER.0.as_ptr(),
            BEFORE.0.as_ptr(),
            order,
        );
        b::ap_hook_handler(Some(handler), null(), null(), order);
    }
    crate::stopping::register();
    crate::socket_bucket::register();
}

const SERVER_ERROR: i32 = b::HTTP_INTERNAL_SERVER_ERROR;

rwsgi_core::entry! {
    unsafe extern "C" fn pre_config(
        _pconf: *mut b::apr_pool_t,
        _plog: *mut b::apr_pool_t,
        _ptemp: *mut b::apr_pool_t,
    ) -> i32 [on panic: SERVER_ERROR] {
        (hooks().pre_config)();
        b::OK
    }

    unsafe extern "C" fn post_config(
        pconf: *mut b::apr_pool_t,
        _plog: *mut b::apr_pool_t,
        _ptemp: *mut b::apr_pool_t,
        s: *mut b::server_rec,
    ) -> i32 [on panic: SERVER_ERROR] {
        // SAFETY: Apache passes its configuration pool and the main server, complete now.
        let (pool, main) = unsafe { (Pool::from_raw(pconf), Server::from_raw(s)) };
        let (Some(p), Some(m)) = (pool, main) else {
            return SERVER_ERROR;
        };
        match (hooks().post_config)(&p, m) {
            Ok(()) => b::OK,
            Err(e) => {
                crate::log::server(rwsgi_core::Level::Crit, &e);
                SERVER_ERROR
            }
        }
    }

    unsafe extern "C" fn child_init(pchild: *mut b::apr_pool_t, _s: *mut b::server_rec) [on panic: ()] {
        crate::stopping::child_init();
        // SAFETY: the child's pool, alive for the child's whole life.
        if let Some(p) = unsafe { Pool::from_raw(pchild) } {
            (hooks().child_init)(&p);
        }
    }

    unsafe extern "C" fn translate_name(r: *mut b::request_rec) -> i32 [on panic: b::DECLINED] {
        // SAFETY: called by Apache with the live request, in this thread only.
        unsafe { Request::with(r, |req| (hooks().translate_name)(req)) }.raw()
    }

    unsafe extern "C" fn handler(r: *mut b::request_rec) -> i32 [on panic: SERVER_ERROR] {
        // SAFETY: called by Apache with the live request, in this thread only.
        let handled = unsafe { Request::with(r, |req| (hooks().handler)(req)) };
        // Not back into the MPM while it may be force-closing this thread's socket.
        crate::stopping::wait_while_closing_worker_sockets();
        handled.raw()
    }
}
