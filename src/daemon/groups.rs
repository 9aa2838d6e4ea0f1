//! The daemon process groups of the running configuration, as the Apache parent runs them:
//! each group's listening socket (made here, kept for the whole configuration generation, so
//! a supervisor that dies loses no connection waiting in its backlog), its supervisor, and the
//! replacement of a supervisor that dies. Apache children inherit the table (to look a group
//! up by name) and close the sockets (`close_listeners_in_child`).

use super::death::{self, DeathTable, Ending};
use super::supervisor::{self, Launch};
use super::{GroupSpec, log, socket};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

static GROUPS: RwLock<Option<HashMap<String, Arc<GroupSpec>>>> = RwLock::new(None);
/// The listening sockets of this generation (Apache children close them).
static LISTENERS: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());
/// Where the death table is mapped (0: none), for Apache children explaining a 502.
static DEATHS: AtomicUsize = AtomicUsize::new(0);

/// The group called `name`, if this configuration declares it.
pub fn find(name: &str) -> Option<Arc<GroupSpec>> {
    GROUPS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()?
        .get(name)
        .cloned()
}

/// The death table of this server, if daemon groups run.
pub fn deaths() -> Option<DeathTable> {
    match DEATHS.load(Ordering::Acquire) {
        0 => None,
        // SAFETY: DEATHS only ever holds the address of a table created in the Apache parent
        // (never unmapped), which this process inherited.
        addr => Some(unsafe { DeathTable::from_addr(addr) }),
    }
}

/// In an Apache child: the daemon groups' listening sockets are not for it.
pub fn close_listeners_in_child() {
    for fd in LISTENERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        // SAFETY: the descriptor was inherited from the parent, which owns its socket; the
        // child never uses it (its copy of the parent's table is never dropped).
        unsafe { libc::close(fd) };
    }
}

/// One group as the Apache parent runs it.
pub struct Running {
    pub spec: Arc<GroupSpec>,
    listener: OwnedFd,
    /// The current supervisor.
    pub pid: Option<Pid>,
    started: Instant,
    /// Delay before the next replacement's processes start (grows while supervisors die
    /// young, as for daemon processes).
    backoff: Duration,
}

/// The groups of one configuration generation.
pub struct Generation {
    pub groups: Vec<Running>,
    program: PathBuf,
    deaths: DeathTable,
    log_level: i32,
}

/// A supervisor that lived at least this long was not crash-looping.
const STABLE: Duration = Duration::from_secs(10);

/// Makes every group's socket and starts its supervisor (Apache parent, after configuration).
pub fn start(
    specs: Vec<GroupSpec>,
    program: PathBuf,
    deaths: DeathTable,
    log_level: i32,
) -> Result<Generation, String> {
    let mut table = HashMap::new();
    let mut groups = Vec::new();
    let mut fds = Vec::new();
    let root = nix::unistd::geteuid().is_root();
    for spec in specs {
        let listener = socket::bind(
            &spec.socket_path,
            root.then_some(spec.apache_uid),
            spec.listen_backlog,
        )
        .map_err(|e| {
            format!(
                "cannot make the socket '{}' of daemon process group '{}': {e}",
                spec.socket_path.display(),
                spec.name
            )
        })?;
        fds.push(listener.as_raw_fd());
        let spec = Arc::new(spec);
        table.insert(spec.name.clone(), spec.clone());
        groups.push(Running {
            spec,
            listener,
            pid: None,
            started: Instant::now(),
            backoff: Duration::ZERO,
        });
    }
    *GROUPS.write().unwrap_or_else(|e| e.into_inner()) = Some(table);
    *LISTENERS.lock().unwrap_or_else(|e| e.into_inner()) = fds;
    DEATHS.store(deaths.addr(), Ordering::Release);
    let mut generation = Generation {
        groups,
        program,
        deaths,
        log_level,
    };
    for i in 0..generation.groups.len() {
        generation.launch(i);
    }
    Ok(generation)
}

