//! One supervisor per WSGIDaemonProcess group, forked by the Apache parent (which watches it
//! and starts a new one if it dies). It is Python-free and keeps only the group's listening
//! socket: it starts each daemon process by fork + exec of the daemon program
//! (`rwsgi-daemon`, see `worker`), so no daemon process holds anything of Apache's or of
//! another group's; it relays their output to Apache's error log, explains every death
//! (`death`) and replaces the dead with a growing delay when they die young (a crash loop
//! must not become a fork storm); when Apache stops or restarts, it tells its processes to
//! finish.

mod output;
mod reap;
mod start;

use super::sys::{Forked, exit_now, fork, reset_signal_handlers};
use super::worker::LISTENER_FD;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use output::Output;
use rwsgi_core::Level;
use rwsgi_core::death::{self, DeathTable, LimitsInForce};
use rwsgi_core::errlog::log;
use rwsgi_core::spec::GroupSpec;
use rwsgi_core::status::Boards;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a supervisor is started with.
pub struct Launch<'a> {
    pub spec: Arc<GroupSpec>,
    /// The group's listening socket (the Apache parent keeps it across supervisors).
    pub listener: BorrowedFd<'a>,
    /// The daemon program to execute for each process.
    pub program: &'a Path,
    pub deaths: DeathTable,
    /// Wait this long before starting processes (the previous supervisor died young).
    pub delay: Duration,
    /// Apache's Level for the wsgi module.
    pub log_level: i32,
    /// The status boards and this group's number in them.
    pub status: Option<(Arc<Boards>, usize)>,
}

/// Forks the supervisor; returns its pid in the caller (the Apache parent).
pub fn spawn(launch: &Launch) -> std::io::Result<Pid> {
    match fork()? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            reset_signal_handlers();
            // Nothing of the Apache parent but the error log (stderr) and this group's socket:
            // not Apache's listeners, not the other groups' sockets, not its log files.
            // The Boards this process inherited name descriptors keep_only closes: they are
            // never dropped here (the supervisor ends with exit_now), so nothing closes a
            // number twice.
            let board = launch
                .status
                .as_ref()
                .and_then(|(b, g)| b.groups.get(*g)?.fd())
                .map(|fd| fd.as_raw_fd());
            if start::keep_only(launch.listener.as_raw_fd(), board).is_err() {
                exit_now(1);
            }
            // SAFETY: keep_only moved the listener to LISTENER_FD and closed everything else;
            // from here this process owns that descriptor.
            let listener = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(LISTENER_FD) };
            let code = rwsgi_core::guard::catch(|| run(launch, listener)).unwrap_or(70);
            exit_now(code)
        }
    }
}

/// One daemon process slot of the group.
struct Slot {
    pid: Option<Pid>,
    started: Instant,
    not_before: Instant,
    backoff: Duration,
    /// The read end of the process's stderr/stdout.
    output: Option<Output>,
}

/// A supervisor at work: its processes, their output, whether it is stopping.
struct Supervisor<'a> {
    spec: &'a GroupSpec,
    program: CString,
    listener: OwnedFd,
    /// The group's settings, read by every process on SPEC_FD.
    settings: OwnedFd,
    limits: LimitsInForce,
    deaths: DeathTable,
    /// The kernel's OOM kill count when the last death was explained.
    oom_seen: u64,
    slots: Vec<Slot>,
    /// The status boards and this group's number in them (what each slot runs, restarts,
    /// deaths; requests to log stacks).
    status: Option<(Arc<Boards>, usize)>,
    stacks_seen: u64,
    /// Output of processes that have died, still being read to its end.
    orphans: Vec<Output>,
    stopping: Option<Instant>,
}

fn run(launch: &Launch, listener: OwnedFd) -> i32 {
    let spec = &launch.spec;
    super::sys::set_process_name(&format!("rwsgi-sup:{}", spec.name()));
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        log(
            Level::Crit,
            &format!("rwsgi: supervisor of '{}': {what}: {e}", spec.name()),
        );
        1
    };
    let sfd = match signals() {
        Ok(s) => s,
        Err(e) => return fail("signalfd", &e),
    };
    let settings = match start::settings_memfd(spec, launch.log_level) {
        Ok(fd) => fd,
        Err(e) => return fail("cannot pass the group's settings", &e),
    };
    let program = match CString::new(launch.program.as_os_str().as_encoded_bytes()) {
        Ok(p) => p,
        Err(e) => return fail("the daemon program's path", &e),
    };
    let first = Instant::now() + launch.delay;
    let mut sup = Supervisor {
        spec,
        program,
        listener,
        settings,
        limits: LimitsInForce {
            memory_limit: spec.options.memory_limit,
            cpu_time_limit: spec.options.cpu_time_limit,
            request_timeout: spec.options.request_timeout,
            deadlock_timeout: spec.options.deadlock_timeout,
            shutdown_timeout: spec.options.shutdown_timeout.unwrap_or_default(),
            graceful_timeout: spec.graceful_timeout(),
        },
        deaths: launch.deaths,
        oom_seen: death::oom_kills(),
        slots: (0..spec.processes())
            .map(|_| Slot {
                pid: None,
                started: first,
                not_before: first,
                backoff: Duration::from_millis(100),
                output: None,
            })
            .collect(),
        orphans: Vec::new(),
        stopping: None,
        status: launch.status.clone(),
        stacks_seen: 0,
    };
    sup.stacks_seen = sup.stack_requests();
    loop {
        if sup.stopping.is_none() {
            sup.start_missing();
        }
        wait(&sfd, &mut sup.slots, &mut sup.orphans);
        sup.on_signals(&sfd);
        sup.reap();
        sup.relay_stack_requests();
        if sup.stopping.is_some() && sup.all_stopped() {
            break;
        }
    }
    for mut o in sup.orphans {
        o.pump();
    }
    0
}

