//! The boards' layouts: where each process's and thread's words are.

use super::region::Region;
use super::slot::{self, ThreadSlot};
use crate::death::Cause;
use std::sync::atomic::{AtomicU64, Ordering};

const MAGIC: u64 = 0x7277_7367_6973_7431; // "rwsgist1"
const HEADER: usize = 16;
/// Per target: when the rate was last taken, the count then, the rate (f64 bits).
const RATE_WORDS: usize = 3;
/// Per Apache process: its identity (see [`identity_of`]), start, requests counted before it
/// took the slot, unrecorded requests, the highest thread slot it claimed + 1.
const PROCESS_WORDS: usize = 5;
/// Per daemon group in the server board: log-stacks requests, then per process what its
/// supervisor knows.
const GROUP_HEADER: usize = 8;
/// Per daemon process: pid, start, restarts, last death (kind, detail, when).
const SUPERVISED_WORDS: usize = 8;

/// What a server board holds room for.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Apache processes at once (ServerLimit) and request threads in each (with room for
    /// mod_http2's workers beside the MPM's).
    pub apache_processes: usize,
    pub apache_threads: usize,
    /// Daemon groups: name, processes, threads.
    pub groups: Vec<(String, usize, usize)>,
}

impl Shape {
    /// Targets a request can run on: 0 is embedded, 1 + i is daemon group i.
    pub fn targets(&self) -> usize {
        1 + self.groups.len()
    }

    fn rates(&self) -> usize {
        HEADER
    }
    fn processes(&self) -> usize {
        self.rates() + self.targets() * RATE_WORDS
    }
    fn threads(&self) -> usize {
        self.processes() + self.apache_processes * PROCESS_WORDS
    }
    fn group(&self, g: usize) -> usize {
        let mut at = self.threads()
            + self.apache_processes * self.apache_threads * slot::words(self.targets());
        for (_, processes, _) in self.groups.iter().take(g) {
            at += GROUP_HEADER + processes * SUPERVISED_WORDS;
        }
        at
    }
    fn words(&self) -> usize {
        self.group(self.groups.len())
    }
}

/// The server board (see the module's documentation).
pub struct Board {
    region: Region,
    shape: Shape,
}

/// What a supervisor wrote about one daemon process slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Supervised {
    pub pid: i32,
    pub started_us: u64,
    pub restarts: u64,
    pub last_death: Option<(Cause, u64)>,
}

impl Board {
    pub fn create(shape: Shape) -> std::io::Result<Board> {
        let region = Region::anonymous(shape.words())?;
        region.words()[0].store(MAGIC, Ordering::Relaxed);
        region.words()[1].store(super::now_us(), Ordering::Relaxed);
        Ok(Board { region, shape })
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    fn w(&self) -> &[AtomicU64] {
        self.region.words()
    }

    pub fn created_us(&self) -> u64 {
        self.w()[1].load(Ordering::Relaxed)
    }

    /// Bumped to ask every Apache child to log the stacks of its running embedded requests.
    pub fn embedded_stack_requests(&self) -> &AtomicU64 {
        &self.w()[2]
    }

    fn process_words(&self, p: usize) -> Option<&[AtomicU64]> {
        let at = self.shape.processes() + p * PROCESS_WORDS;
        (p < self.shape.apache_processes).then(|| &self.w()[at..at + PROCESS_WORDS])
    }

    /// An Apache child (`identity`, see [`identity_of`]) takes a process slot: a free one, or
    /// one whose process is gone (`alive` says, from the identity: a pid alone may have been
    /// reused). The counters of the slot's threads stay (totals never go down); what the
    /// previous owner ran is cleared.
    pub fn claim_process(&self, identity: u64, alive: impl Fn(u64) -> bool) -> Option<usize> {
        for p in 0..self.shape.apache_processes {
            let w = self.process_words(p)?;
            let old = w[0].load(Ordering::Acquire);
            if old != 0 && alive(old) {
                continue;
            }
            if w[0]
                .compare_exchange(old, identity, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                w[1].store(super::now_us(), Ordering::Relaxed);
                let mut before = super::Counters::default();
                for t in 0..self.claimed_threads(p) {
                    if let Some(s) = self.apache_slot(p, t) {
                        s.owner().store(0, Ordering::Relaxed);
                        s.clear();
                        s.add_counters(0, &mut before);
                    }
                }
                w[2].store(before.requests, Ordering::Relaxed);
                w[3].store(0, Ordering::Relaxed);
                return Some(p);
            }
        }
        None
    }

    /// The identity, start and requests-before-it of Apache process slot `p` (0: free).
    pub fn apache_process(&self, p: usize) -> Option<(u64, u64, u64)> {
        let w = self.process_words(p)?;
        let get = |i: usize| w[i].load(Ordering::Relaxed);
        Some((get(0), get(1), get(2)))
    }

    /// How many thread slots of process slot `p` were ever claimed (readers go no further:
    /// reading a page of shared memory gives it backing, so the unused rest stays unread).
    pub fn claimed_threads(&self, p: usize) -> usize {
        self.process_words(p).map_or(0, |w| {
            (w[4].load(Ordering::Relaxed) as usize).min(self.shape.apache_threads)
        })
    }

    /// A request this process ran without a thread slot (more threads than the board has
    /// room for): counted here so the page can say so.
    pub fn unrecorded(&self, p: usize) -> Option<&AtomicU64> {
        Some(&self.process_words(p)?[3])
    }

    /// Slot `t` of Apache process `p`.
    pub fn apache_slot(&self, p: usize, t: usize) -> Option<ThreadSlot<'_>> {
        let s = &self.shape;
        if p >= s.apache_processes || t >= s.apache_threads {
            return None;
        }
        let n = slot::words(s.targets());
        let at = s.threads() + (p * s.apache_threads + t) * n;
        ThreadSlot::new(&self.w()[at..at + n], s.targets())
    }

