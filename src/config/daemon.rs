//! `WSGIDaemonProcess name [option=value ...]`: one daemon process group, typed, with
//! mod_wsgi's defaults. Every option of mod_wsgi 4.9.4 and 6.x is accepted (configurations
//! written for either keep working); values are checked more strictly than mod_wsgi's
//! `atoi()` (`threads=x` is an error here, 0 there). Also: which group a request may use
//! ([`resolve_process_group`]) and the server-wide uniqueness of names ([`check_unique`]).

use super::model::ServerConfig;
use super::tokenize::{getword_conf, next_option};
use std::time::Duration;

pub const DEFAULT_PROCESSES: u32 = 1;
pub const DEFAULT_THREADS: u32 = 15;
/// mod_wsgi: `threads < WSGI_STACK_LAST - 1` with `WSGI_STACK_LAST = 0xffff`.
pub const MAX_THREADS: u32 = 65533;
pub const DEFAULT_LISTEN_BACKLOG: u32 = 100;
pub const DEFAULT_GRACEFUL_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_DEADLOCK_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// What `header-buffer-size=0` (the default) stands for in mod_wsgi.
pub const DEFAULT_HEADER_BUFFER_SIZE: u64 = 32_768;

/// Options that are parsed and validated but that rwsgi does not act on (yet). When one is
/// given, its name lands in [`DaemonProcess::ignored`] so that the runtime logs it once.
pub const IGNORED_OPTIONS: &[&str] = &[
    // Owner of the group's socket (ITK / mod_ruid2 setups). rwsgi's socket is reachable by
    // Apache's User only, so such setups fail closed (503), never open.
    "socket-user",
    // mod_wsgi.server_metrics() (Apache scoreboard) is not provided.
    "server-metrics",
    // 6.x: linger before flushing when the daemon socket runs dry (mod_ratelimit). rwsgi's
    // framed responses flush on the daemon's own boundaries.
    "response-flush-delay",
    // <= 5.x: built-in New Relic agent bootstrap.
    "newrelic-config-file",
    "newrelic-environment",
];

/// Options mod_wsgi accepts that rwsgi refuses: ignoring them would run applications with
/// less isolation or access control than the configuration asks for (the same policy as for
/// directives that are not implemented yet).
pub const REFUSED_OPTIONS: &[&str] = &["chroot", "script-user", "script-group"];

/// One `WSGIDaemonProcess` group. Time options are `None` when off (mod_wsgi's 0); the few
/// whose `None` means "fall back to something else" say so.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonProcess {
    pub name: String,
    /// Where the group was declared: `None` = the main server, `Some(ServerName)` = a virtual
    /// host. Set by the Apache layer once ServerNames are final, through
    /// [`ServerConfig::set_daemon_scope`]; see [`DaemonProcess::accessible_from`].
    pub scope: Option<String>,

    // Identity / environment.
    /// `user=name|#uid`; `None` = Apache's `User`. Never `root` / `#0`.
    pub user: Option<String>,
    /// `group=name|#gid`; `None` = Apache's `Group`.
    pub group: Option<String>,
    /// `supplementary-groups=g1,g2` (names or `#gid`). `None` = `initgroups(user)`;
    /// `Some(list)` = exactly the primary group plus `list` (an empty value gives no
    /// supplementary groups at all, as in mod_wsgi).
    pub supplementary_groups: Option<Vec<String>>,
    /// `umask=0nnn` (octal); `None` = inherited.
    pub umask: Option<u32>,
    /// `home=/dir`: initial working directory.
    pub home: Option<String>,
    pub python_home: Option<String>,
    /// `python-path=dir:dir` (empty entries dropped).
    pub python_path: Vec<String>,
    pub python_eggs: Option<String>,
    pub lang: Option<String>,
    pub locale: Option<String>,
    /// `display-name=...` as written (`%{GROUP}` kept); see [`DaemonProcess::process_title`].
    pub display_name: Option<String>,
    /// `cpu-priority=n` for `setpriority()` (the kernel clamps it to -20..19).
    pub cpu_priority: i32,
    /// `switch-interval=s` (6.x): sys.setswitchinterval() in the group's processes.
    pub switch_interval: Option<f64>,

    // Capacity.
    pub processes: u32,
    /// `processes=` was given (mod_wsgi then sets wsgi.multiprocess, even for 1).
    pub processes_given: bool,
    /// 0 = "service script" mode: only WSGIImportScript code runs, no request is accepted.
    pub threads: u32,
    /// `stack-size=bytes`; `None` = the OS default.
    pub stack_size: Option<u64>,
    pub listen_backlog: u32,

    // Recycling and timeouts.
    /// 0 = no limit.
    pub maximum_requests: u64,
    pub restart_interval: Option<Duration>,
    pub inactivity_timeout: Option<Duration>,
    pub request_timeout: Option<Duration>,
    /// 6.x.
    pub interrupt_timeout: Option<Duration>,
    /// Default 300 s.
    pub deadlock_timeout: Option<Duration>,
    pub startup_timeout: Option<Duration>,
    /// Default 15 s; `None` = recycle without waiting for requests to finish.
    pub graceful_timeout: Option<Duration>,
    /// `None` = use `graceful_timeout` (see [`DaemonProcess::effective_eviction_timeout`]).
    pub eviction_timeout: Option<Duration>,
    /// Default 5 s; `None` = never force the exit of a process that is shutting down.
    pub shutdown_timeout: Option<Duration>,
    /// `RLIMIT_CPU` in whole seconds.
    pub cpu_time_limit: Option<Duration>,
    /// `RLIMIT_DATA` in bytes; 0 = none.
    pub memory_limit: u64,
    /// `RLIMIT_AS` in bytes; 0 = none.
    pub virtual_memory_limit: u64,

    // Apache child <-> daemon transport.
    /// Default 15 s; `None` = a single connection attempt.
    pub connect_timeout: Option<Duration>,
    /// `None` = Apache's `Timeout` (see [`DaemonProcess::effective_socket_timeout`]).
    pub socket_timeout: Option<Duration>,
    pub queue_timeout: Option<Duration>,
    /// `None` = the socket timeout (see [`DaemonProcess::effective_response_socket_timeout`]).
    pub response_socket_timeout: Option<Duration>,
    /// `SO_SNDBUF`; 0 = OS default, else >= 512.
    pub send_buffer_size: u64,
    /// `SO_RCVBUF`; 0 = OS default, else >= 512.
    pub receive_buffer_size: u64,
    /// Longest response header line; 0 = [`DEFAULT_HEADER_BUFFER_SIZE`], else >= 8192.
    pub header_buffer_size: u64,
    /// 0 = the implementation's default, else >= 65536.
    pub response_buffer_size: u64,

    /// Names of the given options rwsgi does not act on ([`IGNORED_OPTIONS`]), each once, in
    /// the order first given.
    pub ignored: Vec<String>,
}

