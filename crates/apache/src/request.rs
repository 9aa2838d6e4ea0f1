//! A safe view of one `request_rec` for the code that serves it (src/embedded): what the URL
//! mapped to, the CGI variables Apache computes, the request body and the response output.

use super::bindings as b;
use super::log;
use rwsgi_core::Level;
use std::borrow::Cow;
use std::ffi::{CStr, CString, c_char};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Reading the request body (its own file: `impl Request` continues there).
mod body;
/// The request's tables (notes, headers, environment) and strings in its pool.
mod tables;

/// The request a hook is serving, for as long as the hook runs (`'r`). Not `Copy`, not
/// `Clone` and not `Sync`: whatever keeps it must give it back before the hook returns, so a
/// closure or object that outlives the request cannot hold it (an application thread writing
/// to a kept `wsgi.errors` once reached a freed request_rec that way).
pub struct Request<'r> {
    r: NonNull<b::request_rec>,
    _serving: PhantomData<&'r mut b::request_rec>,
}

// SAFETY: a Request may be moved to another thread (the WSGI exchange hands it to whichever
// Python thread reads the body or writes the response), but it is never shared: every use
// goes through `&mut`/`&` of its single owner, which the exchange serialises with a mutex.
unsafe impl Send for Request<'_> {}

/// Logging on behalf of a request, from any thread, while the request lasts (`'r`).
#[derive(Clone)]
pub struct RequestLog<'r> {
    r: NonNull<b::request_rec>,
    _serving: PhantomData<&'r b::request_rec>,
}

// SAFETY: ap_log_rerror only reads the request (and its connection and server), which stay
// unchanged while the request lasts; mod_wsgi logs from application threads the same way.
unsafe impl Send for RequestLog<'_> {}
// SAFETY: as above.
unsafe impl Sync for RequestLog<'_> {}

impl RequestLog<'_> {
    pub fn log(&self, level: Level, msg: &str) {
        log::request(level, self.r.as_ptr(), msg)
    }
}

/// mod_ssl's view of a request, usable from any thread while the request lasts (`'r`): what
/// `mod_ssl.is_https()` and `mod_ssl.var_lookup(name)` answer in a WSGI environ.
pub struct RequestSsl<'r> {
    r: NonNull<b::request_rec>,
    _serving: PhantomData<&'r b::request_rec>,
}

// SAFETY: like RequestLog: bound to the request's lifetime; mod_ssl's lookups only read the
// connection's SSL state and allocate in the request pool, as mod_ssl's own callers do.
unsafe impl Send for RequestSsl<'_> {}
// SAFETY: as above.
unsafe impl Sync for RequestSsl<'_> {}

impl RequestSsl<'_> {
    pub fn is_https(&self) -> bool {
        // SAFETY: the request and its connection are live for 'r.
        unsafe { b::rwsgi_is_https((*self.r.as_ptr()).connection) != 0 }
    }

    pub fn var(&self, name: &str) -> Option<String> {
        let name = CString::new(name).ok()?;
        // SAFETY: a live request; the result is a request-pool string or NULL.
        let v = unsafe { b::rwsgi_ssl_var_lookup(self.r.as_ptr(), name.as_ptr()) };
        cstr(v).map(|s| s.into_owned())
    }
}

/// Whether mod_ssl is loaded in this server.
pub fn ssl_loaded() -> bool {
    // SAFETY: looks up an optional function by name.
    unsafe { b::rwsgi_ssl_loaded() != 0 }
}

fn cstr<'a>(p: *const c_char) -> Option<Cow<'a, str>> {
    // SAFETY: Apache strings are NUL-terminated and live at least as long as the request.
    (!p.is_null()).then(|| text(unsafe { CStr::from_ptr(p) }))
}

/// `s` as text, invalid UTF-8 replaced: `to_str` first, whose check takes ASCII a word at a
/// time (`to_string_lossy` goes byte by byte: 0.5 % of a hello request's CPU on the CGI
/// variables' names).
fn text(s: &CStr) -> Cow<'_, str> {
    s.to_str()
        .map(Cow::Borrowed)
        .unwrap_or_else(|_| s.to_string_lossy())
}

/// What `r->finfo` says about the mapped file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Missing,
    Regular,
    Directory,
    Other,
}

