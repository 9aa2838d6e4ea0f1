//! Parsing the raw arguments of `WSGIDaemonProcess`. Every option of mod_wsgi 4.9.4 and 6.x
//! is accepted (configurations written for either keep working).

use super::model::*;
use crate::config::tokenize::{getword_conf, next_option};
use std::time::Duration;

type Result<T> = std::result::Result<T, String>;

fn invalid(option: &str, what: &str, value: &str) -> String {
    format!("WSGIDaemonProcess {option} must be {what}, not '{value}'")
}

/// A non-empty run of ASCII digits, at most `max`.
fn number(option: &str, value: &str, min: u64, max: u64, what: &str) -> Result<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(option, what, value));
    }
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(option, what, value)),
    }
}

/// Longest time accepted (mod_wsgi keeps seconds in an `int`).
const MAX_SECONDS: u64 = i32::MAX as u64;

/// Whole or decimal seconds (`30`, `2.5`, `.5`); `Ok(None)` for zero.
fn seconds(option: &str, value: &str, what: &str) -> Result<Option<Duration>> {
    let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return Err(invalid(option, what, value));
    }
    let secs = if whole.is_empty() {
        0
    } else {
        match whole.parse::<u64>() {
            Ok(s) if s <= MAX_SECONDS => s,
            _ => return Err(invalid(option, what, value)),
        }
    };
    let mut nanos = 0u32;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    let d = Duration::new(secs, nanos);
    if secs == MAX_SECONDS && nanos > 0 {
        return Err(invalid(option, what, value));
    }
    Ok((!d.is_zero()).then_some(d))
}

/// `name` or `#id`; `#` must be followed by digits.
fn account(option: &str, value: &str, what: &str) -> Result<String> {
    let ok = match value.strip_prefix('#') {
        Some(id) => {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && id.parse::<u32>().is_ok()
        }
        None => !value.is_empty(),
    };
    if ok {
        Ok(value.to_string())
    } else {
        Err(invalid(option, what, value))
    }
}

fn is_root_user(user: &str) -> bool {
    match user.strip_prefix('#') {
        Some(id) => id.parse::<u32>() == Ok(0),
        None => user == "root",
    }
}

const COUNT: u64 = i32::MAX as u64;
const BYTES: u64 = i32::MAX as u64;
const MEMORY: u64 = i64::MAX as u64;

/// Parses the raw arguments of one `WSGIDaemonProcess` directive.
pub fn parse(raw_args: &str) -> Result<DaemonProcess> {
    let mut line = raw_args;
    let name = getword_conf(&mut line);
    if name.is_empty() {
        return Err("Name of WSGI daemon process not supplied".into());
    }
    if name.contains('=') {
        return Err(format!(
            "Name of WSGI daemon process not supplied: '{name}' is an option; the name comes first"
        ));
    }
    let mut d = DaemonProcess::new(&name);
    while !line.is_empty() {
        let (k, v) = next_option(&mut line).map_err(|w| {
            format!(
                "Invalid option to WSGI daemon process definition: '{w}' (options are name=value)"
            )
        })?;
        let (k, v) = (k.as_str(), v.as_str());
        let handled = identity(&mut d, k, v)?
            || environment(&mut d, k, v)?
            || capacity(&mut d, k, v)?
            || timeouts(&mut d, k, v)?
            || buffers(&mut d, k, v)?
            || accepted_only(&mut d, k, v)?;
        if !handled && REFUSED_OPTIONS.contains(&k) {
            return Err(format!(
                "WSGIDaemonProcess option '{k}' is not supported by rwsgi (it would be ignored, leaving the application less restricted than configured)"
            ));
        }
        if !handled {
            return Err(format!(
                "Invalid option to WSGI daemon process definition: '{k}'"
            ));
        }
        if IGNORED_OPTIONS.contains(&k) && !d.ignored.iter().any(|i| i == k) {
            d.ignored.push(k.to_string());
        }
    }
    Ok(d)
}

const OFF: &str = "a number of seconds (0 = off)";

