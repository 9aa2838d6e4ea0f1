//! An Apache child's connections to daemon groups: kept open across requests (no connect
//! per request), each with the two shared-memory rings this side made for it.

use super::idle::Lease;
use rwsgi_core::ipc::channel::{Channel, ChannelError};
use rwsgi_core::ipc::frame::{FLAG_SHM, Frame, Kind, MAX_PAYLOAD};
use rwsgi_core::ipc::ring::{self, Inbound, Outbound, SharedMem};
use rwsgi_core::ipc::{IpcError, msg};
use rwsgi_core::spec::GroupSpec;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A connection to a daemon process, with the two shared-memory rings this side created for
/// it (None if the memfds could not be made or the daemon declined them: bodies then travel
/// inline).
pub struct Conn {
    pub ch: Channel,
    /// Request ring (we write) and response ring (we read).
    pub rings: Option<(Outbound, Inbound)>,
    /// The rings' registration with the idle sweeper (their pages go back when unused).
    lease: Option<Lease>,
    /// The daemon process at the other end (as it says: used only to explain its death).
    pub pid: u32,
    /// The id of the request in progress (frames of any other are refused).
    pub id: u32,
    /// Counted as a request in flight on `pid` while taken.
    in_flight: Option<InFlight>,
    /// The group's socket (the pool's key; set once, when connected).
    path: PathBuf,
}

/// This Apache child's open connections to each group (by socket path), idle between
/// requests, and how many requests it has in flight per daemon process. A connection per
/// Apache thread instead kept the rings of every thread resident: mpm_event hands each
/// request to any of its workers, so all of them stayed busy enough never to give their
/// rings back (64 MiB of shared memory at 128 threads and 1 MiB bodies, for 64 requests in
/// flight). A request takes the idle connection to the daemon process this child keeps least
/// busy (a connection is served by the process that accepted it: the load stays spread over
/// the group's processes), the most recently used one among equals: only about as many
/// connections as there are requests in flight keep warm rings, and the idle sweeper gives
/// the pages of the others back.
static POOL: Mutex<Pool> = Mutex::new(Pool {
    idle: Vec::new(),
    busy: Vec::new(),
});

struct Pool {
    idle: Vec<Conn>,
    /// (daemon pid, requests of this child in flight there).
    busy: Vec<(u32, u32)>,
}

impl Pool {
    fn busy(&self, pid: u32) -> u32 {
        self.busy.iter().find(|(p, _)| *p == pid).map_or(0, |b| b.1)
    }

    fn mark(&mut self, pid: u32) -> InFlight {
        match self.busy.iter_mut().find(|(p, _)| *p == pid) {
            Some(b) => b.1 += 1,
            None => self.busy.push((pid, 1)),
        }
        InFlight(pid)
    }
}

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which idle connection (index, daemon pid; in the order they were put back) a request
/// takes: one to the process with the fewest requests of this child in flight, the most
/// recently put back among those.
fn pick(
    candidates: impl Iterator<Item = (usize, u32)>,
    busy: impl Fn(u32) -> u32,
) -> Option<usize> {
    candidates
        .max_by_key(|&(i, pid)| (std::cmp::Reverse(busy(pid)), i))
        .map(|(i, _)| i)
}

/// A request of this child in flight on a daemon process, counted in [`Pool::busy`] until
/// dropped.
struct InFlight(u32);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut pool = pool();
        if let Some(i) = pool.busy.iter().position(|(p, _)| *p == self.0) {
            pool.busy[i].1 -= 1;
            if pool.busy[i].1 == 0 {
                pool.busy.swap_remove(i);
            }
        }
    }
}

impl Conn {
    /// An idle connection of this child to the group, or a new one.
    pub fn take_or_connect(spec: &GroupSpec) -> Result<Conn, String> {
        let path = &spec.wire.socket_path;
        loop {
            let cached = {
                let mut pool = pool();
                let idle = pool.idle.iter().enumerate();
                // (byte equality: Path's == compares component by component)
                let candidates = idle
                    .filter(|(_, c)| c.path.as_os_str() == path.as_os_str())
                    .map(|(i, c)| (i, c.pid));
                pick(candidates, |pid| pool.busy(pid)).map(|i| {
                    let mut c = pool.idle.remove(i);
                    c.in_flight = Some(pool.mark(c.pid));
                    c
                })
            };
            match cached {
                // A connection the daemon has closed meanwhile is dropped; try the next.
                Some(c) if c.ch.is_stale() => continue,
                Some(c) => return Ok(c),
                None => {
                    let mut c = connect(spec)?;
                    c.in_flight = Some(pool().mark(c.pid));
                    return Ok(c);
                }
            }
        }
    }

    /// Keeps the connection for a later request of this child to its group.
    pub fn put_back(mut self) {
        drop(self.in_flight.take());
        pool().idle.push(self);
    }

    /// A new request on this connection: a fresh id, both rings empty and ours.
    pub fn begin_request(&mut self) {
        self.id = self.id.wrapping_add(1).max(1);
        if let Some(lease) = &self.lease {
            lease.busy();
        }
        if let Some((out, inb)) = self.rings.as_mut() {
            out.reset();
            inb.reset();
        }
    }

    /// The daemon is done with both rings (it drained them before finishing): they keep their
    /// pages for the next request, unless none comes within the sweeper's idle time.
    pub fn end_request(&mut self) {
        if let Some(lease) = &self.lease {
            lease.idle();
        }
    }

