//! No Rust panic may unwind into Apache or Python (since Rust 1.81 that aborts the whole
//! process, with every request in it), nor end a thread rwsgi started with work half done.
//!
//! Three doors, one mechanism ([`catch`] + the process's [`report`]er):
//! - every `extern "C"` function Apache or Python calls is declared with [`entry!`], which
//!   makes the guard part of the declaration (as hyper's `ffi_fn!` and ngx-rust's
//!   `http_request_handler!` do): a panic is reported and the function returns the fallback
//!   the declaration names;
//! - every thread rwsgi starts runs its body through [`spawn`];
//! - work a long-lived thread does per item (a daemon's request threads serve one request
//!   per item) goes through [`catch`] so one bad item does not end the thread.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

thread_local! {
    /// Where the last panic of this thread happened (the payload does not say).
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// How many `catch` calls this thread is inside (their panics are reported by them).
    static CATCHING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

static REPORTER: OnceLock<fn(&str)> = OnceLock::new();

/// Sets where this process reports caught panics (Apache's error log in Apache processes, the
/// daemon's log in daemon processes), and installs the panic hook that remembers where a panic
/// happened. The first call wins.
pub fn set_reporter(report: fn(&str)) {
    if REPORTER.set(report).is_ok() {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(|c| c.get()) == 0 {
                // Not ours to report (a test's assertion, a thread outside the guard).
                return default(info);
            }
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LOCATION.with(|l| *l.borrow_mut() = Some(at));
        }));
    }
}

/// Reports a caught panic (or any internal error that ends a unit of work).
pub fn report(msg: &str) {
    match REPORTER.get() {
        Some(r) => r(msg),
        None => eprintln!("{msg}"),
    }
}

/// Runs `f`; a panic becomes `Err` with its message and location.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    CATCHING.with(|c| c.set(c.get() + 1));
    let r = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    r.map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        match LOCATION.with(|l| l.borrow_mut().take()) {
            Some(at) if !at.is_empty() => format!("{msg} (at {at})"),
            _ => msg,
        }
    })
}

/// The body of an [`entry!`] function: `f`, or, if it panics, a report and `fallback()`.
pub fn run<T>(what: &str, fallback: impl FnOnce() -> T, f: impl FnOnce() -> T) -> T {
    match catch(f) {
        Ok(v) => v,
        Err(msg) => {
            report(&format!("rwsgi: internal error in {what}: {msg}"));
            fallback()
        }
    }
}

/// Starts a named thread whose body cannot unwind past its start: a panic is reported with
/// the thread's name.
pub fn spawn<F>(
    name: String,
    stack_size: Option<usize>,
    f: F,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    let mut b = std::thread::Builder::new().name(name.clone());
    if let Some(size) = stack_size {
        b = b.stack_size(size);
    }
    b.spawn(move || run(&format!("thread {name}"), || (), f))
}

/// Declares an `extern "C"` function whose body cannot unwind into its caller:
///
/// ```ignore
/// entry! {
///     /// docs
///     pub(crate) unsafe extern "C" fn handler(r: *mut request_rec) -> i32 [on panic: 500] {
///         ...
///     }
/// }
/// ```
///
/// A panic is reported (with the function's name) and the function returns the `on panic`
/// value, which may be a block (a Python native raises its exception there).
#[macro_export]
macro_rules! entry {
    ($(
        $(#[$attr:meta])*
        $vis:vis unsafe extern "C" fn $name:ident $(<$($gen:ident $(: $bound:path)?),*>)? (
            $($arg:ident : $ty:ty),* $(,)?
        ) $(-> $ret:ty)? [on panic: $fallback:expr] $body:block
    )*) => {$(
        $(#[$attr])*
        $vis unsafe extern "C" fn $name $(<$($gen $(: $bound)?),*>)? ($($arg: $ty),*) $(-> $ret)? {
            $crate::guard::run(stringify!($name), || $fallback, || $body)
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::entry! {
        unsafe extern "C" fn doubles(x: i32) -> i32 [on panic: -1] {
            if x < 0 {
                panic!("negative");
            }
            x * 2
        }
    }

    #[test]
    fn a_panic_becomes_the_fallback() {
        // SAFETY: a plain Rust function declared extern "C".
        unsafe {
            assert_eq!(doubles(4), 8);
            assert_eq!(doubles(-4), -1);
        }
    }

    #[test]
    fn catch_reports_message_and_location() {
        set_reporter(|_| {});
        let e = catch(|| -> () { panic!("boom {}", 1) }).unwrap_err();
        assert!(
            e.starts_with("boom 1 (at ") && e.contains("guard.rs:"),
            "{e}"
        );
        assert_eq!(catch(|| 5), Ok(5));
    }

    #[test]
    fn spawned_threads_survive_their_panics() {
        let t = spawn("t".into(), None, || panic!("in thread")).unwrap();
        assert!(t.join().is_ok());
    }
}
