//! A daemon group's board, and a generation's boards together.

use super::board::{Board, Shape};
use super::region::Region;
use super::slot::{self, SlotReader, ThreadSlot};
use std::sync::atomic::{AtomicU64, Ordering};

/// A daemon group's board: one process header and `threads` slots per process. This is the
/// Apache side's handle, over a read-only mapping: it can only read ([`SlotReader`]). The
/// group's processes write through a [`GroupBoardWriter`].
pub struct GroupBoard {
    region: Region,
    processes: usize,
    threads: usize,
}

/// A daemon process's handle on its group's board (a writable mapping).
pub struct GroupBoardWriter(GroupBoard);

/// Per daemon process in its group board: pid, start, requests before it took the slot.
const DAEMON_WORDS: usize = 8;

impl GroupBoard {
    fn words_for(processes: usize, threads: usize) -> usize {
        processes * (DAEMON_WORDS + threads * slot::words(1))
    }

    /// Made by the Apache parent (mapped read-only there and in its children).
    pub fn create(name: &str, processes: usize, threads: usize) -> std::io::Result<GroupBoard> {
        let n = Self::words_for(processes, threads).max(1);
        Ok(GroupBoard {
            region: Region::memfd(name, n)?,
            processes,
            threads,
        })
    }

    /// Opened by a daemon process on the descriptor its supervisor handed it.
    pub fn open(
        fd: std::os::fd::OwnedFd,
        processes: usize,
        threads: usize,
    ) -> std::io::Result<GroupBoardWriter> {
        let n = Self::words_for(processes, threads).max(1);
        Ok(GroupBoardWriter(GroupBoard {
            region: Region::open_memfd(fd, n)?,
            processes,
            threads,
        }))
    }

    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.region.fd()
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    fn process_words(&self, p: usize) -> Option<&[AtomicU64]> {
        let at = p * (DAEMON_WORDS + self.threads * slot::words(1));
        (p < self.processes).then(|| &self.region.words()[at..at + DAEMON_WORDS])
    }

    fn thread_slot(&self, p: usize, t: usize) -> Option<ThreadSlot<'_>> {
        if p >= self.processes || t >= self.threads {
            return None;
        }
        let n = slot::words(1);
        let at = p * (DAEMON_WORDS + self.threads * n) + DAEMON_WORDS + t * n;
        ThreadSlot::new(&self.region.words()[at..at + n], 1)
    }

    pub fn slot(&self, p: usize, t: usize) -> Option<SlotReader<'_>> {
        self.thread_slot(p, t).map(SlotReader::new)
    }

    /// What daemon process slot `p` says of itself: pid, requests before it.
    pub fn process(&self, p: usize) -> Option<(i32, u64)> {
        let w = self.process_words(p)?;
        Some((
            w[0].load(Ordering::Relaxed) as u32 as i32,
            w[2].load(Ordering::Relaxed),
        ))
    }
}

impl GroupBoardWriter {
    pub fn slot(&self, p: usize, t: usize) -> Option<ThreadSlot<'_>> {
        self.0.thread_slot(p, t)
    }

    /// A daemon process starts in slot `p`: its threads' slots show idle, its own count
    /// starts from the slot's total so far.
    pub fn start_process(&self, p: usize, pid: i32) {
        let Some(w) = self.0.process_words(p) else {
            return;
        };
        let mut before = super::Counters::default();
        for t in 0..self.0.threads {
            if let Some(s) = self.slot(p, t) {
                s.clear();
                s.add_counters(0, &mut before);
            }
        }
        w[2].store(before.requests, Ordering::Relaxed);
        w[1].store(super::now_us(), Ordering::Relaxed);
        w[0].store(pid as u32 as u64, Ordering::Release);
    }
}

/// A configuration generation's boards: the server board and one per daemon group, in the
/// order of [`Shape::groups`].
pub struct Boards {
    pub server: Board,
    pub groups: Vec<GroupBoard>,
}

impl Boards {
    pub fn create(shape: Shape) -> std::io::Result<Boards> {
        let groups = shape
            .groups
            .iter()
            .map(|(name, p, t)| {
                // The kernel takes 249 bytes of memfd name; the name is for people only.
                let name: String = format!("rwsgi-status:{name}").chars().take(200).collect();
                GroupBoard::create(&name, *p, *t)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Boards {
            server: Board::create(shape)?,
            groups,
        })
    }

    /// The target number of daemon group `name` (0: embedded / unknown).
    pub fn target_of(&self, name: &str) -> usize {
        self.server
            .shape()
            .groups
            .iter()
            .position(|(n, _, _)| n == name)
            .map_or(0, |g| g + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_board_round_trips_through_its_memfd() {
        let g = GroupBoard::create("t", 2, 3).unwrap();
        let fd = g.fd().unwrap().try_clone_to_owned().unwrap();
        let writer = GroupBoard::open(fd, 2, 3).unwrap();
        writer.start_process(1, 99);
        writer.slot(1, 2).unwrap().begin(0, 5, b"GET /x", b"c", 0);
        assert_eq!(g.process(1), Some((99, 0)));
        assert_eq!(g.slot(1, 2).unwrap().running().unwrap().line, "GET /x");
        let wrong = g.fd().unwrap().try_clone_to_owned().unwrap();
        assert!(GroupBoard::open(wrong, 3, 3).is_err());
    }
}
