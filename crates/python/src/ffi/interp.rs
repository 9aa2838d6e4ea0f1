//! The Python runtime in this process: initialisation from the WSGIPython* settings, the table
//! of interpreters (the main one and one sub-interpreter per application group), and the
//! per-thread thread states. A thread keeps one thread state per interpreter for its whole
//! life and attaches/detaches it around each request: that is several times cheaper than
//! creating one per request and keeps `threading.local` alive across requests.

use super::object::{Obj, PyResult, Raised};
use pyo3_ffi as ffi;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};

/// Settings that must be decided before Python starts.
#[derive(Debug, Clone, Default)]
pub struct InitConfig {
    pub home: Option<String>,
    pub optimize: u8,
    pub warnings: Vec<String>,
    pub hash_seed: Option<u32>,
    pub dont_write_bytecode: bool,
}

/// A Python object pointer kept for the life of the process in an interpreter's state (never
/// released: interpreters are never destroyed while the process serves requests).
#[derive(Clone, Copy)]
pub struct Keep(*mut ffi::PyObject);

// SAFETY: a Keep is only dereferenced by a thread attached to the interpreter it belongs to.
unsafe impl Send for Keep {}
unsafe impl Sync for Keep {}

impl Keep {
    pub fn new(o: Obj) -> Keep {
        Keep(o.into_ptr())
    }
    pub fn get(&self, _py: Py<'_>) -> Obj {
        // SAFETY: a kept object lives as long as its interpreter; attached (the token).
        unsafe { Obj::borrowed(self.0) }.expect("kept object")
    }
    pub fn ptr(&self) -> *mut ffi::PyObject {
        self.0
    }
}

/// One interpreter and what rwsgi keeps in it.
pub struct Interpreter {
    pub id: usize,
    /// Application group name; "" is the main interpreter.
    pub name: String,
    state: *mut ffi::PyInterpreterState,
    /// Serialises script loading in this interpreter (taken with the GIL released).
    pub load_lock: Mutex<()>,
    /// Set once by the WSGI layer right after creation.
    pub data: OnceLock<Box<dyn std::any::Any + Send + Sync>>,
}

// SAFETY: the PyInterpreterState pointer is only used to create thread states, which CPython
// allows from any thread.
unsafe impl Send for Interpreter {}
unsafe impl Sync for Interpreter {}

