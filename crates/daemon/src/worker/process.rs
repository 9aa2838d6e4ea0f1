//! The process a daemon becomes before Python starts: the group's user and groups, its
//! resource limits, working directory, umask and locale.

use rwsgi_core::Level;
use rwsgi_core::errlog::log;
use rwsgi_core::label::DaemonName;
use rwsgi_core::spec::GroupSpec;

pub fn drop_privileges(spec: &GroupSpec) -> nix::Result<()> {
    use nix::unistd::{
        Gid, Uid, getegid, geteuid, getgid, getuid, initgroups, setgid, setgroups, setuid,
    };
    if !geteuid().is_root() {
        return Ok(());
    }
    if spec.identity.uid == 0 {
        return Err(nix::errno::Errno::EPERM);
    }
    match (&spec.identity.supplementary_gids, &spec.identity.user_name) {
        (Some(g), _) => setgroups(&g.iter().map(|&g| Gid::from_raw(g)).collect::<Vec<_>>())?,
        (None, Some(name)) => {
            let c = std::ffi::CString::new(name.as_str()).map_err(|_| nix::errno::Errno::EINVAL)?;
            initgroups(&c, Gid::from_raw(spec.identity.gid))?
        }
        (None, None) => setgroups(&[Gid::from_raw(spec.identity.gid)])?,
    }
    setgid(Gid::from_raw(spec.identity.gid))?;
    setuid(Uid::from_raw(spec.identity.uid))?;
    // Verify that the switch is complete and cannot be undone.
    let ok = getuid().as_raw() == spec.identity.uid
        && geteuid().as_raw() == spec.identity.uid
        && getgid().as_raw() == spec.identity.gid
        && getegid().as_raw() == spec.identity.gid
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
    let l = &spec.options;
    if l.cpu_priority != 0 {
        if let Err(e) = super::super::sys::set_cpu_priority(l.cpu_priority) {
            log(
                Level::Warn,
                &format!(
                    "rwsgi: {}: cpu-priority={}: {e}",
                    DaemonName(spec.name()),
                    l.cpu_priority
                ),
            );
        }
    }
    let set = |what: &str, r: Resource, soft: u64, hard: u64| {
        if let Err(e) = setrlimit(r, soft, hard) {
            log(
                Level::Warn,
                &format!("rwsgi: {}: {what}: {e}", DaemonName(spec.name())),
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
            soft + 1
                + spec
                    .options
                    .shutdown_timeout
                    .unwrap_or(rwsgi_core::config::daemon::DEFAULT_SHUTDOWN_TIMEOUT)
                    .as_secs(),
        );
    }
}

pub fn setup_environment(spec: &GroupSpec) {
    if let Some(m) = spec.options.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
    }
    let home = spec.options.home.clone().or_else(|| {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(spec.identity.uid))
            .ok()
            .flatten()
            .map(|u| u.dir.to_string_lossy().into_owned())
    });
    if let Some(h) = home {
        if let Err(e) = std::env::set_current_dir(&h) {
            log(
                Level::Warn,
                &format!(
                    "rwsgi: {}: cannot change directory to '{h}': {e}",
                    DaemonName(spec.name())
                ),
            );
        }
    }
    // SAFETY-relevant: environment changes happen before any thread of ours exists.
    if let Some(l) = &spec.options.lang {
        // SAFETY: single-threaded at this point (no thread has been spawned yet).
        unsafe { std::env::set_var("LANG", l) };
    }
    if let Some(l) = &spec.options.locale {
        // SAFETY: as above.
        unsafe { std::env::set_var("LC_ALL", l) };
    }
}
