//! One supervisor per WSGIDaemonProcess group, forked by the Apache parent (which watches it
//! and starts a new one if it dies). It is Python-free and keeps only the group's listening
//! socket: it starts each daemon process by fork + exec of the daemon program
//! (`rwsgi-daemon`, see `worker`), so no daemon process holds anything of Apache's or of
//! another group's; it relays their output to Apache's error log, explains every death
//! (`death`) and replaces the dead with a growing delay when they die young (a crash loop
//! must not become a fork storm); when Apache stops or restarts, it tells its processes to
//! finish.

use super::sys::{Forked, exit_now, fork, reset_signal_handlers};
use super::worker::{LISTENER_FD, SPEC_FD, WorkerSpec};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use rwsgi_core::Level;
use rwsgi_core::death::{self, Cause, DeathTable, Ending, Evidence, LimitsInForce};
use rwsgi_core::errlog::log;
use rwsgi_core::spec::GroupSpec;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
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
}

/// Forks the supervisor; returns its pid in the caller (the Apache parent).
pub fn spawn(launch: &Launch) -> std::io::Result<Pid> {
    match fork()? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            reset_signal_handlers();
            // Nothing of the Apache parent but the error log (stderr) and this group's socket:
            // not Apache's listeners, not the other groups' sockets, not its log files.
            if keep_only(launch.listener.as_raw_fd()).is_err() {
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

/// Moves `listener` to LISTENER_FD and closes every descriptor above stderr but that one.
fn keep_only(listener: RawFd) -> std::io::Result<()> {
    if listener != LISTENER_FD {
        // SAFETY: dup2 onto a fixed number in a freshly forked, single-threaded child.
        if unsafe { libc::dup2(listener, LISTENER_FD) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    close_from(LISTENER_FD + 1)
}

/// Closes every descriptor from `first` up (close_range(2)).
fn close_from(first: RawFd) -> std::io::Result<()> {
    // SAFETY: closes descriptors of this (single-threaded, just forked) process only; nothing
    // in it refers to them afterwards.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0u32) };
    if rc == 0 {
        return Ok(());
    }
    // Kernels before 5.9: close what /proc lists.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: as above.
        unsafe { libc::close(fd) };
    }
    Ok(())
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

/// What a daemon process writes to stderr, line by line on its way to the error log.
struct Output {
    pid: i32,
    fd: OwnedFd,
    partial: Vec<u8>,
}

/// The longest line relayed as is (Apache's own error-log line limit is 8 KiB).
const MAX_LINE: usize = 8000;

impl Output {
    /// Reads what is there; false at EOF (every writer has closed it).
    fn pump(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(0) => {
                    self.flush_partial();
                    return false;
                }
                Ok(n) => {
                    self.partial.extend_from_slice(&buf[..n]);
                    while let Some(nl) = self.partial.iter().position(|&c| c == b'\n') {
                        let line: Vec<u8> = self.partial.drain(..=nl).collect();
                        relay(self.pid, &line[..line.len() - 1]);
                    }
                    if self.partial.len() > MAX_LINE {
                        self.flush_partial();
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return true,
            }
        }
    }

    fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            relay(self.pid, &line);
        }
    }
}

/// Writes one line a daemon process produced to the error log. A line in rwsgi's own format
/// with this process's pid goes as it is; anything else (a C library, Python's faulthandler,
/// a line claiming another pid) is wrapped in that format with the true pid. Control bytes
/// are escaped, as Apache escapes its own log items.
fn relay(pid: i32, line: &[u8]) {
    use std::io::Write;
    let mut bytes = Vec::with_capacity(line.len().min(MAX_LINE) + 16);
    for &c in line.iter().take(MAX_LINE) {
        if c == b'\t' || (c >= 0x20 && c != 0x7f) {
            bytes.push(c);
        } else {
            bytes.extend_from_slice(format!("\\x{c:02x}").as_bytes());
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let out = if rwsgi_core::errlog::is_own_line(&text, pid) {
        format!("{text}\n")
    } else {
        rwsgi_core::errlog::format_line(Level::Error, pid, &text)
    };
    let _ = std::io::stderr().write_all(out.as_bytes());
}

fn run(launch: &Launch, listener: OwnedFd) -> i32 {
    let spec = &launch.spec;
    super::sys::set_process_name(&format!("rwsgi-sup:{}", spec.name()));
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
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
    let sfd = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(s) => s,
        Err(e) => {
            log(
                Level::Crit,
                &format!("rwsgi: supervisor of '{}': signalfd: {e}", spec.name()),
            );
            return 1;
        }
    };
    let settings = match settings_memfd(spec, launch.log_level) {
        Ok(fd) => fd,
        Err(e) => {
            log(
                Level::Crit,
                &format!(
                    "rwsgi: supervisor of '{}': cannot pass the group's settings: {e}",
                    spec.name()
                ),
            );
            return 1;
        }
    };
    let program = match CString::new(launch.program.as_os_str().as_encoded_bytes()) {
        Ok(p) => p,
        Err(_) => return 1,
    };
    let limits = LimitsInForce {
        memory_limit: spec.options.memory_limit,
        cpu_time_limit: spec.options.cpu_time_limit,
        request_timeout: spec.options.request_timeout,
        deadlock_timeout: spec.options.deadlock_timeout,
        shutdown_timeout: spec.options.shutdown_timeout.unwrap_or_default(),
        graceful_timeout: spec.graceful_timeout(),
    };
    let mut oom_seen = death::oom_kills();
    let start = Instant::now() + launch.delay;
    let mut slots: Vec<Slot> = (0..spec.processes().max(1))
        .map(|_| Slot {
            pid: None,
            started: start,
            not_before: start,
            backoff: Duration::from_millis(100),
            output: None,
        })
        .collect();
    // Output of processes that have died, still being read to its end.
    let mut orphans: Vec<Output> = Vec::new();
    let mut stopping: Option<Instant> = None;
    loop {
        if stopping.is_none() {
            for (i, slot) in slots.iter_mut().enumerate() {
                if slot.pid.is_none() && Instant::now() >= slot.not_before {
                    match start_process(spec, &program, listener.as_fd(), settings.as_fd()) {
                        Ok((pid, output)) => {
                            slot.pid = Some(pid);
                            slot.started = Instant::now();
                            slot.output = Some(output);
                        }
                        Err(e) => {
                            log(
                                Level::Error,
                                &format!(
                                    "rwsgi: cannot start daemon process {i} of '{}': {e}",
                                    spec.name()
                                ),
                            );
                            slot.not_before = Instant::now() + slot.backoff;
                            slot.backoff = (slot.backoff * 2).min(Duration::from_secs(30));
                        }
                    }
                }
            }
        }
        wait(&sfd, &mut slots, &mut orphans);
        while let Ok(Some(info)) = sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {}
                Ok(s) if stopping.is_none() => {
                    log(
                        Level::Info,
                        &format!(
                            "rwsgi: stopping daemon process group '{}' ({s:?}).",
                            spec.name()
                        ),
                    );
                    stopping = Some(Instant::now());
                    for pid in slots.iter().filter_map(|s| s.pid) {
                        let _ = kill(pid, Signal::SIGTERM);
                    }
                }
                _ => {}
            }
        }
        reap(
            spec,
            &limits,
            launch.deaths,
            &mut oom_seen,
            &mut slots,
            &mut orphans,
            stopping.is_some(),
        );
        if let Some(since) = stopping {
            let live: Vec<Pid> = slots.iter().filter_map(|s| s.pid).collect();
            if live.is_empty() {
                break;
            }
            // shutdown-timeout=0: a stopping process is never forced.
            let limit = spec
                .options
                .shutdown_timeout
                .map(|t| spec.graceful_timeout() + t);
            if limit.is_some_and(|l| since.elapsed() > l) {
                for pid in live {
                    log(
                        Level::Warn,
                        &format!(
                            "rwsgi: daemon process {pid} of '{}' did not stop in time; killing it.",
                            spec.name()
                        ),
                    );
                    let _ = kill(pid, Signal::SIGKILL);
                }
            }
        }
    }
    for mut o in orphans {
        o.pump();
    }
    0
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

/// The group's settings in a sealed memfd, read by every daemon process on SPEC_FD.
fn settings_memfd(spec: &GroupSpec, log_level: i32) -> std::io::Result<OwnedFd> {
    let w = WorkerSpec {
        group: spec.clone(),
        supervisor_pid: std::process::id() as i32,
        log_level,
    };
    let json = serde_json::to_vec(&w).map_err(std::io::Error::other)?;
    let fd = nix::sys::memfd::memfd_create(
        c"rwsgi-settings",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )?;
    let mut off = 0;
    while off < json.len() {
        off += nix::sys::uio::pwrite(&fd, &json[off..], off as i64)?;
    }
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a descriptor we own; no memory is passed.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Starts one daemon process: fork, put the descriptors in place, execute the program.
fn start_process(
    spec: &GroupSpec,
    program: &CString,
    listener: BorrowedFd<'_>,
    settings: BorrowedFd<'_>,
) -> std::io::Result<(Pid, Output)> {
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    nix::fcntl::fcntl(
        out_r.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    let argv0 = CString::new(spec.title().replace('\0', " ")).unwrap_or_else(|_| c"rwsgi".into());
    let argv = [argv0.as_ptr(), std::ptr::null()];
    match fork()? {
        Forked::Parent(pid) => Ok((
            pid,
            Output {
                pid: pid.as_raw(),
                fd: out_r,
                partial: Vec::new(),
            },
        )),
        Forked::Child => {
            // Only async-signal-safe calls from here to exec (the supervisor is
            // single-threaded, but this is the rule that keeps it true).
            let null = c"/dev/null";
            // SAFETY: plain descriptor system calls on this new process's own table, then
            // execve with NUL-terminated argv built before the fork and the inherited
            // environment; on failure the child ends with _exit.
            unsafe {
                let devnull = libc::open(null.as_ptr(), libc::O_RDONLY);
                if devnull < 0
                    || libc::dup2(devnull, 0) < 0
                    || libc::dup2(out_w.as_raw_fd(), 1) < 0
                    || libc::dup2(out_w.as_raw_fd(), 2) < 0
                    || libc::dup2(listener.as_raw_fd(), LISTENER_FD) < 0
                    || libc::dup2(settings.as_raw_fd(), SPEC_FD) < 0
                {
                    libc::_exit(71);
                }
                libc::syscall(libc::SYS_close_range, (SPEC_FD + 1) as u32, u32::MAX, 0u32);
                // The supervisor blocks these for its signalfd; a mask survives exec.
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut all);
                libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
                libc::execve(program.as_ptr(), argv.as_ptr(), inherited_environment());
                let msg = b"rwsgi: cannot execute the daemon program\n";
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(71);
            }
        }
    }
}

unsafe extern "C" {
    static environ: *const *const libc::c_char;
}

/// This process's environment (Apache's, which daemon processes inherit as in mod_wsgi).
fn inherited_environment() -> *const *const libc::c_char {
    // SAFETY: reads the C library's environment pointer; nothing in the supervisor changes
    // the environment.
    unsafe { environ }
}

/// Collects dead daemon processes: explains and publishes each death, schedules the
/// replacement.
fn reap(
    spec: &GroupSpec,
    limits: &LimitsInForce,
    deaths: DeathTable,
    oom_seen: &mut u64,
    slots: &mut [Slot],
    orphans: &mut Vec<Output>,
    stopping: bool,
) {
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 writes the status and usage of one child of this process.
        let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut usage) };
        if pid <= 0 {
            return;
        }
        let Some(slot) = slots.iter_mut().find(|s| s.pid == Some(Pid::from_raw(pid))) else {
            continue;
        };
        slot.pid = None;
        if let Some(o) = slot.output.take() {
            orphans.push(o);
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
            oom_kill: ooms > *oom_seen,
        };
        *oom_seen = ooms;
        let cause = death::explain(ending, limits, &evidence);
        deaths.publish(pid, cause);
        if cause != Cause::Stopped {
            log(
                Level::Error,
                &format!(
                    "rwsgi: daemon process {pid} of group '{}' {cause} after {:.1}s{}.",
                    spec.name(),
                    lived.as_secs_f64(),
                    if stopping { "" } else { "; starting a new one" }
                ),
            );
        }
        if !stopping {
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
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}
