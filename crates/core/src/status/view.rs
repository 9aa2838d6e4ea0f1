//! Reading the boards into plain values for the renderers: totals per target, processes,
//! requests in flight.

use super::board::Board;
use super::group::GroupBoard;
use super::{BUCKETS, now_us};

/// Counters added up over threads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub requests: u64,
    /// Responses by status class: 1xx .. 5xx.
    pub classes: [u64; 5],
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub time_sum_us: u64,
    pub queue_sum_us: u64,
    pub time_hist: [u64; BUCKETS],
    pub queue_hist: [u64; BUCKETS],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Embedded,
    Daemon,
}

/// One process serving a target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessView {
    /// Slot number (daemon: the process number in its group, from 0).
    pub slot: usize,
    pub pid: i32,
    pub started_us: u64,
    pub requests: u64,
    pub busy: usize,
    pub threads: usize,
    pub rss_bytes: Option<u64>,
    pub restarts: u64,
    /// Why the previous process of this slot ended, and when.
    pub last_death: Option<(String, u64)>,
}

/// A request running now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InFlight {
    pub pid: i32,
    pub thread: usize,
    pub started_us: u64,
    pub line: String,
    pub client: String,
}

/// Embedded mode, or one daemon group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupView {
    pub name: String,
    pub kind: TargetKind,
    /// As Apache saw it: every request with its status, bytes and whole duration.
    pub apache: Counters,
    /// Daemon groups, as the daemon processes saw it: queue wait and application time.
    pub daemon: Counters,
    pub processes: Vec<ProcessView>,
    pub in_flight: Vec<InFlight>,
    /// Daemon groups: requests forwarded that no daemon thread has taken yet.
    pub queue_length: usize,
    /// Requests per second since the previous look at the page.
    pub rate: Option<f64>,
}

/// Everything the status page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusView {
    pub now_us: u64,
    pub started_us: u64,
    pub version: String,
    pub targets: Vec<GroupView>,
    /// Requests that ran on threads beyond the board's room (not in the figures above).
    pub unrecorded: u64,
}

/// What the reader needs from the system: is a process alive, how much memory it holds.
pub struct Probe {
    /// Is the Apache process of this identity ([`identity_of`]) running?
    pub alive: fn(u64) -> bool,
    pub rss: fn(i32) -> Option<u64>,
}

/// Reads everything. `groups[i]` is daemon group i's board (`None` if it has none).
pub fn read_status(
    board: &Board,
    groups: &[Option<&GroupBoard>],
    probe: &Probe,
    version: &str,
) -> StatusView {
    let now = now_us();
    let shape = board.shape();
    let mut targets: Vec<GroupView> = (0..shape.targets())
        .map(|t| GroupView {
            name: if t == 0 {
                "embedded".into()
            } else {
                shape.groups[t - 1].0.clone()
            },
            kind: if t == 0 {
                TargetKind::Embedded
            } else {
                TargetKind::Daemon
            },
            apache: Counters::default(),
            daemon: Counters::default(),
            processes: Vec::new(),
            in_flight: Vec::new(),
            queue_length: 0,
            rate: None,
        })
        .collect();
    let (unrecorded, apache_in_flight) = read_apache(board, probe, &mut targets);
    for (g, (_, processes, threads)) in shape.groups.iter().enumerate() {
        let view = &mut targets[g + 1];
        let gb = groups.get(g).copied().flatten();
        let mut busy_total = 0;
        for p in 0..*processes {
            let sup = board.supervised(g, p).unwrap_or_default();
            let mut pv = ProcessView {
                slot: p,
                pid: sup.pid,
                started_us: sup.started_us,
                threads: *threads,
                restarts: sup.restarts,
                last_death: sup.last_death.map(|(c, at)| (c.to_string(), at)),
                rss_bytes: (sup.pid > 0).then(|| (probe.rss)(sup.pid)).flatten(),
                ..Default::default()
            };
            if let Some(gb) = gb {
                read_daemon_process(gb, p, &sup, &mut pv, view);
            }
            busy_total += pv.busy;
            view.processes.push(pv);
        }
        view.queue_length = apache_in_flight[g + 1].saturating_sub(busy_total);
    }
    for (t, view) in targets.iter_mut().enumerate() {
        view.rate = board.rate(t, view.apache.requests, now);
    }
    StatusView {
        now_us: now,
        started_us: board.created_us(),
        version: version.to_string(),
        targets,
        unrecorded,
    }
}

