//! The Python `rwsgi serve` checks applications with: the one the module is built against
//! (PYO3_PYTHON), without linking libpython into this command.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} ({e}); set PYO3_PYTHON"));
    assert!(out.status.success(), "{python} failed; set PYO3_PYTHON");
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    println!("cargo:rustc-env=RWSGI_PYTHON_VERSION={v}");
    println!("cargo:rustc-env=RWSGI_PYTHON_EXE={python}");
}