impl<'r> Request<'r> {
    /// Runs `f` with the request `r`; nothing `f` is given can outlive the call.
    ///
    /// # Safety
    /// `r` must be the live request of the current hook invocation, used by no other thread
    /// while `f` runs.
    pub unsafe fn with<T>(r: *mut b::request_rec, f: impl for<'a> FnOnce(Request<'a>) -> T) -> T {
        match NonNull::new(r) {
            Some(r) => f(Request {
                r,
                _serving: PhantomData,
            }),
            None => panic!("Apache passed a NULL request_rec"),
        }
    }

    /// The same request for a shorter time: `self` cannot be used until the returned value
    /// (and everything made from it) is gone, so there is still one user at a time.
    pub fn reborrow(&mut self) -> Request<'_> {
        Request {
            r: self.r,
            _serving: PhantomData,
        }
    }

    /// The module's directory record for this request (merged for its location).
    pub fn dir_config<T: crate::conf::Merge>(&self) -> &T {
        // SAFETY: the merged per-dir vector holds our record (made by create/merge_dir::<T>:
        // the module declares T as its directory config type), alive as long as the request.
        unsafe { crate::conf::record(self.rec().per_dir_config) }
    }

    /// The module's record of the server (virtual host) serving this request.
    pub fn server_config<T: crate::conf::Merge>(&self) -> &T {
        // SAFETY: r->server is live for the request and has our record.
        unsafe { crate::server::Server::from_raw(self.rec().server) }
            .expect("r->server")
            .config()
    }

    fn rec(&self) -> &b::request_rec {
        // SAFETY: the request is live for 'r (see `with`).
        unsafe { self.r.as_ref() }
    }

    pub(crate) fn raw(&self) -> *mut b::request_rec {
        self.r.as_ptr()
    }

    /// A logging handle for other threads, valid as long as the request.
    /// mod_ssl's view of this request (`None` when mod_ssl is not loaded).
    pub fn ssl(&self) -> Option<RequestSsl<'r>> {
        ssl_loaded().then_some(RequestSsl {
            r: self.r,
            _serving: PhantomData,
        })
    }

    pub fn logger(&self) -> RequestLog<'r> {
        RequestLog {
            r: self.r,
            _serving: PhantomData,
        }
    }

    pub fn uri(&self) -> Cow<'_, str> {
        cstr(self.rec().uri).unwrap_or_default()
    }
    pub fn unparsed_uri(&self) -> Cow<'_, str> {
        cstr(self.rec().unparsed_uri).unwrap_or_default()
    }
    pub fn filename(&self) -> Cow<'_, str> {
        cstr(self.rec().filename).unwrap_or_default()
    }
    pub fn path_info(&self) -> Cow<'_, str> {
        cstr(self.rec().path_info).unwrap_or_default()
    }
    pub fn handler(&self) -> Option<Cow<'_, str>> {
        cstr(self.rec().handler)
    }
    pub fn method(&self) -> Cow<'_, str> {
        cstr(self.rec().method).unwrap_or_default()
    }
    /// The query string (`r->args`).
    pub fn args(&self) -> Option<Cow<'_, str>> {
        cstr(self.rec().args)
    }
    /// The response status set so far (`r->status`).
    pub fn status(&self) -> u16 {
        u16::try_from(self.rec().status).unwrap_or(0)
    }
    /// Request body bytes read so far (`r->read_length`).
    pub fn body_bytes_read(&self) -> u64 {
        self.rec().read_length.max(0) as u64
    }
    /// Response body bytes counted by Apache's filters so far (`r->bytes_sent`).
    pub fn bytes_sent(&self) -> u64 {
        self.rec().bytes_sent.max(0) as u64
    }
    pub fn header_only(&self) -> bool {
        self.rec().header_only != 0
    }
    pub fn rejects_path_info(&self) -> bool {
        self.rec().used_path_info == 1 // AP_REQ_REJECT_PATH_INFO
    }

    pub fn set_filename(&self, f: &str) {
        self.set_filename_joined(f, "");
    }
    /// The filename `head` + `tail`, joined in the request pool (no heap string in between).
    pub fn set_filename_joined(&self, head: &str, tail: &str) {
        let p = self.pjoin(&[head.as_bytes(), tail.as_bytes()]);
        // SAFETY: the request is live and the string is pool-allocated.
        unsafe { (*self.raw()).filename = p.cast_mut() };
    }
    /// Maps the request to the file `target` with `rest` (the URL after what mapped to it,
    /// starting with a `/`) as path info, if `target` is a regular file now; false (nothing
    /// changed) otherwise. The stat goes where Apache's directory walk looks first
    /// (`r->finfo`), so the walk stats nothing more: with `rest` appended to the filename
    /// instead, its first stat fails (ENOTDIR) and it looks up every directory from `/` down
    /// to the target. Symbolic-link checks (`Options` without FollowSymLinks) still look at
    /// every directory.
    pub fn map_to_file(&self, target: &str, rest: &str) -> bool {
        let r = self.raw();
        let f = self.pjoin(&[target.as_bytes()]);
        // SAFETY: the request is live and owned by this thread (translate_name); the filename
        // and path info are pool-allocated; dirwalk_stat fills r->finfo from the request pool,
        // as the walk's own stat would.
        unsafe {
            let old = (*r).filename;
            (*r).filename = f.cast_mut();
            let found = b::ap_run_dirwalk_stat(&raw mut (*r).finfo, r, b::APR_FINFO_MIN);
            if found == b::APR_SUCCESS as b::apr_status_t
                && (*r).finfo.filetype == b::apr_filetype_e_APR_REG
            {
                (*r).path_info = self.pjoin(&[rest.as_bytes()]).cast_mut();
                return true;
            }
            (*r).finfo.filetype = b::apr_filetype_e_APR_NOFILE;
            (*r).filename = old;
        }
        false
    }
    pub fn set_handler(&self, h: &'static CStr) {
        // SAFETY: as above; a static string outlives the request.
        unsafe { (*self.raw()).handler = h.as_ptr() };
    }

    pub fn file_type(&self) -> FileType {
        match self.rec().finfo.filetype {
            b::apr_filetype_e_APR_NOFILE => FileType::Missing,
            b::apr_filetype_e_APR_REG => FileType::Regular,
            b::apr_filetype_e_APR_DIR => FileType::Directory,
            _ => FileType::Other,
        }
    }
    /// Modification time of the mapped file, microseconds since the epoch.
    pub fn file_mtime(&self) -> i64 {
        self.rec().finfo.mtime
    }

    /// `Options ExecCGI` in force for this request.
    pub fn allows_exec_cgi(&self) -> bool {
        // SAFETY: reads the request's merged core configuration.
        unsafe { b::ap_allow_options(self.raw()) & b::OPT_EXECCGI != 0 }
    }

    /// ap_add_cgi_vars without PATH_TRANSLATED. Apache computes that variable with a
    /// sub-request that maps PATH_INFO to a file (translation, access and auth hooks, a
    /// directory walk: about 3 µs, a tenth of a small request) for a CGI variable WSGI
    /// applications have no use for; mod_wsgi 6 leaves it out too. Apache sets the other
    /// variables with r->path_info hidden (what skips the sub-request); SCRIPT_NAME and
    /// PATH_INFO are then set as it would have set them.
    ///
    /// # Safety
    /// Called on the live request, from the thread that owns it.
    unsafe fn add_cgi_vars_without_path_translated(&self) {
        let r = self.raw();
        // SAFETY: r is live and ours (the caller's contract); ap_add_cgi_vars only reads
        // r->path_info, which is restored before anything else sees the request.
        unsafe {
            let path_info = (*r).path_info;
            if path_info.is_null() || *path_info == 0 {
                b::ap_add_cgi_vars(r);
                return;
            }
            (*r).path_info = c"".as_ptr().cast_mut();
            b::ap_add_cgi_vars(r);
            (*r).path_info = path_info;
            let env = (*r).subprocess_env;
            let included = !(*r).protocol.is_null() && CStr::from_ptr((*r).protocol) == c"INCLUDED";
            if !included {
                let uri = (*r).uri;
                let start = b::ap_find_path_info(uri, path_info).max(0) as usize;
                let script_name = b::apr_pstrmemdup((*r).pool, uri, start as b::apr_size_t);
                b::apr_table_setn(env, c"SCRIPT_NAME".as_ptr(), script_name);
            }
            b::apr_table_setn(env, c"PATH_INFO".as_ptr(), path_info);
        }
    }

    /// The CGI/1.1 variables Apache computes (ap_add_common_vars + ap_add_cgi_vars, less
    /// PATH_TRANSLATED), plus anything SetEnv / mod_rewrite / mod_ssl put into
    /// subprocess_env, in table order.
    pub fn cgi_variables(&self) -> rwsgi_core::Environ {
        // SAFETY: both fill r->subprocess_env from the live request.
        unsafe {
            b::ap_add_common_vars(self.raw());
            self.add_cgi_vars_without_path_translated();
        }
        let t = self.rec().subprocess_env;
        // Room for the mod_wsgi.* keys the handler adds.
        let mut env = rwsgi_core::Environ::with_capacity(64, 2048);
        // SAFETY: subprocess_env is one of the live request's tables.
        unsafe { tables::each_entry(t, |k, v| env.push(&text(k), v)) };
        env
    }

    pub fn is_https(&self) -> bool {
        // SAFETY: mod_ssl's optional function (if loaded) only reads the connection.
        unsafe { b::rwsgi_is_https(self.rec().connection) != 0 }
    }

    pub fn request_time(&self) -> i64 {
        self.rec().request_time
    }
    /// Apache's request log id (`%L`), generated now if no module did yet (as mod_wsgi).
    pub fn log_id(&self) -> Option<Cow<'_, str>> {
        if self.rec().log_id.is_null() {
            // SAFETY: the generate_log_id hook writes a pool-allocated id into r->log_id.
            unsafe {
                b::ap_run_generate_log_id(
                    (*self.raw()).connection,
                    self.raw(),
                    &raw mut (*self.raw()).log_id,
                )
            };
        }
        cstr(self.rec().log_id)
    }

    // ---- response -----------------------------------------------------------------------

    /// `line` and header values are byte strings (PEP 3333 latin-1).
    pub fn set_status(&self, code: u16, line: &[u8]) {
        let l = self.pbytes(line);
        // SAFETY: the status line lives in the request pool.
        unsafe {
            (*self.raw()).status = code as i32;
            (*self.raw()).status_line = l;
        }
    }

    /// Adds a response header; Content-Type and Content-Length go through Apache's setters so
    /// output filters see them.
    pub fn add_header(&self, name: &str, value: &[u8]) {
        if name.eq_ignore_ascii_case("content-type") {
            let v = self.pbytes(value);
            // SAFETY: pool-allocated value.
            unsafe { b::ap_set_content_type(self.raw(), v) };
        } else if name.eq_ignore_ascii_case("content-length") {
            if let Some(n) = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
            {
                // SAFETY: plain setter.
                unsafe { b::ap_set_content_length(self.raw(), n) };
            }
        } else {
            let t = if name.eq_ignore_ascii_case("www-authenticate") {
                self.rec().err_headers_out
            } else {
                self.rec().headers_out
            };
            let (k, v) = (self.pstr(name), self.pbytes(value));
            // SAFETY: pool-allocated strings.
            unsafe { b::apr_table_addn(t, k, v) };
        }
    }

    pub fn log(&self, level: Level, msg: &str) {
        log::request(level, self.raw(), msg)
    }

    pub fn connection_aborted(&self) -> bool {
        // SAFETY: the connection outlives the request.
        unsafe { (*self.rec().connection).aborted != 0 }
    }

    /// Forces the connection closed after this response (the client cannot trust the framing).
    pub fn close_connection(&self) {
        // SAFETY: as above.
        unsafe { (*self.rec().connection).keepalive = b::ap_conn_keepalive_e_AP_CONN_CLOSE };
    }

    /// Server name (as configured) and port for %{SERVER} and friends.
    pub fn server_identity(&self) -> (Cow<'_, str>, u16) {
        // SAFETY: r->server is live for the request.
        let s = unsafe { &*self.rec().server };
        // SAFETY: ap_get_server_port only reads the request.
        let port = unsafe { b::ap_get_server_port(self.raw()) };
        (cstr(s.server_hostname).unwrap_or_default(), port)
    }
    pub fn hostname(&self) -> Cow<'_, str> {
        cstr(self.rec().hostname).unwrap_or_default()
    }

    /// The authenticated user (`r->user`, REMOTE_USER), if any.
    pub fn user(&self) -> Option<Cow<'_, str>> {
        cstr(self.rec().user)
    }

    /// Sets the authenticated user (an authentication provider naming another user).
    pub fn set_user(&self, user: &str) {
        let v = self.pstr(user);
        // SAFETY: the string is in the request pool, which outlives r->user's readers.
        unsafe { (*self.raw()).user = v as *mut c_char };
    }

    /// The client's address as Apache sees it (`r->useragent_ip`, after mod_remoteip).
    pub fn client_ip(&self) -> Cow<'_, str> {
        cstr(self.rec().useragent_ip).unwrap_or_default()
    }

    /// The request_rec's address, for `apache.request_rec` (WSGIPassApacheRequest): an
    /// application may hand it to C code; rwsgi never turns it back into a pointer.
    pub fn address(&self) -> usize {
        self.r.as_ptr() as usize
    }

    /// The listener the connection arrived on: the host its `Listen` directive named (empty
    /// for `Listen PORT`) and the local port — whatever the Host header says.
    pub fn listener(&self) -> (Cow<'_, str>, u16) {
        // SAFETY: r->connection and its local_addr are live for the request.
        let addr = unsafe { &*(*self.rec().connection).local_addr };
        (cstr(addr.hostname).unwrap_or_default(), addr.port)
    }
}
