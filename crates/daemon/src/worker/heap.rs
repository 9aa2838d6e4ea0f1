//! Freed heap given back to the system while a daemon process runs.
//!
//! [`tune`](rwsgi_core::malloc::tune) keeps blocks up to 2 MiB in malloc's arenas
//! (so a 1 MiB body does not fault in fresh pages on every request) and all request threads
//! share a few arenas; glibc then only gives back free space at the top of an arena, and what
//! is freed below a block still in use stays resident. Measured after Django's 1 MiB uploads
//! (garbage Python's cyclic collector freed later), then the Flask and Django pages: each
//! daemon process kept 140-146 MiB where `malloc_trim(0)` left 52-55, and mod_wsgi's daemon
//! processes (glibc's defaults) were at 56-58.
//!
//! Trimming every second under load cost more than it saved: the pages given back were the
//! next second's working set (Django uploads: 60-109 -> 110-162 page faults per request, 1 MiB
//! echoes in 8 KiB reads 2 -> 12), and "more free than in use" held half the time under a
//! steady load (8 KiB reads: 15-20 MiB in use, 11-17 free, second by second; Django uploads
//! swing between 82 and 229 MiB in use, with up to 156 free, as the cyclic collector runs).
//! The Flask pages right after the uploads had 62-73 MiB in use and 175-210 free, then 18 in
//! use once the collector had run. So a process trims when it went idle after serving, or when
//! its free heap is more than twice what is in use and what is in use has halved since the
//! last trim (memory given back counts as free until reused: without that, every look would
//! trim again); a steady load keeps its pages. The pymalloc arenas kept for reuse
//! (`rwsgi_python::ffi::arenas`) go back when the process is idle.

use super::super::sys::{HeapUsage, heap_usage, trim_heap};
use std::time::{Duration, Instant};

/// How often the heap is looked at (`mallinfo2`: a walk of the arenas' free lists).
pub const LOOK: Duration = Duration::from_millis(250);
/// How long without a finished request means idle.
pub const IDLE: Duration = Duration::from_secs(1);
/// Less free heap than this is not worth the page faults of giving it back.
const WORTH_TRIMMING: usize = 16 << 20;

pub struct HeapTrim {
    /// Requests served when the heap was last trimmed.
    trimmed_at: u64,
    /// The served count last seen, and since when it has not changed.
    seen: u64,
    unchanged_since: Instant,
    last_look: Instant,
    /// The most heap in use seen since the last trim, and the last look's figure.
    peak: usize,
    in_use: usize,
}

impl HeapTrim {
    pub fn new(now: Instant) -> HeapTrim {
        HeapTrim {
            trimmed_at: 0,
            seen: 0,
            unchanged_since: now,
            last_look: now,
            peak: 0,
            in_use: 0,
        }
    }

    /// Called from the watchdog's loop with the process's served-requests count.
    pub fn tick(&mut self, served: u64, now: Instant) {
        if self.due(served, now, heap_usage) {
            trim_heap();
            self.trimmed(served);
        }
        if self.idle(now) {
            rwsgi_python::ffi::arenas::release_kept();
        }
    }

    fn idle(&self, now: Instant) -> bool {
        now.duration_since(self.unchanged_since) >= IDLE
    }

    fn trimmed(&mut self, served: u64) {
        self.trimmed_at = served;
        self.peak = self.in_use;
    }

    fn due(&mut self, served: u64, now: Instant, usage: impl FnOnce() -> HeapUsage) -> bool {
        if served != self.seen {
            self.seen = served;
            self.unchanged_since = now;
        }
        if served == self.trimmed_at || now.duration_since(self.last_look) < LOOK {
            return false;
        }
        self.last_look = now;
        let u = usage();
        self.in_use = u.in_use;
        self.peak = self.peak.max(u.in_use);
        if u.free < WORTH_TRIMMING {
            return false;
        }
        let idle = self.idle(now);
        let shrunk = u.free / 2 > u.in_use && self.peak / 2 >= u.in_use;
        idle || shrunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heap(in_use_mib: usize, free_mib: usize) -> impl FnOnce() -> HeapUsage {
        move || HeapUsage {
            in_use: in_use_mib << 20,
            free: free_mib << 20,
        }
    }

    /// Looks once per LOOK with these (in use, free) figures, one request served before
    /// each; the looks that trimmed.
    fn run(
        h: &mut HeapTrim,
        t0: Instant,
        served: &mut u64,
        figures: &[(usize, usize)],
    ) -> Vec<usize> {
        let mut trims = Vec::new();
        for (i, &(in_use, free)) in figures.iter().enumerate() {
            *served += 1;
            let now = t0 + LOOK * (*served as u32);
            if h.due(*served, now, heap(in_use, free)) {
                h.trimmed(*served);
                trims.push(i);
            }
        }
        trims
    }

    #[test]
    fn a_steady_load_keeps_its_pages() {
        let t0 = Instant::now();
        let (mut h, mut served) = (HeapTrim::new(t0), 0);
        // 8 KiB reads of 1 MiB bodies, then Django uploads with the collector's swings
        let echo = [(16, 16), (19, 15), (17, 15), (18, 15), (20, 12), (15, 17)];
        let uploads = [
            (148, 37),
            (98, 85),
            (211, 28),
            (229, 30),
            (82, 156),
            (119, 127),
        ];
        assert_eq!(run(&mut h, t0, &mut served, &echo), Vec::<usize>::new());
        assert_eq!(run(&mut h, t0, &mut served, &uploads), Vec::<usize>::new());
    }

    #[test]
    fn a_smaller_load_after_a_big_one_trims_as_it_shrinks() {
        let t0 = Instant::now();
        let (mut h, mut served) = (HeapTrim::new(t0), 0);
        // Flask pages after Django uploads: garbage still in use, then collected
        let figures = [
            (148, 37),
            (229, 30),
            (62, 210),
            (62, 210),
            (18, 205),
            (18, 205),
        ];
        assert_eq!(run(&mut h, t0, &mut served, &figures), vec![2, 4]);
    }

    #[test]
    fn going_idle_after_requests_trims_once() {
        let t0 = Instant::now();
        let mut h = HeapTrim::new(t0);
        let busy = || heap(100, 40);
        assert!(!h.due(7, t0 + IDLE, busy()), "still serving");
        assert!(
            !h.due(7, t0 + IDLE + LOOK / 2, busy()),
            "looked too recently"
        );
        assert!(
            !h.due(7, t0 + IDLE + LOOK, busy()),
            "not idle for long enough"
        );
        assert!(h.due(7, t0 + IDLE * 2, busy()));
        h.trimmed(7);
        assert!(!h.due(7, t0 + IDLE * 5, busy()), "nothing served since");
    }

    #[test]
    fn little_free_heap_is_kept() {
        let t0 = Instant::now();
        let mut h = HeapTrim::new(t0);
        assert!(!h.due(3, t0 + IDLE * 3, heap(2, 1)), "idle, but 1 MiB free");
    }
}
