//! Starting a daemon process: fork, the descriptors it gets (and only those), exec of the
//! daemon program as root (which then switches to the group's user).

use super::output::Output;
use crate::sys::{Forked, fork};
use crate::worker::{BOARD_FD, LISTENER_FD, SLOT_VAR, SPEC_FD, WorkerSpec};
use nix::unistd::Pid;
use rwsgi_core::spec::GroupSpec;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// Moves `listener` to LISTENER_FD and the group's status board (if any) to BOARD_FD, and
/// closes every other descriptor above stderr.
pub fn keep_only(listener: RawFd, board: Option<RawFd>) -> std::io::Result<()> {
    let fail = || Err(std::io::Error::last_os_error());
    // Out of the way first: the board may sit on LISTENER_FD.
    // SAFETY (this block and the ones below): descriptor calls in a freshly forked,
    // single-threaded child, on its own table.
    let board = match board {
        // Above every number placed below (a process may be limited to few descriptors).
        Some(fd) => match unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, BOARD_FD + 1) } {
            n if n < 0 => return fail(),
            n => Some(n),
        },
        None => None,
    };
    if listener != LISTENER_FD && unsafe { libc::dup2(listener, LISTENER_FD) } < 0 {
        return fail();
    }
    // SAFETY: as above.
    unsafe { libc::close(LISTENER_FD + 1) };
    if let Some(fd) = board {
        // SAFETY: as above.
        if unsafe { libc::dup2(fd, BOARD_FD) } < 0 {
            return fail();
        }
    }
    close_from(BOARD_FD + i32::from(board.is_some()))
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

/// The group's settings in a sealed memfd, read by every daemon process on SPEC_FD.
pub fn settings_memfd(spec: &GroupSpec, log_level: i32) -> std::io::Result<OwnedFd> {
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
pub fn process(
    spec: &GroupSpec,
    program: &CString,
    listener: BorrowedFd<'_>,
    settings: BorrowedFd<'_>,
    board_slot: Option<usize>,
) -> std::io::Result<(Pid, Output)> {
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    nix::fcntl::fcntl(
        out_r.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    let argv0 = CString::new(spec.title().replace('\0', " ")).unwrap_or_else(|_| c"rwsgi".into());
    let argv = [argv0.as_ptr(), std::ptr::null()];
    let env = Environment::with_slot(board_slot);
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
                    || (board_slot.is_some() && libc::fcntl(BOARD_FD, libc::F_SETFD, 0) < 0)
                {
                    libc::_exit(71);
                }
                let keep = if board_slot.is_some() {
                    BOARD_FD
                } else {
                    SPEC_FD
                };
                libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
                if board_slot.is_none() {
                    libc::close(BOARD_FD);
                }
                // The supervisor blocks these for its signalfd; a mask survives exec.
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut all);
                libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
                libc::execve(program.as_ptr(), argv.as_ptr(), env.pointers.as_ptr());
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

/// A daemon process's environment: Apache's (which daemon processes inherit, as in
/// mod_wsgi), plus the number of its status board slot, built before the fork.
struct Environment {
    _slot: Option<CString>,
    pointers: Vec<*const libc::c_char>,
}

impl Environment {
    fn with_slot(slot: Option<usize>) -> Environment {
        let slot = slot.and_then(|i| CString::new(format!("{SLOT_VAR}={i}")).ok());
        let mut pointers = Vec::new();
        // SAFETY: reads the C library's NULL-terminated environment array; nothing in the
        // supervisor changes the environment.
        unsafe {
            let mut p = environ;
            while !p.is_null() && !(*p).is_null() {
                // Ours alone says which slot: an inherited one must not shadow it.
                let inherited = std::ffi::CStr::from_ptr(*p).to_bytes();
                if !inherited.starts_with(format!("{SLOT_VAR}=").as_bytes()) {
                    pointers.push(*p);
                }
                p = p.add(1);
            }
        }
        pointers.extend(slot.as_ref().map(|s| s.as_ptr()));
        pointers.push(std::ptr::null());
        Environment {
            _slot: slot,
            pointers,
        }
    }
}
