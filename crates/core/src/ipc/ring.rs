//! Shared-memory rings for bulk bodies between an Apache child and a daemon process.
//!
//! The Apache side creates both rings of a connection as sealed memfds (they can never shrink,
//! so a mapping cannot SIGBUS the Apache child) and passes them once with HELLO. No position
//! lives in shared memory: the producer announces each slice `(offset, len)` in a frame and the
//! consumer returns CREDIT frames, so a peer that scribbles over the mapping can only corrupt
//! body bytes, never our bookkeeping. No Rust reference ever points into the mapping: bytes are
//! copied in and out through raw pointers, because the other process may write at any time.

use super::IpcError;
use memmap2::{MmapOptions, MmapRaw};
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Bodies at least this large go through a ring; smaller ones travel inline in their frame,
/// where one socket copy costs about as much as a memcpy plus a doorbell frame.
pub const SHM_THRESHOLD: usize = 16 * 1024;
/// Default ring size, each direction. Pages are only backed once touched, and given back once
/// the connection has been idle for a while ([`SharedMem::release`], driven by the Apache
/// side's idle sweeper): given back after every request, each 1 MiB body faulted and zeroed
/// 256 fresh pages in both processes (~20 % of a daemon's CPU for 1 MiB uploads).
pub const DEFAULT_RING: usize = 256 * 1024;
/// Smallest and largest ring a peer may hand us.
pub const MIN_RING: usize = 64 * 1024;
pub const MAX_RING: usize = 64 * 1024 * 1024;

/// The seals both sides require: the size is fixed for the life of the mapping.
fn required_seals() -> SealFlag {
    SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL
}

/// One mapped, sealed memfd.
pub struct SharedMem {
    map: MmapRaw,
    fd: OwnedFd,
    /// Written or read since the last [`SharedMem::release_if_touched`].
    touched: std::sync::atomic::AtomicBool,
    /// Written or read since the last [`SharedMem::take_used`] (by the connection's owner, at
    /// the end of each request: when the ring was last used, whatever was given back).
    used: std::sync::atomic::AtomicBool,
}

