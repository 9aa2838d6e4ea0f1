//! The traps mod_wsgi users fall into, checked against the active configuration: one
//! [`Finding`] per problem, saying what is wrong, where, and the fix.

use super::access::{Want, Who, blocked};
use super::active::{ActiveConfig, Directive};
use rwsgi_core::config::daemon::DaemonProcess;
use rwsgi_core::config::tokenize::{option, words};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// file:line, when the problem has one.
    pub at: Option<String>,
    pub what: String,
    pub fix: String,
}

fn finding(d: Option<&Directive>, what: String, fix: impl Into<String>) -> Finding {
    Finding {
        at: d.map(Directive::at),
        what,
        fix: fix.into(),
    }
}

/// The Python this rwsgi is built against ("3.11").
pub const BUILT_PYTHON: &str = env!("RWSGI_PYTHON_VERSION");

/// Every check; `import`: also try the applications that run in sub-interpreters.
pub fn all(cfg: &ActiveConfig, import: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(e) = &cfg.configtest_error {
        out.push(finding(
            None,
            format!("Apache cannot read this configuration: {e}"),
            "run apache2ctl configtest and fix the line it names; the checks below read the files directly",
        ));
    }
    out.extend(modules(cfg));
    let apache_user = apache_user(cfg);
    let groups = daemon_groups(cfg, &mut out);
    out.extend(scripts(cfg, &groups, &apache_user));
    out.extend(python_homes(cfg, &groups, &apache_user));
    out.extend(socket_prefix(cfg, &apache_user));
    if import {
        out.extend(super::subinterp::check(cfg, &groups, &apache_user));
    }
    out
}

/// `LoadModule wsgi_module` lines: rwsgi must be the one, and the only one.
fn modules(cfg: &ActiveConfig) -> Vec<Finding> {
    let loads: Vec<(&Directive, String)> = cfg
        .directives
        .iter()
        .filter(|d| d.is("LoadModule"))
        .filter_map(|d| {
            let w = words(&d.args);
            (w.first().map(String::as_str) == Some("wsgi_module"))
                .then(|| (d, w.get(1).cloned().unwrap_or_default()))
        })
        .collect();
    let is_rwsgi = |p: &str| p.contains("rwsgi");
    let rwsgi = loads.iter().find(|(_, p)| is_rwsgi(p));
    let mut out = Vec::new();
    match rwsgi {
        None if loads.is_empty() => out.push(finding(
            None,
            "no LoadModule wsgi_module line: rwsgi is not enabled".into(),
            "a2enmod rwsgi (Debian), or add `LoadModule wsgi_module /usr/lib/apache2/modules/mod_rwsgi.so`",
        )),
        None => out.push(finding(
            Some(loads[0].0),
            format!("wsgi_module is {}, not rwsgi", loads[0].1),
            "a2dismod wsgi && a2enmod rwsgi (Debian), or point this line at mod_rwsgi.so",
        )),
        Some((r, _)) => {
            for (d, p) in loads.iter().filter(|(_, p)| !is_rwsgi(p)) {
                out.push(finding(
                    Some(d),
                    format!(
                        "{p} is loaded as wsgi_module beside rwsgi ({}); Apache keeps whichever comes first and skips the other",
                        r.at()
                    ),
                    "a2dismod wsgi (Debian), or delete this line",
                ));
            }
        }
    }
    out
}

/// The user Apache's children run as (`User`, default www-data as on Debian).
fn apache_user(cfg: &ActiveConfig) -> String {
    cfg.directives
        .iter()
        .rev()
        .find(|d| d.is("User") && d.vhost.is_none())
        .map(|d| d.args.trim_matches('"').to_string())
        .unwrap_or_else(|| "www-data".into())
}

pub type Groups<'a> = HashMap<String, (&'a Directive, DaemonProcess)>;

