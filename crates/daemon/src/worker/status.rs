//! This process's part of its group's status board: what each request thread runs, with its
//! queue wait and application time (the status page's daemon figures).

use super::{BOARD_FD, SLOT_VAR};
use rwsgi_core::spec::GroupSpec;
use rwsgi_core::status::{Finished, GroupBoard, GroupBoardWriter, ThreadSlot};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::OnceLock;

static MINE: OnceLock<(GroupBoardWriter, usize)> = OnceLock::new();

/// The slot number the supervisor gave this process, taken out of the environment (the
/// application has no use for it). Called first thing, while the process has one thread.
pub fn take_slot() -> Option<usize> {
    let slot = std::env::var(SLOT_VAR).ok()?.parse().ok();
    // SAFETY: the daemon program is still single-threaded here (nothing has started a
    // thread or read the environment concurrently).
    unsafe { std::env::remove_var(SLOT_VAR) };
    slot
}

/// Maps the group's board from BOARD_FD (present when the process has a slot).
pub fn open(spec: &GroupSpec, slot: Option<usize>) {
    let Some(slot) = slot else { return };
    // SAFETY: the supervisor put the board on BOARD_FD before exec whenever it set the slot
    // variable; nothing else in this process owns that descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(BOARD_FD) };
    let threads = spec.threads().max(1) as usize;
    match GroupBoard::open(fd, spec.processes() as usize, threads) {
        Ok(board) => {
            board.start_process(slot, std::process::id() as i32);
            let _ = MINE.set((board, slot));
        }
        Err(e) => rwsgi_core::errlog::log(
            rwsgi_core::Level::Warn,
            &format!("rwsgi: daemon process has no status board: {e}"),
        ),
    }
}

fn slot(thread: usize) -> Option<ThreadSlot<'static>> {
    let (board, p) = MINE.get()?;
    board.slot(*p, thread)
}

/// Request thread `thread` starts a request.
pub fn begin(thread: usize, started_us: u64, line: &str, client: &[u8]) {
    if let Some(s) = slot(thread) {
        s.begin(0, started_us, line.as_bytes(), client, 0);
    }
}

/// Request thread `thread`'s request ended after `time_us` in the application, having
/// waited `queue_us` for the thread.
pub fn end(thread: usize, time_us: u64, queue_us: Option<u64>) {
    if let Some(s) = slot(thread) {
        s.end(
            0,
            &Finished {
                time_us,
                queue_us,
                ..Default::default()
            },
        );
    }
}

/// Request thread `thread` handed its request back unstarted: the slot shows idle, nothing
/// is counted (the process that serves it counts it).
pub fn abandon(thread: usize) {
    if let Some(s) = slot(thread) {
        s.clear();
    }
}
