//! The connections of a daemon process between their frames: one epoll set holds the group's
//! listener and every idle connection, each armed for a single event (EPOLLONESHOT). The
//! poller takes the connections that have a frame waiting (and accepts new ones); the
//! request thread that served a frame puts its connection back, armed again, itself: no
//! hand-back to the poller, so the poller wakes once per request, not twice, and never
//! rebuilds a poll set. On stop, idle connections are told Goodbye, nothing new is accepted
//! or taken, and the connections in use are let go after their request.

use super::pool::Shared;
use super::session::Conn;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use rwsgi_core::Level;
use rwsgi_core::errlog::log;
use rwsgi_core::ipc::channel::{self, Channel};
use rwsgi_core::ipc::msg;
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The epoll token of the listener; connections count up from 1.
const LISTENER: u64 = 0;

/// How long (ms) the poller waits in one `epoll_wait` before it looks at the stop flag again.
const WAIT_MS: u16 = 250;

/// Which idle slot a taken connection goes back to ([`Hub::put_back`]).
pub struct Token(u64);

pub struct Hub {
    epoll: Epoll,
    listener: OwnedFd,
    /// SO_SNDBUF / SO_RCVBUF of accepted connections (send-buffer-size, receive-buffer-size).
    buffers: (usize, usize),
    idle: Mutex<Idle>,
}

/// The connections between frames, by epoll token.
struct Idle {
    conns: HashMap<u64, Conn>,
    next_token: u64,
    /// Stopping: nothing more is accepted or taken.
    closed: bool,
}

impl Hub {
    pub fn new(listener: OwnedFd, buffers: (usize, usize)) -> nix::Result<Hub> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(&listener, armed(LISTENER))?;
        Ok(Hub {
            epoll,
            listener,
            buffers,
            idle: Mutex::new(Idle {
                conns: HashMap::new(),
                next_token: LISTENER + 1,
                closed: false,
            }),
        })
    }

    fn idle(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (up to 250 ms) for connections with a frame waiting and takes them into
    /// `ready`, each counted in flight; accepts new connections on the way.
    pub fn wait(&self, shared: &Shared, ready: &mut Vec<(Token, Conn)>) {
        let mut events = [EpollEvent::empty(); 64];
        let n = match self.epoll.wait(&mut events, EpollTimeout::from(WAIT_MS)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => return,
            Err(e) => {
                log(
                    Level::Error,
                    &format!("rwsgi: epoll_wait failed in daemon process: {e}"),
                );
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
        };
        let mut accept = false;
        let mut idle = self.idle();
        for e in &events[..n] {
            let token = e.data();
            if token == LISTENER {
                accept = true;
            } else if let Some(conn) = idle.conns.remove(&token) {
                // Under the lock: once `close` has returned, every taken connection is counted.
                shared.in_flight.fetch_add(1, Ordering::SeqCst);
                ready.push((Token(token), conn));
            }
        }
        drop(idle);
        if accept {
            self.accept_all();
        }
    }

    /// Gives a connection back after its frame, armed for the next one; when stopping, says
    /// Goodbye on it instead (its Apache child then goes to another process).
    pub fn put_back(&self, Token(token): Token, conn: Conn) {
        let ch = conn.ch.clone();
        {
            let mut idle = self.idle();
            if idle.closed {
                drop(idle);
                goodbye(&ch);
                self.forget(&ch);
                return;
            }
            idle.conns.insert(token, conn);
        }
        // Re-armed only once it is back in `idle`, where the thread woken for it looks.
        if let Err(e) = self.epoll.modify(ch.as_fd(), &mut armed(token)) {
            log(
                Level::Error,
                &format!("rwsgi: could not watch a connection again: {e}"),
            );
            self.idle().conns.remove(&token);
        }
    }

    /// Stops watching a connection that is being dropped.
    pub fn forget(&self, ch: &Channel) {
        let _ = self.epoll.delete(ch.as_fd());
    }

    /// Stopping: Goodbye on every idle connection (a request that raced with it is then known
    /// unstarted, and its Apache child sends it elsewhere); no more accepted or taken.
    pub fn close(&self) {
        let conns: Vec<Conn> = {
            let mut idle = self.idle();
            idle.closed = true;
            idle.conns.drain().map(|(_, c)| c).collect()
        };
        for c in conns {
            goodbye(&c.ch);
            self.forget(&c.ch);
        }
    }

    /// Stopped, and no request left running.
    pub fn drained(&self, shared: &Shared) -> bool {
        self.idle().closed && shared.in_flight.load(Ordering::SeqCst) == 0
    }

    pub fn closed(&self) -> bool {
        self.idle().closed
    }

    /// Accepts every connection waiting, then watches the listener again (not once stopping:
    /// connections still arriving are left to the group's other processes).
    fn accept_all(&self) {
        loop {
            let mut idle = self.idle();
            if idle.closed {
                return;
            }
            match channel::accept(self.listener.as_fd()) {
                Ok(ch) => {
                    ch.set_buffer_sizes(self.buffers.0, self.buffers.1);
                    let token = idle.next_token;
                    idle.next_token += 1;
                    let conn = Conn::new(ch);
                    if let Err(e) = self.epoll.add(conn.ch.as_fd(), armed(token)) {
                        log(
                            Level::Error,
                            &format!("rwsgi: could not watch a new connection: {e}"),
                        );
                        continue;
                    }
                    idle.conns.insert(token, conn);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log(Level::Error, &format!("rwsgi: accept failed: {e}"));
                    break;
                }
            }
        }
        if let Err(e) = self
            .epoll
            .modify(self.listener.as_fd(), &mut armed(LISTENER))
        {
            log(
                Level::Error,
                &format!("rwsgi: could not watch the listener again: {e}"),
            );
        }
    }
}

/// Readable (or hung up), reported to one waiting thread, then disarmed until re-armed.
fn armed(token: u64) -> EpollEvent {
    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, token)
}

fn goodbye(ch: &Channel) {
    let _ = ch.send(&msg::goodbye());
}
