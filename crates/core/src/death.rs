//! Why a daemon process ended, in words an administrator can act on.
//!
//! A process that ends on purpose says why with its exit status ([`Exit`]); a signal says the
//! rest, with what the kernel reports about the process (its peak memory, its CPU time) and
//! about the machine (the OOM killer's counter). The supervisor, which reaps the process, turns
//! that into a [`Cause`], logs it, and publishes it in the [`DeathTable`], where the Apache
//! child whose request was in flight finds it for its own log line and its 502.

use std::fmt;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Exit statuses a daemon process uses to say why it ended. Numbers are part of the contract
/// between the daemon program and the supervisor: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    /// Stopped when asked (restart, maximum-requests, restart-interval, ...), nothing cut off.
    Normal = 0,
    /// An internal error (a panic outside any request).
    Internal = 70,
    /// Could not start: privileges, Python, the configuration it was given.
    Setup = 71,
    /// A request ran over request-timeout (and could not be interrupted).
    RequestTimeout = 72,
    /// The GIL could not be taken for deadlock-timeout.
    DeadlockTimeout = 73,
    /// cpu-time-limit was reached.
    CpuTimeLimit = 74,
    /// Shutting down took longer than shutdown-timeout.
    ShutdownTimeout = 75,
    /// Requests were still running when graceful-timeout (or eviction-timeout) ran out.
    GraceExpired = 76,
}

impl Exit {
    pub fn from_code(code: i32) -> Option<Exit> {
        use Exit::*;
        [
            Normal,
            Internal,
            Setup,
            RequestTimeout,
            DeadlockTimeout,
            CpuTimeLimit,
            ShutdownTimeout,
            GraceExpired,
        ]
        .into_iter()
        .find(|e| *e as i32 == code)
    }
}

/// What the kernel says about a process that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signaled(i32),
}

/// The group's limits that a death may be explained by.
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitsInForce {
    pub memory_limit: u64,
    pub cpu_time_limit: Option<Duration>,
    pub request_timeout: Option<Duration>,
    pub deadlock_timeout: Option<Duration>,
    pub shutdown_timeout: Duration,
    pub graceful_timeout: Duration,
}

/// What else is known when the process was reaped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence {
    /// Peak resident memory (bytes).
    pub max_rss: u64,
    /// User + system CPU time.
    pub cpu: Duration,
    /// The kernel's OOM killer killed a process since the previous death was explained.
    pub oom_kill: bool,
}

/// Why a daemon process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Asked to stop (not worth an error: nothing was cut off).
    Stopped,
    OomKiller,
    /// Killed by a signal nobody in rwsgi sent (SIGKILL/SIGTERM from outside).
    Killed(i32),
    /// A fault in native code (SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE).
    Crashed(i32),
    /// Died of a signal while its memory was at memory-limit (an allocation failed).
    MemoryLimit {
        signal: i32,
        limit: u64,
    },
    CpuTimeLimit(Duration),
    RequestTimeout(Duration),
    DeadlockTimeout(Duration),
    ShutdownTimeout(Duration),
    GraceExpired(Duration),
    Internal,
    Setup,
    /// The application ended the process itself (sys.exit / os._exit) with this status.
    Exited(i32),
}

