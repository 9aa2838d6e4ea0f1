//! Every `extern "C"` function Apache calls goes through [`guard`]: a Rust panic must never
//! unwind into Apache (since Rust 1.81 that aborts the whole child, with every request in it).

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`; if it panics, logs the panic message and returns `fallback`.
pub fn guard<T>(what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            report(&format!("rwsgi: internal error in {what}: {msg}"));
            fallback
        }
    }
}

#[cfg(not(test))]
fn report(msg: &str) {
    super::log::server(super::log::Level::Crit, msg);
}

#[cfg(test)]
fn report(msg: &str) {
    eprintln!("{msg}");
}

#[cfg(test)]
mod tests {
    use super::guard;

    #[test]
    fn a_panic_becomes_the_fallback() {
        assert_eq!(guard("test", 500, || -> i32 { panic!("boom") }), 500);
        assert_eq!(guard("test", 500, || 0), 0);
    }
}