impl DaemonProcess {
    /// A group with every option at mod_wsgi's default.
    pub fn new(name: &str) -> DaemonProcess {
        DaemonProcess {
            name: name.to_string(),
            scope: None,
            user: None,
            group: None,
            supplementary_groups: None,
            umask: None,
            home: None,
            python_home: None,
            python_path: Vec::new(),
            python_eggs: None,
            lang: None,
            locale: None,
            display_name: None,
            cpu_priority: 0,
            switch_interval: None,
            processes: DEFAULT_PROCESSES,
            processes_given: false,
            threads: DEFAULT_THREADS,
            stack_size: None,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            maximum_requests: 0,
            restart_interval: None,
            inactivity_timeout: None,
            request_timeout: None,
            interrupt_timeout: None,
            deadlock_timeout: Some(DEFAULT_DEADLOCK_TIMEOUT),
            startup_timeout: None,
            graceful_timeout: Some(DEFAULT_GRACEFUL_TIMEOUT),
            eviction_timeout: None,
            shutdown_timeout: Some(DEFAULT_SHUTDOWN_TIMEOUT),
            cpu_time_limit: None,
            memory_limit: 0,
            virtual_memory_limit: 0,
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            socket_timeout: None,
            queue_timeout: None,
            response_socket_timeout: None,
            send_buffer_size: 0,
            receive_buffer_size: 0,
            header_buffer_size: 0,
            response_buffer_size: 0,
            ignored: Vec::new(),
        }
    }

    /// The process title mod_wsgi would set: `%{GROUP}` (the whole value, as in mod_wsgi)
    /// becomes `(wsgi:NAME)`, anything else is used as written; `None` keeps argv[0].
    pub fn process_title(&self) -> Option<String> {
        self.display_name.as_deref().map(|d| {
            if d == "%{GROUP}" {
                format!("(wsgi:{})", self.name)
            } else {
                d.to_string()
            }
        })
    }

    /// Grace period after a SIGUSR1 eviction (`eviction-timeout`, else `graceful-timeout`).
    pub fn effective_eviction_timeout(&self) -> Option<Duration> {
        self.eviction_timeout.or(self.graceful_timeout)
    }

    /// Read/write timeout on the Apache child <-> daemon socket.
    pub fn effective_socket_timeout(&self, apache_timeout: Duration) -> Duration {
        self.socket_timeout.unwrap_or(apache_timeout)
    }

    /// Write timeout towards the HTTP client while the response body is proxied.
    pub fn effective_response_socket_timeout(&self, apache_timeout: Duration) -> Duration {
        self.response_socket_timeout
            .unwrap_or_else(|| self.effective_socket_timeout(apache_timeout))
    }

    /// Longest response header line accepted from the daemon.
    pub fn effective_header_buffer_size(&self) -> u64 {
        if self.header_buffer_size == 0 {
            DEFAULT_HEADER_BUFFER_SIZE
        } else {
            self.header_buffer_size
        }
    }