/// The explanation of `ending`.
pub fn explain(ending: Ending, limits: &LimitsInForce, ev: &Evidence) -> Cause {
    match ending {
        Ending::Exited(code) => match Exit::from_code(code) {
            Some(Exit::Normal) => Cause::Stopped,
            Some(Exit::Internal) => Cause::Internal,
            Some(Exit::Setup) => Cause::Setup,
            Some(Exit::RequestTimeout) => {
                Cause::RequestTimeout(limits.request_timeout.unwrap_or_default())
            }
            Some(Exit::DeadlockTimeout) => {
                Cause::DeadlockTimeout(limits.deadlock_timeout.unwrap_or_default())
            }
            Some(Exit::CpuTimeLimit) => {
                Cause::CpuTimeLimit(limits.cpu_time_limit.unwrap_or_default())
            }
            Some(Exit::ShutdownTimeout) => Cause::ShutdownTimeout(limits.shutdown_timeout),
            Some(Exit::GraceExpired) => Cause::GraceExpired(limits.graceful_timeout),
            None => Cause::Exited(code),
        },
        Ending::Signaled(sig) => {
            let at_memory_limit = limits.memory_limit > 0
                && ev.max_rss.saturating_mul(10) >= limits.memory_limit.saturating_mul(9);
            match sig {
                libc::SIGKILL if ev.oom_kill => Cause::OomKiller,
                // The kernel ends a process at the hard RLIMIT_CPU with SIGKILL.
                libc::SIGKILL | libc::SIGXCPU
                    if limits.cpu_time_limit.is_some_and(|l| ev.cpu >= l) =>
                {
                    Cause::CpuTimeLimit(limits.cpu_time_limit.unwrap_or_default())
                }
                _ if at_memory_limit => Cause::MemoryLimit {
                    signal: sig,
                    limit: limits.memory_limit,
                },
                libc::SIGSEGV | libc::SIGBUS | libc::SIGABRT | libc::SIGILL | libc::SIGFPE => {
                    Cause::Crashed(sig)
                }
                _ => Cause::Killed(sig),
            }
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cause::Stopped => write!(f, "stopped"),
            Cause::OomKiller => write!(
                f,
                "was killed by SIGKILL from the kernel's OOM killer (the machine or its memory cgroup ran out of memory)"
            ),
            Cause::Killed(s) => write!(
                f,
                "was killed by {} from outside rwsgi (an administrator, a process manager, or a memory limit enforced outside Apache)",
                signal_name(s)
            ),
            Cause::Crashed(s) => write!(
                f,
                "crashed with {} (a fault in native code: a C extension or Python itself; the Python stack, if any, is above)",
                signal_name(s)
            ),
            Cause::MemoryLimit { signal, limit } => write!(
                f,
                "died of {} at memory-limit={limit} (an allocation failed)",
                signal_name(signal)
            ),
            Cause::CpuTimeLimit(l) => write!(f, "reached cpu-time-limit={}", secs(l)),
            Cause::RequestTimeout(l) => {
                write!(f, "was restarted by request-timeout={}", secs(l))
            }
            Cause::DeadlockTimeout(l) => write!(
                f,
                "was restarted by deadlock-timeout={} (the Python GIL could not be taken)",
                secs(l)
            ),
            Cause::ShutdownTimeout(l) => {
                write!(f, "did not shut down within shutdown-timeout={}", secs(l))
            }
            Cause::GraceExpired(l) => write!(
                f,
                "stopped with requests still running after graceful-timeout={}",
                secs(l)
            ),
            Cause::Internal => write!(f, "ended on an internal error (see the lines above)"),
            Cause::Setup => write!(f, "could not start (see the lines above)"),
            Cause::Exited(c) => write!(
                f,
                "exited with status {c} (the application ended the process: sys.exit or os._exit)"
            ),
        }
    }
}

impl Cause {
    /// A short form for the client's 502 page (no pid, no paths).
    pub fn brief(&self) -> String {
        match *self {
            Cause::OomKiller => "killed by the kernel's OOM killer".into(),
            Cause::Killed(s) => format!("killed by {}", signal_name(s)),
            Cause::Crashed(s) => format!("crashed ({})", signal_name(s)),
            Cause::MemoryLimit { .. } => "ran out of its memory-limit".into(),
            Cause::CpuTimeLimit(_) => "reached its cpu-time-limit".into(),
            Cause::RequestTimeout(_) => "restarted by request-timeout".into(),
            Cause::DeadlockTimeout(_) => "restarted by deadlock-timeout".into(),
            Cause::ShutdownTimeout(_) | Cause::GraceExpired(_) | Cause::Stopped => {
                "restarted".into()
            }
            Cause::Internal | Cause::Setup => "ended on an internal error".into(),
            Cause::Exited(_) => "exited".into(),
        }
    }