fn daemon_groups<'a>(cfg: &'a ActiveConfig, out: &mut Vec<Finding>) -> Groups<'a> {
    let mut groups = HashMap::new();
    for d in cfg.directives.iter().filter(|d| d.is("WSGIDaemonProcess")) {
        match rwsgi_core::config::daemon::parse(&d.args) {
            Ok(p) => {
                groups.insert(p.name.clone(), (d, p));
            }
            Err(e) => out.push(finding(
                Some(d),
                format!("WSGIDaemonProcess: {e}"),
                "see the daemon options in rwsgi's README",
            )),
        }
    }
    groups
}

/// Who runs the applications of `group` (None: embedded, in Apache's children).
pub fn runs_as(group: Option<&str>, groups: &Groups<'_>, apache_user: &str) -> String {
    group
        .and_then(|g| groups.get(g))
        .and_then(|(_, p)| p.user.clone())
        .unwrap_or_else(|| apache_user.to_string())
}

/// The process group an alias's requests go to: its own option, else a WSGIProcessGroup of its
/// virtual host, else one at server level.
pub fn process_group<'a>(alias: &'a Directive, cfg: &'a ActiveConfig) -> Option<String> {
    let from_option = words(&alias.args)
        .iter()
        .skip(2)
        .filter_map(|w| option(w).map(|(k, v)| (k.to_string(), v.to_string())))
        .find(|(k, _)| k == "process-group")
        .map(|(_, v)| v);
    from_option
        .or_else(|| cfg.in_scope("WSGIProcessGroup", alias.vhost))
        .filter(|g| g != "%{GLOBAL}" && !g.contains("%{"))
}

fn scripts(cfg: &ActiveConfig, groups: &Groups<'_>, apache_user: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in cfg.directives.iter() {
        let target = if d.is("WSGIScriptAlias") || d.is("WSGIScriptAliasMatch") {
            words(&d.args).get(1).cloned()
        } else if d.is("WSGIImportScript") {
            words(&d.args).first().cloned()
        } else {
            None
        };
        let Some(target) = target else { continue };
        // A ...Match target may name $1: check the directory before the first substitution.
        let (path, want) = match target.find('$') {
            Some(i) => (
                PathBuf::from(&target[..i])
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                Want::Enter,
            ),
            None => (PathBuf::from(&target), Want::Read),
        };
        if !path.exists() {
            out.push(finding(
                Some(d),
                format!("{} target {} does not exist", d.name, path.display()),
                "fix the path, or deploy the application there",
            ));
            continue;
        }
        let group = process_group(d, cfg);
        let user = runs_as(group.as_deref(), groups, apache_user);
        match Who::named(&user) {
            Ok(who) => {
                if let Some(why) = blocked(&path, &who, want) {
                    let runner = match &group {
                        Some(g) => format!("daemon process group '{g}' (user {user})"),
                        None => format!("Apache's children (user {user})"),
                    };
                    out.push(finding(
                        Some(d),
                        format!("{} is run by {runner}, but {why}", path.display()),
                        format!(
                            "let {user} read it (chmod o+r / a group {user} is in, and o+x on each directory), or run the group as the file's owner (user=)"
                        ),
                    ));
                }
            }
            Err(e) => out.push(finding(
                Some(d),
                format!("{} would run as {user}, but {e}", path.display()),
                "create the user, or name an existing one in user=",
            )),
        }
    }
    out
}

