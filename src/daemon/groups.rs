//! The daemon process groups of the running configuration: started by the Apache parent after
//! configuration (one supervisor each) and looked up by name when a request names its group.
//! The table is filled before Apache forks its children, which inherit it.

use super::{GroupSpec, log, supervisor};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

static GROUPS: RwLock<Option<HashMap<String, Arc<GroupSpec>>>> = RwLock::new(None);

/// The group called `name`, if this configuration declares it.
pub fn find(name: &str) -> Option<Arc<GroupSpec>> {
    GROUPS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()?
        .get(name)
        .cloned()
}

/// Starts a supervisor per group (Apache parent, after configuration). `in_child` runs in each
/// new supervisor before anything else. Returns the supervisors' pids, which the caller must
/// signal (SIGTERM) when this configuration generation ends.
pub fn start(specs: Vec<GroupSpec>, in_child: &dyn Fn()) -> Vec<Pid> {
    let mut table = HashMap::new();
    let mut pids = Vec::new();
    for spec in specs {
        match supervisor::spawn(spec.clone(), in_child) {
            Ok(pid) => pids.push(pid),
            Err(e) => log(
                "crit",
                &format!(
                    "rwsgi: cannot start daemon process group '{}': {e}",
                    spec.name
                ),
            ),
        }
        table.insert(spec.name.clone(), Arc::new(spec));
    }
    *GROUPS.write().unwrap_or_else(|e| e.into_inner()) = Some(table);
    pids
}

/// Ends a configuration generation: its supervisors drain their workers and exit.
pub fn stop(pids: &[Pid]) {
    for &pid in pids {
        let _ = kill(pid, Signal::SIGTERM);
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
