//! What daemon processes write to stdout and stderr, relayed line by line to Apache's error
//! log by their supervisor (a daemon process never holds a log file opened by root).

use rwsgi_core::Level;

/// What a daemon process writes to stderr, line by line on its way to the error log.
pub struct Output {
    pub pid: i32,
    pub fd: std::os::fd::OwnedFd,
    pub partial: Vec<u8>,
}

/// The longest line relayed as is (Apache's own error-log line limit is 8 KiB).
const MAX_LINE: usize = 8000;

impl Output {
    /// Reads what is there; false at EOF (every writer has closed it).
    pub fn pump(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(0) => {
                    self.flush_partial();
                    return false;
                }
                Ok(n) => {
                    self.partial.extend_from_slice(&buf[..n]);
                    while let Some(nl) = self.partial.iter().position(|&c| c == b'\n') {
                        let line: Vec<u8> = self.partial.drain(..=nl).collect();
                        relay(self.pid, &line[..line.len() - 1]);
                    }
                    if self.partial.len() > MAX_LINE {
                        self.flush_partial();
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return true,
            }
        }
    }

    fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            relay(self.pid, &line);
        }
    }
}

/// Writes one line a daemon process produced to the error log. A line in rwsgi's own format
/// with this process's pid goes as it is; anything else (a C library, Python's faulthandler,
/// a line claiming another pid) is wrapped in that format with the true pid. Control bytes
/// are escaped, as Apache escapes its own log items.
fn relay(pid: i32, line: &[u8]) {
    use std::io::Write;
    let mut bytes = Vec::with_capacity(line.len().min(MAX_LINE) + 16);
    for &c in line.iter().take(MAX_LINE) {
        if c == b'\t' || (c >= 0x20 && c != 0x7f) {
            bytes.push(c);
        } else {
            bytes.extend_from_slice(format!("\\x{c:02x}").as_bytes());
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let out = if rwsgi_core::errlog::is_own_line(&text, pid) {
        format!("{text}\n")
    } else {
        rwsgi_core::errlog::format_line(Level::Error, pid, &text)
    };
    let _ = std::io::stderr().write_all(out.as_bytes());
}