impl Generation {
    fn launch(&mut self, i: usize) {
        let g = &mut self.groups[i];
        let launch = Launch {
            spec: g.spec.clone(),
            listener: g.listener.as_fd(),
            program: &self.program,
            deaths: self.deaths,
            delay: g.backoff,
            log_level: self.log_level,
        };
        g.started = Instant::now();
        g.pid = match supervisor::spawn(&launch) {
            Ok(pid) => Some(pid),
            Err(e) => {
                log(
                    "crit",
                    &format!(
                        "rwsgi: cannot start the supervisor of daemon process group '{}': {e}",
                        g.spec.name
                    ),
                );
                None
            }
        };
    }

    /// The supervisor of group `i` ended with wait status `status`: says why and starts a
    /// new one (same socket, same secret), after a growing delay if they keep dying young.
    /// Returns the new supervisor's pid.
    pub fn supervisor_died(&mut self, i: usize, status: i32) -> Option<Pid> {
        let g = self.groups.get_mut(i)?;
        let lived = g.started.elapsed();
        let ending = if libc::WIFSIGNALED(status) {
            Ending::Signaled(libc::WTERMSIG(status))
        } else {
            Ending::Exited(libc::WEXITSTATUS(status))
        };
        let how = match ending {
            Ending::Signaled(s) => format!("was killed by {}", death::signal_name(s)),
            Ending::Exited(c) => format!("exited with status {c}"),
        };
        g.backoff = if lived >= STABLE {
            Duration::ZERO
        } else {
            (g.backoff * 2).clamp(Duration::from_millis(500), Duration::from_secs(30))
        };
        log(
            "error",
            &format!(
                "rwsgi: the supervisor of daemon process group '{}' (pid {}) {how} after {:.1}s; starting a new one{}.",
                g.spec.name,
                g.pid.map_or(0, |p| p.as_raw()),
                lived.as_secs_f64(),
                if g.backoff.is_zero() {
                    String::new()
                } else {
                    format!(" (its processes start in {:.1}s)", g.backoff.as_secs_f64())
                }
            ),
        );
        self.launch(i);
        self.groups[i].pid
    }

    /// Ends this generation: its supervisors drain their processes and exit.
    pub fn stop(&self) {
        for pid in self.groups.iter().filter_map(|g| g.pid) {
            let _ = kill(pid, Signal::SIGTERM);
        }
    }

    pub fn socket_paths(&self) -> Vec<PathBuf> {
        self.groups
            .iter()
            .map(|g| g.spec.socket_path.clone())
            .collect()
    }
}

/// 32 random bytes: the secret an Apache child shows in HELLO.
pub fn new_secret() -> Vec<u8> {
    use std::io::Read;
    let mut b = vec![0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // Never fall back to a guessable value.
        panic!("cannot read /dev/urandom for the daemon group secret");
    }
    b
}

/// `<prefix>.<apache parent pid>.<hash of the group name>.sock`: stable across graceful
/// restarts (same parent) and short enough for a Unix socket path.
pub fn socket_path(prefix: &str, group: &str) -> std::path::PathBuf {
    use md5::{Digest, Md5};
    let h = Md5::digest(group.as_bytes());
    let hex: String = h.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}.{}.{hex}.sock", std::process::id()).into()
}

/// What the Apache parent knows that a group's settings default to.
pub struct Defaults {
    pub uid: u32,
    pub gid: u32,
    pub user_name: Option<String>,
    pub socket_prefix: String,
    pub apache_timeout: std::time::Duration,
    pub apache_version: (u32, u32, u32),
    /// The server-wide WSGIPython* settings (daemon processes start Python with them, and
    /// python-home defaults to WSGIPythonHome, as in mod_wsgi).
    pub python: crate::config::PythonSettings,
}

fn resolve_user(v: &str) -> Result<(u32, Option<String>, Option<u32>), String> {
    if let Some(n) = v.strip_prefix('#') {
        let uid: u32 = n.parse().map_err(|_| format!("invalid user '{v}'"))?;
        return Ok((uid, None, None));
    }
    match nix::unistd::User::from_name(v) {
        Ok(Some(u)) => Ok((u.uid.as_raw(), Some(u.name), Some(u.gid.as_raw()))),
        _ => Err(format!("unknown user '{v}'")),
    }
}

fn resolve_group(v: &str) -> Result<u32, String> {
    if let Some(n) = v.strip_prefix('#') {
        return n.parse().map_err(|_| format!("invalid group '{v}'"));
    }
    match nix::unistd::Group::from_name(v) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        _ => Err(format!("unknown group '{v}'")),
    }
}

