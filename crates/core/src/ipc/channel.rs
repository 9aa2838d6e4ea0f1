//! A connection between an Apache child and a daemon process: a Unix SOCK_SEQPACKET socket,
//! so every `send` is exactly one frame for the peer's `recv` (message boundaries for free, EOF
//! when the peer dies), with file descriptors passed alongside (SCM_RIGHTS).

use super::IpcError;
use super::frame::{Frame, HEADER_LEN, Header, Kind, MAX_PAYLOAD};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr, sockopt,
};
use nix::sys::time::TimeVal;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("peer closed the connection")]
    Closed,
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Protocol(#[from] IpcError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<Errno> for ChannelError {
    fn from(e: Errno) -> ChannelError {
        ChannelError::Io(e.into())
    }
}

thread_local! {
    static RECV_BUF: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(vec![0u8; HEADER_LEN + MAX_PAYLOAD as usize + 1]);
    /// Room for the descriptors a frame may carry, reused: nix's cmsg_space! is a fresh Vec
    /// per receive (a quarter of the Apache side's allocations for a 1 MiB echo).
    static CMSG_BUF: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(nix::cmsg_space!([RawFd; MAX_FDS]));
}

/// At most this many descriptors may come with one frame; more is a protocol error (and the
/// extra ones are closed).
const MAX_FDS: usize = 4;

pub struct Channel {
    fd: OwnedFd,
    /// What SO_RCVTIMEO is set to, in microseconds (0: none, wait for ever).
    receive_timeout: AtomicU64,
}

impl Channel {
    fn new(fd: OwnedFd) -> Channel {
        Channel {
            fd,
            receive_timeout: AtomicU64::new(0),
        }
    }
}

fn seqpacket() -> nix::Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
}

/// Creates, binds and listens on a socket at `path` (an existing file there is replaced).
pub fn listen(path: &Path, backlog: i32) -> std::io::Result<OwnedFd> {
    let fd = seqpacket()?;
    let _ = std::fs::remove_file(path);
    socket::bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    socket::listen(
        &fd,
        socket::Backlog::new(backlog.clamp(1, 65535)).unwrap_or(socket::Backlog::MAXCONN),
    )?;
    Ok(fd)
}

/// Accepts one connection (blocking unless the listener is non-blocking).
pub fn accept(listener: BorrowedFd<'_>) -> std::io::Result<Channel> {
    let raw = socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC)?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    Ok(Channel::new(unsafe { OwnedFd::from_raw_fd(raw) }))
}

