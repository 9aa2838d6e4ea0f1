//! One supervisor per WSGIDaemonProcess group, forked by the Apache parent. It is Python-free:
//! it owns the group's listening socket, forks the worker processes, replaces any that exit
//! (with a growing delay when they die young: a crash loop must not become a fork storm) and,
//! when Apache stops or restarts, tells its workers to finish and removes its socket.

use super::sys::{Forked, exit_now, fork, reset_signal_handlers};
use super::{GroupSpec, log, worker};
use crate::ipc::channel;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

/// Forks the supervisor of `spec`; returns its pid in the caller. `in_child` runs first in the
/// new process (the Apache layer closes what the supervisor must not keep, e.g. listeners).
pub fn spawn(spec: GroupSpec, in_child: &dyn Fn()) -> std::io::Result<Pid> {
    match fork()? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            reset_signal_handlers();
            in_child();
            let code = std::panic::catch_unwind(|| run(&spec)).unwrap_or(70);
            exit_now(code)
        }
    }
}

struct Slot {
    pid: Option<Pid>,
    started: Instant,
    not_before: Instant,
    backoff: Duration,
}

fn run(spec: &GroupSpec) -> i32 {
    super::sys::set_process_name(&format!("rwsgi-sup:{}", spec.name));
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
                "crit",
                &format!("rwsgi: supervisor of '{}': signalfd: {e}", spec.name),
            );
            return 1;
        }
    };
    let listener = match open_listener(spec) {
        Ok(l) => l,
        Err(e) => {
            log(
                "crit",
                &format!(
                    "rwsgi: cannot listen on '{}' for daemon process group '{}': {e}",
                    spec.socket_path.display(),
                    spec.name
                ),
            );
            return 1;
        }
    };
    let inode = std::fs::metadata(&spec.socket_path).map(|m| m.ino()).ok();
    let now = Instant::now();
    let mut slots: Vec<Slot> = (0..spec.processes.max(1))
        .map(|_| Slot {
            pid: None,
            started: now,
            not_before: now,
            backoff: Duration::from_millis(100),
        })
        .collect();
    let mut stopping: Option<Instant> = None;
    loop {
        if stopping.is_none() {
            for (i, slot) in slots.iter_mut().enumerate() {
                if slot.pid.is_none() && Instant::now() >= slot.not_before {
                    match fork() {
                        Ok(Forked::Child) => {
                            drop(sfd);
                            let _ = SigSet::all().thread_unblock();
                            worker::main(spec, listener)
                        }
                        Ok(Forked::Parent(pid)) => {
                            slot.pid = Some(pid);
                            slot.started = Instant::now();
                        }
                        Err(e) => log(
                            "error",
                            &format!(
                                "rwsgi: cannot fork daemon process {i} of '{}': {e}",
                                spec.name
                            ),
                        ),
                    }
                }
            }
        }
        let _ = channel::wait_readable(sfd.as_fd(), Some(Duration::from_millis(250)));
        while let Ok(Some(info)) = sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {}
                Ok(s) if stopping.is_none() => {
                    log(
                        "info",
                        &format!(
                            "rwsgi: stopping daemon process group '{}' ({s:?}).",
                            spec.name
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
        reap(spec, &mut slots, stopping.is_some());
        if let Some(since) = stopping {
            let live: Vec<Pid> = slots.iter().filter_map(|s| s.pid).collect();
            if live.is_empty() {
                break;
            }
            if since.elapsed() > spec.graceful_timeout + spec.shutdown_timeout {
                for pid in live {
                    log(
                        "warn",
                        &format!(
                            "rwsgi: daemon process {pid} of '{}' did not stop in time; killing it.",
                            spec.name
                        ),
                    );
                    let _ = kill(pid, Signal::SIGKILL);
                }
            }
        }
    }
    // Remove the socket only if it is still ours (a new generation may have replaced it).
    if let (Some(ino), Ok(m)) = (inode, std::fs::metadata(&spec.socket_path)) {
        if m.ino() == ino {
            let _ = std::fs::remove_file(&spec.socket_path);
        }
    }
    drop(listener);
    0
}

fn open_listener(spec: &GroupSpec) -> std::io::Result<OwnedFd> {
    if let Some(dir) = spec.socket_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let fd = channel::listen(&spec.socket_path, spec.listen_backlog)?;
    // Only Apache's children may connect: the socket belongs to Apache's user, mode 0600.
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(
            &spec.socket_path,
            Some(nix::unistd::Uid::from_raw(spec.apache_uid)),
            None,
        )?;
    }
    std::fs::set_permissions(&spec.socket_path, std::fs::Permissions::from_mode(0o600))?;
    // Every worker polls and accepts on this one socket.
    let flags = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
    let mut oflags = nix::fcntl::OFlag::from_bits_truncate(flags);
    oflags.insert(nix::fcntl::OFlag::O_NONBLOCK);
    nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETFL(oflags))?;
    let _ = fd.as_raw_fd();
    Ok(fd)
}

fn reap(spec: &GroupSpec, slots: &mut [Slot], stopping: bool) {
    loop {
        let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(s) => s,
        };
        let Some(pid) = status.pid() else { return };
        let Some(slot) = slots.iter_mut().find(|s| s.pid == Some(pid)) else {
            continue;
        };
        slot.pid = None;
        let lived = slot.started.elapsed();
        let how = match status {
            WaitStatus::Exited(_, 0) => None,
            WaitStatus::Exited(_, c) => Some(format!("exited with status {c}")),
            WaitStatus::Signaled(_, s, _) => Some(format!("was killed by signal {s:?}")),
            _ => Some("ended".into()),
        };
        if stopping {
            // A process that dies badly while the group stops is still worth knowing about.
            if let Some(how) = &how {
                log(
                    "error",
                    &format!(
                        "rwsgi: daemon process {pid} of group '{}' {how} while stopping.",
                        spec.name
                    ),
                );
            }
        } else {
            if let Some(how) = &how {
                log(
                    "error",
                    &format!(
                        "rwsgi: daemon process {pid} of group '{}' {how} after {:.1}s; starting a new one.",
                        spec.name,
                        lived.as_secs_f64()
                    ),
                );
            }
            // Crash-loop protection: a process that dies young is replaced after a growing delay.
            if how.is_some() && lived < Duration::from_secs(2) {
                slot.not_before = Instant::now() + slot.backoff;
                slot.backoff = (slot.backoff * 2).min(Duration::from_secs(30));
            } else {
                slot.not_before = Instant::now();
                slot.backoff = Duration::from_millis(100);
            }
        }
    }
}