/// The runtime view of a WSGIDaemonProcess declaration.
pub fn spec_from_config(
    dp: &crate::config::daemon::DaemonProcess,
    d: &Defaults,
    import_scripts: Vec<(String, String)>,
) -> Result<GroupSpec, String> {
    use std::time::Duration;
    let ctx = |e: String| format!("WSGIDaemonProcess {}: {e}", dp.name);
    let (uid, user_name) = match &dp.user {
        Some(u) => {
            let (uid, name, _) = resolve_user(u).map_err(ctx)?;
            (uid, name)
        }
        None => (d.uid, d.user_name.clone()),
    };
    if uid == 0 && nix::unistd::geteuid().is_root() {
        return Err(ctx("daemon processes may not run as root".into()));
    }
    let gid = match &dp.group {
        Some(g) => resolve_group(g).map_err(ctx)?,
        None => d.gid,
    };
    let supplementary_gids = match &dp.supplementary_groups {
        Some(list) => Some(
            list.iter()
                .map(|g| resolve_group(g))
                .collect::<Result<Vec<_>, _>>()
                .map_err(ctx)?,
        ),
        None => None,
    };
    Ok(GroupSpec {
        name: dp.name.clone(),
        scope: dp.scope.clone(),
        processes: dp.processes.max(1),
        multiprocess: dp.processes_given,
        threads: dp.threads.max(1),
        uid,
        gid,
        user_name,
        supplementary_gids,
        home: dp.home.clone(),
        umask: dp.umask,
        lang: dp.lang.clone(),
        locale: dp.locale.clone(),
        python_home: dp.python_home.clone().or_else(|| d.python.home.clone()),
        python_path: dp.python_path.clone(),
        python_eggs: dp.python_eggs.clone().or_else(|| d.python.eggs.clone()),
        python: d.python.clone(),
        import_scripts,
        socket_path: socket_path(&d.socket_prefix, &dp.name),
        apache_uid: d.uid,
        supervisor_uid: nix::unistd::geteuid().as_raw(),
        secret: new_secret(),
        listen_backlog: dp.listen_backlog.min(i32::MAX as u32) as i32,
        maximum_requests: dp.maximum_requests,
        socket_timeout: Some(dp.effective_socket_timeout(d.apache_timeout)),
        connect_timeout: dp.connect_timeout.unwrap_or(Duration::ZERO),
        graceful_timeout: dp.graceful_timeout.unwrap_or(Duration::ZERO),
        eviction_timeout: dp.effective_eviction_timeout().unwrap_or(Duration::ZERO),
        shutdown_timeout: dp.shutdown_timeout.unwrap_or(Duration::from_secs(5)),
        apache_version: d.apache_version,
        response_socket_timeout: dp.response_socket_timeout,
        header_buffer_size: match dp.header_buffer_size {
            0 => None,
            n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        },
        ring_size: match dp.response_buffer_size {
            0 => crate::ipc::ring::DEFAULT_RING,
            n => usize::try_from(n)
                .unwrap_or(usize::MAX)
                .clamp(crate::ipc::ring::MIN_RING, crate::ipc::ring::MAX_RING),
        },
        display_name_set: dp.display_name.is_some(),
        title: dp
            .process_title()
            .unwrap_or_else(|| format!("(wsgi:{})", dp.name)),
        limits: super::Limits {
            cpu_priority: dp.cpu_priority,
            memory_limit: dp.memory_limit,
            virtual_memory_limit: dp.virtual_memory_limit,
            cpu_time_limit: dp.cpu_time_limit,
            stack_size: dp.stack_size,
            send_buffer_size: dp.send_buffer_size,
            receive_buffer_size: dp.receive_buffer_size,
            switch_interval: dp.switch_interval,
            restart_interval: dp.restart_interval,
            inactivity_timeout: dp.inactivity_timeout,
            request_timeout: dp.request_timeout,
            queue_timeout: dp.queue_timeout,
            deadlock_timeout: dp.deadlock_timeout,
            startup_timeout: dp.startup_timeout,
            interrupt_timeout: dp.interrupt_timeout,
        },
    })
}
