//! The daemon process groups of the running configuration, as the Apache parent runs them:
//! each group's listening socket (made here, kept for the whole configuration generation, so
//! a supervisor that dies loses no connection waiting in its backlog), its supervisor, and the
//! replacement of a supervisor that dies. Apache children inherit the table (to look a group
//! up by name) and close the sockets (`close_listeners_in_child`).

use super::supervisor::{self, Launch};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rwsgi_core::Level;
use rwsgi_core::death::{self, DeathTable, Ending};
use rwsgi_core::errlog::log;
use rwsgi_core::socket;
use rwsgi_core::spec::GroupSpec;
use rwsgi_core::status::Boards;
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
    /// The status boards (group i is target i + 1 of the server board).
    status: Option<Arc<Boards>>,
}

/// A supervisor that lived at least this long was not crash-looping.
const STABLE: Duration = Duration::from_secs(10);

/// Makes every group's socket and starts its supervisor (Apache parent, after configuration).
pub fn start(
    specs: Vec<GroupSpec>,
    program: PathBuf,
    deaths: DeathTable,
    log_level: i32,
    status: Option<Arc<Boards>>,
) -> Result<Generation, String> {
    let mut table = HashMap::new();
    let mut groups = Vec::new();
    let mut fds = Vec::new();
    let root = nix::unistd::geteuid().is_root();
    for spec in specs {
        let listener = socket::bind(
            &spec.wire.socket_path,
            root.then_some(spec.wire.apache_uid),
            spec.options.listen_backlog.min(i32::MAX as u32) as i32,
        )
        .map_err(|e| {
            format!(
                "cannot make the socket '{}' of daemon process group '{}': {e}",
                spec.wire.socket_path.display(),
                spec.name()
            )
        })?;
        fds.push(listener.as_raw_fd());
        let spec = Arc::new(spec);
        table.insert(spec.name().to_string(), spec.clone());
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
        status,
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
            status: self.status.clone().map(|b| (b, i)),
        };
        g.started = Instant::now();
        g.pid = match supervisor::spawn(&launch) {
            Ok(pid) => Some(pid),
            Err(e) => {
                log(
                    Level::Crit,
                    &format!(
                        "rwsgi: cannot start the supervisor of daemon process group '{}': {e}",
                        g.spec.name()
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
            Level::Error,
            &format!(
                "rwsgi: the supervisor of daemon process group '{}' (pid {}) {how} after {:.1}s; starting a new one{}.",
                g.spec.name(),
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
            .map(|g| g.spec.wire.socket_path.clone())
            .collect()
    }
}
