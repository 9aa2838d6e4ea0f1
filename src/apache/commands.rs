//! The command table, built once from src/config's directive registry. Every directive is
//! RAW_ARGS and lands in one trampoline that hands the raw argument string to src/config, so
//! quoting, arity and value errors are reported by pure Rust code; Apache prefixes our message
//! with the file and line.

use super::bindings as b;
use super::conf::{dir_conf_mut, server_conf_mut};
use crate::config::directives::{
    DIRECTIVE_COUNT, DIRECTIVE_TABLE, DIRECTIVES, DirectiveSpec, Scope, Support, Target, apply_dir,
    apply_server,
};
use std::ffi::{CStr, CString, c_char, c_void};

/// Apache hashes a module's commands while loading it, before `register_hooks` runs, so the
/// table must be a static built at compile time.
pub struct Table(pub [b::command_rec; DIRECTIVE_COUNT + 1]);
// SAFETY: immutable after compilation; every pointer refers to 'static data.
unsafe impl Sync for Table {}

pub static TABLE: Table = Table(build());

const fn build() -> [b::command_rec; DIRECTIVE_COUNT + 1] {
    const END: b::command_rec = b::command_rec {
        name: std::ptr::null(),
        func: b::cmd_func { raw_args: None },
        cmd_data: std::ptr::null_mut(),
        req_override: 0,
        args_how: 0,
        errmsg: std::ptr::null(),
    };
    let mut t = [END; DIRECTIVE_COUNT + 1];
    let mut i = 0;
    while i < DIRECTIVE_COUNT {
        let d = &DIRECTIVE_TABLE[i];
        t[i] = b::command_rec {
            name: d.cname.as_ptr(),
            func: b::cmd_func {
                raw_args: Some(directive),
            },
            cmd_data: std::ptr::null_mut(),
            req_override: override_for(d.scope),
            args_how: b::cmd_how_RAW_ARGS,
            errmsg: d.cusage.as_ptr(),
        };
        i += 1;
    }
    t
}

const fn override_for(scope: Scope) -> i32 {
    match scope {
        Scope::Global | Scope::Server => b::RSRC_CONF,
        Scope::ServerDir => b::RSRC_CONF | b::ACCESS_CONF,
        Scope::FileInfo => b::OR_FILEINFO,
        Scope::AuthConfig => b::OR_AUTHCFG,
    }
}

crate::entry! {
    unsafe extern "C" fn directive(
        cmd: *mut b::cmd_parms,
        mconfig: *mut c_void,
        args: *const c_char,
    ) -> *const c_char [on panic: c"rwsgi: internal error while parsing a directive".as_ptr()] {
        // SAFETY: Apache passes a valid cmd_parms whose `info` is the cmd_data we stored (an
        // index into DIRECTIVES), and a NUL-terminated argument string.
        let (spec, raw) = unsafe {
            let name = CStr::from_ptr((*(*cmd).cmd).name);
            let Some(spec) = DIRECTIVES.iter().find(|d| d.cname == name) else {
                return c"rwsgi: unknown directive".as_ptr();
            };
            (spec, CStr::from_ptr(args).to_string_lossy().into_owned())
        };
        match run(cmd, mconfig, spec, &raw) {
            Ok(()) => std::ptr::null(),
            // SAFETY: cmd->pool outlives configuration parsing, where Apache prints the error.
            Err(msg) => unsafe { pool_str((*cmd).pool, &msg) },
        }
    }
}

