//! The process's request counters behind `mod_wsgi.process_metrics()` and
//! `mod_wsgi.request_metrics()`: lock-free per-thread counts on the request path; the timing
//! histograms of the current sample only once an application asked for them (mod_wsgi's
//! first `request_metrics()` call starts the sampling).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Requests completed by this process, and the seconds spent in them (µs).
static COMPLETED: AtomicU64 = AtomicU64::new(0);
static BUSY_US: AtomicU64 = AtomicU64::new(0);
/// Request threads that have served a request, each with its own count.
static THREADS: Mutex<Vec<(u64, Arc<AtomicU64>)>> = Mutex::new(Vec::new());
static RECORDING: AtomicBool = AtomicBool::new(false);
static SAMPLE: Mutex<Sample> = Mutex::new(Sample::new());

/// Where `server_metrics()` reads Apache's scoreboard: set in Apache children with
/// WSGIServerMetrics On; daemon processes (exec'd, outside Apache) have none.
static SCOREBOARD: std::sync::OnceLock<fn() -> Option<rwsgi_core::scoreboard::Scoreboard>> =
    std::sync::OnceLock::new();

pub fn set_scoreboard(read: fn() -> Option<rwsgi_core::scoreboard::Scoreboard>) {
    let _ = SCOREBOARD.set(read);
}

pub fn scoreboard() -> Option<rwsgi_core::scoreboard::Scoreboard> {
    SCOREBOARD.get().and_then(|read| read())
}

/// mod_wsgi's buckets: i < 14 counts durations up to 5 ms · 2^i, 14 the rest, 15 unused.
pub const BUCKETS: usize = 16;

thread_local! {
    static MINE: std::cell::OnceCell<Arc<AtomicU64>> = const { std::cell::OnceCell::new() };
}

/// The timings of one finished request, in seconds.
pub struct Timing {
    pub thread_id: u64,
    pub server: f64,
    pub application: f64,
    /// Daemon mode: waiting for a daemon thread, and handing over to it.
    pub queue: Option<f64>,
    pub daemon: Option<f64>,
}

pub struct Sample {
    count: u64,
    server: f64,
    application: f64,
    queue: f64,
    daemon: f64,
    buckets: [[u64; BUCKETS]; 4],
    per_thread: Vec<u64>,
}

impl Sample {
    const fn new() -> Sample {
        Sample {
            count: 0,
            server: 0.0,
            application: 0.0,
            queue: 0.0,
            daemon: 0.0,
            buckets: [[0; BUCKETS]; 4],
            per_thread: Vec::new(),
        }
    }
}

/// The bucket of a duration: the status board's (mod_wsgi's bounds), so both agree.
fn bucket(seconds: f64) -> usize {
    rwsgi_core::status::bucket_of((seconds.max(0.0) * 1e6).round() as u64)
}

/// A request starts on this thread (`thread_id`: mod_wsgi.thread_id): its count includes the
/// request in progress, as mod_wsgi's does.
pub fn started(thread_id: u64) {
    MINE.with(|m| {
        m.get_or_init(|| {
            let c = Arc::new(AtomicU64::new(0));
            THREADS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((thread_id, c.clone()));
            c
        })
        .fetch_add(1, Ordering::Relaxed);
    });
}

/// Records a finished request (cheap unless a sample is being taken).
pub fn finished(t: &Timing) {
    COMPLETED.fetch_add(1, Ordering::Relaxed);
    BUSY_US.fetch_add((t.application * 1e6) as u64, Ordering::Relaxed);
    if !RECORDING.load(Ordering::Relaxed) {
        return;
    }
    let mut s = SAMPLE.lock().unwrap_or_else(|e| e.into_inner());
    s.count += 1;
    s.server += t.server;
    s.application += t.application;
    s.buckets[0][bucket(t.server)] += 1;
    s.buckets[1][bucket(t.application)] += 1;
    if let Some(q) = t.queue {
        s.queue += q;
        s.buckets[2][bucket(q)] += 1;
    }
    if let Some(d) = t.daemon {
        s.daemon += d;
        s.buckets[3][bucket(d)] += 1;
    }
    let slot = (t.thread_id as usize).saturating_sub(1);
    if s.per_thread.len() <= slot {
        s.per_thread.resize(slot + 1, 0);
    }
    s.per_thread[slot] += 1;
}

/// `(requests completed, busy seconds, [(thread id, requests)])` for process_metrics().
pub fn counters() -> (u64, f64, Vec<(u64, u64)>) {
    let threads = THREADS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(id, c)| (*id, c.load(Ordering::Relaxed)))
        .collect();
    (
        COMPLETED.load(Ordering::Relaxed),
        BUSY_US.load(Ordering::Relaxed) as f64 / 1e6,
        threads,
    )
}

/// Takes the current sample (and starts the next; the first call starts sampling).
pub fn take_sample() -> (Sample, usize) {
    RECORDING.store(true, Ordering::Relaxed);
    let s = std::mem::replace(
        &mut *SAMPLE.lock().unwrap_or_else(|e| e.into_inner()),
        Sample::new(),
    );
    let started = THREADS.lock().unwrap_or_else(|e| e.into_inner()).len();
    (s, started)
}

impl Sample {
    /// (count, server, application, queue, daemon totals, [server, app, queue, daemon]
    /// buckets, requests per thread).
    pub fn parts(&self) -> (u64, [f64; 4], &[[u64; BUCKETS]; 4], &[u64]) {
        (
            self.count,
            [self.server, self.application, self.queue, self.daemon],
            &self.buckets,
            &self.per_thread,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_double_from_five_milliseconds() {
        assert_eq!(bucket(0.001), 0);
        assert_eq!(bucket(0.005), 0);
        assert_eq!(bucket(0.006), 1);
        assert_eq!(bucket(0.010), 1);
        assert_eq!(bucket(0.011), 2);
        assert_eq!(bucket(1e9), 14);
    }
}
