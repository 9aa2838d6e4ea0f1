//! What rwsgi sets up in each interpreter: the `mod_wsgi` module (bootstrap.py plus native
//! functions), stdout/stderr redirection, WSGIPythonPath, and the environ template every
//! request's environ is copied from.

use super::ffi::gil_cell::GilCell;
use super::ffi::interp::{self, Interpreter, Keep, Py, describe};
use super::ffi::native;
use super::ffi::object::{
    Obj, PyResult, builtins, eval_code, module_dict, new_module, sys_modules,
};
use super::response::environ_strings::EnvironStrings;
use std::sync::{Arc, OnceLock};

const BOOTSTRAP: &str = include_str!("bootstrap.py");
const BOOTSTRAP_API: &str = include_str!("bootstrap_api.py");

/// Per-process facts that go into every environ and into the `mod_wsgi` module.
#[derive(Debug, Clone, Default)]
pub struct ProcessInfo {
    pub multithread: bool,
    pub multiprocess: bool,
    pub process_group: String,
    pub apache_version: (u32, u32, u32),
    pub restrict_stdin: bool,
    pub restrict_stdout: bool,
    pub restrict_signal: bool,
    pub python_path: Vec<String>,
    pub switch_interval: Option<f64>,
    pub eggs: Option<String>,
    /// The New Relic agent's configuration file and environment.
    pub newrelic: Option<(String, Option<String>)>,
    /// `mod_wsgi.maximum_processes` / `threads_per_process`.
    pub maximum_processes: u32,
    pub threads_per_process: u32,
    /// WSGISlowRequests: longer requests are logged.
    pub slow_request_time: Option<f64>,
}

impl ProcessInfo {
    /// A process with the server-wide WSGIPython*/WSGIRestrict* settings (mod_wsgi's
    /// defaults where they are not given: signal registration restricted, stdin and stdout
    /// open); the caller says what kind of process it is.
    pub fn from_settings(p: &rwsgi_core::config::PythonSettings) -> ProcessInfo {
        ProcessInfo {
            multithread: false,
            multiprocess: false,
            process_group: String::new(),
            apache_version: (2, 4, 0),
            restrict_stdin: p.restrict_stdin.unwrap_or(false),
            restrict_stdout: p.restrict_stdout.unwrap_or(false),
            restrict_signal: p.restrict_signal.unwrap_or(true),
            python_path: p.path.clone(),
            switch_interval: p.switch_interval,
            eggs: p.eggs.clone(),
            maximum_processes: 1,
            threads_per_process: 1,
            slow_request_time: p.slow_request_time,
            newrelic: p
                .newrelic_config_file
                .clone()
                .map(|f| (f, p.newrelic_environment.clone())),
        }
    }
}

static PROCESS: OnceLock<ProcessInfo> = OnceLock::new();

/// Objects rwsgi keeps in one interpreter.
pub struct InterpData {
    /// The native `wsgi.input` type (ffi::input_type), made in this interpreter.
    pub input_class: Keep,
    /// `wsgi.errors` for a request: `_errors(exchange capsule)`.
    pub errors_factory: Keep,
    pub file_wrapper_class: Keep,
    pub template: Keep,
    /// The environ's names and stable values, made once (response::environ_strings).
    pub environ_strings: GilCell<EnvironStrings>,
    pub request_timeout_class: Keep,
    /// `newrelic.agent.WSGIApplicationWrapper`, when the agent is configured and imports.
    pub newrelic_wrapper: Option<Keep>,
    /// The module's request-life and event functions (bootstrap_api.py).
    pub api: Api,
}

pub fn data(i: &Interpreter) -> &InterpData {
    i.data
        .get()
        .and_then(|d| d.downcast_ref::<InterpData>())
        .expect("interpreter set up by rwsgi")
}

/// What Python is started with, from the WSGIPython* settings (`home`: WSGIPythonHome or a
/// daemon group's python-home).
pub fn init_config(
    p: &rwsgi_core::config::PythonSettings,
    home: Option<String>,
) -> interp::InitConfig {
    interp::InitConfig {
        home,
        optimize: p.optimize.unwrap_or(0),
        warnings: p.warnings.clone(),
        hash_seed: match p.hash_seed {
            Some(rwsgi_core::config::HashSeed::Fixed(n)) => Some(n),
            _ => None,
        },
        dont_write_bytecode: p.dont_write_bytecode.unwrap_or(false),
    }
}

/// Starts Python and sets up the main interpreter.
pub fn start(init: &interp::InitConfig, process: ProcessInfo) -> Result<(), String> {
    if let Some(eggs) = &process.eggs {
        // SAFETY-free: setting the environment before Python (and any thread of ours) reads it.
        // SAFETY: called during child initialisation, before request threads run Python.
        unsafe { std::env::set_var("PYTHON_EGG_CACHE", eggs) };
    }
    let _ = PROCESS.set(process);
    interp::initialize(init, setup)
}

