//! One thread's slot: what it runs now and its counters, written by that thread alone with
//! plain (relaxed) stores, read by anyone with a sequence check.

use super::{BUCKETS, bucket_of};
use std::sync::atomic::{AtomicU64, Ordering, fence};

/// Words of a slot's head: owner, sequence, state, start, the request line, the client.
pub const HEAD: usize = 40;
/// Words of one target's counters in a slot.
pub const BLOCK: usize = 48;
const OWNER: usize = 0;
const SEQ: usize = 1;
const STATE: usize = 2;
const STARTED: usize = 3;
const LINE: usize = 4;
const LINE_WORDS: usize = 24;
const CLIENT: usize = LINE + LINE_WORDS;
const CLIENT_WORDS: usize = 6;
const IDENT: usize = CLIENT + CLIENT_WORDS;
// Counter block offsets.
pub(super) const REQUESTS: usize = 0;
pub(super) const CLASSES: usize = 1;
pub(super) const BYTES_IN: usize = 6;
pub(super) const BYTES_OUT: usize = 7;
pub(super) const TIME_SUM: usize = 8;
pub(super) const QUEUE_SUM: usize = 9;
pub(super) const TIME_HIST: usize = 10;
pub(super) const QUEUE_HIST: usize = TIME_HIST + BUCKETS;

/// Words of a slot counting `targets` targets.
pub const fn words(targets: usize) -> usize {
    HEAD + targets * BLOCK
}

/// How a request ended, as its slot counts it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Finished {
    /// The HTTP status (0: none was sent).
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Time counted in the "time" histogram (Apache side: the whole request; daemon side:
    /// the application).
    pub time_us: u64,
    /// Time waiting for a daemon thread (daemon side only).
    pub queue_us: Option<u64>,
}

/// A thread's slot in a board.
#[derive(Clone, Copy)]
pub struct ThreadSlot<'b> {
    w: &'b [AtomicU64],
    targets: usize,
}

/// What a slot shows when read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Running {
    pub target: usize,
    pub started_us: u64,
    pub line: String,
    pub client: String,
    /// The running thread's id (Python's `threading.get_ident()`; 0: not given).
    pub ident: u64,
}

