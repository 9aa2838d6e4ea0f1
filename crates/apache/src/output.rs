//! Response body output: buckets into Apache's output filter chain.

use super::bindings as b;
use super::request::Request;

/// Why output stopped.
#[derive(Debug)]
pub enum OutputError {
    /// The client went away (or a filter failed); nothing more can be sent.
    ClientGone,
}

/// One brigade reused for the whole response, for as long as the request lasts (`'r`).
pub struct Output<'r> {
    r: *mut b::request_rec,
    bb: *mut b::apr_bucket_brigade,
    _serving: std::marker::PhantomData<&'r mut b::request_rec>,
}

// SAFETY: like Request: moved with its request, never shared.
unsafe impl Send for Output<'_> {}

impl<'r> Output<'r> {
    pub fn new(req: &Request<'r>) -> Output<'r> {
        let r = req.raw();
        // SAFETY: the brigade lives in the request pool and uses the connection's allocator.
        let bb = unsafe { b::apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc) };
        Output {
            r,
            bb,
            _serving: std::marker::PhantomData,
        }
    }

    fn alloc(&self) -> *mut b::apr_bucket_alloc_t {
        // SAFETY: the connection outlives the request.
        unsafe { (*(*self.r).connection).bucket_alloc }
    }

    fn push(&mut self, bucket: *mut b::apr_bucket) {
        // SAFETY: a fresh bucket from our allocator appended to our brigade.
        unsafe { b::rwsgi_brigade_insert_tail(self.bb, bucket) }
    }

    fn pass(&mut self) -> Result<(), OutputError> {
        // SAFETY: passes our brigade down the request's filter chain, then empties it.
        let rv = unsafe {
            let rv = b::ap_pass_brigade((*self.r).output_filters, self.bb);
            b::apr_brigade_cleanup(self.bb.cast());
            rv
        };
        // SAFETY: reading the aborted flag of the live connection.
        let aborted = unsafe { (*(*self.r).connection).aborted != 0 };
        if rv != b::APR_SUCCESS || aborted {
            Err(OutputError::ClientGone)
        } else {
            Ok(())
        }
    }

    /// Sends `data`. The bytes are not copied here: a transient bucket refers to them, and
    /// Apache's filters copy (set aside) whatever they keep beyond this call.
    pub fn write(&mut self, data: &[u8], flush: bool, eos: bool) -> Result<(), OutputError> {
        // SAFETY: `data` stays valid for the duration of the call.
        unsafe { self.write_raw(data.as_ptr(), data.len(), flush, eos) }
    }

    /// [`Output::write`] of bytes in shared memory (a response ring), sent in place. The peer
    /// may change them meanwhile: filters only ever copy or send them as opaque bytes.
    pub fn write_shared(
        &mut self,
        src: &rwsgi_core::ipc::ring::RawSlice<'_>,
        flush: bool,
        eos: bool,
    ) -> Result<(), OutputError> {
        // SAFETY: a RawSlice is `len` bytes of a mapping that stays mapped while it lives.
        unsafe { self.write_raw(src.as_ptr(), src.len(), flush, eos) }
    }

    /// # Safety
    /// `data..data + len` must stay readable for the duration of the call.
    unsafe fn write_raw(
        &mut self,
        data: *const u8,
        len: usize,
        flush: bool,
        eos: bool,
    ) -> Result<(), OutputError> {
        if len > 0 {
            // SAFETY: the memory stays valid for the duration of pass(), which is all a
            // transient bucket requires (filters set aside copies of what they keep).
            let bk = unsafe { b::apr_bucket_transient_create(data.cast(), len, self.alloc()) };
            self.push(bk);
        }
        if flush {
            // SAFETY: plain bucket constructor.
            let f = unsafe { b::apr_bucket_flush_create(self.alloc()) };
            self.push(f);
        }
        if eos {
            // SAFETY: plain bucket constructor.
            let e = unsafe { b::apr_bucket_eos_create(self.alloc()) };
            self.push(e);
        }
        self.pass()
    }