/// Requests taking longer than this many seconds are logged (None: none are).
pub fn slow_request_time() -> Option<f64> {
    PROCESS.get().and_then(|p| p.slow_request_time)
}

/// The interpreter for an application group ("" = main). Must be called detached.
pub fn get(group: &str) -> Result<Arc<Interpreter>, String> {
    interp::interpreter(group, &setup)
}

fn setup(i: &Interpreter, py: Py<'_>) -> Result<(), String> {
    let p = PROCESS.get().cloned().unwrap_or_default();
    describe(build(py, i, &p).map(|d| {
        let _ = i.data.set(Box::new(d));
    }))?;
    Ok(())
}

fn build(py: Py<'_>, i: &Interpreter, p: &ProcessInfo) -> PyResult<InterpData> {
    let module = new_module(py, "mod_wsgi")?;
    let dict = module_dict(&module);
    dict.dict_set_str(c"__builtins__", &builtins(py))?;
    for (name, f) in native::module_functions()? {
        dict.dict_set_str(name, &f)?;
    }
    // `import mod_wsgi` in applications finds this module (it has no file to import from).
    sys_modules(py).dict_set(&Obj::str(py, "mod_wsgi")?, &module)?;
    let code = compile(py, BOOTSTRAP, "<rwsgi bootstrap>")?;
    eval_code(&code, &dict)?;
    let code = compile(py, BOOTSTRAP_API, "<rwsgi bootstrap api>")?;
    eval_code(&code, &dict)?;
    dict.dict_set_str(
        c"maximum_processes",
        &Obj::int(py, p.maximum_processes as i64)?,
    )?;
    dict.dict_set_str(
        c"threads_per_process",
        &Obj::int(py, p.threads_per_process as i64)?,
    )?;
    dict.dict_set_str(c"process_group", &Obj::str(py, &p.process_group)?)?;
    dict.dict_set_str(c"application_group", &Obj::str(py, &i.name)?)?;
    dict.dict_set_str(c"rwsgi_version", &Obj::str(py, env!("CARGO_PKG_VERSION"))?)?;
    let path: Vec<Obj> = p
        .python_path
        .iter()
        .map(|s| Obj::str(py, s))
        .collect::<PyResult<_>>()?;
    let setup = dict
        .dict_get_str("_setup")
        .expect("bootstrap defines _setup");
    setup.call(&[
        &Obj::bool(py, p.restrict_stdin),
        &Obj::bool(py, p.restrict_stdout),
        &Obj::bool(py, p.restrict_signal),
        &Obj::tuple(py, path)?,
    ])?;
    if let Some(si) = p.switch_interval {
        super::ffi::object::import(py, c"sys")?
            .call_method(c"setswitchinterval", &[&Obj::float(py, si)?])?;
    }
    let get = |n: &str| dict.dict_get_str(n).expect("bootstrap class");
    let input_type = super::ffi::input_type::new_type(py)?;
    dict.dict_set_str(c"Input", &input_type)?;
    let file_wrapper = get("FileWrapper");
    let template = environ_template(py, p, &file_wrapper)?;
    Ok(InterpData {
        input_class: Keep::new(input_type),
        errors_factory: Keep::new(get("_errors")),
        file_wrapper_class: Keep::new(file_wrapper),
        template: Keep::new(template),
        environ_strings: GilCell::new(EnvironStrings::default()),
        request_timeout_class: Keep::new(get("RequestTimeout")),
        newrelic_wrapper: p.newrelic.as_ref().and_then(|nr| newrelic(py, i, nr)),
        api: Api {
            begin: Keep::new(get("_request_begin")),
            end: Keep::new(get("_request_end")),
            started: Keep::new(get("_event_request_started")),
            wrap_start_response: Keep::new(get("_wrap_start_response")),
            exception: Keep::new(get("_event_request_exception")),
            finished: Keep::new(get("_event_request_finished")),
            stopping: Keep::new(get("_process_stopping")),
            signal: Keep::new(get("_process_signal")),
            event_callbacks: Keep::new(get("event_callbacks")),
            stack_of: Keep::new(get("_stack_of")),
            request_timeout: Keep::new(get("RequestTimeout")),
        },
    })
}

/// The `mod_wsgi` module's functions rwsgi calls around each request and at process events.
pub struct Api {
    pub begin: Keep,
    pub end: Keep,
    pub started: Keep,
    pub wrap_start_response: Keep,
    pub exception: Keep,
    pub finished: Keep,
    pub stopping: Keep,
    pub signal: Keep,
    pub event_callbacks: Keep,
    pub stack_of: Keep,
    /// `mod_wsgi.RequestTimeout`: a request that ends with it is answered 504.
    pub request_timeout: Keep,
}

