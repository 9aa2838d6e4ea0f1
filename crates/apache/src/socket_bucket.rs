//! The client socket's bucket, reading as much as a request-body read asks for in one
//! system call.
//!
//! Apache's core input filter reads the connection through one socket bucket, and APR's reads
//! 8000 bytes per `recv` whatever the filter chain was asked for: a 1 MiB request body is 132
//! system calls and as many 8 KB buffers. rwsgi provides the connection's network bucket
//! (`insert_network_bucket`, the hook httpd made for this) with the same behaviour, except
//! that while rwsgi reads a request body ([`ReadSize`]) a `recv` may take up to what that read
//! still wants. Every other read on the connection (request lines and headers, other modules'
//! bodies, mod_ssl's records when nothing of rwsgi's is reading) reads 8000 bytes as before.
//! Proxy backend connections and HTTP/2 streams keep APR's own bucket. The bucket type is not
//! `APR_BUCKET_IS_SOCKET` (in httpd only mod_http2's debug logging looks); a module that took
//! the socket with AP_MODE_EXHAUSTIVE would still get a working bucket of the socket.

use crate::bindings as b;
use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::ptr::null;

/// What APR's socket bucket reads at a time.
const BUFF_SIZE: usize = b::APR_BUCKET_BUFF_SIZE as usize;

thread_local! {
    /// Bytes the body read running on this thread still wants from the socket (0: none
    /// running, read as APR does). Buckets are read on the thread that asks the filter chain, so a thread-local reaches
    /// exactly the reads made inside [`ReadSize::wanting`].
    static WANTED: Cell<usize> = const { Cell::new(0) };
}

/// While it lives, socket reads on this thread may take up to the bytes it was made for (less
/// what they have taken), not 8000 at a time.
pub(crate) struct ReadSize(());

impl ReadSize {
    pub(crate) fn wanting(n: usize) -> ReadSize {
        WANTED.with(|w| w.set(n));
        ReadSize(())
    }
}

impl Drop for ReadSize {
    fn drop(&mut self) {
        WANTED.with(|w| w.set(0));
    }
}

struct BucketType(b::apr_bucket_type_t);

// SAFETY: never written after initialisation; the name is a 'static C string literal and the
// functions are plain functions.
unsafe impl Sync for BucketType {}

static RWSGI_SOCKET: BucketType = BucketType(b::apr_bucket_type_t {
    name: c"RWSGI_SOCKET".as_ptr(),
    num_func: 5,
    is_metadata: b::apr_bucket_type_t_APR_BUCKET_DATA,
    destroy: Some(b::apr_bucket_destroy_noop),
    read: Some(read),
    setaside: Some(b::apr_bucket_setaside_notimpl),
    split: Some(b::apr_bucket_split_notimpl),
    copy: Some(b::apr_bucket_copy_notimpl),
});

/// The `insert_network_bucket` hook: the client connection's socket in an rwsgi bucket. Only
/// on httpd 2.4.49 and later, whose `conn_rec` has `outgoing` (older ones keep APR's bucket).
pub(crate) fn register() {
    if crate::process::server_version() < (2, 4, 49) {
        return;
    }
    // SAFETY: called while Apache loads the module, single-threaded; the function is 'static.
    unsafe {
        b::ap_hook_insert_network_bucket(Some(insert), null(), null(), b::APR_HOOK_MIDDLE);
    }
}

rwsgi_core::entry! {
    unsafe extern "C" fn insert(
        c: *mut b::conn_rec,
        bb: *mut b::apr_bucket_brigade,
        socket: *mut b::apr_socket_t,
    ) -> b::apr_status_t [on panic: b::AP_DECLINED as b::apr_status_t] {
        // SAFETY: the core input filter passes its live connection, brigade and socket.
        unsafe {
            if c.is_null() || !(*c).master.is_null() || (*c).outgoing != 0 {
                return b::AP_DECLINED as b::apr_status_t;
            }
            let Some(e) = create(socket, (*c).bucket_alloc) else {
                return libc::ENOMEM;
            };
            b::rwsgi_brigade_insert_tail(bb, e);
        }
        b::APR_SUCCESS as b::apr_status_t
    }
}

/// A new socket bucket (as `apr_bucket_socket_create`, of our type).
///
/// # Safety
/// `socket` and `list` must live as long as the bucket (the connection's).
unsafe fn create(
    socket: *mut b::apr_socket_t,
    list: *mut b::apr_bucket_alloc_t,
) -> Option<*mut b::apr_bucket> {
    // SAFETY: apr_bucket_alloc returns memory for one bucket or null (checked); every field
    // is set before use and the bucket links to itself as APR_BUCKET_INIT does.
    unsafe {
        let e =
            b::apr_bucket_alloc(std::mem::size_of::<b::apr_bucket>(), list).cast::<b::apr_bucket>();
        if e.is_null() {
            return None;
        }
        e.write(b::apr_bucket {
            link: b::apr_bucket__bindgen_ty_1 { next: e, prev: e },
            type_: &RWSGI_SOCKET.0,
            length: usize::MAX as b::apr_size_t,
            start: -1,
            data: socket.cast(),
            free: Some(b::apr_bucket_free),
            list,
        });
        Some(e)
    }
}

