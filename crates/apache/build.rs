//! Generates Rust bindings for the httpd/APR headers (paths from `apxs` and `apr-1-config`,
//! overridable with APXS / APR_CONFIG / APACHE_INCLUDEDIR / APR_INCLUDEDIR) and compiles the
//! small C shim for the macros bindgen cannot express.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn query(var: &str, program: &str, args: &[&str]) -> String {
    if let Ok(v) = env::var(var) {
        return v;
    }
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{program}` ({e}); install apache2-dev / libapr1-dev or set {var}")
        });
    assert!(
        out.status.success(),
        "`{program} {}` failed; set {var}",
        args.join(" ")
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// The module struct is a Rust static, so the magic numbers must be Rust constants.
fn write_module_consts(httpd_inc: &str) {
    let mmn = std::fs::read_to_string(format!("{httpd_inc}/ap_mmn.h")).expect("read ap_mmn.h");
    let grab = |name: &str| -> String {
        mmn.lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some("#define") && it.next() == Some(name))
                    .then(|| it.next().unwrap().to_string())
            })
            .unwrap_or_else(|| panic!("{name} not found in ap_mmn.h"))
    };
    let code = format!(
        "pub const MMN_MAJOR: i32 = {};\npub const MMN_MINOR: i32 = {};\npub const MAGIC_COOKIE: u64 = 0x41503234;\n",
        grab("MODULE_MAGIC_NUMBER_MAJOR"),
        grab("MODULE_MAGIC_NUMBER_MINOR")
    );
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("module_consts.rs"), code).expect("write module_consts.rs");
}

fn main() {
    for v in [
        "APXS",
        "APR_CONFIG",
        "APACHE_INCLUDEDIR",
        "APR_INCLUDEDIR",
        "PYO3_PYTHON",
    ] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rerun-if-changed=csrc/shim.c");

    let apxs = env::var("APXS").unwrap_or_else(|_| "apxs".into());
    let apr_config = env::var("APR_CONFIG").unwrap_or_else(|_| "apr-1-config".into());
    let httpd_inc = query("APACHE_INCLUDEDIR", &apxs, &["-q", "INCLUDEDIR"]);
    let apr_inc = query("APR_INCLUDEDIR", &apr_config, &["--includedir"]);
    let cppflags = query("APR_CPPFLAGS", &apr_config, &["--cppflags"]);

    let mut clang_args: Vec<String> = vec![format!("-I{httpd_inc}"), format!("-I{apr_inc}")];
    clang_args.extend(cppflags.split_whitespace().map(String::from));

    write_module_consts(&httpd_inc);

    let bindings = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_args(&clang_args)
        .allowlist_function("ap_.*|apr_.*|rwsgi_.*|unixd_.*")
        .allowlist_type("module_struct|command_rec|cmd_parms|request_rec|server_rec|conn_rec|unixd_config_rec|ap_.*|apr_.*|authn_.*|authz_.*|process_score|worker_score|global_score|scoreboard")
        .allowlist_var("rwsgi_.*|ap_server_conf|ap_unixd_config|ap_server_root|unixd_config|OPT_.*|ACCESS_CONF|RSRC_CONF|OR_.*|APLOG_.*|AP_MPMQ_.*|AP_SQ_.*|APR_.*|REQUEST_CHUNKED_.*|HTTP_.*|DECLINED|DONE|OK|M_GET|NOT_IN_.*|GLOBAL_ONLY|AP_DECLINED|AP_CONN_.*|AP_AUTH_.*|AUTHN_.*|AUTHZ_.*")
        .blocklist_function("qecvt|qfcvt|qgcvt|qecvt_r|qfcvt_r|strtold|.*_l$")
        .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on csrc/wrapper.h");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindings
        .write_to_file(out.join("apache_bindings.rs"))
        .expect("write bindings");

    let mut build = cc::Build::new();
    build
        .file("csrc/shim.c")
        .include(&httpd_inc)
        .include(&apr_inc)
        .include("csrc");
    for flag in cppflags.split_whitespace() {
        build.flag(flag);
    }
    build.warnings(true).compile("rwsgi_shim");

    // Apache resolves libapr/libaprutil symbols at load time (the apache2 binary links them).
    // The rlib is also linked into unit tests and the rwsgi binary, which do not run Apache code.
}