/// Waits until `fd` is readable (or hung up); false on timeout.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> std::io::Result<bool> {
    let t = match timeout {
        None => PollTimeout::NONE,
        Some(d) => PollTimeout::try_from(d.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX),
    };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    loop {
        match poll(&mut fds, t) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

impl Channel {
    pub fn connect(path: &Path) -> std::io::Result<Channel> {
        let fd = seqpacket()?;
        socket::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        Ok(Channel::new(fd))
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The uid of the process at the other end (SO_PEERCRED).
    pub fn peer_uid(&self) -> std::io::Result<u32> {
        Ok(socket::getsockopt(&self.fd, sockopt::PeerCredentials)?.uid())
    }

    pub fn set_buffer_sizes(&self, send: usize, recv: usize) {
        if send > 0 {
            let _ = socket::setsockopt(&self.fd, sockopt::SndBuf, &send);
        }
        if recv > 0 {
            let _ = socket::setsockopt(&self.fd, sockopt::RcvBuf, &recv);
        }
    }

    /// True when the peer has closed or has sent something unexpected while the connection
    /// was idle: either way it must not be reused.
    pub fn is_stale(&self) -> bool {
        !matches!(wait_readable(self.as_fd(), Some(Duration::ZERO)), Ok(false))
    }

    pub fn send(&self, frame: &Frame) -> Result<(), ChannelError> {
        self.send_with_fds(frame, &[])
    }

    pub fn send_with_fds(&self, frame: &Frame, fds: &[RawFd]) -> Result<(), ChannelError> {
        self.send_iov(&frame.header.encode(), &[&frame.payload], fds)
    }

    /// Sends one frame whose payload is `parts` one after the other, straight from where
    /// they are: a response chunk is not first copied into a frame of its own (one
    /// allocation and one copy per chunk; 128 of each for a 1 MiB response in 8 KiB writes).
    pub fn send_parts(
        &self,
        kind: Kind,
        request_id: u32,
        flags: u16,
        parts: &[&[u8]],
    ) -> Result<(), ChannelError> {
        let len = parts.iter().map(|p| p.len()).sum();
        let mut header = Header::new(kind, request_id, len);
        header.flags = flags;
        self.send_iov(&header.encode(), parts, &[])
    }

    fn send_iov(
        &self,
        header: &[u8; HEADER_LEN],
        parts: &[&[u8]],
        fds: &[RawFd],
    ) -> Result<(), ChannelError> {
        const MAX_PARTS: usize = 3;
        if parts.len() > MAX_PARTS {
            return Err(IpcError::Invalid("frame in more than three parts").into());
        }
        let mut iov = [IoSlice::new(&[]); MAX_PARTS + 1];
        iov[0] = IoSlice::new(header);
        for (slot, part) in iov[1..].iter_mut().zip(parts) {
            *slot = IoSlice::new(part);
        }
        let iov = &iov[..1 + parts.len()];
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
        loop {
            match socket::sendmsg::<()>(
                self.fd.as_raw_fd(),
                iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE) | Err(Errno::ECONNRESET) => return Err(ChannelError::Closed),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives one frame (and any descriptors sent with it), waiting at most `timeout`
    /// (`None`: for ever). `Err(Closed)` at EOF.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<(Frame, Vec<OwnedFd>), ChannelError> {
        let nonblocking = timeout == Some(Duration::ZERO);
        if !nonblocking {
            self.set_receive_timeout(timeout)?;
        }
        // One receive buffer per thread: most frames are a few bytes, and a fresh zeroed 64 KiB
        // buffer per frame showed up in profiles.
        RECV_BUF.with_borrow_mut(|buf| match self.recv_into(buf, nonblocking) {
            Err(ChannelError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                Err(ChannelError::Timeout)
            }
            other => other,
        })
    }

    /// A blocking receive waits at most this long (SO_RCVTIMEO), so a frame costs one
    /// recvmsg: a poll() first was a second system call per frame, and the non-blocking try
    /// before it (for frames already there) a third whenever the answer was not there yet,
    /// which is every request's first. Set only when it changes: a connection keeps one
    /// timeout for all its requests.
    fn set_receive_timeout(&self, timeout: Option<Duration>) -> Result<(), ChannelError> {
        // 0 is "no timeout" for the kernel; a real one is at least a microsecond.
        let us = timeout.map_or(0, |t| t.as_micros().clamp(1, i64::MAX as u128 / 2) as u64);
        if self.receive_timeout.load(Ordering::Relaxed) != us {
            socket::setsockopt(
                &self.fd,
                sockopt::ReceiveTimeout,
                &TimeVal::new((us / 1_000_000) as _, (us % 1_000_000) as _),
            )?;
            self.receive_timeout.store(us, Ordering::Relaxed);
        }
        Ok(())
    }

    fn recv_into(
        &self,
        buf: &mut [u8],
        nonblocking: bool,
    ) -> Result<(Frame, Vec<OwnedFd>), ChannelError> {
        let mut flags_in = MsgFlags::MSG_CMSG_CLOEXEC;
        if nonblocking {
            flags_in |= MsgFlags::MSG_DONTWAIT;
        }
        let received = CMSG_BUF.with_borrow_mut(|cmsg| -> Result<_, ChannelError> {
            let mut reset_seen = false;
            loop {
                let mut iov = [IoSliceMut::new(buf)];
                match socket::recvmsg::<()>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(cmsg.as_mut_slice()),
                    flags_in,
                ) {
                    Ok(msg) => {
                        let mut fds = Vec::new();
                        for c in msg.cmsgs()? {
                            if let ControlMessageOwned::ScmRights(raw) = c {
                                // SAFETY: the kernel installed these descriptors in this
                                // process for us; nothing else owns them.
                                fds.extend(
                                    raw.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }),
                                );
                            }
                        }
                        return Ok((msg.bytes, msg.flags, fds));
                    }
                    Err(Errno::EINTR) => continue,
                    // The peer closed with our last frame unread in its queue. Linux reports
                    // that reset before any frames still queued for us (and clears it): look
                    // once more, without waiting, so a Goodbye the peer sent before closing is
                    // not lost.
                    Err(Errno::ECONNRESET) if !reset_seen => {
                        reset_seen = true;
                        flags_in |= MsgFlags::MSG_DONTWAIT;
                        continue;
                    }
                    Err(Errno::ECONNRESET) => return Err(ChannelError::Closed),
                    Err(Errno::EAGAIN) if reset_seen => return Err(ChannelError::Closed),
                    Err(e) => return Err(e.into()),
                }
            }
        });
        let (n, flags, fds) = received?;
        if n == 0 {
            return Err(ChannelError::Closed);
        }
        if flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC)
            || n > HEADER_LEN + MAX_PAYLOAD as usize
        {
            return Err(IpcError::TooLarge {
                what: "message",
                len: n as u64,
                max: (HEADER_LEN + MAX_PAYLOAD as usize) as u64,
            }
            .into());
        }
        if fds.len() > MAX_FDS {
            return Err(IpcError::Invalid("too many descriptors").into());
        }
        Ok((Frame::decode(&buf[..n])?, fds))
    }
}

