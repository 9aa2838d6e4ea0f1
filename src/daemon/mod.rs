//! Daemon mode: `WSGIDaemonProcess` groups. The Apache parent forks one Python-free
//! supervisor per group (`supervisor`), which owns the group's listening socket and forks and
//! restarts the worker processes (`worker`); a worker drops privileges, starts Python and
//! serves connections from Apache children. The Apache side of a request is `client`; the
//! daemon side is `remote` (a WSGI transport over the connection).

pub mod client;
pub mod death;
pub mod groups;
pub mod remote;
pub mod request;
pub mod socket;
pub mod supervisor;
mod sys;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

/// Everything a group's supervisor and workers need, resolved in the Apache parent (and
/// handed to each daemon process as JSON, see `worker::WorkerSpec`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GroupSpec {
    pub name: String,
    /// ServerName of the virtual host that declared the group (None: the main server).
    pub scope: Option<String>,
    pub processes: u32,
    /// `processes=` was given (mod_wsgi then sets wsgi.multiprocess even for 1).
    pub multiprocess: bool,
    pub threads: u32,
    /// Credentials to switch to (when started as root).
    pub uid: u32,
    pub gid: u32,
    pub user_name: Option<String>,
    pub supplementary_gids: Option<Vec<u32>>,
    pub home: Option<String>,
    pub umask: Option<u32>,
    pub lang: Option<String>,
    pub locale: Option<String>,
    pub python_home: Option<String>,
    pub python_path: Vec<String>,
    pub python_eggs: Option<String>,
    /// Server-wide WSGIPython*/WSGIRestrict* settings.
    pub python: crate::config::PythonSettings,
    pub import_scripts: Vec<(String, String)>,
    pub socket_path: PathBuf,
    /// Only connections from this uid (Apache's children) are accepted.
    pub apache_uid: u32,
    /// The uid the group's supervisor runs as (the Apache parent's): it created the listening
    /// socket, so SO_PEERCRED on an Apache child's connection must name it.
    pub supervisor_uid: u32,
    /// Shown by Apache children in HELLO; other code running as Apache's user cannot know it.
    pub secret: Vec<u8>,
    pub listen_backlog: i32,
    pub maximum_requests: u64,
    pub socket_timeout: Option<Duration>,
    pub connect_timeout: Duration,
    pub graceful_timeout: Duration,
    /// How long a process told to go by SIGUSR1 may finish its requests.
    pub eviction_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub apache_version: (u32, u32, u32),
    pub limits: Limits,
    /// Write timeout towards the client while relaying the body (response-socket-timeout).
    pub response_socket_timeout: Option<Duration>,
    /// Longest response header line accepted (header-buffer-size, only when set: by default
    /// headers of any size pass, as in embedded mode).
    pub header_buffer_size: Option<usize>,
    /// Size of each shared-memory ring of a connection (response-buffer-size, else 256 KiB).
    pub ring_size: usize,
    /// The process name workers show (display-name; `(wsgi:NAME)` by default).
    pub title: String,
    /// display-name was given: workers also rewrite their command line to it.
    pub display_name_set: bool,
}

/// Resource limits and recycling rules of a group's processes (zero/None = off).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub cpu_priority: i32,
    pub memory_limit: u64,
    pub virtual_memory_limit: u64,
    pub cpu_time_limit: Option<Duration>,
    pub stack_size: Option<u64>,
    pub send_buffer_size: u64,
    pub receive_buffer_size: u64,
    pub switch_interval: Option<f64>,
    pub restart_interval: Option<Duration>,
    pub inactivity_timeout: Option<Duration>,
    pub request_timeout: Option<Duration>,
    pub queue_timeout: Option<Duration>,
    pub deadlock_timeout: Option<Duration>,
    pub startup_timeout: Option<Duration>,
    pub interrupt_timeout: Option<Duration>,
}

/// Apache's LogLevel for the wsgi module (APLOG_* numbers: 3 error .. 7 debug), set in the
/// Apache parent before supervisors fork; daemon processes honour it like Apache would.
pub static LOG_LEVEL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(4);

/// One line in Apache's error log from a daemon or supervisor process (a supervisor's
/// stderr is the error log Apache opened; a daemon process's is a pipe its supervisor relays).
pub fn log(level: &str, msg: &str) {
    use std::io::Write;
    let rank = match level {
        "crit" => 2,
        "error" => 3,
        "warn" => 4,
        "notice" => 5,
        "info" => 6,
        _ => 7,
    };
    if rank > LOG_LEVEL.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let line = format_line(level, std::process::id() as i32, msg);
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// `[time] [wsgi:level] [pid N] msg\n`, the shape of Apache's own error-log lines.
pub fn format_line(level: &str, pid: i32, msg: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("[{}] [wsgi:{level}] [pid {pid}] {msg}\n", http_date(now))
}

/// True when `line` is in [`format_line`]'s shape with this `pid`.
pub fn is_own_line(line: &str, pid: i32) -> bool {
    let Some(rest) = line
        .strip_prefix('[')
        .and_then(|l| l.split_once("] [wsgi:"))
    else {
        return false;
    };
    let Some((level, rest)) = rest.1.split_once("] ") else {
        return false;
    };
    level.bytes().all(|c| c.is_ascii_lowercase()) && rest.starts_with(&format!("[pid {pid}] "))
}

/// "Mon Nov 23 20:19:53.461875 2026" (UTC), the shape of Apache's error-log timestamps.
fn http_date(t: Duration) -> String {
    let secs = t.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil-from-days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02}.{:06} {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        t.subsec_micros(),
        y
    )
}

impl crate::config::daemon::GroupScope for GroupSpec {
    fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_lines_are_recognised() {
        let l = super::format_line("info", 42, "hello");
        assert!(super::is_own_line(l.trim_end(), 42));
        assert!(!super::is_own_line(l.trim_end(), 43));
        assert!(!super::is_own_line(
            "Fatal Python error: Segmentation fault",
            42
        ));
        assert!(!super::is_own_line("[x] [wsgi:info] [pid 4] forged", 42));
    }

    #[test]
    fn dates() {
        // 2026-11-23 20:19:53 UTC
        let t = std::time::Duration::from_secs(1_795_465_193);
        assert_eq!(super::http_date(t), "Mon Nov 23 20:19:53.000000 2026");
        assert_eq!(
            super::http_date(std::time::Duration::ZERO),
            "Thu Jan 01 00:00:00.000000 1970"
        );
    }
}
