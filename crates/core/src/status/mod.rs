//! The live status of a server: what `SetHandler rwsgi-status` shows (HTML, JSON, Prometheus).
//!
//! Figures live in shared memory, in fixed-size slots of 64-bit atomic words, each slot
//! written by one thread only, so the request path never takes a lock or even an atomic
//! read-modify-write: a request costs a few dozen plain stores into its thread's own slot.
//! Readers (the status handler, in any Apache child) add the slots up.
//!
//! Two kinds of board:
//! - the **server board** ([`Board`] over [`Region::anonymous`]), made by the Apache parent for
//!   each configuration generation and inherited by its children and the groups' supervisors:
//!   one slot per Apache thread (what it runs, its counters per *target*: embedded or a daemon
//!   group), and, per daemon group, what its supervisor knows of each process (pid, start,
//!   restarts, the last cause of death);
//! - one **group board** per daemon group ([`Region::memfd`], sealed against resizing), which
//!   the group's daemon processes write (one slot per request thread: queue wait and
//!   application time, what runs) and the Apache children only map read-only. A daemon runs
//!   untrusted code: everything read from a group board is copied out, bounded and checked,
//!   and only ever shown as numbers or escaped text.

mod board;
mod group;
mod region;
pub mod render;
mod slot;
mod view;

pub use board::{Board, Shape, Supervised};
pub use group::{Boards, GroupBoard, GroupBoardWriter};
pub use region::{Region, wait_change, wake_all};
pub use slot::{Finished, SlotReader, ThreadSlot};
pub use view::{
    Counters, GroupView, InFlight, Probe, ProcessView, StatusView, TargetKind, identity_of,
    is_alive, pid_of, read_status, rss_of,
};

/// Buckets of the latency histograms: bucket i < 14 counts durations up to 5 ms · 2^i (the
/// bounds mod_wsgi's request metrics use), bucket 14 the rest.
pub const BUCKETS: usize = 15;

/// The upper bound of histogram bucket `i`, in seconds (`None`: +Inf).
pub fn bucket_bound(i: usize) -> Option<f64> {
    (i < BUCKETS - 1).then(|| 0.005 * (1u64 << i) as f64)
}

/// The histogram bucket of a duration in microseconds.
pub fn bucket_of(us: u64) -> usize {
    let mut limit = 5_000u64;
    for i in 0..BUCKETS - 1 {
        if us <= limit {
            return i;
        }
        limit *= 2;
    }
    BUCKETS - 1
}

/// Microseconds since the Unix epoch (comparable across processes).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_mod_wsgi_bounds() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(5_000), 0);
        assert_eq!(bucket_of(5_001), 1);
        assert_eq!(bucket_of(40_960_000), 13);
        assert_eq!(bucket_of(40_960_001), 14);
        assert_eq!(bucket_bound(0), Some(0.005));
        assert_eq!(bucket_bound(13), Some(40.96));
        assert_eq!(bucket_bound(14), None);
    }
}
