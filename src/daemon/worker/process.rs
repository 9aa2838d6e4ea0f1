//! The process a daemon becomes before Python starts: the group's user and groups, its
//! resource limits, working directory, umask and locale.

use super::super::{GroupSpec, log};
use crate::wsgi;

pub fn level_name(l: wsgi::LogLevel) -> &'static str {
    match l {
        wsgi::LogLevel::Error => "error",
        wsgi::LogLevel::Warning => "warn",
        wsgi::LogLevel::Info => "info",
        wsgi::LogLevel::Debug => "debug",
    }
}

pub fn drop_privileges(spec: &GroupSpec) -> nix::Result<()> {
    use nix::unistd::{
        Gid, Uid, getegid, geteuid, getgid, getuid, initgroups, setgid, setgroups, setuid,
    };
    if !geteuid().is_root() {
        return Ok(());
    }
    if spec.uid == 0 {
        return Err(nix::errno::Errno::EPERM);
    }
    match (&spec.supplementary_gids, &spec.user_name) {
        (Some(g), _) => setgroups(&g.iter().map(|&g| Gid::from_raw(g)).collect::<Vec<_>>())?,
        (None, Some(name)) => {
            let c = std::ffi::CString::new(name.as_str()).map_err(|_| nix::errno::Errno::EINVAL)?;
            initgroups(&c, Gid::from_raw(spec.gid))?
        }
        (None, None) => setgroups(&[Gid::from_raw(spec.gid)])?,
    }
    setgid(Gid::from_raw(spec.gid))?;
    setuid(Uid::from_raw(spec.uid))?;
    // Verify that the switch is complete and cannot be undone.
    let ok = getuid().as_raw() == spec.uid
        && geteuid().as_raw() == spec.uid
        && getgid().as_raw() == spec.gid
        && getegid().as_raw() == spec.gid
        && setuid(Uid::from_raw(0)).is_err();
    if ok {
        Ok(())
    } else {
        Err(nix::errno::Errno::EPERM)
    }
}

/// cpu-priority, memory-limit, virtual-memory-limit and cpu-time-limit, as mod_wsgi applies
/// them (rlimits of this process; SIGXCPU at the soft CPU limit stops it gracefully, and the
/// supervisor starts a new one).
pub fn apply_limits(spec: &GroupSpec) {
    use nix::sys::resource::{Resource, setrlimit};
    let l = &spec.limits;
    if l.cpu_priority != 0 {
        if let Err(e) = super::super::sys::set_cpu_priority(l.cpu_priority) {
            log(
                "warn",
                &format!(
                    "rwsgi: daemon process '{}': cpu-priority={}: {e}",
                    spec.name, l.cpu_priority
                ),
            );
        }
    }
    let set = |what: &str, r: Resource, soft: u64, hard: u64| {
        if let Err(e) = setrlimit(r, soft, hard) {
            log(
                "warn",
                &format!("rwsgi: daemon process '{}': {what}: {e}", spec.name),
            );
        }
    };
    if l.memory_limit > 0 {
        set(
            "memory-limit",
            Resource::RLIMIT_DATA,
            l.memory_limit,
            l.memory_limit,
        );
    }
    if l.virtual_memory_limit > 0 {
        set(
            "virtual-memory-limit",
            Resource::RLIMIT_AS,
            l.virtual_memory_limit,
            l.virtual_memory_limit,
        );
    }
    if let Some(cpu) = l.cpu_time_limit {
        let soft = cpu.as_secs().max(1);
        set(
            "cpu-time-limit",
            Resource::RLIMIT_CPU,
            soft,
            soft + 1 + spec.shutdown_timeout.as_secs(),
        );
    }
}

pub fn setup_environment(spec: &GroupSpec) {
    if let Some(m) = spec.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
    }
    let home = spec.home.clone().or_else(|| {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(spec.uid))
            .ok()
            .flatten()
            .map(|u| u.dir.to_string_lossy().into_owned())
    });
    if let Some(h) = home {
        if let Err(e) = std::env::set_current_dir(&h) {
            log(
                "warn",
                &format!(
                    "rwsgi: daemon process '{}': cannot change directory to '{h}': {e}",
                    spec.name
                ),
            );
        }
    }
    // SAFETY-relevant: environment changes happen before any thread of ours exists.
    if let Some(l) = &spec.lang {
        // SAFETY: single-threaded at this point (no thread has been spawned yet).
        unsafe { std::env::set_var("LANG", l) };
    }
    if let Some(l) = &spec.locale {
        // SAFETY: as above.
        unsafe { std::env::set_var("LC_ALL", l) };
    }
}
