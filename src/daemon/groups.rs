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
