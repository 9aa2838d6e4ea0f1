//! Daemon process groups in the Apache parent: what Apache knows that daemon mode needs (its
//! User/Group, runtime directory, where this module lives), the "first configuration pass"
//! rule, what must outlive a configuration generation (group secrets, the death table, the
//! supervisors still draining), and the supervisors as Apache's "other children": watched,
//! replaced when they die, ended with their configuration generation.

use rwsgi_apache::process::{self, ChildEvent};
use rwsgi_apache::{Pool, Server};
use rwsgi_core::death::DeathTable;
use rwsgi_core::spec::ParentFacts;
use rwsgi_daemon::groups::Generation;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

/// What the Apache parent knows that daemon groups default to.
pub struct ApacheFacts {
    pub parent: ParentFacts,
    /// `<DefaultRuntimeDir>/rwsgi`, the default WSGISocketPrefix.
    pub default_socket_prefix: String,
}

pub fn facts(pconf: &Pool) -> ApacheFacts {
    let root = nix::unistd::geteuid().is_root();
    let (uid, gid, name) = process::run_as();
    ApacheFacts {
        parent: ParentFacts {
            uid: if root {
                uid
            } else {
                nix::unistd::getuid().as_raw()
            },
            gid: if root {
                gid
            } else {
                nix::unistd::getgid().as_raw()
            },
            user_name: if root { name } else { None },
            socket_prefix: String::new(),
            apache_timeout: process::server_timeout(),
            apache_version: process::server_version(),
            python: Default::default(),
        },
        default_socket_prefix: pconf
            .runtime_dir_relative("rwsgi")
            .unwrap_or_else(|| "/var/run/apache2/rwsgi".into()),
    }
}

/// Apache reads its configuration twice at start-up and runs post_config both times; daemons
/// are started only on the second (real) pass, as mod_wsgi does. True on the first pass.
pub fn is_first_pass(main: Server<'_>) -> bool {
    const KEY: &str = "rwsgi-first-pass-done";
    let pool = main.process_pool();
    if pool.bytes(KEY).is_some() {
        return false;
    }
    pool.set_bytes(KEY, &[1]);
    true
}

/// The secret of group `group` for this Apache parent's whole life: the one a previous
/// configuration generation used, else `fresh`. After a graceful restart (logrotate does one
/// every night) children of the old generation still talk to the group's socket, now served
/// by the new generation's processes; a new secret would lock them out (503).
pub fn stable_secret(main: Server<'_>, group: &str, fresh: Vec<u8>) -> Vec<u8> {
    let key = format!("rwsgi-secret:{group}");
    let pool = main.process_pool();
    if let Some(kept) = pool.bytes(&key) {
        return kept;
    }
    pool.set_bytes(&key, &fresh);
    fresh
}

/// The death table of this Apache parent: created once (before anything forks) and kept in
/// the process pool, so every configuration generation (and the module, reloaded at each
/// restart) finds the same one.
pub fn death_table(main: Server<'_>) -> std::io::Result<DeathTable> {
    const KEY: &str = "rwsgi-death-table";
    let pool = main.process_pool();
    if let Some(b) = pool.bytes(KEY) {
        let addr = usize::from_ne_bytes(b.try_into().unwrap_or_default());
        // SAFETY: stored below from DeathTable::addr() in this process; tables are never
        // unmapped.
        return Ok(unsafe { DeathTable::from_addr(addr) });
    }
    let t = DeathTable::create()?;
    pool.set_bytes(KEY, &t.addr().to_ne_bytes());
    Ok(t)
}

