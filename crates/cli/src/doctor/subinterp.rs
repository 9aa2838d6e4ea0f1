//! Applications the configuration puts in a sub-interpreter, imported in a throw-away process
//! the way rwsgi would run them: in a fresh sub-interpreter, then in a second one (as happens
//! when another application or a reload shares the process). Extension modules that refuse
//! sub-interpreters (PyO3-based ones: pydantic-core, cryptography, orjson...; "may only be
//! initialized once per interpreter process") fail there with the ImportError the site would
//! otherwise meet in production.
//!
//! The import runs the application's module-level code: as the user the application runs as
//! (when doctor runs as root), with a time limit, and not at all with `--no-import`.

use super::access::Who;
use super::active::{ActiveConfig, Directive};
use super::checks::{BUILT_PYTHON, Finding, Groups, process_group, runs_as};
use rwsgi_core::config::tokenize::{option, words};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROBE: &str = r#"import sys, _xxsubinterpreters as subs
script, paths = sys.argv[1], sys.argv[2:]
code = "import sys, runpy; sys.path[:0] = %r; runpy.run_path(%r)" % (paths, script)
for n in range(2):
    interp = subs.create()
    try:
        subs.run_string(interp, code)
    except Exception as e:
        print("rwsgi-subinterpreter", n, str(e).replace("\n", " "), sep="\t")
        break
"#;

const TIME_LIMIT: Duration = Duration::from_secs(60);

/// One application in a sub-interpreter: its alias, script, group, and the Python it uses.
struct Candidate<'a> {
    alias: &'a Directive,
    script: PathBuf,
    group: Option<String>,
}

pub fn check(cfg: &ActiveConfig, groups: &Groups<'_>, apache_user: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in candidates(cfg) {
        let user = runs_as(c.group.as_deref(), groups, apache_user);
        let (home, mut path) = python_of(cfg, groups, c.group.as_deref());
        if let Some(dir) = c.script.parent() {
            path.push(dir.display().to_string());
        }
        match probe(&c.script, &path, home.as_deref(), &user) {
            Ok(None) => {}
            Ok(Some((first, err))) => out.push(Finding {
                at: Some(c.alias.at()),
                what: if first {
                    format!(
                        "{} is run in a sub-interpreter, where importing it fails: {err}",
                        c.script.display()
                    )
                } else {
                    format!(
                        "{} is run in a sub-interpreter; it imports there once, but a second sub-interpreter in the same process (another application, a reload) fails: {err}",
                        c.script.display()
                    )
                },
                fix: "run it in the main interpreter: application-group=%{GLOBAL} on this line, or WSGIApplicationGroup %{GLOBAL}".into(),
            }),
            Err(why) => out.push(Finding {
                at: Some(c.alias.at()),
                what: format!(
                    "{} could not be tried in a sub-interpreter: {why}",
                    c.script.display()
                ),
                fix: "run rwsgi doctor as root, or --no-import to skip this check".into(),
            }),
        }
    }
    out
}

/// The aliases whose application gets a sub-interpreter: an application group other than
/// %{GLOBAL} named on the line or by WSGIApplicationGroup, or — none named — a process (the
/// Apache children, or a daemon group) that more than one alias can reach (rwsgi's rule).
fn candidates(cfg: &ActiveConfig) -> Vec<Candidate<'_>> {
    let aliases: Vec<&Directive> = cfg
        .directives
        .iter()
        .filter(|d| d.is("WSGIScriptAlias"))
        .collect();
    let groups: Vec<Option<String>> = aliases.iter().map(|a| process_group(a, cfg)).collect();
    let mut out = Vec::new();
    for (i, a) in aliases.iter().enumerate() {
        let w = words(&a.args);
        let Some(script) = w.get(1).filter(|s| Path::new(s).is_file()) else {
            continue;
        };
        let named = w
            .iter()
            .skip(2)
            .filter_map(|o| option(o))
            .find(|(k, _)| *k == "application-group")
            .map(|(_, v)| v.to_string())
            .or_else(|| cfg.in_scope("WSGIApplicationGroup", a.vhost));
        let sub = match named {
            Some(g) => g != "%{GLOBAL}",
            None => groups.iter().filter(|g| **g == groups[i]).count() > 1,
        };
        if sub {
            out.push(Candidate {
                alias: a,
                script: PathBuf::from(script),
                group: groups[i].clone(),
            });
        }
    }
    out
}

/// The Python home and python-path of a group (or of the Apache children).
fn python_of(
    cfg: &ActiveConfig,
    groups: &Groups<'_>,
    group: Option<&str>,
) -> (Option<PathBuf>, Vec<String>) {
    let server = |name: &str| cfg.in_scope(name, None);
    match group.and_then(|g| groups.get(g)) {
        Some((_, p)) => (
            p.python_home
                .clone()
                .or_else(|| server("WSGIPythonHome"))
                .map(PathBuf::from),
            p.python_path.clone(),
        ),
        None => (
            server("WSGIPythonHome").map(PathBuf::from),
            server("WSGIPythonPath")
                .map(|p| p.split(':').map(str::to_string).collect())
                .unwrap_or_default(),
        ),
    }
}

/// Runs the probe; Some((failed on the first import, the error)) when an import failed.
fn probe(
    script: &Path,
    path: &[String],
    home: Option<&Path>,
    user: &str,
) -> Result<Option<(bool, String)>, String> {
    let python = home
        .map(|h| h.join("bin/python"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(format!("/usr/bin/python{BUILT_PYTHON}")));
    let mut cmd = Command::new(&python);
    cmd.arg("-c")
        .arg(PROBE)
        .arg(script)
        .args(path)
        .current_dir(script.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if nix::unistd::geteuid().is_root() {
        let who = Who::named(user)?;
        cmd.uid(who.uid).gid(*who.gids.first().unwrap_or(&who.uid));
    } else if nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .is_none_or(|me| me.name != user)
    {
        return Err(format!("it runs as {user}, and doctor is not root"));
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let deadline = Instant::now() + TIME_LIMIT;
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("importing it took over {}s", TIME_LIMIT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut f = l.splitn(3, '\t');
        (f.next() == Some("rwsgi-subinterpreter")).then(|| {
            (
                f.next() == Some("0"),
                f.next().unwrap_or_default().to_string(),
            )
        })
    }))
}