/// The Apache side: every thread slot's counters into its target's view, embedded processes
/// and the embedded requests in flight. Returns the unrecorded count and, per target, the
/// requests Apache threads are running now.
fn read_apache(board: &Board, probe: &Probe, targets: &mut [GroupView]) -> (u64, Vec<usize>) {
    let shape = board.shape();
    let mut unrecorded = 0;
    let mut apache_in_flight = vec![0usize; shape.targets()];
    for p in 0..shape.apache_processes {
        let Some((identity, started, before)) = board.apache_process(p) else {
            continue;
        };
        if identity == 0 {
            continue;
        }
        let pid = pid_of(identity);
        let live = (probe.alive)(identity);
        unrecorded += board
            .unrecorded(p)
            .map_or(0, |u| u.load(std::sync::atomic::Ordering::Relaxed));
        let mut mine = Counters::default();
        let (mut busy, mut threads) = (0, 0);
        for t in 0..board.claimed_threads(p) {
            let Some(s) = board.apache_slot(p, t) else {
                continue;
            };
            for (i, view) in targets.iter_mut().enumerate() {
                s.add_counters(i, &mut view.apache);
            }
            s.add_counters(0, &mut mine);
            if !live {
                continue;
            }
            threads += usize::from(s.owner().load(std::sync::atomic::Ordering::Relaxed) != 0);
            if let Some(r) = s.running() {
                apache_in_flight[r.target] += 1;
                if r.target == 0 {
                    busy += 1;
                    targets[0].in_flight.push(InFlight {
                        pid,
                        thread: t,
                        started_us: r.started_us,
                        line: r.line,
                        client: r.client,
                    });
                }
            }
        }
        if live && mine.requests > before {
            targets[0].processes.push(ProcessView {
                slot: p,
                pid,
                started_us: started,
                requests: mine.requests - before,
                busy,
                threads,
                rss_bytes: (probe.rss)(pid),
                ..Default::default()
            });
        }
    }
    (unrecorded, apache_in_flight)
}

/// One daemon process's own figures. Its board is written by application code: only a
/// process the supervisor says is running (same pid) is believed about what runs.
fn read_daemon_process(
    gb: &GroupBoard,
    p: usize,
    sup: &super::Supervised,
    pv: &mut ProcessView,
    view: &mut GroupView,
) {
    let (pid, before) = gb.process(p).unwrap_or_default();
    let current = sup.pid > 0 && pid == sup.pid;
    let mut mine = Counters::default();
    for t in 0..gb.threads() {
        let Some(s) = gb.slot(p, t) else { continue };
        s.add_counters(0, &mut view.daemon);
        s.add_counters(0, &mut mine);
        if !current {
            continue;
        }
        if let Some(r) = s.running() {
            pv.busy += 1;
            view.in_flight.push(InFlight {
                pid,
                thread: t,
                started_us: r.started_us,
                line: r.line,
                client: r.client,
            });
        }
    }
    if current {
        pv.requests = mine.requests.saturating_sub(before);
    }
}

/// Resident memory of `pid` from /proc (bytes).
pub fn rss_of(pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    Some(pages * page)
}

/// A process as the boards know it: its pid and (low 32 bits of) its start time in clock
/// ticks since boot, in one word, so a slot is claimed with one compare-and-swap and a reused
/// pid is not taken for the process that had it.
pub fn identity_of(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime); the command (field 2) may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let start: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    Some(((pid as u32 as u64) << 32) | (start & 0xffff_ffff))
}

/// The pid of an identity.
pub fn pid_of(identity: u64) -> i32 {
    (identity >> 32) as u32 as i32
}

/// The process of `identity` is still running.
pub fn is_alive(identity: u64) -> bool {
    identity != 0 && identity_of(pid_of(identity)) == Some(identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Finished, Shape};

    #[test]
    fn figures_add_up_over_processes_and_threads() {
        let b = Board::create(Shape {
            apache_processes: 2,
            apache_threads: 2,
            groups: vec![("g".into(), 1, 2)],
        })
        .unwrap();
        let gb = GroupBoard::create("g", 1, 2).unwrap();
        let me = std::process::id() as i32;
        let p = b.claim_process(identity_of(me).unwrap(), is_alive).unwrap();
        let t = b.claim_thread(p, 1).unwrap();
        let s = b.apache_slot(p, t).unwrap();
        for (target, status) in [(0, 200), (0, 500), (1, 200)] {
            s.begin(target, now_us(), b"GET /", b"127.0.0.1", 0);
            s.end(
                target,
                &Finished {
                    status,
                    time_us: 10,
                    ..Default::default()
                },
            );
        }
        s.begin(1, now_us(), b"GET /slow", b"127.0.0.1", 0);
        b.set_process(0, 0, me);
        let writer =
            GroupBoard::open(gb.fd().unwrap().try_clone_to_owned().unwrap(), 1, 2).unwrap();
        writer.start_process(0, me);
        writer
            .slot(0, 1)
            .unwrap()
            .begin(0, now_us(), b"GET /slow", b"127.0.0.1", 0);
        let probe = Probe {
            alive: |_| true,
            rss: |_| Some(1),
        };
        let v = read_status(&b, &[Some(&gb)], &probe, "test");
        let (e, g) = (&v.targets[0], &v.targets[1]);
        assert_eq!(
            (e.apache.requests, e.apache.classes[1], e.apache.classes[4]),
            (2, 1, 1)
        );
        assert_eq!(e.processes.len(), 1);
        assert_eq!((e.processes[0].requests, e.processes[0].threads), (2, 1));
        assert_eq!(
            (g.apache.requests, g.processes[0].busy, g.queue_length),
            (1, 1, 0)
        );
        assert_eq!(g.in_flight[0].line, "GET /slow");
        // A process the supervisor does not know is not believed about what runs.
        b.set_process(0, 0, me + 1);
        let v = read_status(&b, &[Some(&gb)], &probe, "test");
        assert!(v.targets[1].in_flight.is_empty());
        assert_eq!(v.targets[1].queue_length, 1);
    }
}