    pub(crate) fn encode(&self) -> (u32, i64) {
        let d = |x: Duration| x.as_millis() as i64;
        match *self {
            Cause::Stopped => (1, 0),
            Cause::OomKiller => (2, 0),
            Cause::Killed(s) => (3, s as i64),
            Cause::Crashed(s) => (4, s as i64),
            Cause::MemoryLimit { signal, limit } => (5, ((limit as i64) << 8) | signal as i64),
            Cause::CpuTimeLimit(l) => (6, d(l)),
            Cause::RequestTimeout(l) => (7, d(l)),
            Cause::DeadlockTimeout(l) => (8, d(l)),
            Cause::ShutdownTimeout(l) => (9, d(l)),
            Cause::GraceExpired(l) => (10, d(l)),
            Cause::Internal => (11, 0),
            Cause::Setup => (12, 0),
            Cause::Exited(c) => (13, c as i64),
        }
    }

    pub(crate) fn decode(kind: u32, detail: i64) -> Option<Cause> {
        let d = || Duration::from_millis(detail.max(0) as u64);
        Some(match kind {
            1 => Cause::Stopped,
            2 => Cause::OomKiller,
            3 => Cause::Killed(detail as i32),
            4 => Cause::Crashed(detail as i32),
            5 => Cause::MemoryLimit {
                signal: (detail & 0xff) as i32,
                limit: (detail >> 8) as u64,
            },
            6 => Cause::CpuTimeLimit(d()),
            7 => Cause::RequestTimeout(d()),
            8 => Cause::DeadlockTimeout(d()),
            9 => Cause::ShutdownTimeout(d()),
            10 => Cause::GraceExpired(d()),
            11 => Cause::Internal,
            12 => Cause::Setup,
            13 => Cause::Exited(detail as i32),
            _ => return None,
        })
    }
}

/// The kernel's count of OOM kills (`oom_kill` in /proc/vmstat); 0 where unknown.
pub fn oom_kills() -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One published death. Every field is an atomic: readers in other processes never see a
/// torn value, and `seq` (odd while written) tells them whether the record is whole.
#[repr(C)]
struct Slot {
    seq: AtomicU32,
    pid: AtomicI32,
    kind: AtomicU32,
    _pad: AtomicU32,
    detail: AtomicU64,
}

const SLOTS: usize = 255;

#[repr(C)]
struct Table {
    next: AtomicU64,
    slots: [Slot; SLOTS],
}