    /// Whether a request from the virtual host whose ServerName is `request_server_name` may
    /// use this group: groups of the main server are open to all, a virtual host's group only
    /// to virtual hosts with the same ServerName (mod_wsgi's rule).
    pub fn accessible_from(&self, request_server_name: &str) -> bool {
        is_accessible(self.scope.as_deref(), request_server_name)
    }
}

/// [`DaemonProcess::accessible_from`] for a runtime table that keeps only the scope.
pub fn is_accessible(scope: Option<&str>, request_server_name: &str) -> bool {
    scope.is_none_or(|s| s == request_server_name)
}

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
        let secs = |what: &str| seconds(k, v, what);
        const OFF: &str = "a number of seconds (0 = off)";
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
            "python-home" => d.python_home = Some(v.to_string()),
            "python-path" => {
                d.python_path = v
                    .split(':')
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect()
            }
            "python-eggs" => d.python_eggs = Some(v.to_string()),
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
            "socket-timeout" => {
                d.socket_timeout = secs("a number of seconds (0 = Apache's Timeout)")?
            }
            "response-socket-timeout" => {
                d.response_socket_timeout = secs("a number of seconds (0 = the socket timeout)")?
            }
            "cpu-time-limit" => {
                let n = number(k, v, 0, MAX_SECONDS, "a whole number of seconds (0 = off)")?;
                d.cpu_time_limit = (n > 0).then(|| Duration::from_secs(n));
            }
            "memory-limit" => {
                d.memory_limit = number(k, v, 0, MEMORY, "a number of bytes (0 = no limit)")?
            }
            "virtual-memory-limit" => {
                d.virtual_memory_limit =
                    number(k, v, 0, MEMORY, "a number of bytes (0 = no limit)")?
            }
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
                d.header_buffer_size = n;
            }
            "response-buffer-size" => {
                let what = "0 (default) or a number of bytes >= 65536";
                let n = number(k, v, 0, BYTES, what)?;
                if n != 0 && n < 65536 {
                    return Err(invalid(k, what, v));
                }
                d.response_buffer_size = n;
            }
            // Accepted, validated, not acted on.
            "socket-user" => {
                account(k, v, "a user name or #uid")?;
            }
            "server-metrics" => {
                super::tokenize::flag(v).ok_or_else(|| invalid(k, "On or Off", v))?;
            }
            "response-flush-delay" => {
                number(k, v, 0, COUNT, "a number of milliseconds (0 = no delay)")?;
            }
            "newrelic-config-file" | "newrelic-environment" => {}
            _ if REFUSED_OPTIONS.contains(&k) => {
                return Err(format!(
                    "WSGIDaemonProcess option '{k}' is not supported by rwsgi (it would be ignored, leaving the application less restricted than configured)"
                ));
            }
            _ => {
                return Err(format!(
                    "Invalid option to WSGI daemon process definition: '{k}'"
                ));
            }
        }
        if IGNORED_OPTIONS.contains(&k) && !d.ignored.iter().any(|i| i == k) {
            d.ignored.push(k.to_string());
        }
    }
    Ok(d)
}

/// Daemon process group names are unique server-wide (mod_wsgi: "Name duplicates previous
/// WSGI daemon definition"). Each server's own declarations are checked as they are parsed;
/// this checks across the main server and all virtual hosts once they are known.
pub fn check_unique(servers: &[&ServerConfig]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for d in servers.iter().flat_map(|s| s.daemons.iter()) {
        if !seen.insert(d.name.as_str()) {
            return Err(format!(
                "Name duplicates previous WSGI daemon definition: '{}' (daemon process group names must be unique across the main server and all virtual hosts)",
                d.name
            ));
        }
    }
    Ok(())
}

/// The daemon process group names one reading of the configuration declares, and where each
/// was declared (`file:line`).
#[derive(Debug, Default)]
pub struct GroupNames(Vec<(String, String)>);

impl GroupNames {
    pub const fn new() -> GroupNames {
        GroupNames(Vec::new())
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Claims `name` for the declaration at `place`; a name claimed before is an error.
    pub fn claim(&mut self, name: &str, place: &str) -> Result<()> {
        if let Some((_, first)) = self.0.iter().find(|(n, _)| n == name) {
            return Err(format!(
                "Name duplicates previous WSGI daemon definition: '{name}' (first declared at {first}; daemon process group names must be unique across the main server and all virtual hosts)"
            ));
        }
        self.0.push((name.to_string(), place.to_string()));
        Ok(())
    }
}

/// The group called `name` among those the servers declare.
pub fn find_daemon<'a>(servers: &[&'a ServerConfig], name: &str) -> Option<&'a DaemonProcess> {
    servers
        .iter()
        .flat_map(|s| s.daemons.iter())
        .find(|d| d.name == name)
}

