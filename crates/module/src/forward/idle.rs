//! Shared-memory rings stay resident while their connection is busy and are given back to the
//! kernel once it has been idle for [`IDLE_RELEASE`]: one sweeper thread per Apache child
//! punches out the pages of rings whose connection has not served a request since.
//!
//! Shared memory counts in the RSS of both processes (an idle connection must not hold a
//! ring's worth of it), but giving the pages back after every request made each large body
//! fault and zero them again on both sides. The Apache thread serving a request on a
//! connection and the sweeper agree through one atomic state, so pages are never punched out
//! while a request writes or reads them.

use rwsgi_core::ipc::ring::SharedMem;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant};

/// How long a connection waits unused before its rings' pages go back.
pub const IDLE_RELEASE: Duration = Duration::from_secs(2);

const BUSY: u8 = 0;
const IDLE: u8 = 1;
const RELEASING: u8 = 2;

struct Slot {
    state: AtomicU8,
    /// Milliseconds since [`epoch`] when a request that used the rings last ended (requests
    /// that did not use them — small bodies travel in frames — do not keep them resident).
    idle_since: AtomicU64,
    mems: [Arc<SharedMem>; 2],
}

/// A connection's registration with the sweeper; dropping it ends the registration.
pub struct Lease(Arc<Slot>);

static SLOTS: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());
static SWEEPER: Once = Once::new();

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

impl Lease {
    /// Registers the two rings of a connection (in use from now on).
    pub fn register(request: Arc<SharedMem>, response: Arc<SharedMem>) -> Lease {
        let slot = Arc::new(Slot {
            state: AtomicU8::new(BUSY),
            idle_since: AtomicU64::new(now_ms()),
            mems: [request, response],
        });
        SLOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&slot));
        SWEEPER.call_once(start_sweeper);
        Lease(slot)
    }

    /// A request starts: the rings are ours until [`Lease::idle`]. Waits out a release in
    /// progress (a few page-table updates).
    pub fn busy(&self) {
        loop {
            match self
                .0
                .state
                .compare_exchange(IDLE, BUSY, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) | Err(BUSY) => return,
                Err(_) => std::thread::yield_now(),
            }
        }
    }

    /// The request is over and the daemon done with both rings.
    pub fn idle(&self) {
        let [a, b] = &self.0.mems;
        // (both flags taken: `|` does not short-circuit)
        if a.take_used() | b.take_used() {
            self.0.idle_since.store(now_ms(), Ordering::Relaxed);
        }
        self.0.state.store(IDLE, Ordering::Release);
    }
}

fn start_sweeper() {
    let started = rwsgi_core::guard::spawn("rwsgi-ring-sweeper".into(), Some(64 * 1024), || {
        loop {
            std::thread::sleep(IDLE_RELEASE / 2);
            sweep(now_ms());
        }
    });
    if let Err(e) = started {
        // Rings then stay resident until their connection closes: slower to give memory back,
        // never wrong.
        rwsgi_core::guard::report(&format!(
            "rwsgi: cannot start the ring sweeper thread ({e}); idle rings keep their pages"
        ));
    }
}

/// Gives back the pages of every ring idle for IDLE_RELEASE at `now` (ms); forgets closed
/// connections.
fn sweep(now: u64) {
    let live: Vec<Arc<Slot>> = {
        let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|w| w.strong_count() > 0);
        slots.iter().filter_map(Weak::upgrade).collect()
    };
    let wait = IDLE_RELEASE.as_millis() as u64;
    for slot in live {
        if now.saturating_sub(slot.idle_since.load(Ordering::Relaxed)) < wait {
            continue;
        }
        if slot
            .state
            .compare_exchange(IDLE, RELEASING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            for m in &slot.mems {
                m.release_if_touched();
            }
            slot.state.store(IDLE, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rwsgi_core::ipc::ring::{Inbound, Outbound};

    fn rings() -> (Outbound, Inbound) {
        let a = SharedMem::create("t-req", 64 * 1024).unwrap();
        let b = SharedMem::create("t-resp", 64 * 1024).unwrap();
        (Outbound::new(a), Inbound::new(b))
    }

    fn resident(m: &SharedMem) -> bool {
        m.touched_since_release()
    }

    #[test]
    fn busy_rings_keep_their_pages_idle_ones_give_them_back() {
        let (mut out, inb) = rings();
        let lease = Lease::register(out.shared(), inb.shared());
        lease.busy();
        assert!(out.put(&[7u8; 4096]).is_some());
        let mem = out.shared();
        assert!(resident(&mem));
        // busy: a sweep far in the future leaves it alone
        sweep(now_ms() + 3_600_000);
        assert!(resident(&mem));
        lease.idle();
        // idle, but not for long enough
        sweep(now_ms());
        assert!(resident(&mem));
        sweep(now_ms() + IDLE_RELEASE.as_millis() as u64 + 1);
        assert!(!resident(&mem));
        // and the owner can take it again
        lease.busy();
        assert_eq!(lease.0.state.load(Ordering::Relaxed), BUSY);
    }

    #[test]
    fn requests_that_do_not_use_the_rings_do_not_keep_them() {
        let (mut out, inb) = rings();
        let lease = Lease::register(out.shared(), inb.shared());
        assert!(out.put(&[7u8; 4096]).is_some());
        lease.idle();
        let used_at = lease.0.idle_since.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
        // a later request with a small body (inline frames): the ring is not touched
        lease.busy();
        lease.idle();
        assert_eq!(lease.0.idle_since.load(Ordering::Relaxed), used_at);
        sweep(used_at + IDLE_RELEASE.as_millis() as u64);
        assert!(!resident(&out.shared()));
    }

    #[test]
    fn a_dropped_lease_is_forgotten() {
        let (out, inb) = rings();
        let lease = Lease::register(out.shared(), inb.shared());
        let weak = Arc::downgrade(&lease.0);
        drop(lease);
        sweep(now_ms());
        assert!(weak.upgrade().is_none());
        let slots = SLOTS.lock().unwrap();
        assert!(
            slots
                .iter()
                .all(|w| !std::ptr::eq(w.as_ptr(), weak.as_ptr()))
        );
    }
}