/// A connected pair (tests, and handing a connection to a forked process).
pub fn pair() -> std::io::Result<(Channel, Channel)> {
    let (a, b) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel::new(a), Channel::new(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::Kind;

    #[test]
    fn frames_keep_their_boundaries() {
        let (a, b) = pair().unwrap();
        a.send(&Frame::new(Kind::Log, 1, b"one".to_vec())).unwrap();
        a.send(&Frame::new(Kind::Log, 1, vec![7u8; MAX_PAYLOAD as usize]))
            .unwrap();
        let (f1, _) = b.recv(None).unwrap();
        let (f2, _) = b.recv(None).unwrap();
        assert_eq!(f1.payload, b"one");
        assert_eq!(f2.payload.len(), MAX_PAYLOAD as usize);
        assert!(matches!(
            b.recv(Some(Duration::from_millis(10))),
            Err(ChannelError::Timeout)
        ));
        drop(a);
        assert!(matches!(b.recv(None), Err(ChannelError::Closed)));
    }

    #[test]
    fn a_timeout_holds_for_its_own_receive_only() {
        let (a, b) = pair().unwrap();
        let t0 = std::time::Instant::now();
        assert!(matches!(
            b.recv(Some(Duration::from_millis(30))),
            Err(ChannelError::Timeout)
        ));
        assert!(t0.elapsed() >= Duration::from_millis(30));
        assert!(matches!(
            b.recv(Some(Duration::ZERO)),
            Err(ChannelError::Timeout)
        ));
        // A later receive without a timeout waits for the frame, however long it takes.
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            a.send(&Frame::new(Kind::Log, 1, b"late".to_vec())).unwrap();
            a
        });
        let (f, _) = b.recv(None).unwrap();
        assert_eq!(f.payload, b"late");
        // A frame already there is taken at once, whatever the timeout.
        let a = sender.join().unwrap();
        a.send(&Frame::new(Kind::Log, 1, b"now".to_vec())).unwrap();
        assert_eq!(b.recv(Some(Duration::ZERO)).unwrap().0.payload, b"now");
    }

    #[test]
    fn passes_descriptors() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        a.send_with_fds(&Frame::new(Kind::ResponseFile, 2, vec![]), &[f.as_raw_fd()])
            .unwrap();
        let (frame, fds) = b.recv(None).unwrap();
        assert_eq!(frame.header.kind, Kind::ResponseFile);
        assert_eq!(fds.len(), 1);
        assert!(b.peer_uid().is_ok());
    }

    #[test]
    fn last_frame_before_a_reset_close_is_still_delivered() {
        // The peer sends a frame and closes while a frame from us sits unread in its queue:
        // the kernel flags a reset, but the peer's last frame must still be readable.
        let (a, b) = pair().unwrap();
        a.send(&Frame::new(Kind::RequestHead, 1, b"unread".to_vec()))
            .unwrap();
        b.send(&Frame::new(Kind::Goodbye, 0, vec![])).unwrap();
        drop(b);
        let (f, _) = a.recv(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(f.header.kind, Kind::Goodbye);
        assert!(matches!(a.recv(None), Err(ChannelError::Closed)));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let (a, b) = pair().unwrap();
        socket::send(a.fd.as_raw_fd(), b"not a frame at all", MsgFlags::empty()).unwrap();
        assert!(matches!(b.recv(None), Err(ChannelError::Protocol(_))));
        assert!(!a.is_stale());
    }
}