struct Runtime {
    interps: Mutex<HashMap<String, Arc<Interpreter>>>,
    main: Arc<Interpreter>,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

thread_local! {
    /// This thread's thread state for each sub-interpreter id. Never freed: threads live as
    /// long as the process, and freeing at thread exit could run after finalisation.
    static TSTATES: RefCell<HashMap<usize, *mut ffi::PyThreadState>> = RefCell::new(HashMap::new());
}

fn wide(s: &str) -> Vec<libc::wchar_t> {
    s.chars()
        .map(|c| c as libc::wchar_t)
        .chain(std::iter::once(0))
        .collect()
}

/// Initialises Python in this process (never in the Apache parent). `setup` runs attached to
/// the main interpreter right after initialisation.
pub fn initialize(
    cfg: &InitConfig,
    setup: impl FnOnce(&Interpreter, Py<'_>) -> Result<(), String>,
) -> Result<(), String> {
    if RUNTIME.get().is_some() {
        return Ok(());
    }
    start_python(cfg)?;
    // Python's own C extensions (_ssl, _decimal) need libpython's symbols global; Apache loads
    // modules RTLD_GLOBAL already, this makes sure of it for any loader.
    // SAFETY: dlopen with RTLD_NOLOAD only promotes an already loaded library.
    unsafe {
        let name = CString::new(format!("libpython{PY_MAJOR}.{PY_MINOR}.so.1.0")).expect("name");
        libc::dlopen(
            name.as_ptr(),
            libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD,
        );
    }
    // SAFETY: after initialisation the current thread holds the GIL with the main thread state.
    let main_state = unsafe { ffi::PyInterpreterState_Main() };
    let main = Arc::new(Interpreter {
        id: 0,
        name: String::new(),
        state: main_state,
        load_lock: Mutex::new(()),
        data: OnceLock::new(),
    });
    // SAFETY: this thread is attached to the new main interpreter here (see above).
    let result = setup(&main, unsafe { Py::assume() });
    // SAFETY: release the GIL; the thread state stays registered as this thread's main one.
    unsafe { ffi::PyEval_SaveThread() };
    result?;
    let mut interps = HashMap::new();
    interps.insert(String::new(), main.clone());
    let _ = RUNTIME.set(Runtime {
        interps: Mutex::new(interps),
        main,
    });
    Ok(())
}

/// Py_InitializeFromConfig with the WSGIPython* settings.
fn start_python(cfg: &InitConfig) -> Result<(), String> {
    super::arenas::install();
    // SAFETY: PyConfig is initialised by PyConfig_InitPythonConfig before any field is used,
    // strings are copied by the PyConfig_Set* functions, and it is cleared afterwards.
    unsafe {
        let mut config: ffi::PyConfig = std::mem::zeroed();
        ffi::PyConfig_InitPythonConfig(&mut config);
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        config.optimization_level = cfg.optimize as i32;
        if cfg.dont_write_bytecode {
            config.write_bytecode = 0;
        }
        if let Some(seed) = cfg.hash_seed {
            config.use_hash_seed = 1;
            config.hash_seed = seed as _;
        }
        let cfgp: *mut ffi::PyConfig = &mut config;
        let (field, value) = match &cfg.home {
            // A virtual environment is found through its interpreter path (pyvenv.cfg next to
            // bin/), which gives the venv's site-packages on top of the base installation.
            Some(home) if Path::new(home).join("pyvenv.cfg").exists() => {
                (&raw mut (*cfgp).program_name, venv_python(home))
            }
            Some(home) => (&raw mut (*cfgp).home, home.clone()),
            // Without a program name Python would derive its prefix from argv[0]
            // ("mod_wsgi"); name the interpreter rwsgi was built against instead.
            None => (&raw mut (*cfgp).program_name, BUILD_PYTHON.to_string()),
        };
        let w = wide(&value);
        status_ok(
            ffi::PyConfig_SetString(cfgp, field, w.as_ptr()),
            "Python configuration",
        )?;
        for w in &cfg.warnings {
            let wv = wide(w);
            status_ok(
                ffi::PyWideStringList_Append(&mut config.warnoptions, wv.as_ptr()),
                "WSGIPythonWarnings",
            )?;
        }
        let argv0 = wide("mod_wsgi");
        let mut argv = [argv0.as_ptr()];
        status_ok(
            ffi::PyConfig_SetArgv(&mut config, 1, argv.as_mut_ptr()),
            "Python argv",
        )?;
        let st = ffi::Py_InitializeFromConfig(&config);
        ffi::PyConfig_Clear(&mut config);
        status_ok(st, "Python initialisation failed")
    }
}

/// The interpreter of a virtual environment: bin/pythonX.Y, else bin/python.
fn venv_python(home: &str) -> String {
    let home = home.trim_end_matches('/');
    let exact = format!("{home}/bin/python{PY_MAJOR}.{PY_MINOR}");
    if Path::new(&exact).exists() {
        exact
    } else {
        format!("{home}/bin/python")
    }
}

fn status_ok(st: ffi::PyStatus, what: &str) -> Result<(), String> {
    // SAFETY: PyStatus_Exception only reads the status; err_msg, when set, is a static C string.
    unsafe {
        if ffi::PyStatus_Exception(st) == 0 {
            return Ok(());
        }
        let msg = if st.err_msg.is_null() {
            "unknown error".to_string()
        } else {
            std::ffi::CStr::from_ptr(st.err_msg)
                .to_string_lossy()
                .into_owned()
        };
        Err(format!("{what}: {msg}"))
    }
}

/// The Python executable rwsgi was built against (PYO3_PYTHON, see .cargo/config.toml).
const BUILD_PYTHON: &str = env!("RWSGI_PYTHON_EXE");
const PY_MAJOR: u32 = build_number(env!("RWSGI_PYTHON_MAJOR"));
const PY_MINOR: u32 = build_number(env!("RWSGI_PYTHON_MINOR"));

const fn build_number(s: &str) -> u32 {
    match u32::from_str_radix(s, 10) {
        Ok(n) => n,
        Err(_) => panic!("the build script gives the Python version as numbers"),
    }
}

pub fn is_initialized() -> bool {
    RUNTIME.get().is_some()
}

/// The interpreter for an application group ("" = main), created on first use with `setup`
/// run inside it.
pub fn interpreter(
    group: &str,
    setup: &dyn Fn(&Interpreter, Py<'_>) -> Result<(), String>,
) -> Result<Arc<Interpreter>, String> {
    let rt = RUNTIME
        .get()
        .ok_or("Python is not initialised in this process")?;
    // Lock order: the table lock is never taken while attached (attached threads could be
    // waiting for it while we wait for the GIL).
    let mut table = rt.interps.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = table.get(group) {
        return Ok(i.clone());
    }
    let _main = Attached::enter(&rt.main);
    // SAFETY: attached to the main interpreter; Py_NewInterpreter makes the new interpreter's
    // first thread state current.
    let ts = unsafe { ffi::Py_NewInterpreter() };
    if ts.is_null() {
        return Err(format!(
            "could not create a Python sub-interpreter for application group '{group}'"
        ));
    }
    // SAFETY: ts is the new, current thread state.
    let state = unsafe { ffi::PyThreadState_GetInterpreter(ts) };
    let interp = Arc::new(Interpreter {
        id: table.len(),
        name: group.to_string(),
        state,
        load_lock: Mutex::new(()),
        data: OnceLock::new(),
    });
    // SAFETY: this thread is attached to the new interpreter here (see above).
    let result = setup(&interp, unsafe { Py::assume() });
    TSTATES.with(|t| t.borrow_mut().insert(interp.id, ts));
    // SAFETY: switch back to this thread's main-interpreter state, still attached; `_main`
    // then detaches normally.
    unsafe { ffi::PyThreadState_Swap(_main.ts) };
    result?;
    table.insert(group.to_string(), interp.clone());
    Ok(interp)
}

/// Every interpreter created so far (for shutdown work). Gives up (empty) when the table stays
/// locked for a second: shutdown work may run in a signal handler that interrupted the thread
/// holding the lock (prefork's SIGTERM handler), which would otherwise wait forever.
pub fn all() -> Vec<Arc<Interpreter>> {
    let Some(rt) = RUNTIME.get() else {
        return Vec::new();
    };
    for _ in 0..500 {
        match rt.interps.try_lock() {
            Ok(t) => return t.values().cloned().collect(),
            Err(TryLockError::Poisoned(e)) => return e.into_inner().values().cloned().collect(),
            Err(TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(2))
            }
        }
    }
    Vec::new()
}

/// Threads inside an [`Attached`] scope: holding the GIL, waiting for it, or in a
/// [`without_gil`] section of a Python call still in progress.
static IN_PYTHON: AtomicUsize = AtomicUsize::new(0);

/// How many threads are inside Python through rwsgi right now (see [`IN_PYTHON`]). At process
/// exit a non-zero count means the exit interrupted them (a signal handler on this very thread,
/// or a thread the MPM did not join): running Python code then could deadlock on the GIL.
pub fn threads_in_python() -> usize {
    IN_PYTHON.load(Ordering::SeqCst)
}

/// This thread, attached to an interpreter; detaches on drop.
pub struct Attached {
    ts: *mut ffi::PyThreadState,
}

/// Proof that the calling thread is attached to an interpreter (holds the GIL), as pyo3's
/// `Python<'py>`: creating a Python object needs one.
#[derive(Clone, Copy)]
pub struct Py<'py>(std::marker::PhantomData<&'py Attached>);

impl Py<'_> {
    /// For code CPython calls (a native function, a capsule destructor): the thread is
    /// attached for the call.
    ///
    /// # Safety
    /// The calling thread must be attached for as long as the token is used.
    pub unsafe fn assume<'a>() -> Py<'a> {
        Py(std::marker::PhantomData)
    }
}

