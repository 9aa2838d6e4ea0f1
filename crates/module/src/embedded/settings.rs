//! Embedded mode's process-wide settings: computed in the Apache parent after configuration
//! (post_config) and inherited by the children, which start Python from them (child_init).

use crate::routing::Routes;
use rwsgi_apache::{log, process};
use rwsgi_core::Level;
use rwsgi_core::config::groups::{GLOBAL, ProcessGroup};
use rwsgi_core::config::{PythonSettings, ServerConfig};
use rwsgi_python::{self as wsgi, ProcessInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug, Default)]
pub struct Settings {
    pub python: PythonSettings,
    pub restrict_embedded: bool,
    pub case_insensitive: bool,
    pub routes: Routes,
    /// WSGIImportScript entries for embedded mode: (application group, script).
    pub preload: Vec<(String, String)>,
    python_ready: bool,
}

impl Settings {
    /// Whether a request may run embedded here, else why not.
    pub fn embedded_ready(&self) -> Result<(), &'static str> {
        if self.restrict_embedded {
            return Err("Embedded mode of mod_wsgi disabled by runtime configuration");
        }
        if !self.python_ready {
            return Err("Python is not initialised in this process (see errors at child start)");
        }
        Ok(())
    }
}

static SETTINGS: RwLock<Option<Arc<Settings>>> = RwLock::new(None);

/// Set while the configuration is read when a directive needs Python in the Apache children
/// whatever WSGIRestrictEmbedded says: dispatch, authentication, access and handler scripts
/// run there (as with mod_wsgi).
static HOOKS_NEED_PYTHON: AtomicBool = AtomicBool::new(false);

pub fn python_needed_by_hooks(yes: bool) {
    HOOKS_NEED_PYTHON.store(yes, Ordering::Relaxed);
}

pub fn current() -> Arc<Settings> {
    SETTINGS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

fn store(s: Settings) {
    *SETTINGS.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(s));
}

/// WSGIImportScript entries to run in Apache children, deduplicated (virtual hosts inherit
/// the main server's), or an error naming the first one rwsgi cannot honour.
pub fn embedded_preloads(servers: &[&ServerConfig]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for i in servers.iter().flat_map(|s| s.import_scripts.iter()) {
        if ProcessGroup::of(&i.process_group) != ProcessGroup::Embedded {
            // A daemon group's scripts are preloaded by its own processes.
            if rwsgi_core::config::daemon::find_daemon(servers, &i.process_group).is_none() {
                return Err(format!(
                    "WSGIImportScript {}: WSGI process group '{}' is not configured",
                    i.path, i.process_group
                ));
            }
            continue;
        }
        let group = match i.application_group.as_str() {
            GLOBAL => String::new(),
            g if g.starts_with("%{") => {
                return Err(format!(
                    "WSGIImportScript {}: application-group must be %{{GLOBAL}} or a name, not {g}",
                    i.path
                ));
            }
            g => g.to_string(),
        };
        let entry = (group, i.path.clone());
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// post_config: `servers[0]` is the main server.
pub fn configure(servers: &[&ServerConfig]) -> Result<(), String> {
    let python = servers
        .first()
        .map(|s| s.python.clone())
        .unwrap_or_default();
    store(Settings {
        restrict_embedded: python.restrict_embedded.unwrap_or(false),
        case_insensitive: python.case_sensitivity == Some(false),
        routes: Routes::of(servers),
        preload: embedded_preloads(servers)?,
        python,
        python_ready: false,
    });
    Ok(())
}

/// What rwsgi adds to Apache's Server banner.
pub fn version_component() -> String {
    format!(
        "rwsgi/{} Python/{}",
        env!("CARGO_PKG_VERSION"),
        wsgi::PYTHON_VERSION
    )
}

/// child_init: start Python in this Apache child, unless nothing may run here (embedded mode
/// off and no hook scripts).
pub fn child_init() {
    let s = current();
    if s.restrict_embedded && !HOOKS_NEED_PYTHON.load(Ordering::Relaxed) {
        return;
    }
    let _ = python();
}

/// Python in this child, started now if it is not yet (a hook script declared in an
/// .htaccess file is only seen at request time); the error says why not.
pub fn python() -> Result<(), String> {
    static STARTING: Mutex<()> = Mutex::new(());
    if current().python_ready {
        return Ok(());
    }
    let _once = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    let s = current();
    if s.python_ready {
        return Ok(());
    }
    // This child now reads request bodies into Python: their blocks stay in malloc's arenas.
    rwsgi_core::malloc::tune();
    wsgi::transport::set_server_logger(log::server);
    if s.python.server_metrics == Some(true) {
        wsgi::set_scoreboard(rwsgi_apache::scoreboard::read);
    }
    let p = &s.python;
    let init = wsgi::interpreters::init_config(p, p.home.clone());
    let (threaded, threads, forked, daemons) = process::mpm_threads_and_daemons();
    let info = ProcessInfo {
        multithread: threaded && threads != 1,
        multiprocess: forked && daemons != 1,
        apache_version: process::server_version(),
        maximum_processes: daemons.max(1) as u32,
        threads_per_process: if threaded { threads.max(1) as u32 } else { 1 },
        ..ProcessInfo::from_settings(p)
    };
    let pid = std::process::id();
    if let Err(e) = wsgi::interpreters::start(&init, info) {
        let e = format!("cannot initialise Python: {e} (check WSGIPythonHome)");
        log::server(Level::Crit, &format!("rwsgi (pid={pid}): {e}"));
        return Err(e);
    }
    store(Settings {
        python: s.python.clone(),
        restrict_embedded: s.restrict_embedded,
        case_insensitive: s.case_insensitive,
        routes: s.routes.clone(),
        preload: s.preload.clone(),
        python_ready: true,
    });
    log::server(
        Level::Info,
        &format!("rwsgi (pid={pid}): Python initialised."),
    );
    for (group, script) in &s.preload {
        if let Err(e) = wsgi::interpreters::preload(group, script) {
            log::server(
                Level::Error,
                &format!("rwsgi (pid={pid}): WSGIImportScript '{script}' failed:"),
            );
            for line in e.lines() {
                log::server(Level::Error, line);
            }
        }
    }
    Ok(())
}

/// Child exit: run `atexit` callbacks in every interpreter. Python is not finalised (the
/// process is exiting; finalisation is where Python >= 3.9 shutdown hangs come from).
///
/// Skipped while a thread is still inside Python: the threaded MPMs run this after joining
/// their workers, but prefork runs it from its SIGTERM handler, on top of whatever the child
/// was doing — taking the GIL that the interrupted request holds would hang the child until
/// Apache SIGKILLs it, and running Python there is not safe anyway. Nothing is logged in that
/// case: the interrupted code may hold the allocator's lock, and logging allocates.
pub fn child_exit() {
    if wsgi::interpreters::threads_in_python() > 0 {
        return;
    }
    wsgi::interpreters::process_stopping("");
    wsgi::interpreters::run_atexit();
}