/// The daemon program: `rwsgi-daemon` next to this module's own file (so a build tree and an
/// installed package each find their own). It runs as root until it switches user, so it must
/// be a regular file only root can change.
pub fn daemon_program() -> Result<PathBuf, String> {
    // SAFETY: an all-zero Dl_info is a valid value for dladdr to fill.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables for an address inside this module.
    let found = unsafe { libc::dladdr(daemon_program as *const libc::c_void, &mut info) } != 0;
    if !found || info.dli_fname.is_null() {
        return Err("cannot find where mod_rwsgi.so was loaded from".into());
    }
    // SAFETY: dladdr returned a NUL-terminated path owned by the loader.
    let module = PathBuf::from(
        unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned(),
    );
    let program = module
        .parent()
        .unwrap_or(std::path::Path::new("/"))
        .join("rwsgi-daemon");
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&program).map_err(|e| {
        format!(
            "the daemon program '{}' is missing ({e}); it is installed next to mod_rwsgi.so",
            program.display()
        )
    })?;
    let me = nix::unistd::geteuid().as_raw();
    if !m.is_file() || m.mode() & 0o111 == 0 {
        return Err(format!(
            "the daemon program '{}' is not an executable file",
            program.display()
        ));
    }
    if (m.uid() != 0 && m.uid() != me) || m.mode() & 0o022 != 0 {
        return Err(format!(
            "the daemon program '{}' can be changed by users other than root (owner uid {}, mode {:04o}); chown root: and chmod go-w it",
            program.display(),
            m.uid(),
            m.mode() & 0o7777
        ));
    }
    Ok(program)
}

/// Supervisors of earlier generations still draining, handed from one generation to the next
/// in the process pool: the next generation watches them too, so that the MPM reaps them
/// quietly (it calls a child it does not know "long lost").
const RETIRING: &str = "rwsgi-retiring-supervisors";

fn take_retiring(main: Server<'_>) -> Vec<i32> {
    let pool = main.process_pool();
    let pids = pool
        .bytes(RETIRING)
        .unwrap_or_default()
        .chunks_exact(4)
        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    pool.set_bytes(RETIRING, &[]);
    pids
}

/// Has Apache's parent watch every supervisor of `generation` as it watches its own children:
/// a supervisor that dies is noticed by the MPM's maintenance loop (within a second) and
/// replaced at once; one that exits after a restart is reaped quietly (no "long lost child
/// came home!"). When `pconf` is cleared (restart) or destroyed (stop), the supervisors are
/// told to finish; on a stop, the group sockets are removed.
pub fn watch(pconf: &Pool, main: Server<'_>, generation: Generation) {
    let parent = std::process::id();
    let generation = Rc::new(RefCell::new(generation));
    // The supervisors alive now (current and retired), for the hand-over at a restart.
    let alive: Rc<RefCell<Vec<i32>>> = Rc::new(RefCell::new(Vec::new()));
    let process_pool = main.process_pool();
    {
        let (generation, alive) = (generation.clone(), alive.clone());
        // Registered before the watches: cleanups run in reverse, so this runs after APR has
        // dropped them.
        pconf.on_cleanup(move || {
            if std::process::id() != parent {
                // An Apache child tearing its copy down: the groups are the parent's.
                std::mem::forget(generation);
                return;
            }
            let g = generation.borrow();
            g.stop();
            if process::exiting() {
                for path in g.socket_paths() {
                    let _ = std::fs::remove_file(path);
                }
            } else {
                let pids: Vec<u8> = alive
                    .borrow()
                    .iter()
                    .flat_map(|p| p.to_ne_bytes())
                    .collect();
                process_pool.set_bytes(RETIRING, &pids);
            }
        });
    }
    let supervisors: Vec<Option<i32>> = generation
        .borrow()
        .groups
        .iter()
        .map(|g| g.pid.map(|p| p.as_raw()))
        .collect();
    for (index, pid) in supervisors.into_iter().enumerate() {
        let Some(pid) = pid else { continue };
        alive.borrow_mut().push(pid);
        let (generation, alive) = (generation.clone(), alive.clone());
        let current = std::cell::Cell::new(pid);
        process::watch_child(pconf, pid, move |event| {
            alive.borrow_mut().retain(|&p| p != current.get());
            let ChildEvent::Died(status) = event else {
                return None;
            };
            if process::mpm_stopping() {
                return None;
            }
            let new = generation
                .borrow_mut()
                .supervisor_died(index, status)?
                .as_raw();
            current.set(new);
            alive.borrow_mut().push(new);
            Some(new)
        });
    }
    for pid in take_retiring(main) {
        alive.borrow_mut().push(pid);
        let alive = alive.clone();
        process::watch_child(pconf, pid, move |_| {
            alive.borrow_mut().retain(|&p| p != pid);
            None
        });
    }
}
