//! One `WSGIDaemonProcess` group as declared, every default resolved when it is parsed:
//! everything downstream (the group's spec, its supervisor, its processes) reads these values
//! and decides nothing again.

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

/// Options that are parsed and validated but that rwsgi does not act on (yet). When one is
/// given, its name lands in [`DaemonProcess::ignored`] so that the runtime logs it once.
pub const IGNORED_OPTIONS: &[&str] = &[
    // Owner of the group's socket (ITK / mod_ruid2 setups). rwsgi's socket is reachable by
    // Apache's User only, so such setups fail closed (503), never open.
    "socket-user",
    // mod_wsgi.server_metrics() reads Apache's scoreboard, which a daemon process (exec'd,
    // outside Apache) cannot see: it returns None there.
    "server-metrics",
    // 6.x: linger before flushing when the daemon socket runs dry (mod_ratelimit). rwsgi's
    // framed responses flush on the daemon's own boundaries.
    "response-flush-delay",
];

/// Options mod_wsgi accepts that rwsgi refuses: ignoring them would run applications with
/// less isolation or access control than the configuration asks for (the same policy as for
/// directives that are not implemented yet).
pub const REFUSED_OPTIONS: &[&str] = &["chroot", "script-user", "script-group"];

/// One `WSGIDaemonProcess` group. Time options are `None` when off (mod_wsgi's 0); the few
/// whose `None` means "fall back to something else" say so.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// newrelic-config-file / newrelic-environment (mod_wsgi <= 5): the agent in this group.
    pub newrelic_config_file: Option<String>,
    pub newrelic_environment: Option<String>,
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
    /// Longest response header line (>= 8192); `None` (or 0): no limit, as in embedded mode
    /// (mod_wsgi's default is 32 KiB: see README, "Differences").
    pub header_buffer_size: Option<u64>,
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
            newrelic_config_file: None,
            newrelic_environment: None,
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
            header_buffer_size: None,
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