impl SharedMem {
    /// Creates a sealed memfd of `len` bytes and maps it (the Apache side).
    pub fn create(name: &str, len: usize) -> std::io::Result<SharedMem> {
        let len = len.clamp(MIN_RING, MAX_RING);
        let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
        nix::unistd::ftruncate(&fd, len as i64)?;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(required_seals()))?;
        SharedMem::map(fd, len)
    }

    /// Maps a memfd received from the peer after checking that it is sealed against resizing
    /// and of an acceptable size (the daemon side).
    pub fn open(fd: OwnedFd) -> Result<SharedMem, IpcError> {
        let seals = fcntl(&fd, FcntlArg::F_GET_SEALS).map_err(|_| IpcError::Invalid("ring fd"))?;
        let need = (SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW).bits();
        if seals & need != need {
            return Err(IpcError::Invalid("ring not sealed"));
        }
        let st = nix::sys::stat::fstat(&fd).map_err(|_| IpcError::Invalid("ring fd"))?;
        let len = usize::try_from(st.st_size).map_err(|_| IpcError::Invalid("ring size"))?;
        if !(MIN_RING..=MAX_RING).contains(&len) {
            return Err(IpcError::Invalid("ring size"));
        }
        SharedMem::map(fd, len).map_err(|_| IpcError::Invalid("ring mapping"))
    }

    fn map(fd: OwnedFd, len: usize) -> std::io::Result<SharedMem> {
        let map = MmapOptions::new().len(len).map_raw(fd.as_raw_fd())?;
        Ok(SharedMem {
            map,
            fd,
            touched: Default::default(),
            used: Default::default(),
        })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Gives the ring's pages back to the kernel (both mappings then read zeros until written
    /// again). Shared memory counts in every mapping process's RSS, unlike socket buffers: an
    /// idle connection should not hold a ring's worth of it.
    pub fn release(&self) {
        use nix::fcntl::{FallocateFlags, fallocate};
        let _ = fallocate(
            &self.fd,
            FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
            0,
            self.map.len() as i64,
        );
    }

    /// Whether anything went through the mapping since it was last given back.
    pub fn take_used(&self) -> bool {
        self.used.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn touched_since_release(&self) -> bool {
        self.touched.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// [`SharedMem::release`], if anything went through the mapping since the last call.
    pub fn release_if_touched(&self) {
        if self
            .touched
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.release();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn check(&self, off: usize, len: usize) -> Result<(), IpcError> {
        match off.checked_add(len) {
            Some(end) if end <= self.map.len() => Ok(()),
            _ => Err(IpcError::OutOfBounds),
        }
    }

    /// `[off, off + len)` of the mapping, for C code to read or write in place.
    pub fn raw(&self, off: usize, len: usize) -> Result<RawSlice<'_>, IpcError> {
        self.check(off, len)?;
        self.touched
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(RawSlice {
            ptr: self.map.as_mut_ptr().wrapping_add(off),
            len,
            _mem: std::marker::PhantomData,
        })
    }

    /// Copies `src` into the mapping at `off`.
    pub fn write_at(&self, off: usize, src: &[u8]) -> Result<(), IpcError> {
        self.check(off, src.len())?;
        self.touched
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: [off, off+len) lies inside the live mapping (checked above; the memfd is
        // sealed so the mapping cannot shrink under us), and `src` is ordinary memory that
        // cannot overlap a shared mapping we created.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.map.as_mut_ptr().add(off), src.len())
        };
        Ok(())
    }

    /// Copies `dst.len()` bytes out of the mapping from `off`.
    pub fn read_at(&self, off: usize, dst: &mut [u8]) -> Result<(), IpcError> {
        // SAFETY: read_at_uninit only writes initialised bytes into `dst`.
        self.read_at_uninit(off, unsafe { as_uninit(dst) })
    }

    /// The same into memory that need not be initialised (the application's bytes object).
    pub fn read_at_uninit(
        &self,
        off: usize,
        dst: &mut [std::mem::MaybeUninit<u8>],
    ) -> Result<(), IpcError> {
        self.check(off, dst.len())?;
        self.touched
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: as in write_at. The peer may be writing the same bytes concurrently; we only
        // copy them as opaque body bytes, never interpret them in place.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(off),
                dst.as_mut_ptr().cast::<u8>(),
                dst.len(),
            )
        };
        Ok(())
    }
}

/// A checked range of a live mapping, handed to C code that fills or sends it in place
/// (Apache's input and output filters: a copy through a buffer of our own cost 2 MiB of
/// memcpy per 1 MiB echo). No Rust reference into the mapping is ever made from it: the peer
/// may write these bytes at any time, so they are only ever opaque body bytes.
///
/// Invariant (what the lifetime keeps): `ptr..ptr + len` lies inside a mapping that stays
/// mapped, at this size, for `'a` (the memfd is sealed against shrinking).
pub struct RawSlice<'a> {
    ptr: *mut u8,
    len: usize,
    _mem: std::marker::PhantomData<&'a SharedMem>,
}

impl RawSlice<'_> {
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first `len` bytes (all of them if `len` is larger).
    pub fn prefix(&self, len: usize) -> RawSlice<'_> {
        RawSlice {
            ptr: self.ptr,
            len: len.min(self.len),
            _mem: std::marker::PhantomData,
        }
    }
}

/// The producer's bookkeeping for one ring: what it has announced and what came back as
/// credit. Slices never wrap: one that would cross the end starts again at offset 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingWriter {
    cap: usize,
    /// Next byte to write (offset into the ring).
    head: usize,
    /// Bytes announced and not credited yet.
    in_flight: usize,
    /// Bytes skipped at the end of the ring by slices that restarted at 0; they come back
    /// with the credit of the slice that follows them.
    pending: std::collections::VecDeque<(usize, usize)>,
}