/// Anything that knows where its daemon process group was declared (`None` = main server),
/// so that [`resolve_process_group`] works on [`DaemonProcess`] as well as on the runtime's
/// own group table.
pub trait GroupScope {
    fn scope(&self) -> Option<&str>;
}

impl GroupScope for DaemonProcess {
    fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

impl<T: GroupScope + ?Sized> GroupScope for &T {
    fn scope(&self) -> Option<&str> {
        (**self).scope()
    }
}

impl<T: GroupScope + ?Sized> GroupScope for std::sync::Arc<T> {
    fn scope(&self) -> Option<&str> {
        (**self).scope()
    }
}

/// Decides which daemon process group serves a request, with mod_wsgi's rules and messages:
///
/// * `requested` is the process group after `%{...}` expansion; `""` (or an unexpanded
///   `%{GLOBAL}`) means embedded mode and gives `Ok(None)`.
/// * `restrict` is the WSGIRestrictProcess list in force (`%{GLOBAL}` already stored as `""`).
///   As in mod_wsgi it is checked first, so it can refuse embedded mode too, and names compare
///   ASCII-case-insensitively (mod_wsgi keeps the list in an APR table).
/// * `lookup` finds a declared group by its exact name.
/// * A group declared in a virtual host serves only virtual hosts with the same ServerName
///   (`request_server_name`); groups of the main server serve everyone.
///
/// The messages carry no trailing period so that callers can append the script's path.
pub fn resolve_process_group<G: GroupScope>(
    requested: &str,
    restrict: Option<&[String]>,
    request_server_name: &str,
    lookup: impl FnOnce(&str) -> Option<G>,
) -> Result<Option<G>> {
    let requested = if requested == "%{GLOBAL}" {
        ""
    } else {
        requested
    };
    if let Some(allowed) = restrict
        && !allowed.iter().any(|a| a.eq_ignore_ascii_case(requested))
    {
        return Err(format!(
            "Daemon process called '{requested}' cannot be accessed by this WSGI application as not a member of allowed groups"
        ));
    }
    if requested.is_empty() {
        return Ok(None);
    }
    let Some(group) = lookup(requested) else {
        return Err(format!(
            "No WSGI daemon process called '{requested}' has been configured"
        ));
    };
    if !is_accessible(group.scope(), request_server_name) {
        return Err(format!(
            "Daemon process called '{requested}' cannot be accessed by this WSGI application"
        ));
    }
    Ok(Some(group))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    fn err(raw: &str) -> String {
        parse(raw).expect_err(raw)
    }

    #[test]
    fn defaults() {
        let d = parse("site").unwrap();
        assert_eq!(d, DaemonProcess::new("site"));
        assert_eq!(d.name, "site");
        assert_eq!(d.scope, None);
        assert_eq!((d.processes, d.processes_given, d.threads), (1, false, 15));
        assert_eq!(d.listen_backlog, 100);
        assert_eq!(d.maximum_requests, 0);
        assert_eq!(d.graceful_timeout, secs(15));
        assert_eq!(d.shutdown_timeout, secs(5));
        assert_eq!(d.deadlock_timeout, secs(300));
        assert_eq!(d.connect_timeout, secs(15));
        for t in [
            d.restart_interval,
            d.inactivity_timeout,
            d.request_timeout,
            d.interrupt_timeout,
            d.startup_timeout,
            d.eviction_timeout,
            d.socket_timeout,
            d.queue_timeout,
            d.response_socket_timeout,
            d.cpu_time_limit,
        ] {
            assert_eq!(t, None);
        }
        assert_eq!(d.user, None);
        assert_eq!(d.group, None);
        assert_eq!(d.supplementary_groups, None);
        assert_eq!(d.umask, None);
        assert_eq!(d.stack_size, None);
        assert_eq!(d.cpu_priority, 0);
        assert!(d.python_path.is_empty());
        assert_eq!((d.memory_limit, d.virtual_memory_limit), (0, 0));
        assert_eq!(
            (
                d.send_buffer_size,
                d.receive_buffer_size,
                d.header_buffer_size,
                d.response_buffer_size
            ),
            (0, 0, 0, 0)
        );
        assert!(d.ignored.is_empty());
        assert_eq!(d.process_title(), None);
        assert_eq!(d.effective_eviction_timeout(), secs(15));
        let apache = Duration::from_secs(60);
        assert_eq!(d.effective_socket_timeout(apache), apache);
        assert_eq!(d.effective_response_socket_timeout(apache), apache);
        assert_eq!(d.effective_header_buffer_size(), 32_768);
    }

    #[test]
    fn every_option() {
        let d = parse(
            "'my site' user=www-data group=#33 supplementary-groups=ssl-cert,,#44 umask=0027 \
             home=/srv/app python-home=/srv/venv python-path=/srv/app::/srv/lib \
             python-eggs=/tmp/eggs lang=en_US.UTF-8 locale=C.UTF-8 display-name='%{GROUP}' \
             cpu-priority=-5 processes=1 threads=0 stack-size=524288 listen-backlog=50 \
             maximum-requests=1000 restart-interval=3600 inactivity-timeout=300 \
             request-timeout=60 interrupt-timeout=2.5 deadlock-timeout=0 startup-timeout=15 \
             graceful-timeout=0 eviction-timeout=7 shutdown-timeout=0 cpu-time-limit=100 \
             memory-limit=1000000000 virtual-memory-limit=2000000000 connect-timeout=0 \
             socket-timeout=30 queue-timeout=45 response-socket-timeout=10 \
             send-buffer-size=512 receive-buffer-size=1048576 header-buffer-size=65536 \
             response-buffer-size=65536",
        )
        .unwrap();
        assert_eq!(d.name, "my site");
        assert_eq!(d.user.as_deref(), Some("www-data"));
        assert_eq!(d.group.as_deref(), Some("#33"));
        assert_eq!(
            d.supplementary_groups,
            Some(vec!["ssl-cert".to_string(), "#44".to_string()])
        );
        assert_eq!(d.umask, Some(0o027));
        assert_eq!(d.home.as_deref(), Some("/srv/app"));
        assert_eq!(d.python_home.as_deref(), Some("/srv/venv"));
        assert_eq!(d.python_path, vec!["/srv/app", "/srv/lib"]);
        assert_eq!(d.python_eggs.as_deref(), Some("/tmp/eggs"));
        assert_eq!(d.lang.as_deref(), Some("en_US.UTF-8"));
        assert_eq!(d.locale.as_deref(), Some("C.UTF-8"));
        assert_eq!(d.display_name.as_deref(), Some("%{GROUP}"));
        assert_eq!(d.process_title().as_deref(), Some("(wsgi:my site)"));
        assert_eq!(d.cpu_priority, -5);
        assert_eq!((d.processes, d.processes_given, d.threads), (1, true, 0));
        assert_eq!(d.stack_size, Some(524_288));
        assert_eq!(d.listen_backlog, 50);
        assert_eq!(d.maximum_requests, 1000);
        assert_eq!(d.restart_interval, secs(3600));
        assert_eq!(d.inactivity_timeout, secs(300));
        assert_eq!(d.request_timeout, secs(60));
        assert_eq!(d.interrupt_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(d.deadlock_timeout, None);
        assert_eq!(d.startup_timeout, secs(15));
        assert_eq!(d.graceful_timeout, None);
        assert_eq!(d.eviction_timeout, secs(7));
        assert_eq!(d.effective_eviction_timeout(), secs(7));
        assert_eq!(d.shutdown_timeout, None);
        assert_eq!(d.cpu_time_limit, secs(100));
        assert_eq!(d.memory_limit, 1_000_000_000);
        assert_eq!(d.virtual_memory_limit, 2_000_000_000);
        assert_eq!(d.connect_timeout, None);
        assert_eq!(d.socket_timeout, secs(30));
        assert_eq!(d.queue_timeout, secs(45));
        assert_eq!(d.response_socket_timeout, secs(10));
        assert_eq!(d.send_buffer_size, 512);
        assert_eq!(d.receive_buffer_size, 1_048_576);
        assert_eq!(d.header_buffer_size, 65_536);
        assert_eq!(d.effective_header_buffer_size(), 65_536);
        assert_eq!(d.response_buffer_size, 65_536);
        assert!(d.ignored.is_empty());
        let apache = Duration::from_secs(60);
        assert_eq!(d.effective_socket_timeout(apache), Duration::from_secs(30));
        assert_eq!(
            d.effective_response_socket_timeout(apache),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn fallbacks() {
        let d = parse("g socket-timeout=30").unwrap();
        let apache = Duration::from_secs(300);
        assert_eq!(
            d.effective_response_socket_timeout(apache),
            Duration::from_secs(30)
        );
        let d = parse("g graceful-timeout=4 eviction-timeout=0").unwrap();
        assert_eq!(d.effective_eviction_timeout(), secs(4));
        let d = parse("g supplementary-groups=").unwrap();
        assert_eq!(d.supplementary_groups, Some(vec![]));
        // Later options win, as in mod_wsgi.
        let d = parse("g threads=3 threads=4").unwrap();
        assert_eq!(d.threads, 4);
    }

    #[test]
    fn quoting_and_display_name() {
        let d = parse("g display-name='%{GROUP}'").unwrap();
        assert_eq!(d.display_name.as_deref(), Some("%{GROUP}"));
        assert_eq!(d.process_title().as_deref(), Some("(wsgi:g)"));
        let d = parse(r#"g display-name="my app (%{GROUP})" python-path='/a b:/c'"#).unwrap();
        // Only the whole value %{GROUP} is expanded (mod_wsgi compares with strcmp).
        assert_eq!(d.process_title().as_deref(), Some("my app (%{GROUP})"));
        assert_eq!(d.python_path, vec!["/a b", "/c"]);
        let d = parse("g display-name=httpd-app").unwrap();
        assert_eq!(d.process_title().as_deref(), Some("httpd-app"));
    }

    #[test]
    fn decimal_seconds() {
        let d = parse("g request-timeout=1.5 queue-timeout=.25 socket-timeout=7.").unwrap();
        assert_eq!(d.request_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(d.queue_timeout, Some(Duration::from_millis(250)));
        assert_eq!(d.socket_timeout, secs(7));
        let d = parse("g request-timeout=0.0 switch-interval=0.002").unwrap();
        assert_eq!(d.request_timeout, None);
        assert_eq!(d.switch_interval, Some(0.002));
        let d = parse("g inactivity-timeout=0.000000001").unwrap();
        assert_eq!(d.inactivity_timeout, Some(Duration::from_nanos(1)));
    }

    #[test]
    fn name_required() {
        assert_eq!(err(""), "Name of WSGI daemon process not supplied");
        assert_eq!(err("  ''  "), "Name of WSGI daemon process not supplied");
        assert!(err("threads=5").contains("'threads=5' is an option"));
    }

    #[test]
    fn unknown_and_malformed_options() {
        assert_eq!(
            err("g bogus-option=1"),
            "Invalid option to WSGI daemon process definition: 'bogus-option'"
        );
        assert!(
            err("g threads")
                .contains("Invalid option to WSGI daemon process definition: 'threads'")
        );
        assert!(err("g =5").contains("'=5'"));
        // Option names are case-sensitive in mod_wsgi.
        assert!(err("g Threads=5").contains("'Threads'"));
    }

    #[test]
    fn bad_counts() {
        assert_eq!(
            err("g threads=x"),
            "WSGIDaemonProcess threads must be a number between 0 and 65533, not 'x'"
        );
        for bad in ["65534", "-1", "", "1.5", "+3", "99999999999999999999999"] {
            assert!(err(&format!("g threads={bad}")).contains(&format!("not '{bad}'")));
        }
        assert_eq!(parse("g threads=65533").unwrap().threads, 65533);
        for bad in ["0", "-2", "x", "", "2147483648"] {
            assert!(
                err(&format!("g processes={bad}"))
                    .starts_with("WSGIDaemonProcess processes must be"),
                "{bad}"
            );
        }
        for opt in ["maximum-requests", "listen-backlog"] {
            for bad in ["-1", "x", "", "1e3"] {
                let e = err(&format!("g {opt}={bad}"));
                assert!(
                    e.starts_with(&format!("WSGIDaemonProcess {opt} must be")),
                    "{e}"
                );
                assert!(e.ends_with(&format!("not '{bad}'")), "{e}");
            }
        }
        assert!(err("g stack-size=0").contains("stack-size"));
        assert!(err("g stack-size=big").contains("stack-size"));
        assert!(err("g cpu-priority=high").contains("cpu-priority"));
        assert_eq!(parse("g cpu-priority=+3").unwrap().cpu_priority, 3);
    }

    #[test]
    fn bad_times() {
        for opt in [
            "restart-interval",
            "inactivity-timeout",
            "request-timeout",
            "interrupt-timeout",
            "deadlock-timeout",
            "startup-timeout",
            "graceful-timeout",
            "eviction-timeout",
            "shutdown-timeout",
            "queue-timeout",
            "connect-timeout",
            "socket-timeout",
            "response-socket-timeout",
            "cpu-time-limit",
        ] {
            for bad in [
                "-1",
                "x",
                "",
                ".",
                "1e3",
                "1.2.3",
                "inf",
                "5s",
                "9999999999",
            ] {
                let e = err(&format!("g {opt}={bad}"));
                assert!(
                    e.starts_with(&format!("WSGIDaemonProcess {opt} must be")),
                    "{opt}={bad}: {e}"
                );
                assert!(e.ends_with(&format!("not '{bad}'")), "{e}");
            }
            // Zero turns every one of them off.
            let d = parse(&format!("g {opt}=0")).unwrap();
            let t = match opt {
                "restart-interval" => d.restart_interval,
                "inactivity-timeout" => d.inactivity_timeout,
                "request-timeout" => d.request_timeout,
                "interrupt-timeout" => d.interrupt_timeout,
                "deadlock-timeout" => d.deadlock_timeout,
                "startup-timeout" => d.startup_timeout,
                "graceful-timeout" => d.graceful_timeout,
                "eviction-timeout" => d.eviction_timeout,
                "shutdown-timeout" => d.shutdown_timeout,
                "queue-timeout" => d.queue_timeout,
                "connect-timeout" => d.connect_timeout,
                "socket-timeout" => d.socket_timeout,
                "response-socket-timeout" => d.response_socket_timeout,
                _ => d.cpu_time_limit,
            };
            assert_eq!(t, None, "{opt}");
        }
        // cpu-time-limit is an rlimit: whole seconds only.
        assert!(err("g cpu-time-limit=1.5").contains("whole number of seconds"));
        assert_eq!(
            parse("g request-timeout=2147483647")
                .unwrap()
                .request_timeout,
            secs(2_147_483_647)
        );
        assert!(err("g request-timeout=2147483647.5").contains("request-timeout"));
        for bad in ["0", "-1", "x"] {
            assert!(err(&format!("g switch-interval={bad}")).contains("switch-interval"));
        }
    }

    #[test]
    fn bad_sizes() {
        for (opt, min) in [
            ("send-buffer-size", 512),
            ("receive-buffer-size", 512),
            ("header-buffer-size", 8192),
            ("response-buffer-size", 65536),
        ] {
            assert!(parse(&format!("g {opt}=0")).is_ok());
            assert!(parse(&format!("g {opt}={min}")).is_ok());
            for bad in [format!("{}", min - 1), "1".into(), "-1".into(), "x".into()] {
                let e = err(&format!("g {opt}={bad}"));
                assert!(
                    e.starts_with(&format!("WSGIDaemonProcess {opt} must be")),
                    "{e}"
                );
                assert!(e.contains(&format!(">= {min}")), "{e}");
            }
            assert!(err(&format!("g {opt}=2147483648")).contains(opt));
        }
        for opt in ["memory-limit", "virtual-memory-limit"] {
            assert!(parse(&format!("g {opt}=9223372036854775807")).is_ok());
            for bad in ["-1", "x", "", "9223372036854775808", "1G"] {
                assert!(err(&format!("g {opt}={bad}")).contains(opt));
            }
        }
    }

    #[test]
    fn identity_values() {
        for root in ["root", "#0", "#00"] {
            assert_eq!(
                err(&format!("g user={root}")),
                format!("WSGI process blocked from running as root: user='{root}'")
            );
        }
        assert_eq!(
            parse("g user=#1000").unwrap().user.as_deref(),
            Some("#1000")
        );
        for bad in ["", "#", "#x", "#-1", "#4294967296"] {
            assert!(
                err(&format!("g user={bad}")).contains("user must be"),
                "{bad}"
            );
            assert!(
                err(&format!("g group={bad}")).contains("group must be"),
                "{bad}"
            );
        }
        // A gid of 0 is allowed, as in mod_wsgi.
        assert_eq!(parse("g group=#0").unwrap().group.as_deref(), Some("#0"));
        assert!(err("g supplementary-groups=a,#x").contains("supplementary-groups"));
        for bad in ["", "0999", "abc", "-022", "01000", "0x12"] {
            assert!(
                err(&format!("g umask={bad}")).contains("umask must be"),
                "{bad}"
            );
        }
        assert_eq!(parse("g umask=0777").unwrap().umask, Some(0o777));
        assert_eq!(parse("g umask=2").unwrap().umask, Some(2));
        assert!(err("g home=relative/dir").contains("home must be an absolute directory"));
        assert!(err("g home=").contains("home"));
    }

    #[test]
    fn ignored_and_refused_options() {
        let d = parse(
            "g socket-user=#33 server-metrics=On response-flush-delay=0 switch-interval=0.01 \
             newrelic-config-file=/etc/nr.ini newrelic-environment=prod server-metrics=off",
        )
        .unwrap();
        assert_eq!(
            d.ignored,
            vec![
                "socket-user",
                "server-metrics",
                "response-flush-delay",
                "newrelic-config-file",
                "newrelic-environment"
            ]
        );
        assert_eq!(d.switch_interval, Some(0.01));
        // Ignored options are still validated.
        assert!(err("g server-metrics=maybe").contains("server-metrics must be On or Off"));
        assert!(err("g response-flush-delay=-5").contains("response-flush-delay"));
        assert!(err("g socket-user=").contains("socket-user"));
        for opt in REFUSED_OPTIONS {
            let e = err(&format!("g {opt}=/x"));
            assert!(
                e.contains(&format!("option '{opt}' is not supported by rwsgi")),
                "{e}"
            );
        }
    }

    fn server(daemons: &[&str]) -> ServerConfig {
        ServerConfig {
            daemons: daemons.iter().map(|n| DaemonProcess::new(n)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn uniqueness_across_servers() {
        let main = server(&["a", "b"]);
        let v1 = server(&["c"]);
        let v2 = server(&["d"]);
        assert!(check_unique(&[&main, &v1, &v2]).is_ok());
        assert!(check_unique(&[]).is_ok());
        let dup = server(&["b"]);
        let e = check_unique(&[&main, &v1, &dup]).unwrap_err();
        assert!(
            e.starts_with("Name duplicates previous WSGI daemon definition: 'b'"),
            "{e}"
        );
    }

    #[test]
    fn merge_does_not_inherit_and_fails_closed() {
        let mut main = server(&["global"]);
        let vhost = server(&["site"]);
        let mut merged = ServerConfig::merge(&main, &vhost);
        assert_eq!(merged.daemons.len(), 1);
        assert_eq!(merged.daemons[0].name, "site");
        // Until the Apache layer names the virtual host, its groups serve no request.
        assert_eq!(merged.daemons[0].scope.as_deref(), Some(""));
        assert!(!merged.daemons[0].accessible_from("example.org"));
        merged.set_daemon_scope(Some("example.org"));
        main.set_daemon_scope(None);
        assert!(merged.daemons[0].accessible_from("example.org"));
        assert!(!merged.daemons[0].accessible_from("other.org"));
        assert!(main.daemons[0].accessible_from("anything"));
        assert!(check_unique(&[&main, &merged]).is_ok());
        // A virtual host with no WSGIDaemonProcess of its own has no groups.
        assert!(
            ServerConfig::merge(&main, &ServerConfig::default())
                .daemons
                .is_empty()
        );
    }

    #[test]
    fn group_names_are_claimed_once() {
        let mut names = GroupNames::new();
        assert!(
            names
                .claim("a", "/etc/apache2/sites-enabled/a.conf:3")
                .is_ok()
        );
        assert!(
            names
                .claim("b", "/etc/apache2/sites-enabled/b.conf:3")
                .is_ok()
        );
        let e = names
            .claim("a", "/etc/apache2/sites-enabled/c.conf:9")
            .unwrap_err();
        assert!(e.contains("'a'"), "{e}");
        assert!(
            e.contains("first declared at /etc/apache2/sites-enabled/a.conf:3"),
            "{e}"
        );
        names.clear();
        assert!(names.claim("a", "x:1").is_ok());
    }

    #[test]
    fn resolution() {
        let mut main = server(&["global"]);
        main.set_daemon_scope(None);
        let mut a = server(&["site-a"]);
        a.set_daemon_scope(Some("a.example"));
        let mut a2 = server(&["site-a2"]);
        a2.set_daemon_scope(Some("a.example"));
        let servers = [&main, &a, &a2];
        let find = |n: &str| find_daemon(&servers, n);
        let resolve = |req: &str, restrict: Option<&[String]>, host: &str| {
            resolve_process_group(req, restrict, host, find).map(|g| g.map(|d| d.name.clone()))
        };

        // Embedded.
        assert_eq!(resolve("", None, "a.example"), Ok(None));
        assert_eq!(resolve("%{GLOBAL}", None, "a.example"), Ok(None));
        // Global groups serve every virtual host; a virtual host's groups serve the virtual
        // hosts with the same ServerName (a.example has two <VirtualHost> blocks).
        assert_eq!(
            resolve("global", None, "b.example"),
            Ok(Some("global".into()))
        );
        assert_eq!(
            resolve("site-a", None, "a.example"),
            Ok(Some("site-a".into()))
        );
        assert_eq!(
            resolve("site-a2", None, "a.example"),
            Ok(Some("site-a2".into()))
        );
        assert_eq!(
            resolve("site-a", None, "b.example"),
            Err(
                "Daemon process called 'site-a' cannot be accessed by this WSGI application".into()
            )
        );
        assert_eq!(
            resolve("nope", None, "a.example"),
            Err("No WSGI daemon process called 'nope' has been configured".into())
        );
        // Names are exact.
        assert!(resolve("Global", None, "a.example").is_err());

        // WSGIRestrictProcess: checked first, also for embedded mode, case-insensitively.
        let only_global = vec!["GLOBAL".to_string()];
        assert_eq!(
            resolve("global", Some(&only_global), "a.example"),
            Ok(Some("global".into()))
        );
        assert_eq!(
            resolve("site-a", Some(&only_global), "a.example"),
            Err("Daemon process called 'site-a' cannot be accessed by this WSGI application as not a member of allowed groups".into())
        );
        assert_eq!(
            resolve("", Some(&only_global), "a.example"),
            Err("Daemon process called '' cannot be accessed by this WSGI application as not a member of allowed groups".into())
        );
        let with_embedded = vec![String::new(), "nope".to_string()];
        assert_eq!(resolve("%{GLOBAL}", Some(&with_embedded), "x"), Ok(None));
        // Allowed by the list but not declared: still unknown.
        assert!(
            resolve("nope", Some(&with_embedded), "x")
                .unwrap_err()
                .starts_with("No WSGI daemon process called 'nope'")
        );
    }

    #[test]
    fn resolution_over_a_runtime_table() {
        struct Spec {
            scope: Option<String>,
        }
        impl GroupScope for Spec {
            fn scope(&self) -> Option<&str> {
                self.scope.as_deref()
            }
        }
        let spec = std::sync::Arc::new(Spec {
            scope: Some("a.example".into()),
        });
        let lookup = |_: &str| Some(spec.clone());
        assert!(resolve_process_group("g", None, "a.example", lookup).is_ok());
        assert!(resolve_process_group("g", None, "b.example", lookup).is_err());
        assert!(is_accessible(None, "x"));
    }
}
