//! Per-server and per-directory configuration records. Apache stores an opaque pointer per
//! module; ours point to Rust values allocated with Box and freed by a cleanup on the pool that
//! owns them (pconf: cleared at every restart).

use super::bindings as b;
use super::module::module_index;
use crate::config::{AliasPattern, DirConfig, ServerConfig};
use std::ffi::{CString, c_void};
use std::sync::Arc;

/// A compiled `WSGIScriptAliasMatch` regular expression (Apache's PCRE wrapper, so patterns
/// behave exactly as in mod_alias / mod_wsgi).
pub struct Regex(*mut b::ap_regex_t);

// SAFETY: a compiled ap_regex_t is immutable after compilation; ap_regexec is thread-safe.
unsafe impl Send for Regex {}
unsafe impl Sync for Regex {}

impl Regex {
    fn compile(pattern: &str) -> Result<Regex, String> {
        let c = CString::new(pattern).map_err(|_| "NUL byte in regular expression".to_string())?;
        // SAFETY: ap_regex_t is plain data; ap_regcomp initialises it or fails.
        unsafe {
            let re: *mut b::ap_regex_t = Box::into_raw(Box::new(std::mem::zeroed()));
            if b::ap_regcomp(re, c.as_ptr(), 0) != 0 {
                drop(Box::from_raw(re));
                return Err(format!(
                    "Regular expression could not be compiled: {pattern}"
                ));
            }
            Ok(Regex(re))
        }
    }

    /// Matches `subject`; returns the end of the whole match and the capture groups (for `$n`).
    pub fn matches(&self, subject: &str) -> Option<(usize, Vec<Option<String>>)> {
        const N: usize = 10;
        let c = CString::new(subject).ok()?;
        let mut m = [b::ap_regmatch_t {
            rm_so: -1,
            rm_eo: -1,
        }; N];
        // SAFETY: the regex is compiled; `m` has room for N matches.
        let rc = unsafe { b::ap_regexec(self.0, c.as_ptr(), N, m.as_mut_ptr(), 0) };
        if rc != 0 {
            return None;
        }
        let groups = m
            .iter()
            .map(|g| {
                (g.rm_so >= 0).then(|| subject[g.rm_so as usize..g.rm_eo as usize].to_string())
            })
            .collect();
        Some((m[0].rm_eo as usize, groups))
    }
}

impl Drop for Regex {
    fn drop(&mut self) {
        // SAFETY: compiled by ap_regcomp and owned by us.
        unsafe {
            b::ap_regfree(self.0);
            drop(Box::from_raw(self.0));
        }
    }
}

/// Our per-server record: the parsed configuration plus a compiled regex per alias.
#[derive(Default)]
pub struct ServerConf {
    pub config: ServerConfig,
    pub regexes: Vec<Option<Arc<Regex>>>,
}

impl ServerConf {
    /// Compiles the regexes of aliases added since the last call.
    pub fn compile_new_patterns(&mut self) -> Result<(), String> {
        while self.regexes.len() < self.config.aliases.len() {
            let re = match &self.config.aliases[self.regexes.len()].pattern {
                AliasPattern::Regex(p) => match Regex::compile(p) {
                    Ok(r) => Some(Arc::new(r)),
                    Err(e) => {
                        self.config.aliases.pop();
                        return Err(e);
                    }
                },
                AliasPattern::Prefix(_) => None,
            };
            self.regexes.push(re);
        }
        Ok(())
    }
}

crate::entry! {
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

crate::entry! {
    pub(crate) unsafe extern "C" fn create_server_config(
        p: *mut b::apr_pool_t,
        _s: *mut b::server_rec,
    ) -> *mut c_void [on panic: std::ptr::null_mut()] {
        pool_box(p, ServerConf::default())
    }
}

crate::entry! {
    pub(crate) unsafe extern "C" fn merge_server_config(
        p: *mut b::apr_pool_t,
        base: *mut c_void,
        add: *mut c_void,
    ) -> *mut c_void [on panic: std::ptr::null_mut()] {
        // SAFETY: both pointers were produced by create/merge_server_config.
        let (base, add) = unsafe { (&*base.cast::<ServerConf>(), &*add.cast::<ServerConf>()) };
        let mut regexes = add.regexes.clone();
        regexes.extend(base.regexes.iter().cloned());
        pool_box(
            p,
            ServerConf {
                config: ServerConfig::merge(&base.config, &add.config),
                regexes,
            },
        )
    }
}

crate::entry! {
    pub(crate) unsafe extern "C" fn create_dir_config(
        p: *mut b::apr_pool_t,
        _dir: *mut std::ffi::c_char,
    ) -> *mut c_void [on panic: std::ptr::null_mut()] {
        pool_box(p, DirConfig::default())
    }
}

crate::entry! {
    pub(crate) unsafe extern "C" fn merge_dir_config(
        p: *mut b::apr_pool_t,
        base: *mut c_void,
        add: *mut c_void,
    ) -> *mut c_void [on panic: std::ptr::null_mut()] {
        // SAFETY: both pointers were produced by create/merge_dir_config.
        let (base, add) = unsafe { (&*base.cast::<DirConfig>(), &*add.cast::<DirConfig>()) };
        pool_box(p, DirConfig::merge(base, add))
    }
}

/// # Safety
/// `s` must be a live server_rec whose module config was created by this module.
pub unsafe fn server_conf<'a>(s: *const b::server_rec) -> &'a ServerConf {
    // SAFETY: per the contract above.
    unsafe {
        &*b::rwsgi_get_module_config((*s).module_config as *const *mut c_void, module_index())
            .cast::<ServerConf>()
    }
}

/// # Safety
/// As [`server_conf`], and only during single-threaded configuration parsing.
pub unsafe fn server_conf_mut<'a>(s: *const b::server_rec) -> &'a mut ServerConf {
    // SAFETY: per the contract above.
    unsafe {
        &mut *b::rwsgi_get_module_config((*s).module_config as *const *mut c_void, module_index())
            .cast::<ServerConf>()
    }
}

/// # Safety
/// `m` must be a DirConf pointer Apache passed to a directive handler.
pub unsafe fn dir_conf_mut<'a>(m: *mut c_void) -> &'a mut DirConfig {
    // SAFETY: per the contract above.
    unsafe { &mut *m.cast::<DirConfig>() }
}

/// # Safety
/// `r` must be a live request_rec.
pub unsafe fn request_dir_conf<'a>(r: *const b::request_rec) -> &'a DirConfig {
    // SAFETY: per the contract above; the merged per-dir vector always holds our record.
    unsafe {
        &*b::rwsgi_get_module_config((*r).per_dir_config as *const *mut c_void, module_index())
            .cast::<DirConfig>()
    }
}

/// The merged directory configuration of a request.
pub fn request_dir_config(req: &super::Request) -> DirConfig {
    // SAFETY: the Request wraps the live request of the current hook.
    unsafe { request_dir_conf(req.raw()) }.clone()
}
