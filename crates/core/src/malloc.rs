//! glibc's malloc, tuned for the processes rwsgi runs Python in: fewer arenas, and request
//! bodies' blocks kept in them.
//!
//! glibc gives each thread that meets a busy arena a new one, up to 8 per core, and each keeps
//! up to its trim threshold of freed memory. With 64-128 Apache threads (or a daemon's request
//! threads) taking turns at one GIL that is many arenas, each holding what its last large
//! request left: measured in the Apache children (embedded mode, hello at full load for 10
//! minutes after a 5-minute warm-up) RSS grew 61.4 -> 62.7 MiB in steps with glibc's default
//! and stayed at 48.2 MiB with two arenas, at the same requests per second.

/// Caps the arenas at two per core (2 to 8) unless the admin set `MALLOC_ARENA_MAX`.
///
/// Call it before the process starts its threads: arenas already made stay.
pub fn cap_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let arenas = (2 * cores).clamp(2, 8) as i32;
    // SAFETY: mallopt only changes the allocator's parameters (glibc takes its own lock).
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
}

/// The tuning of a process that runs WSGI requests, unless the admin set glibc's own
/// MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_: blocks up to 2 MiB come from the arenas and
/// up to 4 MiB of free space stays in each, and the arenas are capped ([`cap_arenas`]).
///
/// With glibc's defaults each arena grew and was trimmed back around every request with a
/// 1 MiB body, and fresh pages were faulted in each time. Daemon processes: ~400 page faults
/// and ~30 % of the CPU of a request reading its body in 8 KiB pieces. Apache children
/// running Python (embedded, 1 MiB echoes read in 256 KiB pieces, with capped arenas): 135-167
/// page faults and 810-900 µs of CPU per request, 6 and 614 µs tuned.
pub fn tune() {
    let set_by_admin = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if !set_by_admin {
        // SAFETY: mallopt only changes the allocator's parameters (glibc takes its own lock).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 2 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 4 << 20);
        }
    }
    cap_arenas();
}
