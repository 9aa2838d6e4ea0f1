//! A daemon process: the program the supervisor executes for each process of a group
//! (`rwsgi-daemon`, src/bin/rwsgi-daemon.rs). It starts with nothing of Apache: no other
//! group's secret or configuration, no log file, no listener but its own — only the
//! descriptors below, set up by the supervisor before `execve`.
//!
//! | fd | what                                                                  |
//! |----|-----------------------------------------------------------------------|
//! | 0  | /dev/null                                                             |
//! | 1,2| a pipe to the supervisor, which writes the lines to Apache's error log |
//! | 3  | the group's listening socket                                          |
//! | 4  | the group's settings ([`WorkerSpec`], JSON), read once and closed     |
//! | 5  | the group's status board (sealed memfd), slot number in `RWSGI_STATUS_SLOT` |
//!
//! It runs as root only until it has read its settings and switched to the group's user
//! (`process`), then starts Python and serves (`pool`, `session`), watched by `watchdog`.

mod heap;
mod hub;
mod poller;
mod pool;
mod process;
mod rings;
mod session;
mod status;
pub mod transport;
mod watchdog;

use super::sys::exit_now;
use rwsgi_core::Level;
use rwsgi_core::death::Exit;
use rwsgi_core::errlog::log;
use rwsgi_core::label::DaemonName;
use rwsgi_core::spec::GroupSpec;
use rwsgi_python::{self as wsgi, ProcessInfo};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

pub const LISTENER_FD: RawFd = 3;
pub const SPEC_FD: RawFd = 4;
pub const BOARD_FD: RawFd = 5;
/// The environment variable naming the process's slot in the status board.
pub const SLOT_VAR: &str = "RWSGI_STATUS_SLOT";

/// What the supervisor hands a daemon process on [`SPEC_FD`].
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct WorkerSpec {
    pub group: GroupSpec,
    /// The supervisor's pid: a process whose supervisor is gone before it could ask to be
    /// told (the parent-death signal) exits at once.
    pub supervisor_pid: i32,
    /// Apache's Level for the wsgi module (APLOG_* numbers).
    pub log_level: i32,
}

fn read_spec() -> Result<WorkerSpec, String> {
    use std::os::unix::fs::FileExt;
    // SAFETY: the supervisor put the settings memfd on SPEC_FD before exec; nothing else in
    // this process refers to that descriptor, and the File takes it over (closed on drop).
    let file = unsafe { std::fs::File::from_raw_fd(SPEC_FD) };
    let mut buf = Vec::new();
    let mut off = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read_at(&mut chunk, off)
            .map_err(|e| format!("cannot read settings on fd {SPEC_FD}: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        off += n as u64;
    }
    serde_json::from_slice(&buf).map_err(|e| format!("unreadable settings on fd {SPEC_FD}: {e}"))
}

/// The daemon program's `main`.
pub fn program_main() -> ! {
    let slot = status::take_slot();
    rwsgi_core::malloc::tune();
    rwsgi_core::guard::set_reporter(|m| log(Level::Crit, m));
    let spec = match read_spec() {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "rwsgi-daemon: {e}\nrwsgi-daemon is started by mod_rwsgi's daemon process supervisor; it is not meant to be run by hand."
            );
            exit_now(Exit::Setup as i32)
        }
    };
    rwsgi_core::errlog::LOG_LEVEL.store(spec.log_level, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: the supervisor put the group's listening socket on LISTENER_FD before exec;
    // nothing else in this process owns it.
    let listener = unsafe { OwnedFd::from_raw_fd(LISTENER_FD) };
    status::open(&spec.group, slot);
    let code = rwsgi_core::guard::catch(|| start(&spec, listener)).unwrap_or_else(|e| {
        log(Level::Crit, &format!("rwsgi: daemon process failed: {e}"));
        Exit::Internal as i32
    });
    exit_now(code)
}

/// Becomes the group's process: privileges, environment, Python; then serves until told to
/// stop. Returns the exit status.
fn start(w: &WorkerSpec, listener: OwnedFd) -> i32 {
    let spec = &w.group;
    super::sys::set_process_name(&spec.title());
    if spec.options.display_name.is_some() {
        super::sys::set_command_line(&spec.title());
    }
    if let Err(e) = process::drop_privileges(spec) {
        log(
            Level::Crit,
            &format!(
                "rwsgi: {} cannot switch to uid {} / gid {}: {e}; exiting",
                DaemonName(spec.name()),
                spec.identity.uid,
                spec.identity.gid
            ),
        );
        return Exit::Setup as i32;
    }
    // Nothing else running as this user may read this process's memory (the group's
    // secret): the credential change already cleared the flag; an unprivileged Apache
    // (no change) clears it here.
    let _ = nix::sys::prctl::set_dumpable(false);
    // After the credential change, which clears the parent-death signal: this process must
    // not outlive its supervisor.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM);
    if nix::unistd::getppid().as_raw() != w.supervisor_pid {
        return Exit::Normal as i32;
    }
    process::setup_environment(spec);
    process::apply_limits(spec);
    wsgi::transport::set_server_logger(log);
    let p = &spec.python;
    let init = wsgi::interpreters::init_config(p, spec.python_home());
    pool::block_signals();
    let info = process_info(spec);
    if let Err(e) = wsgi::interpreters::start(&init, info) {
        log(
            Level::Crit,
            &format!(
                "rwsgi: {} cannot initialise Python: {e}",
                DaemonName(spec.name())
            ),
        );
        return Exit::Setup as i32;
    }
    // A crash in native code leaves the Python stacks of every thread in the error log.
    wsgi::interpreters::enable_faulthandler(2);
    log(
        Level::Info,
        &format!(
            "rwsgi: {} started (uid {}, {} threads).",
            DaemonName(spec.name()),
            nix::unistd::getuid(),
            spec.threads()
        ),
    );
    for (group, script) in &spec.import_scripts {
        if let Err(e) = wsgi::interpreters::preload(group, script) {
            log(
                Level::Error,
                &format!(
                    "rwsgi: WSGIImportScript '{script}' failed in {}:",
                    DaemonName(spec.name())
                ),
            );
            for line in e.lines() {
                log(Level::Error, line);
            }
        }
    }
    pool::serve(spec, listener)
}

/// What the group's Python sees of its process: mod_wsgi's settings for a daemon process.
fn process_info(spec: &GroupSpec) -> ProcessInfo {
    ProcessInfo {
        multithread: spec.threads() > 1,
        multiprocess: spec.options.processes_given,
        maximum_processes: spec.options.processes,
        threads_per_process: spec.threads(),
        process_group: spec.name().to_string(),
        apache_version: spec.apache_version,
        python_path: spec.options.python_path.clone(),
        eggs: spec.python_eggs(),
        switch_interval: spec.options.switch_interval,
        newrelic: spec
            .options
            .newrelic_config_file
            .clone()
            .map(|f| (f, spec.options.newrelic_environment.clone())),
        ..ProcessInfo::from_settings(&spec.python)
    }
}