/// Threads starting a request wait here, one at a time, rather than all on the GIL. A thread
/// waiting for the GIL wakes every switch interval (5 ms) and, if the GIL has not changed hands,
/// makes its holder drop it: with the 30-odd request threads of a busy Apache child all
/// waiting there, a 1 ms request paid ~8 context switches and a forced hand-off. Behind this
/// plain mutex they sleep until their turn; only the thread holding it waits on the GIL.
/// (mod_wsgi 4.x serialises its interpreter lookup the same way.) Threads coming back from
/// I/O in the middle of a request do not queue here: they already hold a request's memory.
static ENTRY_TURN: Mutex<()> = Mutex::new(());

impl Attached {
    /// The token of this attached scope.
    pub fn py(&self) -> Py<'_> {
        Py(std::marker::PhantomData)
    }

    /// [`Attached::enter`] for a thread starting a request: it waits for its turn behind the
    /// other starting threads ([`ENTRY_TURN`]) before it waits for the GIL.
    pub fn enter_in_turn(interp: &Interpreter) -> Attached {
        let _turn = ENTRY_TURN.lock().unwrap_or_else(|e| e.into_inner());
        Attached::enter(interp)
    }

    pub fn enter(interp: &Interpreter) -> Attached {
        // Counted before the GIL is taken, so that a signal arriving at any point of an
        // attached scope sees it.
        IN_PYTHON.fetch_add(1, Ordering::SeqCst);
        // SAFETY: each thread state is only ever used by the thread that created it. For the
        // main interpreter we use the GILState-registered state, so C extensions calling
        // PyGILState_Ensure on this thread find it.
        unsafe {
            if interp.id == 0 {
                let ts = ffi::PyGILState_GetThisThreadState();
                if ts.is_null() {
                    ffi::PyGILState_Ensure();
                    return Attached {
                        ts: ffi::PyThreadState_Get(),
                    };
                }
                ffi::PyEval_RestoreThread(ts);
                return Attached { ts };
            }
            let ts = TSTATES.with(|t| {
                *t.borrow_mut().entry(interp.id).or_insert_with(|| {
                    // The first thread state a thread creates becomes its PyGILState one;
                    // that must be the main interpreter's, or C extensions (and PyO3
                    // modules) would later find themselves in this sub-interpreter.
                    if ffi::PyGILState_GetThisThreadState().is_null() {
                        ffi::PyGILState_Ensure();
                        ffi::PyEval_SaveThread();
                    }
                    ffi::PyThreadState_New(interp.state)
                })
            });
            ffi::PyEval_RestoreThread(ts);
            Attached { ts }
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: we are attached with self.ts current.
        unsafe { ffi::PyEval_SaveThread() };
        IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The application groups that have an interpreter in this process ("" is the main one).
pub fn names() -> Vec<String> {
    RUNTIME.get().map_or_else(Vec::new, |rt| {
        let table = rt.interps.lock().unwrap_or_else(|e| e.into_inner());
        table.keys().cloned().collect()
    })
}

/// Python's identifier of the calling OS thread (`threading.get_ident()`); needs no GIL.
pub fn thread_ident() -> u64 {
    // SAFETY: PyThread_get_thread_ident only reads the calling thread's id.
    unsafe { ffi::PyThread_get_thread_ident() as u64 }
}

/// Schedules `exc_type` to be raised in the thread `ident` of the interpreter this thread is
/// attached to, the next time that thread runs Python code. True if such a thread exists.
pub fn raise_in_thread(_attached: &Attached, ident: u64, exc_type: &Keep) -> bool {
    // SAFETY: we are attached (the guard proves it); PyThreadState_SetAsyncExc takes a new
    // reference to the exception type and only looks up threads of the current interpreter.
    unsafe { ffi::PyThreadState_SetAsyncExc(ident as _, exc_type.ptr()) > 0 }
}

/// Runs `f` with the GIL released (for blocking I/O). `f` must not touch Python objects.
pub fn without_gil<T>(f: impl FnOnce() -> T + Send) -> T {
    struct Reattach(*mut ffi::PyThreadState);
    impl Drop for Reattach {
        fn drop(&mut self) {
            // SAFETY: re-attaches the state saved below, also when `f` panics.
            unsafe { ffi::PyEval_RestoreThread(self.0) }
        }
    }
    // SAFETY: the caller is attached; the saved state is restored by Reattach.
    let _g = Reattach(unsafe { ffi::PyEval_SaveThread() });
    f()
}

/// Raised-exception helper for setup closures.
pub fn describe(r: PyResult<()>) -> Result<(), String> {
    r.map_err(|Raised| {
        super::object::Pending::fetch()
            .map(|p| p.format().join("\n"))
            .unwrap_or_else(|| "unknown Python error".into())
    })
}
