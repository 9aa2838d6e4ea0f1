//! Error-log lines from processes Apache's own logging does not reach: group supervisors
//! (whose stderr is the error log Apache opened) and daemon processes (whose stderr is a pipe
//! their supervisor relays, see `rwsgi_daemon::supervisor`). The lines look like Apache's.

use crate::level::Level;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// Apache's LogLevel for the wsgi module (APLOG_* number), set in the Apache parent before
/// supervisors fork and passed on to daemon processes, which honour it as Apache would.
pub static LOG_LEVEL: AtomicI32 = AtomicI32::new(Level::Warn as i32);

/// One line in the error log, if `level` passes LogLevel.
pub fn log(level: Level, msg: &str) {
    use std::io::Write;
    if !level.passes(LOG_LEVEL.load(Ordering::Relaxed)) {
        return;
    }
    let line = format_line(level, std::process::id() as i32, msg);
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// `[time] [wsgi:level] [pid N] msg\n`, the shape of Apache's own error-log lines.
pub fn format_line(level: Level, pid: i32, msg: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("[{}] [wsgi:{level}] [pid {pid}] {msg}\n", log_time(now))
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
fn log_time(t: Duration) -> String {
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

#[cfg(test)]
mod tests {
    #[test]
    fn own_lines_are_recognised() {
        let l = super::format_line(crate::Level::Info, 42, "hello");
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
        assert_eq!(super::log_time(t), "Mon Nov 23 20:19:53.000000 2026");
        assert_eq!(
            super::log_time(std::time::Duration::ZERO),
            "Thu Jan 01 00:00:00.000000 1970"
        );
    }
}