rwsgi_core::entry! {
    /// APR's `socket_bucket_read` with the size from [`WANTED`]: the bytes read become a heap
    /// bucket in place of this one, followed by a new socket bucket; at the end of the stream
    /// an empty one and no socket bucket.
    unsafe extern "C" fn read(
        e: *mut b::apr_bucket,
        out: *mut *const c_char,
        len: *mut b::apr_size_t,
        block: b::apr_read_type_e,
    ) -> b::apr_status_t [on panic: libc::EIO] {
        let size = WANTED.with(Cell::get).max(BUFF_SIZE);
        // SAFETY: APR calls this with one of our buckets (data = the connection's socket, list
        // = its allocator) and valid out-pointers; the buffer is `size` bytes (Buffer::new)
        // and apr_socket_recv writes at most `got` = size bytes into it; the heap bucket takes
        // the buffer with the function that frees it; the next socket bucket, made before the
        // recv so that no byte read can be lost to a failed allocation, goes right after this
        // one in the brigade it is in, or is freed unused at the end of the stream.
        unsafe {
            let socket = (*e).data.cast::<b::apr_socket_t>();
            let list = (*e).list;
            *out = null();
            let Some(next) = create(socket, list) else {
                return libc::ENOMEM;
            };
            let Some(buf) = Buffer::new(size, list) else {
                b::apr_bucket_free(next.cast());
                return libc::ENOMEM;
            };
            let nonblocking = block == b::apr_read_type_e_APR_NONBLOCK_READ;
            let mut timeout: b::apr_interval_time_t = 0;
            if nonblocking {
                b::apr_socket_timeout_get(socket, &mut timeout);
                b::apr_socket_timeout_set(socket, 0);
            }
            let mut got = size as b::apr_size_t;
            let rv = b::apr_socket_recv(socket, buf.ptr, &mut got);
            if nonblocking {
                b::apr_socket_timeout_set(socket, timeout);
            }
            if rv != b::APR_SUCCESS as b::apr_status_t && rv != b::APR_EOF as b::apr_status_t {
                buf.free();
                b::apr_bucket_free(next.cast());
                return rv;
            }
            *len = got;
            if got > 0 {
                WANTED.with(|w| w.set(w.get().saturating_sub(got as usize)));
                let e = b::apr_bucket_heap_make(e, buf.ptr, got, Some(buf.free));
                (*(*e).data.cast::<b::apr_bucket_heap>()).alloc_len = size as b::apr_size_t;
                *out = buf.ptr;
                b::rwsgi_bucket_insert_after(e, next);
            } else {
                buf.free();
                b::apr_bucket_free(next.cast());
                b::apr_bucket_immortal_make(e, c"".as_ptr(), 0);
                *out = c"".as_ptr();
            }
        }
        b::APR_SUCCESS as b::apr_status_t
    }
}

/// A read buffer and the function that frees it.
struct Buffer {
    ptr: *mut c_char,
    free: unsafe extern "C" fn(*mut c_void),
}

impl Buffer {
    /// APR's 8000 bytes from the bucket allocator as APR's own bucket takes them; a body
    /// read's larger buffer from malloc. The bucket allocator would give a freed 64 KiB block
    /// back to the connection's pool allocator, which keeps up to MaxMemFree of them for that
    /// connection alone; malloc's free memory serves every thread.
    ///
    /// # Safety
    /// `list` must be a live bucket allocator.
    unsafe fn new(size: usize, list: *mut b::apr_bucket_alloc_t) -> Option<Buffer> {
        let buf = if size <= BUFF_SIZE {
            Buffer {
                // SAFETY: the caller's contract (APR's allocation failure is APR's abort).
                ptr: unsafe { b::apr_bucket_alloc(size as b::apr_size_t, list) }.cast(),
                free: b::apr_bucket_free,
            }
        } else {
            Buffer {
                // SAFETY: plain malloc; null is checked below.
                ptr: unsafe { libc::malloc(size) }.cast(),
                free: libc::free,
            }
        };
        (!buf.ptr.is_null()).then_some(buf)
    }

    /// Frees an unused buffer.
    ///
    /// # Safety
    /// The buffer must not be in use (not given to a bucket).
    unsafe fn free(self) {
        // SAFETY: the caller's contract; `free` is the buffer's own allocator's.
        unsafe { (self.free)(self.ptr.cast()) }
    }
}
