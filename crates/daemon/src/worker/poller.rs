//! The daemon process's one polling thread: accepts Apache's connections on the group's
//! listener, waits on the idle ones, and hands a connection with a request to the request
//! threads (which give it back when the request is done). On stop it says Goodbye to idle
//! connections, lets the busy ones finish, and returns when none is in flight.

use super::pool::Shared;
use super::session::Conn;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rwsgi_core::Level;
use rwsgi_core::errlog::log;
use rwsgi_core::ipc::channel;
use rwsgi_core::ipc::frame::{Frame, Kind};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub struct Poller {
    listener: OwnedFd,
    /// Written to by a request thread that returns a connection, or by the stop path.
    wake_r: OwnedFd,
    work_tx: crossbeam_channel::Sender<Conn>,
    ret_rx: crossbeam_channel::Receiver<Conn>,
    shared: Arc<Shared>,
    /// SO_SNDBUF / SO_RCVBUF of accepted connections (send-buffer-size, receive-buffer-size).
    buffers: (usize, usize),
    idle: Vec<Conn>,
}

/// What one poll found.
struct Ready {
    wake: bool,
    listener: bool,
    /// Per idle connection (in `idle`'s order at poll time).
    conns: Vec<bool>,
}

impl Poller {
    pub fn new(
        listener: OwnedFd,
        wake_r: OwnedFd,
        work_tx: crossbeam_channel::Sender<Conn>,
        ret_rx: crossbeam_channel::Receiver<Conn>,
        shared: Arc<Shared>,
        buffers: (usize, usize),
    ) -> Poller {
        Poller {
            listener,
            wake_r,
            work_tx,
            ret_rx,
            shared,
            buffers,
            idle: Vec::new(),
        }
    }

    pub fn run(mut self) {
        loop {
            let stopping = self.shared.stopping.load(Ordering::SeqCst);
            if stopping {
                // Idle connections are closed (their Apache threads reconnect elsewhere) with
                // a Goodbye first: a request that raced with the close is then known unstarted
                // and safe to send again. Connections with a request in progress finish first.
                self.collect_returned();
                Self::goodbye(self.idle.drain(..));
            }
            let ready = self.poll(!stopping);
            if ready.wake {
                let mut buf = [0u8; 64];
                while matches!(nix::unistd::read(&self.wake_r, &mut buf), Ok(n) if n > 0) {}
            }
            self.collect_returned();
            if !self.dispatch(&ready.conns) {
                return;
            }
            if ready.listener {
                self.accept_all();
            }
            if stopping && self.shared.in_flight.load(Ordering::SeqCst) == 0 {
                let returned: Vec<Conn> = self.ret_rx.try_iter().collect();
                Self::goodbye(returned.into_iter().chain(self.idle.drain(..)));
                return;
            }
        }
    }

    fn collect_returned(&mut self) {
        while let Ok(c) = self.ret_rx.try_recv() {
            self.idle.push(c);
        }
    }

    fn goodbye(conns: impl Iterator<Item = Conn>) {
        for c in conns {
            let _ = c.ch.send(&Frame::new(Kind::Goodbye, 0, vec![]));
        }
    }

    /// Waits up to 250 ms for the wake pipe, the listener (unless stopping) or an idle
    /// connection.
    fn poll(&self, with_listener: bool) -> Ready {
        let mut fds: Vec<PollFd> = vec![PollFd::new(self.wake_r.as_fd(), PollFlags::POLLIN)];
        if with_listener {
            fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        }
        let first_conn = fds.len();
        for c in &self.idle {
            fds.push(PollFd::new(c.ch.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(250u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                log(
                    Level::Error,
                    &format!("rwsgi: poll failed in daemon process: {e}"),
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        Ready {
            wake: ready[0],
            listener: with_listener && ready[1],
            conns: ready[first_conn..].to_vec(),
        }
    }

    /// Hands the ready connections to the request threads; false when they are all gone.
    fn dispatch(&mut self, ready: &[bool]) -> bool {
        // In reverse, so swap_remove only moves an entry already looked at (or one returned
        // after the poll) into the freed index.
        for i in (0..ready.len()).rev() {
            if ready[i] && i < self.idle.len() {
                let c = self.idle.swap_remove(i);
                self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
                if self.work_tx.send(c).is_err() {
                    return false;
                }
            }
        }
        true
    }

    fn accept_all(&mut self) {
        loop {
            match channel::accept(self.listener.as_fd()) {
                Ok(ch) => {
                    ch.set_buffer_sizes(self.buffers.0, self.buffers.1);
                    self.idle.push(Conn {
                        ch: Arc::new(ch),
                        authenticated: false,
                        rings: None,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log(Level::Error, &format!("rwsgi: accept failed: {e}"));
                    break;
                }
            }
        }
    }
}