impl RingWriter {
    pub fn new(cap: usize) -> RingWriter {
        RingWriter {
            cap,
            head: 0,
            in_flight: 0,
            pending: Default::default(),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Where up to `want` bytes can be written now, contiguously: `(offset, len)`, or None
    /// when the ring is too full (wait for credit).
    pub fn reserve(&self, want: usize) -> Option<(usize, usize)> {
        let free = self.cap - self.in_flight;
        let to_end = self.cap - self.head;
        let (off, room) = if to_end >= want.min(free) || to_end >= self.cap / 4 {
            (self.head, to_end.min(free))
        } else {
            // Skipping the tail end of the ring costs those bytes until the next credit.
            (0, free.saturating_sub(to_end).min(self.cap))
        };
        let n = want.min(room);
        if n == 0 { None } else { Some((off, n)) }
    }

    /// Records that `len` bytes were written at `off` (as returned by `reserve`) and announced.
    pub fn commit(&mut self, off: usize, len: usize) {
        let skipped = if off == self.head {
            0
        } else {
            self.cap - self.head
        };
        self.in_flight += skipped + len;
        self.pending.push_back((skipped, len));
        self.head = (off + len) % self.cap;
    }

    /// The consumer returned `n` bytes: exactly the next announced slice (credits come back in
    /// order, one per slice).
    pub fn credit(&mut self, n: usize) -> Result<(), IpcError> {
        match self.pending.front() {
            Some(&(skipped, len)) if len == n => {
                self.pending.pop_front();
                self.in_flight -= skipped + len;
                Ok(())
            }
            _ => Err(IpcError::Invalid("credit")),
        }
    }

    /// Forgets everything: both ends start a request with an empty ring.
    pub fn reset(&mut self) {
        *self = RingWriter::new(self.cap);
    }
}

/// The consumer's bookkeeping: the next slice must start where the last one ended (or at 0
/// when it would not fit before the end), and lie inside the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingReader {
    cap: usize,
    next: usize,
}

impl RingReader {
    pub fn new(cap: usize) -> RingReader {
        RingReader { cap, next: 0 }
    }

    /// Validates an announced slice and advances past it.
    pub fn accept(&mut self, off: usize, len: usize) -> Result<(), IpcError> {
        let end = off.checked_add(len).ok_or(IpcError::OutOfBounds)?;
        if len == 0 || end > self.cap || (off != self.next && off != 0) {
            return Err(IpcError::OutOfBounds);
        }
        self.next = end % self.cap;
        Ok(())
    }

    pub fn reset(&mut self) {
        self.next = 0;
    }
}

/// Largest slice announced at once: a quarter of the ring, so the producer can fill the next
/// slices while the consumer copies out the first.
pub fn max_slice(cap: usize) -> usize {
    cap / 4
}

/// The producing end of a ring: mapping plus bookkeeping.
pub struct Outbound {
    mem: std::sync::Arc<SharedMem>,
    w: RingWriter,
}

impl Outbound {
    pub fn new(mem: SharedMem) -> Outbound {
        let w = RingWriter::new(mem.len());
        Outbound {
            mem: std::sync::Arc::new(mem),
            w,
        }
    }

    /// The mapping, for a thread that gives its pages back while the ring is idle.
    pub fn shared(&self) -> std::sync::Arc<SharedMem> {
        self.mem.clone()
    }

    /// Copies the first `n` bytes of `data` (no more than fits contiguously) into the ring and
    /// records them as one slice.
    fn put_slice(&mut self, data: &[u8], n: usize, whole: bool) -> Option<(usize, usize)> {
        let (off, n) = self.w.reserve(n)?;
        if whole && n != data.len() {
            return None;
        }
        self.mem.write_at(off, &data[..n]).ok()?;
        self.w.commit(off, n);
        Some((off, n))
    }

    /// Copies as much of `data` as fits contiguously (at most one slice) into the ring and
    /// returns the slice to announce; None when the ring is full.
    pub fn put(&mut self, data: &[u8]) -> Option<(usize, usize)> {
        self.put_slice(data, data.len().min(max_slice(self.mem.len())), false)
    }

    /// Like [`Outbound::put`], but all of `data` as one slice of up to the whole ring (a
    /// request head), or nothing.
    pub fn put_all(&mut self, data: &[u8]) -> Option<(usize, usize)> {
        self.put_slice(data, data.len(), true)
    }

