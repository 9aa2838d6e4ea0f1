//! Daemon process groups in the Apache parent: what Apache knows that daemon mode needs (its
//! User/Group, runtime directory, where this module lives), the "first configuration pass"
//! rule, and the supervisors as Apache's "other children": watched, replaced when they die,
//! ended with their configuration generation.

use super::bindings as b;
use crate::daemon::death::DeathTable;
use crate::daemon::groups::Generation;
use std::ffi::{CStr, c_void};
use std::path::PathBuf;

/// What the Apache parent knows that daemon groups default to.
pub struct ApacheFacts {
    pub uid: u32,
    pub gid: u32,
    pub user_name: Option<String>,
    /// `<DefaultRuntimeDir>/rwsgi`, the default WSGISocketPrefix.
    pub default_socket_prefix: String,
    pub version: (u32, u32, u32),
}

pub(crate) fn facts(pconf: *mut b::apr_pool_t) -> ApacheFacts {
    let root = nix::unistd::geteuid().is_root();
    // SAFETY: mod_unixd's configuration record is filled while the configuration is read and
    // only read afterwards; the runtime path is copied out of pconf at once.
    unsafe {
        let u = std::ptr::read(&raw const b::ap_unixd_config);
        let name = (!u.user_name.is_null())
            .then(|| CStr::from_ptr(u.user_name).to_string_lossy().into_owned());
        let rel = b::ap_runtime_dir_relative(pconf, c"rwsgi".as_ptr());
        let prefix = if rel.is_null() {
            "/var/run/apache2/rwsgi".into()
        } else {
            CStr::from_ptr(rel).to_string_lossy().into_owned()
        };
        let v = super::server_version();
        let mut it = v.split('.').map(|p| p.parse().unwrap_or(0));
        ApacheFacts {
            uid: if root {
                u.user_id
            } else {
                nix::unistd::getuid().as_raw()
            },
            gid: if root {
                u.group_id
            } else {
                nix::unistd::getgid().as_raw()
            },
            user_name: if root { name } else { None },
            default_socket_prefix: prefix,
            version: (
                it.next().unwrap_or(2),
                it.next().unwrap_or(4),
                it.next().unwrap_or(0),
            ),
        }
    }
}

/// Apache reads its configuration twice at start-up and runs post_config both times; daemons
/// are started only on the second (real) pass, as mod_wsgi does. True on the first pass.
pub(crate) fn is_first_pass(s: *mut b::server_rec) -> bool {
    const KEY: &CStr = c"rwsgi-first-pass-done";
    // SAFETY: userdata on the process pool, which lives for the whole Apache parent.
    unsafe {
        let pool = (*(*s).process).pool;
        let mut data: *mut c_void = std::ptr::null_mut();
        b::apr_pool_userdata_get(&mut data, KEY.as_ptr(), pool);
        if data.is_null() {
            b::apr_pool_userdata_set(
                std::ptr::dangling::<c_void>(),
                KEY.as_ptr(),
                Some(b::apr_pool_cleanup_null),
                pool,
            );
            return true;
        }
    }
    false
}

/// The secret of group `group` for this Apache parent's whole life: the one a previous
/// configuration generation used, else `fresh`. After a graceful restart (logrotate does one
/// every night) children of the old generation still talk to the group's socket, now served
/// by the new generation's processes; a new secret would lock them out (503).
pub(crate) fn stable_secret(s: *mut b::server_rec, group: &str, fresh: Vec<u8>) -> Vec<u8> {
    let Ok(key) = std::ffi::CString::new(format!("rwsgi-secret:{group}")) else {
        return fresh;
    };
    // SAFETY: userdata on the process pool, which lives for the whole Apache parent (unlike
    // this module's statics, which a restart reloads); the key and the bytes are copied into
    // that pool, and the bytes are read back with the length they were stored with.
    unsafe {
        let pool = (*(*s).process).pool;
        let mut data: *mut c_void = std::ptr::null_mut();
        b::apr_pool_userdata_get(&mut data, key.as_ptr(), pool);
        if !data.is_null() {
            return std::slice::from_raw_parts(data.cast::<u8>(), fresh.len()).to_vec();
        }
        let copy = b::apr_pmemdup(pool, fresh.as_ptr().cast(), fresh.len() as _);
        let key = b::apr_pstrdup(pool, key.as_ptr());
        if !copy.is_null() && !key.is_null() {
            b::apr_pool_userdata_set(copy, key, Some(b::apr_pool_cleanup_null), pool);
        }
    }
    fresh
}