/// python-home= of each group and WSGIPythonHome: a Python of the version rwsgi is built
/// for, which the user running it can enter.
fn python_homes(cfg: &ActiveConfig, groups: &Groups<'_>, apache_user: &str) -> Vec<Finding> {
    let mut homes: Vec<(&Directive, String, String, &str)> = Vec::new();
    for (d, p) in groups.values() {
        if let Some(h) = &p.python_home {
            let user = p.user.clone().unwrap_or_else(|| apache_user.to_string());
            homes.push((d, h.clone(), user, "python-home="));
        }
    }
    for d in cfg.directives.iter().filter(|d| d.is("WSGIPythonHome")) {
        homes.push((
            d,
            d.args.trim_matches('"').to_string(),
            apache_user.to_string(),
            "WSGIPythonHome",
        ));
    }
    homes.sort_by_key(|(d, ..)| (d.file.clone(), d.line));
    let mut out = Vec::new();
    for (d, home, user, what) in homes {
        let path = Path::new(&home);
        if !path.is_dir() {
            out.push(finding(
                Some(d),
                format!("{what}{home} is not a directory"),
                format!("create the virtualenv: /usr/bin/python{BUILT_PYTHON} -m venv {home}"),
            ));
            continue;
        }
        match python_version_of(path) {
            Some(v) if v != BUILT_PYTHON => out.push(finding(
                Some(d),
                format!("{what}{home} is a Python {v} environment; this rwsgi is built for Python {BUILT_PYTHON}"),
                format!("recreate it with /usr/bin/python{BUILT_PYTHON} -m venv {home} (and reinstall the application's packages)"),
            )),
            None => out.push(finding(
                Some(d),
                format!("{what}{home} is neither a virtualenv (no pyvenv.cfg) nor a Python prefix (no lib/python{BUILT_PYTHON})"),
                format!("point it at a virtualenv made with /usr/bin/python{BUILT_PYTHON} -m venv"),
            )),
            Some(_) => {
                if let Ok(who) = Who::named(&user) {
                    if let Some(why) = blocked(path, &who, Want::Enter) {
                        out.push(finding(
                            Some(d),
                            format!("{what}{home} is used by user {user}, but {why}"),
                            format!("chmod o+rx the directories, or make {user} their owner"),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// "3.11" for a virtualenv (pyvenv.cfg) or a prefix with lib/python3.X.
pub fn python_version_of(home: &Path) -> Option<String> {
    if let Ok(cfg) = std::fs::read_to_string(home.join("pyvenv.cfg")) {
        for line in cfg.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let k = k.trim();
            if k == "version" || k == "version_info" {
                let mut parts = v.trim().split('.');
                if let (Some(a), Some(b)) = (parts.next(), parts.next()) {
                    return Some(format!("{a}.{b}"));
                }
            }
        }
    }
    let lib = home.join("lib");
    if lib.join(format!("python{BUILT_PYTHON}")).is_dir() {
        return Some(BUILT_PYTHON.to_string());
    }
    let mut found: Vec<String> = std::fs::read_dir(&lib)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let v = n.strip_prefix("python")?;
            (v.starts_with("3.") && e.path().is_dir()).then(|| v.to_string())
        })
        .collect();
    found.sort();
    found.pop()
}

/// The directory of WSGISocketPrefix must exist and let Apache's children through (they
/// connect to the daemons' sockets there).
fn socket_prefix(cfg: &ActiveConfig, apache_user: &str) -> Vec<Finding> {
    let Some(d) = cfg
        .directives
        .iter()
        .rev()
        .find(|d| d.is("WSGISocketPrefix"))
    else {
        return vec![];
    };
    let prefix = PathBuf::from(d.args.trim_matches('"'));
    let Some(dir) = prefix.parent().filter(|p| p.is_absolute()) else {
        return vec![];
    };
    if !dir.is_dir() {
        return vec![finding(
            Some(d),
            format!("the socket directory {} does not exist", dir.display()),
            format!(
                "mkdir -p {} (owned by root, mode 755), or change WSGISocketPrefix",
                dir.display()
            ),
        )];
    }
    match Who::named(apache_user) {
        Ok(who) => blocked(dir, &who, Want::Enter)
            .map(|why| {
                finding(
                    Some(d),
                    format!("Apache's children (user {apache_user}) connect to the daemon sockets in {}, but {why}", dir.display()),
                    "chmod 755 on that directory and every one above it",
                )
            })
            .into_iter()
            .collect(),
        Err(_) => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_version_from_pyvenv_cfg_or_lib() {
        let d = std::env::temp_dir().join(format!("rwsgi-doctor-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("lib/python3.12")).unwrap();
        assert_eq!(python_version_of(&d).as_deref(), Some("3.12"));
        std::fs::write(d.join("pyvenv.cfg"), "home = /usr/bin\nversion = 3.13.1\n").unwrap();
        assert_eq!(python_version_of(&d).as_deref(), Some("3.13"));
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(python_version_of(&d), None);
    }
}
