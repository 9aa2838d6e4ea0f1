//! pymalloc's arenas (1 MiB each in Python 3.11): the last few Python frees are kept mapped for
//! the next ones it needs.
//!
//! Python unmaps an arena as soon as its last object is freed and maps a fresh one when it
//! needs room again. A request that makes many small objects (a 1 MiB body read as 16,384
//! lines: ~1.7 MiB of 104-byte blocks) filled two arenas, gave them back as it ended, and the
//! next request faulted every page of two new ones in again: 259-330 page faults per request
//! embedded and 171-187 in a daemon process, against mod_wsgi's 84-115 and 0.3-52 (more of
//! its threads are in Python at once, so an arena empties less often). Kept arenas are
//! resident memory: at most [`KEEP`] per process, given back by [`release_kept`] when the
//! process goes idle.

use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use pyo3_ffi as ffi;

/// Arenas kept mapped after Python freed them.
pub const KEEP: usize = 4;

static KEPT: [AtomicPtr<c_void>; KEEP] = [const { AtomicPtr::new(null_mut()) }; KEEP];
/// The size of Python's arenas, from its first request (the same for every arena of a build).
static ARENA_LEN: AtomicUsize = AtomicUsize::new(0);

/// Makes Python take its arenas from here. Call it before Python starts: every arena it ever
/// frees then came from [`alloc`] (or, equally, from its own mmap of the same size).
pub fn install() {
    let mut a = ffi::PyObjectArenaAllocator {
        ctx: null_mut(),
        alloc: Some(alloc),
        free: Some(free),
    };
    // SAFETY: the allocator is copied by Python; both functions are valid for the process's
    // life and never unwind.
    unsafe { ffi::PyObject_SetArenaAllocator(&mut a) };
}

/// Unmaps the kept arenas (a process gone idle).
pub fn release_kept() {
    let len = ARENA_LEN.load(Ordering::Relaxed);
    for slot in &KEPT {
        let p = slot.swap(null_mut(), Ordering::Acquire);
        if !p.is_null() {
            unmap(p, len);
        }
    }
}

/// How many arenas are kept now.
#[cfg(test)]
fn kept() -> usize {
    KEPT.iter()
        .filter(|s| !s.load(Ordering::Relaxed).is_null())
        .count()
}

extern "C" fn alloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    let len = match ARENA_LEN.compare_exchange(0, size, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => size,
        Err(len) => len,
    };
    if size == len {
        for slot in &KEPT {
            let p = slot.swap(null_mut(), Ordering::Acquire);
            if !p.is_null() {
                return p;
            }
        }
    }
    // SAFETY: an anonymous private mapping; nothing else is touched.
    let p = unsafe {
        libc::mmap(
            null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED { null_mut() } else { p }
}

extern "C" fn free(_ctx: *mut c_void, ptr: *mut c_void, size: usize) {
    if ptr.is_null() {
        return;
    }
    if size == ARENA_LEN.load(Ordering::Relaxed) {
        for slot in &KEPT {
            if slot
                .compare_exchange(null_mut(), ptr, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
    unmap(ptr, size);
}

fn unmap(ptr: *mut c_void, len: usize) {
    // SAFETY: ptr is a mapping of len bytes Python no longer uses (it freed the arena, or it
    // was kept here and taken out of its slot by this call's caller alone).
    unsafe { libc::munmap(ptr, len) };
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEN: usize = 1 << 20;

    #[test]
    fn freed_arenas_are_kept_up_to_keep_then_reused_then_released() {
        let a: Vec<_> = (0..KEEP + 1).map(|_| alloc(null_mut(), LEN)).collect();
        assert!(a.iter().all(|p| !p.is_null()));
        for &p in &a {
            // SAFETY: each is a fresh LEN-byte read-write mapping.
            unsafe { p.cast::<u8>().write(1) };
            free(null_mut(), p, LEN);
        }
        assert_eq!(kept(), KEEP, "the one past KEEP is unmapped");
        let again = alloc(null_mut(), LEN);
        assert!(a.contains(&again), "a kept arena is handed out again");
        // SAFETY: a kept arena is still mapped, with what was written into it.
        assert_eq!(unsafe { again.cast::<u8>().read() }, 1);
        assert_eq!(kept(), KEEP - 1);
        // another size is never kept
        let other = alloc(null_mut(), 2 * LEN);
        free(null_mut(), other, 2 * LEN);
        assert_eq!(kept(), KEEP - 1);
        free(null_mut(), again, LEN);
        release_kept();
        assert_eq!(kept(), 0);
    }
}