    /// Sends the (sealed) request head: inline when it fits a frame, else through the request
    /// ring.
    pub fn send_head(&mut self, payload: &[u8]) -> Result<(), ChannelError> {
        if payload.len() <= MAX_PAYLOAD as usize {
            return self
                .ch
                .send_parts(Kind::RequestHead, self.id, 0, &[payload]);
        }
        let out = match self.rings.as_mut() {
            Some((out, _)) if payload.len() <= out.capacity() => out,
            other => {
                let max = other.map_or(MAX_PAYLOAD as usize, |(o, _)| o.capacity());
                return Err(ChannelError::Protocol(IpcError::TooLarge {
                    what: "request head",
                    len: payload.len() as u64,
                    max: max as u64,
                }));
            }
        };
        match out.put_all(payload) {
            Some((off, n)) if n == payload.len() => self.ch.send_parts(
                Kind::RequestHead,
                self.id,
                FLAG_SHM,
                &[&ring::encode_slice(off, n)],
            ),
            _ => Err(ChannelError::Protocol(IpcError::Invalid(
                "request ring busy",
            ))),
        }
    }
}

/// Makes the two rings of a new connection; None (bodies inline) if memfds are unavailable.
/// The request ring is at least 1 MiB: a request head (up to Apache's LimitRequestFields x
/// LimitRequestFieldSize, ~800 KiB by default) must fit it whole. Untouched pages cost nothing.
fn make_rings(size: usize) -> Option<(SharedMem, SharedMem)> {
    Some((
        SharedMem::create("rwsgi-request", size.max(1 << 20)).ok()?,
        SharedMem::create("rwsgi-response", size).ok()?,
    ))
}

/// Connects to the group and introduces this Apache child (HELLO with the group's secret and
/// the rings), trying until connect-timeout.
fn connect(spec: &GroupSpec) -> Result<Conn, String> {
    let deadline = Instant::now() + spec.connect_timeout();
    let mut delay = Duration::from_millis(20);
    loop {
        let err = match Channel::connect(&spec.wire.socket_path) {
            // SO_PEERCRED both ways: whoever listens on the group's path must be the Apache
            // parent that made the socket, not a process that managed to put one there.
            Ok(ch) if !ch.peer_uid().is_ok_and(|u| u == spec.wire.listener_uid) => {
                return Err(format!(
                    "the socket is not served by this server's daemon processes (peer uid {:?}, expected {})",
                    ch.peer_uid().ok(),
                    spec.wire.listener_uid
                ));
            }
            Ok(ch) => match hello(spec, ch, deadline)? {
                Ok(conn) => return Ok(conn),
                Err(retryable) => retryable,
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() + delay >= deadline {
            return Err(err);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

/// HELLO on a new connection. `Ok(Err(why))`: a process that is stopping let go of it (try
/// again); `Err`: give up.
fn hello(spec: &GroupSpec, ch: Channel, deadline: Instant) -> Result<Result<Conn, String>, String> {
    let rings = make_rings(spec.ring_size());
    let hello = Frame::new(Kind::Hello, 0, spec.wire.secret.clone());
    let sent = match &rings {
        Some((a, b)) => ch.send_with_fds(&hello, &[a.fd().as_raw_fd(), b.fd().as_raw_fd()]),
        None => ch.send(&hello),
    };
    // The socket outlives supervisors (the Apache parent holds it): connecting succeeds while
    // a group restarts, and the answer is what connect-timeout bounds.
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    match sent.and_then(|()| ch.recv(Some(wait))) {
        Ok((f, _)) if f.header.kind == Kind::HelloAck => {
            // The daemon says whether it mapped the rings, and who it is.
            let (mapped, pid) =
                msg::parse_hello_ack(&f.payload).map_err(|e| format!("bad HELLO_ACK: {e}"))?;
            let rings = rings
                .filter(|_| mapped)
                .map(|(a, b)| (Outbound::new(a), Inbound::new(b)));
            let lease = rings
                .as_ref()
                .map(|(out, inb)| Lease::register(out.shared(), inb.shared()));
            Ok(Ok(Conn {
                ch,
                rings,
                lease,
                pid,
                id: 0,
                in_flight: None,
                path: spec.wire.socket_path.clone(),
            }))
        }
        Ok((f, _)) if f.header.kind == Kind::Goodbye => {
            Ok(Err("the daemon process is restarting".into()))
        }
        Err(ChannelError::Closed) => Ok(Err("the daemon process closed the connection".into())),
        Ok((f, _)) => Err(format!("unexpected {:?} answer to HELLO", f.header.kind)),
        Err(e) => Err(format!("no answer to HELLO: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn the_least_busy_process_then_the_most_recent_connection() {
        let busy = |pid| match pid {
            7 => 3,
            8 => 1,
            _ => 0,
        };
        // idle: (index, pid) in the order put back
        let idle = [(0, 7), (1, 8), (2, 7), (3, 8)];
        assert_eq!(pick(idle.into_iter(), busy), Some(3));
        assert_eq!(pick([(0, 7), (1, 9), (2, 9)].into_iter(), busy), Some(2));
        assert_eq!(pick([(5, 7)].into_iter(), busy), Some(5));
        assert_eq!(pick(std::iter::empty(), busy), None);
    }
}