    /// Sends `len` bytes of the open regular file `fd` from `offset` as a FILE bucket, so the
    /// core output filter can use sendfile. The fd stays the caller's; a FLUSH makes sure
    /// Apache is done with it before this returns.
    ///
    /// The bucket is never memory-mapped: a filter that reads it (mod_deflate, mod_ssl)
    /// gets read() copies. A mapped file that its owner truncates meanwhile (a daemon process
    /// passed the descriptor, or an application rewriting its file) would kill this Apache
    /// child with SIGBUS; a short read only ends this response.
    pub fn send_file(&mut self, fd: i32, offset: i64, len: i64) -> Result<(), OutputError> {
        self.push_file(fd, offset, len, false)?;
        self.write(&[], true, false)
    }

    /// Sends the file as the last of the response, with the end of the response in the same
    /// brigade: Apache's byte-range filter only answers a Range request when it sees the whole
    /// body at once. The bucket reads a duplicate of `fd` owned by the request pool (as
    /// mod_wsgi does), because Apache may set it aside past this call (the byte-range filter
    /// drops the FLUSH; the event MPM finishes writes asynchronously): the caller may close
    /// its own descriptor as soon as this returns.
    pub fn end_with_file(&mut self, fd: i32, offset: i64, len: i64) -> Result<(), OutputError> {
        self.stage_final_file(fd, offset, len)?;
        self.write(&[], true, true)
    }

    /// The first half of [`Output::end_with_file`]: the file goes into the brigade (reading a
    /// duplicate of `fd` the request pool owns) and waits for the next `write` with `eos`.
    pub fn stage_final_file(&mut self, fd: i32, offset: i64, len: i64) -> Result<(), OutputError> {
        self.push_file(fd, offset, len, true)
    }

    fn push_file(&mut self, fd: i32, offset: i64, len: i64, dup: bool) -> Result<(), OutputError> {
        // SAFETY: apr_os_file_put wraps the caller's fd without taking ownership (no cleanup);
        // apr_file_dup makes a descriptor of our own in the request pool, closed by the pool's
        // cleanup. The bucket reads one or the other; see the callers for how long.
        unsafe {
            let pool = (*self.r).pool;
            let mut file: *mut b::apr_file_t = std::ptr::null_mut();
            let mut osfd = fd;
            let flags = b::APR_FOPEN_READ | b::APR_FOPEN_SENDFILE_ENABLED;
            if b::apr_os_file_put(&mut file, &mut osfd, flags as _, pool) != b::APR_SUCCESS {
                return Err(OutputError::ClientGone);
            }
            if dup {
                let theirs = file;
                if b::apr_file_dup(&mut file, theirs, pool) != b::APR_SUCCESS {
                    return Err(OutputError::ClientGone);
                }
            }
            let bk = b::apr_bucket_file_create(
                file,
                offset,
                len.max(0) as b::apr_size_t,
                pool,
                self.alloc(),
            );
            b::apr_bucket_file_enable_mmap(bk, 0);
            self.push(bk);
        }
        Ok(())
    }

    /// Ends the response normally.
    pub fn finish(&mut self) -> Result<(), OutputError> {
        self.write(&[], false, true)
    }

    /// Ends a response that failed after its headers were sent, so that the client sees it is
    /// broken: an error bucket makes the chunking filter withhold the last-chunk marker, and the
    /// connection is closed.
    pub fn abort(&mut self) {
        // SAFETY: plain bucket constructors on the live request.
        unsafe {
            (*(*self.r).connection).keepalive = b::ap_conn_keepalive_e_AP_CONN_CLOSE;
            let e = b::ap_bucket_error_create(
                b::HTTP_BAD_GATEWAY,
                std::ptr::null(),
                (*self.r).pool,
                self.alloc(),
            );
            self.push(e);
        }
        let _ = self.write(&[], false, true);
    }
}
