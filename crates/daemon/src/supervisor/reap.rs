//! Dead daemon processes: each death explained (rwsgi_core::death), logged and published for
//! the Apache children, and the slot refilled (later, while processes keep dying young).

use super::Supervisor;
use nix::unistd::Pid;
use rwsgi_core::Level;
use rwsgi_core::death::{self, Cause, Ending, Evidence};
use rwsgi_core::errlog::log;
use std::time::{Duration, Instant};

/// Collects dead daemon processes: explains and publishes each death, schedules the
/// replacement.
impl Supervisor<'_> {
    pub(super) fn reap(&mut self) {
        while let Some((pid, status, usage)) = wait_any() {
            self.dead(pid, status, &usage);
        }
    }

    /// Explains, logs and publishes one death; schedules the slot's next process.
    fn dead(&mut self, pid: i32, status: i32, usage: &libc::rusage) {
        let stopping = self.stopping.is_some();
        let Some(index) = self
            .slots
            .iter()
            .position(|s| s.pid == Some(Pid::from_raw(pid)))
        else {
            return;
        };
        let slot = &mut self.slots[index];
        slot.pid = None;
        if let Some(o) = slot.output.take() {
            self.orphans.push(o);
        }
        let lived = slot.started.elapsed();
        let ending = if libc::WIFSIGNALED(status) {
            Ending::Signaled(libc::WTERMSIG(status))
        } else {
            Ending::Exited(libc::WEXITSTATUS(status))
        };
        let ooms = death::oom_kills();
        let evidence = Evidence {
            max_rss: usage.ru_maxrss.max(0) as u64 * 1024,
            cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
            oom_kill: ooms > self.oom_seen,
        };
        self.oom_seen = ooms;
        let cause = death::explain(ending, &self.limits, &evidence);
        self.deaths.publish(pid, cause);
        if let Some((b, g)) = &self.status {
            b.server.set_death(*g, index, cause);
        }
        if cause != Cause::Stopped {
            log(
                Level::Error,
                &format!(
                    "rwsgi: daemon process {pid} of group '{}' {cause} after {:.1}s{}.",
                    self.spec.name(),
                    lived.as_secs_f64(),
                    if stopping { "" } else { "; starting a new one" }
                ),
            );
        }
        if stopping {
            return;
        }
        // Crash-loop protection: a process that dies young is replaced after a growing delay.
        if cause != Cause::Stopped && lived < Duration::from_secs(2) {
            slot.not_before = Instant::now() + slot.backoff;
            slot.backoff = (slot.backoff * 2).min(Duration::from_secs(30));
        } else {
            slot.not_before = Instant::now();
            slot.backoff = Duration::from_millis(100);
        }
    }
}

/// One dead child of this process, if any: pid, wait status, resource usage.
fn wait_any() -> Option<(i32, i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes the status and usage of one child of this process.
    let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut usage) };
    (pid > 0).then_some((pid, status, usage))
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}
