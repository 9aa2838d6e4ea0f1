//! Directives: the command table Apache reads when it loads the module, built at compile
//! time from rwsgi-core's directive registry, and the one trampoline every directive lands
//! in. Every directive is RAW_ARGS: the raw argument string goes to pure Rust code, so quoting,
//! arity and value errors are reported there; Apache prefixes the message with file and line.

use crate::bindings as b;
use crate::conf::Merge;
use crate::server::Server;
use rwsgi_core::config::directives::{
    DIRECTIVE_COUNT, DIRECTIVE_TABLE, DIRECTIVES, DirectiveSpec, Scope,
};
use std::ffi::{CStr, CString, c_char, c_void};
use std::marker::PhantomData;

/// What the module does with a directive.
pub trait Directives: 'static {
    /// The module's directory record (what Apache passes to every directive handler: for a
    /// server-level directive, the server's default directory record).
    type DirConfig: Merge;

    fn apply(
        cmd: &Cmd<'_>,
        spec: &'static DirectiveSpec,
        dir: &mut Self::DirConfig,
        raw: &str,
    ) -> Result<(), String>;
}

/// The directive being applied.
pub struct Cmd<'a> {
    cmd: *mut b::cmd_parms,
    _life: PhantomData<&'a b::cmd_parms>,
}

impl<'a> Cmd<'a> {
    /// The server (main or virtual host) the directive configures.
    pub fn server(&self) -> Server<'a> {
        // SAFETY: cmd->server is the live server being configured.
        unsafe { Server::from_raw((*self.cmd).server) }.expect("cmd->server")
    }

    /// `file:line` of the directive.
    pub fn place(&self) -> String {
        // SAFETY: during directive processing cmd->directive is the directive being applied;
        // its file name is a NUL-terminated string in the configuration pool.
        unsafe {
            let d = (*self.cmd).directive;
            if d.is_null() || (*d).filename.is_null() {
                "?".into()
            } else {
                format!(
                    "{}:{}",
                    CStr::from_ptr((*d).filename).to_string_lossy(),
                    (*d).line_num
                )
            }
        }
    }

    /// A directive allowed only outside <VirtualHost>, <Directory>...: Apache's own message
    /// when it is not.
    pub fn check_global(&self) -> Result<(), String> {
        // SAFETY: ap_check_cmd_context only reads cmd.
        let err = unsafe { b::ap_check_cmd_context(self.cmd, b::GLOBAL_ONLY as u32) };
        if err.is_null() {
            return Ok(());
        }
        // SAFETY: Apache returns a NUL-terminated message from cmd->pool.
        Err(unsafe { CStr::from_ptr(err) }
            .to_string_lossy()
            .into_owned())
    }

    /// `path` relative to ServerRoot (as Apache resolves relative paths).
    pub fn server_root_relative(&self, path: &str) -> String {
        let Ok(c) = CString::new(path) else {
            return path.to_string();
        };
        // SAFETY: the result is allocated in cmd->pool and copied out at once.
        unsafe {
            let r = b::ap_server_root_relative((*self.cmd).pool, c.as_ptr());
            if r.is_null() {
                path.to_string()
            } else {
                CStr::from_ptr(r).to_string_lossy().into_owned()
            }
        }
    }
}

/// The command table of a module whose directives are `D`'s (Apache reads it while loading the
/// module, before register_hooks: it must be a static built at compile time).
pub struct CommandTable(pub [b::command_rec; DIRECTIVE_COUNT + 1]);

// SAFETY: immutable after compilation; every pointer refers to 'static data.
unsafe impl Sync for CommandTable {}

impl CommandTable {
    pub const fn build<D: Directives>() -> CommandTable {
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
                    raw_args: Some(directive::<D>),
                },
                cmd_data: std::ptr::null_mut(),
                req_override: override_for(d.scope),
                args_how: b::cmd_how_RAW_ARGS,
                errmsg: d.cusage.as_ptr(),
            };
            i += 1;
        }
        CommandTable(t)
    }

    pub const fn as_ptr(&'static self) -> *const b::command_rec {
        self.0.as_ptr()
    }
}

const fn override_for(scope: Scope) -> i32 {
    match scope {
        Scope::Global | Scope::Server => b::RSRC_CONF,
        Scope::ServerDir => b::RSRC_CONF | b::ACCESS_CONF,
        Scope::FileInfo => b::OR_FILEINFO,
        Scope::AuthConfig => b::OR_AUTHCFG,
    }
}

rwsgi_core::entry! {
    unsafe extern "C" fn directive<D: Directives>(
        cmd: *mut b::cmd_parms,
        mconfig: *mut c_void,
        args: *const c_char,
    ) -> *const c_char [on panic: c"rwsgi: internal error while parsing a directive".as_ptr()] {
        // SAFETY: Apache passes a valid cmd_parms, our directory record as mconfig (made by
        // create_dir::<D::DirConfig>) and a NUL-terminated argument string.
        let (spec, raw, dir) = unsafe {
            let name = CStr::from_ptr((*(*cmd).cmd).name);
            let Some(spec) = DIRECTIVES.iter().find(|d| d.cname == name) else {
                return c"rwsgi: unknown directive".as_ptr();
            };
            let raw = CStr::from_ptr(args).to_string_lossy().into_owned();
            (spec, raw, &mut *mconfig.cast::<D::DirConfig>())
        };
        let c = Cmd {
            cmd,
            _life: PhantomData,
        };
        match D::apply(&c, spec, dir, &raw) {
            Ok(()) => std::ptr::null(),
            Err(msg) => {
                let m = CString::new(msg.replace('\0', " ")).unwrap_or_default();
                // SAFETY: copied into cmd->pool, which outlives configuration parsing, where
                // Apache prints the error.
                unsafe { b::apr_pstrdup((*cmd).pool, m.as_ptr()) }
            }
        }
    }
}
