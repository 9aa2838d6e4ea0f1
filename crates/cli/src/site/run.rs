//! Apache in the foreground: started in its own process group (with the environment of
//! --envvars-script), stopped (and waited for, to the last daemon process) on Ctrl-C or
//! SIGTERM, restarted on SIGHUP and gracefully on SIGUSR1 as Apache itself is, and with
//! --reload-on-changes, told to restart the daemon processes when a Python source changes.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// Runs Apache in the foreground until it exits or we are asked to stop (SIGINT/SIGTERM),
/// then stops it and waits, so no process is left behind.
pub fn run_apache(
    apache: &Path,
    conf: &Path,
    watch: Option<(PathBuf, Vec<PathBuf>)>,
    env: Option<Vec<(String, String)>>,
    started: impl FnOnce(),
) -> Result<(), String> {
    use nix::sys::signal::{SigSet, Signal, kill};
    use nix::unistd::Pid;
    // Apache is started before the signals are blocked here: a child inherits the mask, and
    // an Apache with SIGTERM blocked would never stop.
    // Its own process group: Ctrl-C reaches us, we stop Apache, and the group tells us when
    // the last of its processes (children, daemon supervisors and workers) is gone.
    let mut cmd = Command::new(apache);
    cmd.arg("-f").arg(conf).arg("-DFOREGROUND").process_group(0);
    if let Some(env) = env {
        cmd.env_clear().envs(env);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", apache.display()))?;
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        mask.add(s);
    }
    mask.thread_block().map_err(|e| e.to_string())?;
    // Only now: a signal sent once the caller has been told we run is ours to handle (its
    // default action would end us and leave Apache behind).
    started();
    let pid = Pid::from_raw(child.id() as i32);
    let mut stamp = watch.as_ref().map(|(app, dirs)| newest_source(app, dirs));
    let mut last_check = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            wait_group(pid);
            return if status.success() {
                Ok(())
            } else {
                Err(format!("apache2 exited with {status}"))
            };
        }
        // The signals are blocked, so they wait for us here.
        let pending = pending_signal(&mask);
        if let Some(s @ (Signal::SIGHUP | Signal::SIGUSR1)) = pending {
            let how = if s == Signal::SIGHUP {
                "restart"
            } else {
                "graceful restart"
            };
            println!("rwsgi: {s}: Apache {how}");
            let _ = kill(pid, s);
        } else if pending.is_some() {
            return stop(&mut child, pid);
        }
        if let (Some((app, dirs)), Some(prev)) = (&watch, stamp) {
            if last_check.elapsed() >= Duration::from_secs(1) {
                last_check = Instant::now();
                stamp = Some(restart_if_changed(app, dirs, prev));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM to Apache, then wait for it and every process of its group.
fn stop(child: &mut std::process::Child, pid: nix::unistd::Pid) -> Result<(), String> {
    use nix::sys::signal::{Signal, kill};
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_group(pid);
    println!("rwsgi: stopped");
    Ok(())
}

/// --reload-on-changes: when a source is newer than `prev`, touch the WSGI script (its daemon
/// processes then restart); returns the newest time now.
fn restart_if_changed(app: &Path, dirs: &[PathBuf], prev: SystemTime) -> SystemTime {
    let now = newest_source(app, dirs);
    if now <= prev {
        return prev;
    }
    println!("rwsgi: source changed; restarting the daemon processes");
    let _ = std::fs::File::options()
        .append(true)
        .open(app)
        .and_then(|f| f.set_modified(SystemTime::now()));
    newest_source(app, dirs)
}

/// Waits until every process of Apache's process group has exited (daemon processes finish
/// their requests first), killing what is left after a while.
fn wait_group(leader: nix::unistd::Pid) {
    use nix::sys::signal::{Signal, killpg};
    let deadline = Instant::now() + Duration::from_secs(20);
    while killpg(leader, None).is_ok() {
        if Instant::now() > deadline {
            let _ = killpg(leader, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pending_signal(mask: &nix::sys::signal::SigSet) -> Option<nix::sys::signal::Signal> {
    // sigtimedwait with a zero timeout, through a signalfd (nix has no safe sigtimedwait).
    static FD: std::sync::OnceLock<std::sync::Mutex<nix::sys::signalfd::SignalFd>> =
        std::sync::OnceLock::new();
    let fd = FD.get_or_init(|| {
        std::sync::Mutex::new(
            nix::sys::signalfd::SignalFd::with_flags(
                mask,
                nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
            )
            .expect("signalfd"),
        )
    });
    match fd.lock().map(|f| f.read_signal()) {
        Ok(Ok(Some(info))) => nix::sys::signal::Signal::try_from(info.ssi_signo as i32).ok(),
        _ => None,
    }
}

/// The newest modification time of the WSGI script and every .py file under `dirs`.
fn newest_source(app: &Path, dirs: &[PathBuf]) -> SystemTime {
    fn walk(dir: &Path, depth: u32, best: &mut SystemTime) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir()
                && depth < 6
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                walk(&p, depth + 1, best);
            } else if p.extension().is_some_and(|x| x == "py") {
                if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                    *best = (*best).max(t);
                }
            }
        }
    }
    let mut best = std::fs::metadata(app)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    for d in dirs {
        walk(d, 0, &mut best);
    }
    best
}
