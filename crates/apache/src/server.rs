//! A server (the main server or a virtual host) and a pool, as configuration-time code sees
//! them.

use crate::bindings as b;
use crate::conf::{Merge, record, record_mut};
use std::ffi::{CStr, CString, c_void};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// A `server_rec`, valid for `'a` (Apache keeps them for the configuration generation).
#[derive(Clone, Copy)]
pub struct Server<'a> {
    s: NonNull<b::server_rec>,
    _life: PhantomData<&'a b::server_rec>,
}

impl<'a> Server<'a> {
    /// # Safety
    /// `s` must be a live `server_rec` for `'a`.
    pub unsafe fn from_raw(s: *mut b::server_rec) -> Option<Server<'a>> {
        NonNull::new(s).map(|s| Server {
            s,
            _life: PhantomData,
        })
    }

    fn rec(&self) -> &'a b::server_rec {
        // SAFETY: see from_raw.
        unsafe { self.s.as_ref() }
    }

    /// Logs in this server's error log (a virtual host's own `ErrorLog`, if it has one).
    pub fn log(&self, level: rwsgi_core::Level, msg: &str) {
        crate::log::server_rec(level, self.s.as_ptr(), msg)
    }

    /// This server and every virtual host after it, in Apache's order (the main server first).
    pub fn and_virtual_hosts(self) -> impl Iterator<Item = Server<'a>> {
        std::iter::successors(Some(self), |s| {
            // SAFETY: the server list is complete once configuration is read.
            unsafe { Server::from_raw(s.rec().next) }
        })
    }

    pub fn hostname(&self) -> Option<String> {
        let p = self.rec().server_hostname;
        // SAFETY: a NUL-terminated string in the configuration pool.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    /// The module's record for this server (a virtual host without directives of the module
    /// shares the main server's: compare with [`std::ptr::eq`]).
    pub fn config<T: Merge>(&self) -> &'a T {
        // SAFETY: every server has our record, made by conf::create/merge_server::<T> (the
        // module declares T as its server config type).
        unsafe { record(self.rec().module_config) }
    }

    /// # Safety
    /// Only while the configuration is read or post-processed (single-threaded), with no other
    /// reference to the record alive.
    pub unsafe fn config_mut<T: Merge>(&self) -> &'a mut T {
        // SAFETY: as config(), plus the contract.
        unsafe { record_mut(self.rec().module_config) }
    }

    /// The pool that lives as long as the Apache parent (across restarts and module reloads).
    pub fn process_pool(&self) -> ProcessPool {
        // SAFETY: every server points to the process record.
        ProcessPool(unsafe { (*self.rec().process).pool })
    }

    /// The LogLevel in force for this module on this server (per-module `LogLevel wsgi:...` or
    /// the server's level), an APLOG_* number.
    pub fn module_log_level(&self) -> i32 {
        let log = &self.rec().log;
        let idx = crate::module::index();
        if !log.module_levels.is_null() && idx >= 0 {
            // SAFETY: module_levels has an entry per loaded module.
            let l = unsafe { *log.module_levels.add(idx as usize) } as i32;
            if l >= 0 {
                return l;
            }
        }
        log.level
    }
}

/// An APR pool (the configuration pool `pconf`, a child's pool...).
#[derive(Clone, Copy)]
pub struct Pool(NonNull<b::apr_pool_t>);

impl Pool {
    /// # Safety
    /// `p` must be a live pool for as long as the `Pool` is used.
    pub unsafe fn from_raw(p: *mut b::apr_pool_t) -> Option<Pool> {
        NonNull::new(p).map(Pool)
    }

    pub(crate) fn raw(&self) -> *mut b::apr_pool_t {
        self.0.as_ptr()
    }

    /// Runs `f` when the pool is cleared or destroyed (pconf: at every restart and at exit).
    /// Cleanups run in the reverse order of their registration.
    pub fn on_cleanup(&self, f: impl FnOnce() + 'static) {
        let data = Box::into_raw(Box::new(Some(Box::new(f) as Box<dyn FnOnce()>)));
        rwsgi_core::entry! {
            unsafe extern "C" fn run(data: *mut c_void) -> b::apr_status_t [on panic: 0] {
                // SAFETY: produced by Box::into_raw below; APR runs a cleanup once.
                let f = unsafe { Box::from_raw(data.cast::<Option<Box<dyn FnOnce()>>>()) };
                if let Some(f) = *f {
                    f();
                }
                0
            }
        }
        // SAFETY: the cleanup owns `data` and frees it exactly once; the child cleanup (run
        // in a child that execs) is a no-op.
        unsafe {
            b::apr_pool_cleanup_register(
                self.raw(),
                data.cast(),
                Some(run),
                Some(b::apr_pool_cleanup_null),
            )
        };
    }

    /// `DefaultRuntimeDir/<name>` (Apache's runtime directory, for the daemon sockets).
    pub fn runtime_dir_relative(&self, name: &str) -> Option<String> {
        let c = CString::new(name).ok()?;
        // SAFETY: the result is allocated in this pool and copied out at once.
        let p = unsafe { b::ap_runtime_dir_relative(self.raw(), c.as_ptr()) };
        // SAFETY: a NUL-terminated string from the pool, or NULL.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// Data kept in the process pool: it outlives every configuration generation and every reload
/// of the module (whose statics a restart resets).
#[derive(Clone, Copy)]
pub struct ProcessPool(*mut b::apr_pool_t);

impl ProcessPool {
    fn get(&self, key: &CStr) -> *mut c_void {
        let mut data: *mut c_void = std::ptr::null_mut();
        // SAFETY: a lookup in the live process pool.
        unsafe { b::apr_pool_userdata_get(&mut data, key.as_ptr(), self.0) };
        data
    }

    /// The bytes stored under `key` (with their length first), if any.
    pub fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        let key = CString::new(key).ok()?;
        let p = self.get(&key);
        if p.is_null() {
            return None;
        }
        // SAFETY: stored by set_bytes: a usize length, then that many bytes, in the pool.
        unsafe {
            let len = p.cast::<usize>().read_unaligned();
            Some(std::slice::from_raw_parts(p.cast::<u8>().add(size_of::<usize>()), len).to_vec())
        }
    }

    /// Stores a copy of `value` under `key` (replacing what was there).
    pub fn set_bytes(&self, key: &str, value: &[u8]) {
        let Ok(key) = CString::new(key) else { return };
        // SAFETY: the copy (length, then bytes) and the key are allocated in the process pool,
        // which lives as long as the userdata entry.
        unsafe {
            let n = size_of::<usize>() + value.len();
            let p = b::apr_palloc(self.0, n as _).cast::<u8>();
            if p.is_null() {
                return;
            }
            p.cast::<usize>().write_unaligned(value.len());
            std::ptr::copy_nonoverlapping(value.as_ptr(), p.add(size_of::<usize>()), value.len());
            let key = b::apr_pstrdup(self.0, key.as_ptr());
            b::apr_pool_userdata_set(p.cast(), key, Some(b::apr_pool_cleanup_null), self.0);
        }
    }
}
