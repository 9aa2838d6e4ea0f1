//! Apache in the foreground: started in its own process group, stopped (and waited for, to
//! the last daemon process) on Ctrl-C or SIGTERM, and with --reload-on-changes, told to
//! restart the daemon processes when a Python source changes.

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
) -> Result<(), String> {
    use nix::sys::signal::{SigSet, Signal, kill};
    use nix::unistd::Pid;
    // Apache is started before the signals are blocked here: a child inherits the mask, and
    // an Apache with SIGTERM blocked would never stop.
    // Its own process group: Ctrl-C reaches us, we stop Apache, and the group tells us when
    // the last of its processes (children, daemon supervisors and workers) is gone.
    let mut child = Command::new(apache)
        .arg("-f")
        .arg(conf)
        .arg("-DFOREGROUND")
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", apache.display()))?;
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    mask.thread_block().map_err(|e| e.to_string())?;
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
        // SIGINT/SIGTERM are blocked, so they wait for us here.
        if signal_pending(&mask) {
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
            return Ok(());
        }
        if let (Some((app, dirs)), Some(prev)) = (&watch, stamp) {
            if last_check.elapsed() >= Duration::from_secs(1) {
                last_check = Instant::now();
                let now = newest_source(app, dirs);
                if now > prev {
                    println!("rwsgi: source changed; restarting the daemon processes");
                    // Touching the WSGI script makes its daemon processes restart.
                    let _ = std::fs::File::options()
                        .append(true)
                        .open(app)
                        .and_then(|f| f.set_modified(SystemTime::now()));
                    stamp = Some(newest_source(app, dirs));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
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

fn signal_pending(mask: &nix::sys::signal::SigSet) -> bool {
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
    matches!(fd.lock().map(|f| f.read_signal()), Ok(Ok(Some(_))))
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
