//! The Python version this crate is built against (the libpython pyo3-ffi links: PYO3_PYTHON),
//! and its executable, for the Server banner, version checks and error messages.
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
    let (major, minor) = v.split_once('.').expect("major.minor");
    println!("cargo:rustc-env=RWSGI_PYTHON_MAJOR={major}");
    println!("cargo:rustc-env=RWSGI_PYTHON_MINOR={minor}");
    let gil = Command::new(&python)
        .args([
            "-c",
            "import sysconfig; print(int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))))",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "1")
        .unwrap_or(false);
    println!(
        "cargo:rustc-env=RWSGI_PYTHON_FREE_THREADED={}",
        u8::from(gil)
    );
}