    /// `[off, off + len)` of a ring that was just reset, for a piece of one slice assembled in
    /// place (the request body, read by Apache straight into the ring); see
    /// [`Outbound::announce`].
    pub fn stage_raw(&mut self, off: usize, len: usize) -> Result<RawSlice<'_>, IpcError> {
        self.mem.raw(off, len)
    }

    /// Announces the first `len` staged bytes as one slice starting at 0.
    pub fn announce(&mut self, len: usize) -> Option<(usize, usize)> {
        match self.w.reserve(len) {
            Some((0, n)) if n == len => {
                self.w.commit(0, len);
                Some((0, len))
            }
            _ => None,
        }
    }

    pub fn credit(&mut self, n: usize) -> Result<(), IpcError> {
        self.w.credit(n)
    }

    pub fn in_flight(&self) -> usize {
        self.w.in_flight()
    }

    pub fn capacity(&self) -> usize {
        self.mem.len()
    }

    pub fn reset(&mut self) {
        self.w.reset();
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.mem.fd()
    }
}

/// The consuming end of a ring.
pub struct Inbound {
    mem: std::sync::Arc<SharedMem>,
    r: RingReader,
}

impl Inbound {
    pub fn new(mem: SharedMem) -> Inbound {
        let r = RingReader::new(mem.len());
        Inbound {
            mem: std::sync::Arc::new(mem),
            r,
        }
    }

    /// The mapping, for a thread that gives its pages back while the ring is idle.
    pub fn shared(&self) -> std::sync::Arc<SharedMem> {
        self.mem.clone()
    }

    /// Validates the announced slice and hands it out in place (for Apache to send; credit it
    /// only once that is done).
    pub fn take_raw(&mut self, off: usize, len: usize) -> Result<RawSlice<'_>, IpcError> {
        self.r.accept(off, len)?;
        self.mem.raw(off, len)
    }

    /// Validates the announced slice and copies it into `dst` (which must be exactly as long).
    pub fn take(&mut self, off: usize, dst: &mut [u8]) -> Result<(), IpcError> {
        // SAFETY: take_uninit only writes initialised bytes into `dst`.
        self.take_uninit(off, unsafe { as_uninit(dst) })
    }

    /// The same into memory that need not be initialised (the application's bytes object).
    pub fn take_uninit(
        &mut self,
        off: usize,
        dst: &mut [std::mem::MaybeUninit<u8>],
    ) -> Result<(), IpcError> {
        self.r.accept(off, dst.len())?;
        self.mem.read_at_uninit(off, dst)
    }

    pub fn capacity(&self) -> usize {
        self.mem.len()
    }

    pub fn reset(&mut self) {
        self.r.reset();
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.mem.fd()
    }
}

/// `dst` as possibly-uninitialised memory.
///
/// # Safety
/// The caller writes only initialised bytes through the result (so `dst` stays initialised).
pub unsafe fn as_uninit(dst: &mut [u8]) -> &mut [std::mem::MaybeUninit<u8>] {
    // SAFETY: same layout; per the contract no uninitialised byte is written.
    unsafe { &mut *(std::ptr::from_mut(dst) as *mut [std::mem::MaybeUninit<u8>]) }
}

/// `(offset, len)` of a ring slice: the payload of a frame with `FLAG_SHM`.
pub fn encode_slice(off: usize, len: usize) -> [u8; 8] {
    let mut p = [0u8; 8];
    p[..4].copy_from_slice(&(off as u32).to_le_bytes());
    p[4..].copy_from_slice(&(len as u32).to_le_bytes());
    p
}