/// The last deaths of daemon processes, in memory shared by the Apache parent, the group
/// supervisors (which write) and the Apache children (which read). Created once per Apache
/// parent, before anything forks; daemon processes never have it (they are exec'd).
#[derive(Clone, Copy)]
pub struct DeathTable(&'static Table);

impl DeathTable {
    /// Maps a new table (shared, anonymous: inherited across fork, gone at exec).
    pub fn create() -> std::io::Result<DeathTable> {
        let len = std::mem::size_of::<Table>();
        // SAFETY: a fresh anonymous shared mapping, zero-filled by the kernel: every field of
        // Table is an atomic integer, for which all-zero bytes are a valid value. It is never
        // unmapped, so the 'static reference stays valid for the life of the process.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            Ok(DeathTable(&*(p as *const Table)))
        }
    }

    /// The table at `addr`, created by [`DeathTable::create`] in this process or an ancestor.
    ///
    /// # Safety
    /// `addr` must be [`DeathTable::addr`] of a table of this process (it is never unmapped).
    pub unsafe fn from_addr(addr: usize) -> DeathTable {
        // SAFETY: per the contract.
        DeathTable(unsafe { &*(addr as *const Table) })
    }

    pub fn addr(&self) -> usize {
        self.0 as *const Table as usize
    }

    /// Publishes the death of `pid` (one writer per group; slots are claimed atomically).
    pub fn publish(&self, pid: i32, cause: Cause) {
        let i = (self.0.next.fetch_add(1, Ordering::AcqRel) % SLOTS as u64) as usize;
        let slot = &self.0.slots[i];
        let (kind, detail) = cause.encode();
        let seq = slot.seq.load(Ordering::Relaxed);
        let writing = seq | 1;
        slot.seq.store(writing, Ordering::Release);
        slot.pid.store(pid, Ordering::Release);
        slot.kind.store(kind, Ordering::Release);
        slot.detail.store(detail as u64, Ordering::Release);
        slot.seq.store(writing.wrapping_add(1), Ordering::Release);
    }

    /// The published cause of `pid`'s death, if any.
    pub fn find(&self, pid: i32) -> Option<Cause> {
        self.0.slots.iter().find_map(|slot| {
            let before = slot.seq.load(Ordering::Acquire);
            if before & 1 == 1 || slot.pid.load(Ordering::Acquire) != pid {
                return None;
            }
            let kind = slot.kind.load(Ordering::Acquire);
            let detail = slot.detail.load(Ordering::Acquire) as i64;
            (slot.seq.load(Ordering::Acquire) == before)
                .then(|| Cause::decode(kind, detail))
                .flatten()
        })
    }

    /// Waits up to `limit` for `pid`'s death to be published (its supervisor reaps it within
    /// milliseconds of the connection closing).
    pub fn wait_for(&self, pid: i32, limit: Duration) -> Option<Cause> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(c) = self.find(pid) {
                return Some(c);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LimitsInForce {
        LimitsInForce {
            memory_limit: 200_000_000,
            cpu_time_limit: Some(Duration::from_secs(2)),
            request_timeout: Some(Duration::from_secs(5)),
            deadlock_timeout: Some(Duration::from_secs(300)),
            shutdown_timeout: Duration::from_secs(5),
            graceful_timeout: Duration::from_secs(15),
        }
    }

    #[test]
    fn signals_are_explained() {
        let l = limits();
        let ev = Evidence::default();
        assert_eq!(
            explain(Ending::Signaled(libc::SIGKILL), &l, &ev),
            Cause::Killed(libc::SIGKILL)
        );
        let oom = Evidence {
            oom_kill: true,
            ..ev
        };
        assert_eq!(
            explain(Ending::Signaled(libc::SIGKILL), &l, &oom),
            Cause::OomKiller
        );
        let busy = Evidence {
            cpu: Duration::from_secs(3),
            ..ev
        };
        assert_eq!(
            explain(Ending::Signaled(libc::SIGKILL), &l, &busy),
            Cause::CpuTimeLimit(Duration::from_secs(2))
        );
        let big = Evidence {
            max_rss: 195_000_000,
            ..ev
        };
        assert_eq!(
            explain(Ending::Signaled(libc::SIGABRT), &l, &big),
            Cause::MemoryLimit {
                signal: libc::SIGABRT,
                limit: 200_000_000
            }
        );
        assert_eq!(
            explain(Ending::Signaled(libc::SIGSEGV), &l, &ev),
            Cause::Crashed(libc::SIGSEGV)
        );
        assert!(
            Cause::Crashed(libc::SIGSEGV)
                .to_string()
                .starts_with("crashed with SIGSEGV")
        );
        assert!(Cause::OomKiller.to_string().contains("OOM killer"));
    }

    #[test]
    fn exit_statuses_are_explained() {
        let l = limits();
        let ev = Evidence::default();
        let e = |c| explain(Ending::Exited(c), &l, &ev);
        assert_eq!(e(0), Cause::Stopped);
        assert_eq!(e(72), Cause::RequestTimeout(Duration::from_secs(5)));
        assert_eq!(e(74), Cause::CpuTimeLimit(Duration::from_secs(2)));
        assert_eq!(e(3), Cause::Exited(3));
        assert_eq!(e(72).to_string(), "was restarted by request-timeout=5s");
    }

    #[test]
    fn causes_survive_the_table() {
        let t = DeathTable::create().unwrap();
        let causes = [
            Cause::OomKiller,
            Cause::Killed(9),
            Cause::MemoryLimit {
                signal: 6,
                limit: 123_456_789,
            },
            Cause::RequestTimeout(Duration::from_millis(2500)),
            Cause::Exited(-3),
        ];
        for (i, c) in causes.iter().enumerate() {
            t.publish(1000 + i as i32, *c);
        }
        for (i, c) in causes.iter().enumerate() {
            assert_eq!(t.find(1000 + i as i32), Some(*c));
        }
        assert_eq!(t.find(1), None);
        // the table is a ring: the oldest records make room
        for pid in 0..SLOTS as i32 {
            t.publish(5000 + pid, Cause::Stopped);
        }
        assert_eq!(t.find(1000), None);
        assert_eq!(t.find(5000 + SLOTS as i32 - 1), Some(Cause::Stopped));
    }
}