fn pack(dst: &[AtomicU64], text: &[u8]) {
    let mut chunks = text.chunks(8);
    for word in dst {
        let mut b = [0u8; 8];
        if let Some(c) = chunks.next() {
            b[..c.len()].copy_from_slice(c);
        }
        word.store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
}

fn unpack(src: &[AtomicU64]) -> String {
    let mut bytes = Vec::with_capacity(src.len() * 8);
    for word in src {
        bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes.truncate(end);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `x += n` for a word only this thread writes: no read-modify-write instruction needed.
fn add(w: &AtomicU64, n: u64) {
    w.store(w.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl<'b> ThreadSlot<'b> {
    /// The slot over `w` (exactly [`words`]`(targets)` words).
    pub fn new(w: &'b [AtomicU64], targets: usize) -> Option<ThreadSlot<'b>> {
        (w.len() == words(targets)).then_some(ThreadSlot { w, targets })
    }

    pub fn owner(&self) -> &AtomicU64 {
        &self.w[OWNER]
    }

    fn block(&self, target: usize) -> Option<&'b [AtomicU64]> {
        (target < self.targets).then(|| &self.w[HEAD + target * BLOCK..HEAD + (target + 1) * BLOCK])
    }

    /// Writes the head under the sequence word (odd while it changes).
    fn write_head(&self, f: impl FnOnce(&[AtomicU64])) {
        let seq = self.w[SEQ].load(Ordering::Relaxed);
        self.w[SEQ].store(seq | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        f(self.w);
        self.w[SEQ].store((seq | 1).wrapping_add(1), Ordering::Release);
    }

    /// A request for `target` starts on thread `ident`: `line` ("GET /uri") and `client` are
    /// cut to fit.
    pub fn begin(&self, target: usize, started_us: u64, line: &[u8], client: &[u8], ident: u64) {
        self.write_head(|w| {
            w[STATE].store(target as u64 + 1, Ordering::Relaxed);
            w[IDENT].store(ident, Ordering::Relaxed);
            w[STARTED].store(started_us, Ordering::Relaxed);
            pack(&w[LINE..LINE + LINE_WORDS], line);
            pack(&w[CLIENT..CLIENT + CLIENT_WORDS], client);
        });
    }

    /// The request ends: counted, and the slot shows idle.
    pub fn end(&self, target: usize, f: &Finished) {
        self.write_head(|w| w[STATE].store(0, Ordering::Relaxed));
        let Some(b) = self.block(target) else { return };
        add(&b[REQUESTS], 1);
        if (100..600).contains(&f.status) {
            add(&b[CLASSES + f.status as usize / 100 - 1], 1);
        }
        add(&b[BYTES_IN], f.bytes_in);
        add(&b[BYTES_OUT], f.bytes_out);
        add(&b[TIME_SUM], f.time_us);
        add(&b[TIME_HIST + bucket_of(f.time_us)], 1);
        if let Some(q) = f.queue_us {
            add(&b[QUEUE_SUM], q);
            add(&b[QUEUE_HIST + bucket_of(q)], 1);
        }
    }

    /// Marks the slot idle without counting (its thread is gone, or a new owner takes it).
    pub fn clear(&self) {
        self.write_head(|w| w[STATE].store(0, Ordering::Relaxed));
    }

    /// What runs in this slot now, if anything; `None` also when the writer kept changing it
    /// (a hostile writer cannot make a reader spin).
    pub fn running(&self) -> Option<Running> {
        for _ in 0..4 {
            let before = self.w[SEQ].load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let state = self.w[STATE].load(Ordering::Relaxed);
            let r = Running {
                target: state.saturating_sub(1) as usize,
                started_us: self.w[STARTED].load(Ordering::Relaxed),
                line: unpack(&self.w[LINE..LINE + LINE_WORDS]),
                client: unpack(&self.w[CLIENT..CLIENT + CLIENT_WORDS]),
                ident: self.w[IDENT].load(Ordering::Relaxed),
            };
            fence(Ordering::Acquire);
            if self.w[SEQ].load(Ordering::Relaxed) == before {
                return (state != 0 && r.target < self.targets).then_some(r);
            }
        }
        None
    }

    /// This slot's counters for `target`, added into `into` (saturating: a daemon's board is
    /// written by untrusted code, which may put any value there).
    pub fn add_counters(&self, target: usize, into: &mut super::Counters) {
        let Some(b) = self.block(target) else { return };
        let get = |i: usize| b[i].load(Ordering::Relaxed);
        into.requests = into.requests.saturating_add(get(REQUESTS));
        for (c, slot) in into.classes.iter_mut().enumerate() {
            *slot = slot.saturating_add(get(CLASSES + c));
        }
        into.bytes_in = into.bytes_in.saturating_add(get(BYTES_IN));
        into.bytes_out = into.bytes_out.saturating_add(get(BYTES_OUT));
        into.time_sum_us = into.time_sum_us.saturating_add(get(TIME_SUM));
        into.queue_sum_us = into.queue_sum_us.saturating_add(get(QUEUE_SUM));
        for i in 0..BUCKETS {
            into.time_hist[i] = into.time_hist[i].saturating_add(get(TIME_HIST + i));
            into.queue_hist[i] = into.queue_hist[i].saturating_add(get(QUEUE_HIST + i));
        }
    }
}

/// A slot in memory this process may only read (a group board in an Apache process, mapped
/// read-only: a store there would be a segfault): the reading half of [`ThreadSlot`].
#[derive(Clone, Copy)]
pub struct SlotReader<'b>(ThreadSlot<'b>);

impl<'b> SlotReader<'b> {
    pub(super) fn new(slot: ThreadSlot<'b>) -> SlotReader<'b> {
        SlotReader(slot)
    }

    pub fn running(&self) -> Option<Running> {
        self.0.running()
    }

    pub fn add_counters(&self, target: usize, into: &mut super::Counters) {
        self.0.add_counters(target, into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_of(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn a_request_shows_while_it_runs_and_is_counted_when_it_ends() {
        let w = words_of(words(2));
        let s = ThreadSlot::new(&w, 2).unwrap();
        assert_eq!(s.running(), None);
        s.begin(1, 42, b"GET /slow?x=1", b"127.0.0.1", 9);
        let r = s.running().unwrap();
        assert_eq!((r.target, r.started_us, r.ident), (1, 42, 9));
        assert_eq!(
            (r.line.as_str(), r.client.as_str()),
            ("GET /slow?x=1", "127.0.0.1")
        );
        s.end(
            1,
            &Finished {
                status: 404,
                bytes_in: 10,
                bytes_out: 20,
                time_us: 7_000,
                queue_us: Some(100),
            },
        );
        assert_eq!(s.running(), None);
        let mut c = crate::status::Counters::default();
        s.add_counters(1, &mut c);
        assert_eq!(
            (c.requests, c.classes[3], c.bytes_in, c.bytes_out),
            (1, 1, 10, 20)
        );
        assert_eq!(
            (c.time_hist[1], c.queue_hist[0], c.queue_sum_us),
            (1, 1, 100)
        );
        let mut other = crate::status::Counters::default();
        s.add_counters(0, &mut other);
        assert_eq!(other.requests, 0);
    }

    #[test]
    fn long_text_is_cut_and_a_torn_slot_reads_as_nothing() {
        let w = words_of(words(1));
        let s = ThreadSlot::new(&w, 1).unwrap();
        let long = vec![b'a'; 1000];
        s.begin(0, 1, &long, &long, 0);
        let r = s.running().unwrap();
        assert_eq!(
            (r.line.len(), r.client.len()),
            (LINE_WORDS * 8, CLIENT_WORDS * 8)
        );
        w[SEQ].store(7, Ordering::Relaxed);
        assert_eq!(s.running(), None);
        // A target out of range (a hostile writer) shows nothing and counts nothing.
        w[SEQ].store(8, Ordering::Relaxed);
        w[STATE].store(99, Ordering::Relaxed);
        assert_eq!(s.running(), None);
        s.end(5, &Finished::default());
    }
}
