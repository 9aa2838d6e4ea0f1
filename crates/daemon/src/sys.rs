//! The few process-level system calls daemon mode needs that cannot be safe functions: fork
//! and _exit. Everything else (sockets, signals, credentials) goes through nix's safe API.

use nix::unistd::{ForkResult, Pid};

pub enum Forked {
    Child,
    Parent(Pid),
}

/// Forks the calling process.
///
/// Callers: the Apache parent (single-threaded when it runs post_config, with Python never
/// initialised) forks group supervisors; a supervisor (single-threaded, Python-free) forks
/// workers. The child only calls async-signal-safe code until it has set itself up, and never
/// returns into Apache: it ends with [`exit_now`].
pub fn fork() -> std::io::Result<Forked> {
    // SAFETY: see above: no other thread exists in the processes that call this, so the
    // child cannot inherit a lock held by a thread that does not exist in it.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => Ok(Forked::Child),
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
    }
}

/// Ends the process at once, without running atexit handlers or unwinding into the caller
/// (a forked child must never return into Apache's code).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Puts back default signal dispositions in a process forked from Apache's parent (which has
/// its own handlers installed) and ignores SIGPIPE (write errors are handled where they occur).
pub fn reset_signal_handlers() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
        Signal::SIGALRM,
    ] {
        // SAFETY: installing SIG_DFL runs no Rust code in signal context.
        let _ = unsafe { signal(s, SigHandler::SigDfl) };
    }
    // SAFETY: as above, SIG_IGN.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// Names the calling process (what `ps -o comm` and `top` show; the kernel keeps 15 bytes).
pub fn set_process_name(name: &str) {
    let short: String = name.chars().filter(|&c| c != '\0').take(15).collect();
    if let Ok(c) = std::ffi::CString::new(short) {
        let _ = nix::sys::prctl::set_name(&c);
    }
}

/// Rewrites the process's command line (what `ps -f`, `ps aux` and `/proc/PID/cmdline` show),
/// as mod_wsgi does for display-name: the text replaces the original arguments and is cut to
/// their length (the kernel gives a process no more room without privileges).
pub fn set_command_line(title: &str) {
    let Some((start, end)) = argument_area() else {
        return;
    };
    let room = end - start;
    if room < 2 {
        return;
    }
    let text = title.as_bytes();
    let n = text.len().min(room - 1);
    // SAFETY: [start, end) is this process's argument area (from /proc/self/stat): writable
    // memory at the top of the initial stack that only the kernel reads (for ps). We stay
    // inside it and leave it NUL-terminated. Called before any other thread exists, and no
    // Rust value points into it (Apache's argv pointers are never used again in a daemon).
    unsafe {
        std::ptr::write_bytes(start as *mut u8, 0, room);
        std::ptr::copy_nonoverlapping(text.as_ptr(), start as *mut u8, n);
    }
}

/// `arg_start` and `arg_end` (fields 48 and 49 of /proc/self/stat).
fn argument_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // the command name (field 2) may contain spaces; fields after it start at 3
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let start: usize = fields.get(48 - 3)?.parse().ok()?;
    let end: usize = fields.get(49 - 3)?.parse().ok()?;
    (start != 0 && end > start).then_some((start, end))
}

/// `setpriority(PRIO_PROCESS, 0, n)` for cpu-priority.
pub fn set_cpu_priority(n: i32) -> std::io::Result<()> {
    // SAFETY: plain system call on the calling process; no memory is passed.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Gives the free pages inside malloc's arenas back to the system (`worker::heap` says when).
pub fn trim_heap() {
    // SAFETY: malloc_trim takes each arena's lock itself; any thread may call it at any time.
    unsafe { libc::malloc_trim(0) };
}

/// Bytes of malloc's arenas in use and free (blocks mapped on their own are not counted).
pub struct HeapUsage {
    pub in_use: usize,
    pub free: usize,
}

pub fn heap_usage() -> HeapUsage {
    // SAFETY: mallinfo2 only reads the allocator's statistics under its arena locks.
    let m = unsafe { libc::mallinfo2() };
    HeapUsage {
        in_use: m.uordblks,
        free: m.fordblks,
    }
}
