//! Apache's authentication and authorisation providers and the access-checker hook, typed:
//! the module says what its `wsgi` authn provider (`AuthBasicProvider wsgi`,
//! `AuthDigestProvider wsgi`), its `wsgi-group` authz provider (`Require wsgi-group ...`) and
//! its access checker do ([`AuthHooks`]); the trampolines Apache calls live here.

use crate::bindings as b;
use crate::hooks::ModuleList;
use crate::request::Request;
use crate::server::Pool;
use std::ffi::{CStr, CString, c_char, c_void};
use std::sync::OnceLock;

/// An authentication provider's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authn {
    Denied,
    Granted,
    UserNotFound,
    GeneralError,
}

/// An authorisation provider's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authz {
    Denied,
    Granted,
    GeneralError,
    /// No authenticated user: Apache asks for credentials.
    DeniedNoUser,
}

/// An access checker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allow,
    NoOpinion,
    Forbidden,
}

/// What the module's providers do.
pub struct AuthHooks {
    /// Basic: `(request, user, password)`.
    pub check_password: fn(&Request<'_>, &str, &str) -> Authn,
    /// Digest: `(request, user, realm)` -> the hash of `user:realm:password`.
    pub get_realm_hash: fn(&Request<'_>, &str, &str) -> Result<Vec<u8>, Authn>,
    /// `Require wsgi-group <require_line>`.
    pub check_group: fn(&Request<'_>, &str) -> Authz,
    pub access: fn(&Request<'_>) -> Access,
}

static HOOKS: OnceLock<AuthHooks> = OnceLock::new();

fn hooks() -> &'static AuthHooks {
    HOOKS.get().expect("auth hooks registered")
}

struct Providers {
    authn: b::authn_provider,
    authz: b::authz_provider,
}
// SAFETY: function pointers only, never written after construction.
unsafe impl Sync for Providers {}

static PROVIDERS: Providers = Providers {
    authn: b::authn_provider {
        check_password: Some(check_password),
        get_realm_hash: Some(get_realm_hash),
    },
    authz: b::authz_provider {
        check_authorization: Some(check_authorization),
        parse_require_line: None,
    },
};

/// Registers the providers and the access checker (from register_hooks).
pub fn register(pool: &Pool, h: AuthHooks) {
    let _ = HOOKS.set(h);
    // Where mod_wsgi runs its access checker: after mod_ssl's, before mod_authz_host's.
    static BEFORE: ModuleList<2> = ModuleList([c"mod_authz_host.c".as_ptr(), std::ptr::null()]);
    static AFTER: ModuleList<2> = ModuleList([c"mod_ssl.c".as_ptr(), std::ptr::null()]);
    // SAFETY: called while Apache loads the module; the providers are 'static and Apache
    // keeps only their addresses; the names and version strings are 'static literals.
    unsafe {
        b::ap_register_auth_provider(
            pool.raw(),
            c"authn".as_ptr(),
            c"wsgi".as_ptr(),
            c"0".as_ptr(),
            (&raw const PROVIDERS.authn).cast(),
            b::AP_AUTH_INTERNAL_PER_CONF,
        );
        b::ap_register_auth_provider(
            pool.raw(),
            c"authz".as_ptr(),
            c"wsgi-group".as_ptr(),
            c"0".as_ptr(),
            (&raw const PROVIDERS.authz).cast(),
            b::AP_AUTH_INTERNAL_PER_CONF,
        );
        b::ap_hook_access_checker(
            Some(access_checker),
            AFTER.0.as_ptr(),
            BEFORE.0.as_ptr(),
            b::APR_HOOK_MIDDLE,
        );
    }
}

fn authn_raw(a: Authn) -> b::authn_status {
    match a {
        Authn::Denied => b::authn_status_AUTH_DENIED,
        Authn::Granted => b::authn_status_AUTH_GRANTED,
        Authn::UserNotFound => b::authn_status_AUTH_USER_NOT_FOUND,
        Authn::GeneralError => b::authn_status_AUTH_GENERAL_ERROR,
    }
}

fn text<'a>(p: *const c_char) -> std::borrow::Cow<'a, str> {
    if p.is_null() {
        return "".into();
    }
    // SAFETY: Apache passes NUL-terminated strings that live for the request.
    unsafe { CStr::from_ptr(p) }.to_string_lossy()
}

rwsgi_core::entry! {
    unsafe extern "C" fn check_password(
        r: *mut b::request_rec,
        user: *const c_char,
        password: *const c_char,
    ) -> b::authn_status [on panic: b::authn_status_AUTH_GENERAL_ERROR] {
        // SAFETY: called by Apache with the live request, in this thread only.
        let a = unsafe { Request::with(r, |req| (hooks().check_password)(&req, &text(user), &text(password))) };
        authn_raw(a)
    }

    unsafe extern "C" fn get_realm_hash(
        r: *mut b::request_rec,
        user: *const c_char,
        realm: *const c_char,
        rethash: *mut *mut c_char,
    ) -> b::authn_status [on panic: b::authn_status_AUTH_GENERAL_ERROR] {
        // SAFETY: called by Apache with the live request, in this thread only.
        unsafe {
            Request::with(r, |req| match (hooks().get_realm_hash)(&req, &text(user), &text(realm)) {
                Ok(hash) => {
                    let Ok(c) = CString::new(hash) else {
                        return b::authn_status_AUTH_GENERAL_ERROR;
                    };
                    // The hash lives in the request pool, as Apache expects.
                    *rethash = b::apr_pstrdup((*r).pool, c.as_ptr());
                    b::authn_status_AUTH_USER_FOUND
                }
                Err(a) => authn_raw(a),
            })
        }
    }

    unsafe extern "C" fn check_authorization(
        r: *mut b::request_rec,
        require_line: *const c_char,
        _parsed: *const c_void,
    ) -> b::authz_status [on panic: b::authz_status_AUTHZ_GENERAL_ERROR] {
        // SAFETY: called by Apache with the live request, in this thread only.
        let a = unsafe { Request::with(r, |req| (hooks().check_group)(&req, &text(require_line))) };
        match a {
            Authz::Denied => b::authz_status_AUTHZ_DENIED,
            Authz::Granted => b::authz_status_AUTHZ_GRANTED,
            Authz::GeneralError => b::authz_status_AUTHZ_GENERAL_ERROR,
            Authz::DeniedNoUser => b::authz_status_AUTHZ_DENIED_NO_USER,
        }
    }

    unsafe extern "C" fn access_checker(r: *mut b::request_rec) -> i32 [on panic: b::HTTP_INTERNAL_SERVER_ERROR] {
        // SAFETY: called by Apache with the live request, in this thread only.
        match unsafe { Request::with(r, |req| (hooks().access)(&req)) } {
            Access::Allow => b::OK,
            Access::NoOpinion => b::DECLINED,
            Access::Forbidden => b::HTTP_FORBIDDEN,
        }
    }
}
