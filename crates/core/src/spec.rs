//! A daemon process group as it runs: the `WSGIDaemonProcess` declaration as parsed (every
//! default resolved there, so nothing downstream decides one again), plus what only the Apache
//! parent knows — who the processes run as, the group's socket and secret, Apache's version
//! and `Timeout`, the server-wide Python settings. The Apache side reads it to reach the group;
//! each daemon process gets it as JSON.

use crate::config::PythonSettings;
use crate::config::daemon::{DaemonProcess, GroupScope};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupSpec {
    /// The declaration as parsed.
    pub options: DaemonProcess,
    pub identity: Identity,
    pub wire: Wire,
    /// Server-wide WSGIPython*/WSGIRestrict* settings (python-home defaults to WSGIPythonHome,
    /// as in mod_wsgi).
    pub python: PythonSettings,
    /// WSGIImportScript entries for this group: (application group, expanded: "" is the main
    /// interpreter; script).
    pub import_scripts: Vec<(String, String)>,
    pub apache_version: (u32, u32, u32),
    /// Apache's `Timeout`: what socket-timeout defaults to.
    pub apache_timeout: Duration,
}

/// Who a group's processes run as (when started as root).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub user_name: Option<String>,
    /// `None`: the user's groups (initgroups); `Some`: exactly these.
    pub supplementary_gids: Option<Vec<u32>>,
}

/// How Apache children reach a group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Wire {
    pub socket_path: PathBuf,
    /// Only connections from this uid (Apache's children) are accepted.
    pub apache_uid: u32,
    /// The uid of the Apache parent, which made the listening socket: SO_PEERCRED on an
    /// Apache child's connection must name it.
    pub listener_uid: u32,
    /// Shown by Apache children in HELLO and the key of every request head's seal; other
    /// code running as Apache's user cannot know it.
    pub secret: Vec<u8>,
}

impl GroupSpec {
    pub fn name(&self) -> &str {
        &self.options.name
    }

    pub fn processes(&self) -> u32 {
        self.options.processes.max(1)
    }

    pub fn threads(&self) -> u32 {
        self.options.threads.max(1)
    }

    /// Longest wait for the next message on a connection (socket-timeout, else Apache's).
    pub fn socket_timeout(&self) -> Duration {
        self.options.effective_socket_timeout(self.apache_timeout)
    }

    pub fn connect_timeout(&self) -> Duration {
        self.options.connect_timeout.unwrap_or(Duration::ZERO)
    }

    pub fn graceful_timeout(&self) -> Duration {
        self.options.graceful_timeout.unwrap_or(Duration::ZERO)
    }

    /// How long a process told to go by SIGUSR1 may finish its requests.
    pub fn eviction_timeout(&self) -> Duration {
        self.options
            .effective_eviction_timeout()
            .unwrap_or(Duration::ZERO)
    }

    /// The process name the group's processes show (display-name; `(wsgi:NAME)` by default).
    pub fn title(&self) -> String {
        self.options
            .process_title()
            .unwrap_or_else(|| format!("(wsgi:{})", self.name()))
    }

    /// Size of each shared-memory ring of a connection (response-buffer-size, else 256 KiB).
    pub fn ring_size(&self) -> usize {
        match self.options.response_buffer_size {
            0 => crate::ipc::ring::DEFAULT_RING,
            n => usize::try_from(n)
                .unwrap_or(usize::MAX)
                .clamp(crate::ipc::ring::MIN_RING, crate::ipc::ring::MAX_RING),
        }
    }

    pub fn python_home(&self) -> Option<String> {
        self.options
            .python_home
            .clone()
            .or_else(|| self.python.home.clone())
    }

    pub fn python_eggs(&self) -> Option<String> {
        self.options
            .python_eggs
            .clone()
            .or_else(|| self.python.eggs.clone())
    }
}

impl GroupScope for GroupSpec {
    fn scope(&self) -> Option<&str> {
        self.options.scope.as_deref()
    }
}

/// What the Apache parent knows that a group's settings default to.
pub struct ParentFacts {
    pub uid: u32,
    pub gid: u32,
    pub user_name: Option<String>,
    pub socket_prefix: String,
    pub apache_timeout: Duration,
    pub apache_version: (u32, u32, u32),
    pub python: PythonSettings,
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

/// The running group of a WSGIDaemonProcess declaration: its user and groups resolved, its
/// socket named, a fresh secret.
pub fn from_config(
    dp: &crate::config::daemon::DaemonProcess,
    d: &ParentFacts,
    import_scripts: Vec<(String, String)>,
) -> Result<GroupSpec, String> {
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
        options: dp.clone(),
        identity: Identity {
            uid,
            gid,
            user_name,
            supplementary_gids,
        },
        wire: Wire {
            socket_path: socket_path(&d.socket_prefix, &dp.name),
            apache_uid: d.uid,
            listener_uid: nix::unistd::geteuid().as_raw(),
            secret: new_secret(),
        },
        python: d.python.clone(),
        import_scripts,
        apache_version: d.apache_version,
        apache_timeout: d.apache_timeout,
    })
}