impl Api {
    /// Whether anything subscribed to the request events (else none is built).
    pub fn events(&self, py: Py<'_>) -> bool {
        self.event_callbacks.get(py).size().is_ok_and(|n| n > 0)
    }
}

impl InterpData {
    /// The application inside the New Relic agent's WSGI wrapper, when the agent is on.
    pub fn newrelic_wrapped(&self, py: Py<'_>, app: &Obj) -> PyResult<Option<Obj>> {
        match &self.newrelic_wrapper {
            Some(w) => w.get(py).call(&[app, &Obj::none(py)]).map(Some),
            None => Ok(None),
        }
    }
}

/// Initialises the New Relic agent in this interpreter (as mod_wsgi <= 5 does); its WSGI
/// wrapper, or `None` (logged) when the agent cannot be imported or initialised.
fn newrelic(py: Py<'_>, i: &Interpreter, (file, env): &(String, Option<String>)) -> Option<Keep> {
    let pid = std::process::id();
    let setup = (|| -> PyResult<Obj> {
        let agent = super::ffi::object::import(py, c"newrelic.agent")?;
        let env = match env {
            Some(e) => Obj::str(py, e)?,
            None => Obj::none(py),
        };
        agent.call_method(c"initialize", &[&Obj::str(py, file)?, &env])?;
        agent.getattr(c"WSGIApplicationWrapper")
    })();
    match setup {
        Ok(wrapper) => {
            super::transport::server_log(
                rwsgi_core::Level::Info,
                &format!(
                    "rwsgi (pid={pid}, application='{}'): Imported 'newrelic.agent' and initialised it from '{file}'.",
                    i.name
                ),
            );
            Some(Keep::new(wrapper))
        }
        Err(_) => {
            super::transport::server_log(
                rwsgi_core::Level::Error,
                &format!(
                    "rwsgi (pid={pid}, application='{}'): Unable to initialise the New Relic agent ('newrelic.agent', config '{file}'); applications run without it.",
                    i.name
                ),
            );
            if let Some(p) = super::ffi::object::Pending::fetch() {
                for line in p.format() {
                    super::transport::server_log(rwsgi_core::Level::Error, &line);
                }
            }
            None
        }
    }
}

/// The keys every environ of this interpreter starts with (copied per request).
fn environ_template(py: Py<'_>, p: &ProcessInfo, file_wrapper: &Obj) -> PyResult<Obj> {
    let template = Obj::new_dict(py)?;
    let (a, b, c) = p.apache_version;
    let version = Obj::tuple(
        py,
        vec![Obj::int(py, 4)?, Obj::int(py, 9)?, Obj::int(py, 4)?],
    )?;
    template.dict_set_str(
        c"wsgi.version",
        &Obj::tuple(py, vec![Obj::int(py, 1)?, Obj::int(py, 0)?])?,
    )?;
    template.dict_set_str(c"wsgi.multithread", &Obj::bool(py, p.multithread))?;
    template.dict_set_str(c"wsgi.multiprocess", &Obj::bool(py, p.multiprocess))?;
    template.dict_set_str(c"wsgi.run_once", &Obj::bool(py, false))?;
    template.dict_set_str(c"wsgi.file_wrapper", file_wrapper)?;
    template.dict_set_str(c"wsgi.input_terminated", &Obj::bool(py, true))?;
    template.dict_set_str(
        c"apache.version",
        &Obj::tuple(
            py,
            vec![
                Obj::int(py, a as i64)?,
                Obj::int(py, b as i64)?,
                Obj::int(py, c as i64)?,
            ],
        )?,
    )?;
    template.dict_set_str(c"mod_wsgi.version", &version)?;
    Ok(template)
}

/// `compile(source, filename, "exec")` through the builtin, so coding cookies and flags work
/// exactly as for imported modules.
pub fn compile(py: Py<'_>, source: &str, filename: &str) -> PyResult<Obj> {
    compile_bytes(py, source.as_bytes(), filename)
}

pub fn compile_bytes(py: Py<'_>, source: &[u8], filename: &str) -> PyResult<Obj> {
    let compile = builtins(py)
        .dict_get_str("compile")
        .expect("builtins.compile");
    compile.call(&[
        &Obj::bytes(py, source)?,
        &Obj::str(py, filename)?,
        &Obj::str(py, "exec")?,
    ])
}

/// How many threads are inside Python through rwsgi (see `interp::threads_in_python`).
pub fn threads_in_python() -> usize {
    interp::threads_in_python()
}