pub fn decode_slice(payload: &[u8]) -> Result<(usize, usize), IpcError> {
    let mut r = super::frame::Reader::new(payload);
    let v = (r.u32()? as usize, r.u32()? as usize);
    r.finish()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_memory_is_sealed_and_bounds_checked() {
        let a = SharedMem::create("t", MIN_RING).unwrap();
        assert_eq!(a.len(), MIN_RING);
        let fd = a.fd().try_clone_to_owned().unwrap();
        // a sealed memfd cannot be shrunk by the peer
        assert!(nix::unistd::ftruncate(&fd, 10).is_err());
        let b = SharedMem::open(fd).unwrap();
        a.write_at(100, b"hello").unwrap();
        let mut out = [0u8; 5];
        b.read_at(100, &mut out).unwrap();
        assert_eq!(&out, b"hello");
        // released pages read as zeros in both mappings, and can be written again
        a.release();
        b.read_at(100, &mut out).unwrap();
        assert_eq!(&out, &[0; 5]);
        a.write_at(100, b"again").unwrap();
        b.read_at(100, &mut out).unwrap();
        assert_eq!(&out, b"again");
        assert_eq!(
            b.read_at(MIN_RING - 2, &mut out),
            Err(IpcError::OutOfBounds)
        );
        assert_eq!(a.write_at(usize::MAX, b"x"), Err(IpcError::OutOfBounds));
    }

    #[test]
    fn raw_slices_stay_inside_the_mapping_and_follow_the_reader() {
        let a = SharedMem::create("t", MIN_RING).unwrap();
        assert!(a.raw(MIN_RING - 10, 11).is_err());
        assert!(a.raw(usize::MAX, 2).is_err());
        let r = a.raw(MIN_RING - 10, 10).unwrap();
        assert_eq!(
            (r.len(), r.prefix(4).len(), r.prefix(99).len()),
            (10, 4, 10)
        );
        // an inbound slice in place: only the one announced next is handed out
        let mut inb = Inbound::new(SharedMem::create("t", MIN_RING).unwrap());
        inb.mem.write_at(0, b"hello").unwrap();
        assert!(inb.take_raw(8, 5).is_err());
        let s = inb.take_raw(0, 5).unwrap();
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn unsealed_or_odd_sized_memory_is_refused() {
        let fd = memfd_create("u", MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&fd, MIN_RING as i64).unwrap();
        assert!(SharedMem::open(fd).is_err());
        let fd = memfd_create("s", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).unwrap();
        nix::unistd::ftruncate(&fd, 4096).unwrap();
        fcntl(&fd, FcntlArg::F_ADD_SEALS(required_seals())).unwrap();
        assert!(SharedMem::open(fd).is_err());
    }

    #[test]
    fn writer_and_reader_agree_across_wraps() {
        let cap = 1000;
        let mut w = RingWriter::new(cap);
        let mut r = RingReader::new(cap);
        let mut announced = std::collections::VecDeque::new();
        let mut total = 0usize;
        // produce odd-sized slices, consuming with a lag, many times round the ring
        for i in 0..500usize {
            let want = 1 + (i * 37) % 400;
            while w.reserve(want).is_none() {
                let n = announced.pop_front().unwrap();
                w.credit(n).unwrap();
            }
            let (off, n) = w.reserve(want).unwrap();
            assert!(off + n <= cap && n > 0);
            w.commit(off, n);
            r.accept(off, n).unwrap();
            announced.push_back(n);
            total += n;
            assert!(w.in_flight() <= cap);
            if i % 3 == 0 {
                if let Some(n) = announced.pop_front() {
                    w.credit(n).unwrap();
                }
            }
        }
        assert!(total > 10 * cap);
        while let Some(n) = announced.pop_front() {
            w.credit(n).unwrap();
        }
        assert_eq!(w.in_flight(), 0);
    }

    #[test]
    fn hostile_slices_and_credits_are_rejected() {
        let mut r = RingReader::new(100);
        assert!(r.accept(0, 0).is_err());
        assert!(r.accept(90, 20).is_err());
        assert!(r.accept(usize::MAX, 2).is_err());
        r.accept(0, 10).unwrap();
        assert!(r.accept(50, 10).is_err()); // not where the last slice ended
        r.accept(10, 10).unwrap();
        let mut w = RingWriter::new(100);
        assert!(w.credit(5).is_err()); // nothing announced
        let (off, n) = w.reserve(30).unwrap();
        w.commit(off, n);
        assert!(w.credit(31).is_err());
        w.credit(30).unwrap();
        assert_eq!(decode_slice(&encode_slice(7, 9)).unwrap(), (7, 9));
        assert!(decode_slice(&[0; 7]).is_err());
    }
}