    /// A thread of process slot `p` takes a free thread slot (owner 0) as `tid`.
    pub fn claim_thread(&self, p: usize, tid: u64) -> Option<usize> {
        let t = (0..self.shape.apache_threads).find(|&t| {
            self.apache_slot(p, t).is_some_and(|s| {
                s.owner()
                    .compare_exchange(0, tid, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            })
        })?;
        if let Some(w) = self.process_words(p) {
            w[4].fetch_max(t as u64 + 1, Ordering::AcqRel);
        }
        Some(t)
    }

    fn group_words(&self, g: usize) -> Option<&[AtomicU64]> {
        let (_, processes, _) = self.shape.groups.get(g)?;
        let at = self.shape.group(g);
        Some(&self.w()[at..at + GROUP_HEADER + processes * SUPERVISED_WORDS])
    }

    /// Bumped to ask group `g`'s supervisor to have its processes log their stacks.
    pub fn stack_requests(&self, g: usize) -> Option<&AtomicU64> {
        Some(&self.group_words(g)?[0])
    }

    fn supervised_words(&self, g: usize, p: usize) -> Option<&[AtomicU64]> {
        let at = GROUP_HEADER + p * SUPERVISED_WORDS;
        self.group_words(g)?.get(at..at + SUPERVISED_WORDS)
    }

    /// Supervisor of group `g`: process slot `p` now runs `pid` (0: none), started now.
    pub fn set_process(&self, g: usize, p: usize, pid: i32) {
        if let Some(w) = self.supervised_words(g, p) {
            w[0].store(pid as u32 as u64, Ordering::Relaxed);
            w[1].store(super::now_us(), Ordering::Relaxed);
        }
    }

    /// Supervisor of group `g`: the process of slot `p` died of `cause`.
    pub fn set_death(&self, g: usize, p: usize, cause: Cause) {
        if let Some(w) = self.supervised_words(g, p) {
            let (kind, detail) = cause.encode();
            w[0].store(0, Ordering::Relaxed);
            if cause != Cause::Stopped {
                w[2].fetch_add(1, Ordering::Relaxed);
            }
            w[3].store(kind as u64, Ordering::Relaxed);
            w[4].store(detail as u64, Ordering::Relaxed);
            w[5].store(super::now_us(), Ordering::Relaxed);
        }
    }

    pub fn supervised(&self, g: usize, p: usize) -> Option<Supervised> {
        let w = self.supervised_words(g, p)?;
        let get = |i: usize| w[i].load(Ordering::Relaxed);
        Some(Supervised {
            pid: get(0) as u32 as i32,
            started_us: get(1),
            restarts: get(2),
            last_death: Cause::decode(get(3) as u32, get(4) as i64).map(|c| (c, get(5))),
        })
    }

    /// Requests per second of target `t` since the previous look (at least a second ago);
    /// `None` on the first look.
    pub fn rate(&self, t: usize, requests: u64, now_us: u64) -> Option<f64> {
        if t >= self.shape.targets() {
            return None;
        }
        let at = self.shape.rates() + t * RATE_WORDS;
        let w = &self.w()[at..at + RATE_WORDS];
        let (then, count) = (w[0].load(Ordering::Relaxed), w[1].load(Ordering::Relaxed));
        let kept = f64::from_bits(w[2].load(Ordering::Relaxed));
        if then != 0 && now_us.saturating_sub(then) < 1_000_000 {
            return (then != 0 && kept.is_finite()).then_some(kept);
        }
        w[0].store(now_us, Ordering::Relaxed);
        w[1].store(requests, Ordering::Relaxed);
        if then == 0 {
            w[2].store(f64::NAN.to_bits(), Ordering::Relaxed);
            return None;
        }
        let rate = requests.saturating_sub(count) as f64 / ((now_us - then) as f64 / 1e6);
        w[2].store(rate.to_bits(), Ordering::Relaxed);
        Some(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            apache_processes: 3,
            apache_threads: 4,
            groups: vec![("a".into(), 2, 3), ("b".into(), 1, 1)],
        }
    }

    #[test]
    fn slots_do_not_overlap() {
        let b = Board::create(shape()).unwrap();
        let mut seen = std::collections::HashSet::new();
        for p in 0..3 {
            for t in 0..4 {
                let s = b.apache_slot(p, t).unwrap();
                assert!(seen.insert(s.owner() as *const _ as usize));
            }
        }
        assert!(b.apache_slot(3, 0).is_none() && b.apache_slot(0, 4).is_none());
        b.set_process(1, 0, 77);
        b.set_death(0, 1, Cause::Killed(9));
        assert_eq!(b.supervised(1, 0).unwrap().pid, 77);
        assert_eq!(b.supervised(0, 0).unwrap().pid, 0);
        let d = b.supervised(0, 1).unwrap();
        assert_eq!(
            (d.restarts, d.last_death.map(|x| x.0)),
            (1, Some(Cause::Killed(9)))
        );
        assert!(b.supervised(1, 1).is_none());
        assert!(b.stack_requests(2).is_none());
    }

    #[test]
    fn a_process_slot_is_reused_only_when_its_process_is_gone() {
        let b = Board::create(shape()).unwrap();
        assert_eq!(b.claim_process(10, |_| true), Some(0));
        assert_eq!(b.claim_process(11, |_| true), Some(1));
        assert_eq!(b.claimed_threads(0), 0);
        assert_eq!(b.claim_thread(0, 5), Some(0));
        assert_eq!(b.claim_thread(0, 6), Some(1));
        assert_eq!(b.claimed_threads(0), 2);
        let s = b.apache_slot(0, 0).unwrap();
        s.begin(0, 1, b"GET /", b"x", 0);
        s.end(0, &super::super::Finished::default());
        s.begin(0, 1, b"GET /stuck", b"x", 0);
        // Process 10 dies: its slot is taken again, what it ran is gone, its counts stay.
        assert_eq!(b.claim_process(12, |id| id != 10), Some(0));
        assert!(s.running().is_none());
        assert_eq!(b.apache_process(0).unwrap().2, 1);
        assert_eq!(b.claim_thread(0, 7), Some(0));
    }

    #[test]
    fn rate_is_taken_over_at_least_a_second() {
        let b = Board::create(shape()).unwrap();
        assert_eq!(b.rate(0, 100, 1_000_000), None);
        assert_eq!(b.rate(0, 150, 1_500_000), None);
        assert_eq!(b.rate(0, 300, 3_000_000), Some(100.0));
        assert_eq!(b.rate(0, 310, 3_100_000), Some(100.0));
    }
}