fn run(
    cmd: *mut b::cmd_parms,
    mconfig: *mut c_void,
    spec: &DirectiveSpec,
    raw: &str,
) -> Result<(), String> {
    if spec.scope == Scope::Global {
        // SAFETY: ap_check_cmd_context only reads cmd.
        let err = unsafe { b::ap_check_cmd_context(cmd, b::GLOBAL_ONLY as u32) };
        if !err.is_null() {
            // SAFETY: Apache returns a NUL-terminated message from cmd->pool.
            return Err(unsafe { CStr::from_ptr(err) }
                .to_string_lossy()
                .into_owned());
        }
    }
    if spec.support == Support::NoEffect {
        super::log::server(
            super::log::Level::Debug,
            &format!(
                "rwsgi: {} is accepted for compatibility and has no effect",
                spec.name()
            ),
        );
    }
    match spec.target() {
        Target::Server => {
            // SAFETY: cmd->server is the server being configured; its module_config holds our
            // ServerConf created by create_server_config.
            let conf = unsafe { server_conf_mut((*cmd).server) };
            let pool = unsafe { (*cmd).pool };
            let resolve = |p: &str| server_root_relative(pool, p);
            apply_server(spec, &mut conf.config, raw, &resolve)?;
            if spec.name() == "WSGIDaemonProcess" {
                claim_group_name(cmd, &mut conf.config)?;
            }
            if spec.name() == "WSGISocketPrefix" {
                check_socket_prefix(&conf.config)?;
            }
            conf.compile_new_patterns()
        }
        // SAFETY: for directory-target directives Apache passes our DirConf as mconfig.
        Target::Dir => apply_dir(spec, unsafe { dir_conf_mut(mconfig) }, raw),
    }
}

/// Daemon process group names declared so far in this reading of the configuration, with
/// where: a name is unique across the main server and every virtual host, and a duplicate
/// must fail `apache2 -t` with both places (as mod_wsgi does), not only the start.
static GROUP_NAMES: std::sync::Mutex<crate::config::daemon::GroupNames> =
    std::sync::Mutex::new(crate::config::daemon::GroupNames::new());

/// A new reading of the configuration begins (pre_config runs before any directive).
pub(crate) fn forget_group_names() {
    GROUP_NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

/// Records the group the WSGIDaemonProcess just parsed declares; a name already declared
/// elsewhere takes it back out and is an error naming the first declaration.
fn claim_group_name(
    cmd: *mut b::cmd_parms,
    conf: &mut crate::config::ServerConfig,
) -> Result<(), String> {
    let Some(name) = conf.daemons.last().map(|d| d.name.clone()) else {
        return Ok(());
    };
    // SAFETY: during directive processing cmd->directive is the directive being applied; its
    // file name is a NUL-terminated string in the configuration pool.
    let place = unsafe {
        let d = (*cmd).directive;
        if d.is_null() || (*d).filename.is_null() {
            String::from("?")
        } else {
            format!(
                "{}:{}",
                CStr::from_ptr((*d).filename).to_string_lossy(),
                (*d).line_num
            )
        }
    };
    let claimed = GROUP_NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .claim(&name, &place);
    if let Err(e) = claimed {
        conf.daemons.pop();
        return Err(e);
    }
    Ok(())
}

/// The daemon sockets go where WSGISocketPrefix says; a directory another user can write to
/// would let that user put their own socket in a group's place and receive its requests.
fn check_socket_prefix(conf: &crate::config::ServerConfig) -> Result<(), String> {
    let Some(prefix) = conf.socket_prefix.as_deref() else {
        return Ok(());
    };
    let dir = std::path::Path::new(prefix)
        .parent()
        .unwrap_or(std::path::Path::new("/"));
    crate::daemon::socket::check_dir(dir, nix::unistd::geteuid().as_raw())
        .map_err(|e| format!("WSGISocketPrefix {prefix}: {e}"))
}

fn server_root_relative(pool: *mut b::apr_pool_t, path: &str) -> String {
    let Ok(c) = CString::new(path) else {
        return path.to_string();
    };
    // SAFETY: ap_server_root_relative allocates the result in `pool`; we copy it out at once.
    unsafe {
        let r = b::ap_server_root_relative(pool, c.as_ptr());
        if r.is_null() {
            path.to_string()
        } else {
            CStr::from_ptr(r).to_string_lossy().into_owned()
        }
    }
}

/// Copies `s` into `pool` (for error strings Apache prints after we return).
unsafe fn pool_str(pool: *mut b::apr_pool_t, s: &str) -> *const c_char {
    let c = CString::new(s.replace('\0', " ")).unwrap_or_default();
    // SAFETY: apr_pstrdup copies the NUL-terminated string into the pool.
    unsafe { b::apr_pstrdup(pool, c.as_ptr()) }
}