/// The death table of this Apache parent: created once (before anything forks) and kept in
/// the process pool, so every configuration generation (and the module, reloaded at each
/// restart) finds the same one.
pub(crate) fn death_table(s: *mut b::server_rec) -> std::io::Result<DeathTable> {
    const KEY: &CStr = c"rwsgi-death-table";
    // SAFETY: userdata on the process pool, which lives for the whole Apache parent; the
    // stored value is the address of a mapping that is never unmapped.
    unsafe {
        let pool = (*(*s).process).pool;
        let mut data: *mut c_void = std::ptr::null_mut();
        b::apr_pool_userdata_get(&mut data, KEY.as_ptr(), pool);
        if !data.is_null() {
            return Ok(DeathTable::from_addr(data as usize));
        }
        let t = DeathTable::create()?;
        b::apr_pool_userdata_set(
            t.addr() as *mut c_void,
            KEY.as_ptr(),
            Some(b::apr_pool_cleanup_null),
            pool,
        );
        Ok(t)
    }
}

/// The daemon program: `rwsgi-daemon` next to this module's own file (so a build tree and an
/// installed package each find their own). It runs as root until it switches user, so it must
/// be a regular file only root can change.
pub(crate) fn daemon_program() -> Result<PathBuf, String> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables for an address inside this module.
    let found = unsafe { libc::dladdr(daemon_program as *const c_void, &mut info) } != 0;
    if !found || info.dli_fname.is_null() {
        return Err("cannot find where mod_rwsgi.so was loaded from".into());
    }
    // SAFETY: dladdr returned a NUL-terminated path owned by the loader.
    let module = PathBuf::from(
        unsafe { CStr::from_ptr(info.dli_fname) }
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

/// One supervisor as APR's "other child" registry knows it.
struct Watch {
    proc_: b::apr_proc_t,
    watched: *mut Watched,
    /// The group it supervises in this generation; `None`: a supervisor of an earlier
    /// generation, still draining its processes (reaped quietly, never replaced).
    index: Option<usize>,
}

/// A configuration generation's groups and their registrations (stable addresses: APR keeps
/// pointers to `proc_` and to each `Watch`).
struct Watched {
    generation: Generation,
    watches: Vec<Watch>,
    pconf: *mut b::apr_pool_t,
    /// The Apache parent's pid (children run pool cleanups too, and must not act).
    parent: u32,
    server: *mut b::server_rec,
}

/// Has Apache's parent watch every supervisor of `generation` as it watches its own children:
/// a supervisor that dies is noticed by the MPM's maintenance loop (within a second) and
/// replaced at once; one that exits after a restart is reaped quietly (no "long lost child
/// came home!"). When `pconf` is cleared (restart) or destroyed (stop), the supervisors are
/// told to finish; on a stop, the group sockets are removed.
pub(crate) fn watch(pconf: *mut b::apr_pool_t, s: *mut b::server_rec, generation: Generation) {
    let n = generation.groups.len();
    let retired = take_retiring(s);
    let watched = Box::into_raw(Box::new(Watched {
        generation,
        watches: Vec::with_capacity(n + retired.len()),
        pconf,
        parent: std::process::id(),
        server: s,
    }));
    // SAFETY: `watched` is ours until the cleanup registered next frees it; the cleanup is
    // registered before the other-child entries, so it runs after APR has dropped them (pool
    // cleanups run in reverse order). The Vec never grows past its capacity (stable addresses).
    unsafe {
        b::apr_pool_cleanup_register(
            pconf,
            watched.cast(),
            Some(end_generation),
            Some(b::apr_pool_cleanup_null),
        );
        let w = &mut *watched;
        let pids = (0..n)
            .map(|i| {
                (
                    w.generation.groups[i].pid.map_or(-1, |p| p.as_raw()),
                    Some(i),
                )
            })
            .chain(retired.into_iter().map(|pid| (pid, None)));
        for (pid, index) in pids {
            let mut proc_: b::apr_proc_t = std::mem::zeroed();
            proc_.pid = pid;
            w.watches.push(Watch {
                proc_,
                watched,
                index,
            });
        }
        for watch in w.watches.iter_mut() {
            if watch.proc_.pid > 0 {
                register(watch, pconf);
            }
        }
    }
}

/// Supervisors of earlier generations that are still draining, handed from one generation
/// to the next in the process pool (which outlives the module, reloaded at every restart):
/// the next generation watches them too, so that the MPM reaps them quietly.
#[repr(C)]
struct Retiring {
    n: u32,
    pids: [i32; 256],
}

fn retiring(s: *mut b::server_rec) -> *mut Retiring {
    const KEY: &CStr = c"rwsgi-retiring-supervisors";
    // SAFETY: userdata on the process pool (lives as long as the Apache parent); the block is
    // allocated zeroed in that pool once, with Retiring's size, and only the parent uses it.
    unsafe {
        let pool = (*(*s).process).pool;
        let mut data: *mut c_void = std::ptr::null_mut();
        b::apr_pool_userdata_get(&mut data, KEY.as_ptr(), pool);
        if data.is_null() {
            let size = std::mem::size_of::<Retiring>();
            data = b::apr_palloc(pool, size as _);
            std::ptr::write_bytes(data.cast::<u8>(), 0, size);
            b::apr_pool_userdata_set(data, KEY.as_ptr(), Some(b::apr_pool_cleanup_null), pool);
        }
        data.cast()
    }
}

fn take_retiring(s: *mut b::server_rec) -> Vec<i32> {
    // SAFETY: see `retiring`; single-threaded parent.
    unsafe {
        let r = &mut *retiring(s);
        let n = (r.n as usize).min(r.pids.len());
        r.n = 0;
        r.pids[..n].to_vec()
    }
}

fn hand_over_retiring(s: *mut b::server_rec, pids: impl Iterator<Item = i32>) {
    // SAFETY: see `retiring`; single-threaded parent.
    unsafe {
        let r = &mut *retiring(s);
        for pid in pids {
            if (r.n as usize) < r.pids.len() {
                r.pids[r.n as usize] = pid;
                r.n += 1;
            }
        }
    }
}

/// # Safety
/// `watch` must stay at its address until unregistered (it lives in a `Watched`).
unsafe fn register(watch: &mut Watch, pconf: *mut b::apr_pool_t) {
    let data: *mut Watch = watch;
    // SAFETY: per the contract; APR calls `maintenance` with `data` until unregistered.
    unsafe {
        b::apr_proc_other_child_register(
            &mut watch.proc_,
            Some(maintenance),
            data.cast(),
            std::ptr::null_mut(),
            pconf,
        )
    };
}

fn mpm_stopping() -> bool {
    let mut state = 0i32;
    // SAFETY: ap_mpm_query writes one int.
    let rv = unsafe { b::ap_mpm_query(b::AP_MPMQ_MPM_STATE, &mut state) };
    rv != b::APR_SUCCESS || state == b::AP_MPMQ_STOPPING
}

crate::entry! {
    /// APR's other-child callback, in the Apache parent's maintenance loop.
    unsafe extern "C" fn maintenance(reason: i32, data: *mut c_void, status: i32) [on panic: ()] {
        // SAFETY: `data` is the Watch registered by `register`, alive until its generation's
        // cleanup, which runs after APR has dropped every registration of that pool.
        let watch = unsafe { &mut *data.cast::<Watch>() };
        match reason {
            b::APR_OC_REASON_DEATH | b::APR_OC_REASON_LOST => {
                // SAFETY: unregisters this very entry (APR allows it from the callback).
                unsafe { b::apr_proc_other_child_unregister(data) };
                let Some(index) = watch.index.filter(|_| !mpm_stopping()) else {
                    // A retired supervisor is done draining (or Apache stops): nothing to do.
                    watch.proc_.pid = -1;
                    return;
                };
                // SAFETY: the Watched outlives its watches (see above).
                let w = unsafe { &mut *watch.watched };
                let status = if reason == b::APR_OC_REASON_LOST { 0 } else { status };
                if let Some(pid) = w.generation.supervisor_died(index, status) {
                    watch.proc_.pid = pid.as_raw();
                    let pconf = w.pconf;
                    // SAFETY: the Watch keeps its address (see `watch`).
                    unsafe { register(watch, pconf) };
                }
            }
            // Apache restarts or stops: the generation's cleanup ends the supervisors.
            b::APR_OC_REASON_RESTART => {
                // SAFETY: as above.
                unsafe { b::apr_proc_other_child_unregister(data) };
            }
            _ => {}
        }
    }
}

crate::entry! {
    /// The end of a configuration generation (pconf cleared or destroyed).
    unsafe extern "C" fn end_generation(data: *mut c_void) -> b::apr_status_t [on panic: 0] {
        // SAFETY: produced by Box::into_raw in `watch`, run once.
        let w = unsafe { Box::from_raw(data.cast::<Watched>()) };
        if w.parent != std::process::id() {
            // An Apache child tearing its copy down: the groups are the parent's.
            std::mem::forget(w);
            return 0;
        }
        w.generation.stop();
        // SAFETY: plain queries of the server's state.
        let state = unsafe { b::ap_state_query(b::AP_SQ_MAIN_STATE) };
        if state == b::AP_SQ_MS_EXITING {
            for path in w.generation.socket_paths() {
                let _ = std::fs::remove_file(path);
            }
        } else {
            // A restart: the next generation watches the old supervisors until they have
            // drained and exited (and so the MPM does not call them long lost children).
            hand_over_retiring(
                w.server,
                w.watches.iter().map(|x| x.proc_.pid).filter(|&pid| pid > 0),
            );
        }
        0
    }
}