/// `process_stopping` for every interpreter's subscribers (`subscribe_events`, then
/// `subscribe_shutdown`), as mod_wsgi publishes it when a process is about to stop;
/// `reason`: "" for a requested stop, else what ended the process (mod_wsgi 6's names).
pub fn process_stopping(reason: &str) {
    call_in_each(|py, data| {
        data.api
            .stopping
            .get(py)
            .call(&[&Obj::str(py, reason)?])
            .map(|_| ())
    });
}

/// `process_signal` for the subscribers (`subscribe_signals`, mod_wsgi 6): a daemon process
/// got SIGHUP or SIGUSR2 and keeps running.
pub fn process_signal(signame: &str, signum: i32) {
    call_in_each(|py, data| {
        data.api
            .signal
            .get(py)
            .call(&[&Obj::str(py, signame)?, &Obj::int(py, signum as i64)?])
            .map(|_| ())
    });
}

/// Runs `f` attached to every interpreter that has rwsgi's data; errors are printed to the
/// server log.
fn call_in_each(f: impl Fn(Py<'_>, &InterpData) -> PyResult<()>) {
    if !interp::is_initialized() {
        return;
    }
    for i in interp::all() {
        let a = interp::Attached::enter(&i);
        let py = a.py();
        let Some(d) = i.data.get().and_then(|d| d.downcast_ref::<InterpData>()) else {
            continue;
        };
        if f(py, d).is_err() {
            if let Some(p) = super::ffi::object::Pending::fetch() {
                for line in p.format() {
                    super::transport::server_log(rwsgi_core::Level::Error, &line);
                }
            }
        }
    }
}

/// Runs `atexit` callbacks and flushes output in every interpreter (process exit).
pub fn run_atexit() {
    if !interp::is_initialized() {
        return;
    }
    for i in interp::all() {
        let a = interp::Attached::enter(&i);
        let py = a.py();
        let r = (|| -> PyResult<()> {
            super::ffi::object::import(py, c"atexit")?.call_method(c"_run_exitfuncs", &[])?;
            let sys = super::ffi::object::import(py, c"sys")?;
            for s in [c"stdout", c"stderr"] {
                if let Ok(f) = sys.getattr(s) {
                    let _ = f.call_method(c"flush", &[]);
                }
            }
            Ok(())
        })();
        if r.is_err() {
            drop(super::ffi::object::Pending::fetch());
        }
    }
}

/// WSGIImportScript: loads `script` into the interpreter of `group` at process start, under the
/// same module name a request for that script uses (so requests reuse it).
pub fn preload(group: &str, script: &str) -> Result<(), String> {
    let i = get(group)?;
    let mtime = std::fs::metadata(script)
        .and_then(|m| m.modified())
        .map_err(|e| format!("cannot stat '{script}': {e}"))?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let a = interp::Attached::enter(&i);
    describe(
        super::app::load(a.py(), &i, script, mtime, false, None)
            .map(|_| ())
            .map_err(|_| super::ffi::object::Raised),
    )
}

/// Turns on Python's faulthandler in the main interpreter, writing to descriptor `fd`: a
/// crash in native code leaves every thread's Python stack in the log. Must be called
/// detached.
pub fn enable_faulthandler(fd: i32) {
    let Ok(i) = get("") else { return };
    let a = interp::Attached::enter(&i);
    let py = a.py();
    let enabled = super::ffi::object::import(py, c"faulthandler").and_then(|fh| {
        let fd = super::ffi::object::Obj::int(py, fd as i64)?;
        fh.call_method(c"enable", &[&fd])
    });
    if enabled.is_err() {
        drop(super::ffi::object::Pending::fetch());
    }
}

/// Takes and releases the GIL once (deadlock-timeout's probe: if this cannot complete, the
/// process is wedged). Must be called detached.
/// Raises `mod_wsgi.RequestTimeout` in the request thread `ident` running in application
/// group `group` (daemon mode's interrupt-timeout). It takes effect when that thread next runs
/// Python bytecode: a thread blocked inside C stays blocked. True if the thread was found.
pub fn interrupt(group: &str, ident: u64) -> bool {
    match get(group) {
        Ok(i) => {
            let attached = interp::Attached::enter(&i);
            interp::raise_in_thread(&attached, ident, &data(&i).request_timeout_class)
        }
        Err(_) => false,
    }
}

/// The calling thread's Python identifier (what [`interrupt`] needs).
pub fn thread_ident() -> u64 {
    interp::thread_ident()
}

pub fn touch_gil() -> bool {
    match get("") {
        Ok(i) => {
            drop(interp::Attached::enter(&i));
            true
        }
        Err(_) => false,
    }
}