/// The supervisor's signals arrive on a descriptor (its loop polls it with the processes'
/// output).
fn signals() -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGCHLD,
        Signal::SIGUSR1,
    ] {
        mask.add(s);
    }
    let _ = mask.thread_block();
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

impl Supervisor<'_> {
    /// Starts a process in every empty slot whose delay has passed.
    fn start_missing(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            if self.slots[i].pid.is_some() || now < self.slots[i].not_before {
                continue;
            }
            let board = self
                .status
                .as_ref()
                .and_then(|(b, g)| b.groups.get(*g).is_some().then_some(i));
            let started = start::process(
                self.spec,
                &self.program,
                self.listener.as_fd(),
                self.settings.as_fd(),
                board,
            );
            let slot = &mut self.slots[i];
            match started {
                Ok((pid, output)) => {
                    if let Some((b, g)) = &self.status {
                        b.server.set_process(*g, i, pid.as_raw());
                    }
                    slot.pid = Some(pid);
                    slot.started = Instant::now();
                    slot.output = Some(output);
                }
                Err(e) => {
                    log(
                        Level::Error,
                        &format!(
                            "rwsgi: cannot start daemon process {i} of '{}': {e}",
                            self.spec.name()
                        ),
                    );
                    slot.not_before = Instant::now() + slot.backoff;
                    slot.backoff = (slot.backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Apache stops or restarts: every process is told to finish (SIGCHLD only wakes the loop).
    fn on_signals(&mut self, sfd: &SignalFd) {
        while let Ok(Some(info)) = sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {}
                Ok(s) if self.stopping.is_none() => {
                    log(
                        Level::Info,
                        &format!(
                            "rwsgi: stopping daemon process group '{}' ({s:?}).",
                            self.spec.name()
                        ),
                    );
                    self.stopping = Some(Instant::now());
                    for pid in self.slots.iter().filter_map(|s| s.pid) {
                        let _ = kill(pid, Signal::SIGTERM);
                    }
                }
                _ => {}
            }
        }
    }

    /// While stopping: true once every process is gone; the ones still there after
    /// graceful-timeout + shutdown-timeout are killed (shutdown-timeout=0: never forced).
    fn all_stopped(&self) -> bool {
        let live: Vec<Pid> = self.slots.iter().filter_map(|s| s.pid).collect();
        if live.is_empty() {
            return true;
        }
        let since = self.stopping.map_or(Duration::ZERO, |t| t.elapsed());
        let limit = self
            .spec
            .options
            .shutdown_timeout
            .map(|t| self.spec.graceful_timeout() + t);
        if limit.is_some_and(|l| since > l) {
            for pid in live {
                log(
                    Level::Warn,
                    &format!(
                        "rwsgi: daemon process {pid} of '{}' did not stop in time; killing it.",
                        self.spec.name()
                    ),
                );
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
        false
    }
}

impl Supervisor<'_> {
    fn stack_requests(&self) -> u64 {
        self.status
            .as_ref()
            .and_then(|(b, g)| b.server.stack_requests(*g))
            .map_or(0, |w| w.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The status page asked for the Python stacks of the group's running requests: each
    /// process is told (SIGURG, which nothing else uses) and logs them itself.
    fn relay_stack_requests(&mut self) {
        let now = self.stack_requests();
        if now == self.stacks_seen {
            return;
        }
        self.stacks_seen = now;
        for pid in self.slots.iter().filter_map(|s| s.pid) {
            let _ = kill(pid, Signal::SIGURG);
        }
    }
}

/// Waits (at most 250 ms) for a signal or output from a daemon process, and relays output.
fn wait(sfd: &SignalFd, slots: &mut [Slot], orphans: &mut Vec<Output>) {
    let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
    for o in slots
        .iter()
        .filter_map(|s| s.output.as_ref())
        .chain(orphans.iter())
    {
        fds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
    }
    let _ = poll(&mut fds, PollTimeout::from(250u16));
    let ready: Vec<bool> = fds
        .iter()
        .skip(1)
        .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
        .collect();
    drop(fds);
    let mut i = 0;
    for s in slots.iter_mut() {
        if let Some(o) = s.output.as_mut() {
            if ready[i] {
                o.pump();
            }
            i += 1;
        }
    }
    let mut open = Vec::new();
    for mut o in orphans.drain(..) {
        let alive = !ready[i] || o.pump();
        i += 1;
        if alive {
            open.push(o);
        }
    }
    *orphans = open;
}