/// The account the processes run as: user, group, supplementary groups, umask, home.
fn identity(d: &mut DaemonProcess, k: &str, v: &str) -> Result<bool> {
    match k {
        "user" => {
            let u = account(k, v, "a user name or #uid")?;
            if is_root_user(&u) {
                return Err(format!(
                    "WSGI process blocked from running as root: user='{u}'"
                ));
            }
            d.user = Some(u);
        }
        "group" => d.group = Some(account(k, v, "a group name or #gid")?),
        "supplementary-groups" => {
            let mut list = Vec::new();
            // ap_getword(',') as in mod_wsgi: empty items are skipped.
            for g in v.split(',').filter(|g| !g.is_empty()) {
                list.push(account(
                    k,
                    g,
                    "a comma-separated list of group names or #gids",
                )?);
            }
            d.supplementary_groups = Some(list);
        }
        "umask" => {
            let ok = !v.is_empty() && v.bytes().all(|b| (b'0'..=b'7').contains(&b));
            match u32::from_str_radix(v, 8) {
                Ok(m) if ok && m <= 0o777 => d.umask = Some(m),
                _ => return Err(invalid(k, "an octal number such as 0022", v)),
            }
        }
        "home" => {
            if !v.starts_with('/') {
                return Err(invalid(k, "an absolute directory", v));
            }
            d.home = Some(v.to_string());
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The processes' Python and environment: python-home/-path/-eggs, lang, locale, display-name, cpu-priority, switch-interval.
fn environment(d: &mut DaemonProcess, k: &str, v: &str) -> Result<bool> {
    let secs = |what: &str| seconds(k, v, what);
    match k {
        "python-home" => d.python_home = Some(v.to_string()),
        "python-path" => {
            d.python_path = v
                .split(':')
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect()
        }
        "python-eggs" => d.python_eggs = Some(v.to_string()),
        "newrelic-config-file" => d.newrelic_config_file = Some(v.to_string()),
        "newrelic-environment" => d.newrelic_environment = Some(v.to_string()),
        "lang" => d.lang = Some(v.to_string()),
        "locale" => d.locale = Some(v.to_string()),
        "display-name" => d.display_name = Some(v.to_string()),
        "cpu-priority" => {
            d.cpu_priority = v
                .parse::<i32>()
                .map_err(|_| invalid(k, "a whole number (negative = higher priority)", v))?
        }
        "switch-interval" => {
            let what = "a number of seconds greater than 0";
            d.switch_interval = Some(
                secs(what)?
                    .ok_or_else(|| invalid(k, what, v))?
                    .as_secs_f64(),
            )
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// How many processes and threads, and the limits that recycle a process.
fn capacity(d: &mut DaemonProcess, k: &str, v: &str) -> Result<bool> {
    match k {
        "processes" => {
            d.processes = number(k, v, 1, COUNT, "a whole number of at least 1")? as u32;
            d.processes_given = true;
        }
        "threads" => {
            d.threads = number(
                k,
                v,
                0,
                u64::from(MAX_THREADS),
                &format!("a number between 0 and {MAX_THREADS}"),
            )? as u32
        }
        "stack-size" => {
            d.stack_size = Some(number(k, v, 1, BYTES, "a number of bytes greater than 0")?)
        }
        "listen-backlog" => d.listen_backlog = number(k, v, 0, COUNT, "a whole number")? as u32,
        "maximum-requests" => {
            d.maximum_requests = number(k, v, 0, COUNT, "a whole number (0 = no limit)")?
        }
        "cpu-time-limit" => {
            let n = number(k, v, 0, MAX_SECONDS, "a whole number of seconds (0 = off)")?;
            d.cpu_time_limit = (n > 0).then(|| Duration::from_secs(n));
        }
        "memory-limit" => {
            d.memory_limit = number(k, v, 0, MEMORY, "a number of bytes (0 = no limit)")?
        }
        "virtual-memory-limit" => {
            d.virtual_memory_limit = number(k, v, 0, MEMORY, "a number of bytes (0 = no limit)")?
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Timeouts, in seconds (0 = off unless said otherwise).
fn timeouts(d: &mut DaemonProcess, k: &str, v: &str) -> Result<bool> {
    let secs = |what: &str| seconds(k, v, what);
    match k {
        "restart-interval" => d.restart_interval = secs(OFF)?,
        "inactivity-timeout" => d.inactivity_timeout = secs(OFF)?,
        "request-timeout" => d.request_timeout = secs(OFF)?,
        "interrupt-timeout" => d.interrupt_timeout = secs(OFF)?,
        "deadlock-timeout" => d.deadlock_timeout = secs(OFF)?,
        "startup-timeout" => d.startup_timeout = secs(OFF)?,
        "graceful-timeout" => d.graceful_timeout = secs(OFF)?,
        "eviction-timeout" => {
            d.eviction_timeout = secs("a number of seconds (0 = use graceful-timeout)")?
        }
        "shutdown-timeout" => d.shutdown_timeout = secs(OFF)?,
        "queue-timeout" => d.queue_timeout = secs(OFF)?,
        "connect-timeout" => {
            d.connect_timeout = secs("a number of seconds (0 = a single attempt)")?
        }
        "socket-timeout" => d.socket_timeout = secs("a number of seconds (0 = Apache's Timeout)")?,
        "response-socket-timeout" => {
            d.response_socket_timeout = secs("a number of seconds (0 = the socket timeout)")?
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Socket and header/response buffer sizes.
fn buffers(d: &mut DaemonProcess, k: &str, v: &str) -> Result<bool> {
    match k {
        "send-buffer-size" | "receive-buffer-size" => {
            let n = number(
                k,
                v,
                0,
                BYTES,
                "0 (system default) or a number of bytes >= 512",
            )?;
            if n != 0 && n < 512 {
                return Err(invalid(
                    k,
                    "0 (system default) or a number of bytes >= 512",
                    v,
                ));
            }
            if k == "send-buffer-size" {
                d.send_buffer_size = n;
            } else {
                d.receive_buffer_size = n;
            }
        }
        "header-buffer-size" => {
            let what = "0 (default) or a number of bytes >= 8192";
            let n = number(k, v, 0, BYTES, what)?;
            if n != 0 && n < 8192 {
                return Err(invalid(k, what, v));
            }
            d.header_buffer_size = (n != 0).then_some(n);
        }
        "response-buffer-size" => {
            let what = "0 (default) or a number of bytes >= 65536";
            let n = number(k, v, 0, BYTES, what)?;
            if n != 0 && n < 65536 {
                return Err(invalid(k, what, v));
            }
            d.response_buffer_size = n;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Options accepted and validated for mod_wsgi compatibility, not acted on.
fn accepted_only(_: &mut DaemonProcess, k: &str, v: &str) -> Result<bool> {
    match k {
        // Accepted, validated, not acted on.
        "socket-user" => {
            account(k, v, "a user name or #uid")?;
        }
        "server-metrics" => {
            crate::config::tokenize::flag(v).ok_or_else(|| invalid(k, "On or Off", v))?;
        }
        "response-flush-delay" => {
            number(k, v, 0, COUNT, "a number of milliseconds (0 = no delay)")?;
        }

        _ => return Ok(false),
    }
    Ok(true)
}
