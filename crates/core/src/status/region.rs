//! Shared memory seen as 64-bit atomic words: the only code of the status board that maps
//! memory or turns a pointer into a reference.

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

const WORD: usize = std::mem::size_of::<AtomicU64>();
/// No board is larger than this (a ServerLimit × ThreadLimit far beyond any real server);
/// pages are only backed once written, so a large board costs address space, not memory.
pub const MAX_BYTES: usize = 256 << 20;

/// A shared mapping of `words` atomic words, unmapped when dropped.
pub struct Region {
    base: NonNull<AtomicU64>,
    words: usize,
    fd: Option<OwnedFd>,
}

// SAFETY: the mapping is only ever accessed through atomics.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

fn too_big() -> std::io::Error {
    std::io::Error::other(format!("status board larger than {} MiB", MAX_BYTES >> 20))
}

impl Region {
    /// Anonymous shared memory: shared with the processes this one forks from now on.
    pub fn anonymous(words: usize) -> std::io::Result<Region> {
        let len = words
            .checked_mul(WORD)
            .filter(|&l| l <= MAX_BYTES)
            .ok_or_else(too_big)?;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS;
        Region::map(len, prot, flags, -1, None)
    }

    /// A memfd of `words` words, sealed against resizing (a mapping of it can never SIGBUS),
    /// mapped read-only here: the processes it is handed to write it.
    pub fn memfd(name: &str, words: usize) -> std::io::Result<Region> {
        let len = words
            .checked_mul(WORD)
            .filter(|&l| l <= MAX_BYTES)
            .ok_or_else(too_big)?;
        let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
        nix::unistd::ftruncate(&fd, len as i64)?;
        let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals))?;
        let raw = fd.as_raw_fd();
        Region::map(len, libc::PROT_READ, libc::MAP_SHARED, raw, Some(fd))
    }

    /// Maps, writable, a memfd made by [`Region::memfd`] and received on `fd`, after checking
    /// that it cannot be resized and holds at least `words` words.
    pub fn open_memfd(fd: OwnedFd, words: usize) -> std::io::Result<Region> {
        let bad = |what: &str| std::io::Error::other(format!("status board: {what}"));
        let seals = fcntl(&fd, FcntlArg::F_GET_SEALS).map_err(|_| bad("not a memfd"))?;
        let need = (SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW).bits();
        if seals & need != need {
            return Err(bad("not sealed"));
        }
        let size = nix::sys::stat::fstat(&fd)?.st_size;
        let len = words
            .checked_mul(WORD)
            .filter(|&l| l <= MAX_BYTES)
            .ok_or_else(too_big)?;
        if usize::try_from(size).ok() != Some(len) {
            return Err(bad("wrong size"));
        }
        // Not for the programs the application may execute.
        nix::fcntl::fcntl(&fd, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let raw = fd.as_raw_fd();
        Region::map(len, prot, libc::MAP_SHARED, raw, Some(fd))
    }

    fn map(
        len: usize,
        prot: i32,
        flags: i32,
        fd: i32,
        owned: Option<OwnedFd>,
    ) -> std::io::Result<Region> {
        // SAFETY: a fresh mapping chosen by the kernel; nothing else refers to that range.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len.max(WORD), prot, flags, fd, 0) };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Region {
            base: NonNull::new(p.cast()).ok_or_else(std::io::Error::last_os_error)?,
            words: len / WORD,
            fd: owned,
        })
    }

    /// The words. Other processes change them at any time; every access is atomic. Over a
    /// read-only mapping ([`Region::memfd`]) only loads are allowed: its owner hands out
    /// reading handles only (`GroupBoard`, `SlotReader`).
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page-aligned, `words` long and lives as long as `self`;
        // AtomicU64 has the layout of u64 and any bit pattern is valid. Atomic loads of a
        // lock-free 64-bit word are plain loads, valid on read-only memory.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.words) }
    }

    /// The memfd behind a group board (to hand to the group's processes).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the range mapped in `map`; no reference into it outlives
        // `self` (words() borrows self).
        unsafe { libc::munmap(self.base.as_ptr().cast(), (self.words * WORD).max(WORD)) };
    }
}

/// The 32 bits of `w` a futex looks at (the low half, where the count changes).
fn futex_word(w: &AtomicU64) -> *const u32 {
    let base = w as *const AtomicU64 as *const u32;
    if cfg!(target_endian = "big") {
        base.wrapping_add(1)
    } else {
        base
    }
}

/// Sleeps until `w` (a word of a shared mapping) changes from `seen`, a [`wake_all`] on it,
/// or `timeout`: what another process's request reaches this one with, without polling.
pub fn wait_change(w: &AtomicU64, seen: u64, timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT (shared: other processes map the same page) only reads the aligned
    // 32-bit half of a live atomic word and sleeps; `ts` lives across the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            futex_word(w),
            libc::FUTEX_WAIT,
            seen as u32,
            &ts as *const libc::timespec,
        )
    };
}

/// Wakes every process sleeping in [`wait_change`] on `w`.
pub fn wake_all(w: &AtomicU64) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; nothing is read or written.
    unsafe { libc::syscall(libc::SYS_futex, futex_word(w), libc::FUTEX_WAKE, i32::MAX) };
}
