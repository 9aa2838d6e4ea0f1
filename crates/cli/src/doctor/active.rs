//! The active Apache configuration as `rwsgi doctor` reads it: the files Apache includes (in
//! the order `apache2ctl -t -D DUMP_INCLUDES` lists them, as Debian's tools find them; when
//! Apache cannot parse the configuration, by following Include lines ourselves), each
//! directive with its file, line and enclosing `<VirtualHost>`, `${VAR}`s expanded from
//! Debian's envvars.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One directive of the configuration.
#[derive(Debug, Clone)]
pub struct Directive {
    pub file: PathBuf,
    pub line: usize,
    /// As written (case kept); compare with `is`.
    pub name: String,
    pub args: String,
    /// Which `<VirtualHost>` block (numbered in reading order) holds it; None: server level.
    pub vhost: Option<usize>,
}

impl Directive {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    pub fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

pub struct ActiveConfig {
    pub directives: Vec<Directive>,
    /// Apache's own complaint when it cannot read the configuration.
    pub configtest_error: Option<String>,
}

/// Debian's configuration directory: `$APACHE_CONFDIR` (as apache2ctl and the a2en* tools
/// take it, for a second instance such as /etc/apache2-shop), else /etc/apache2.
fn confdir() -> PathBuf {
    std::env::var_os("APACHE_CONFDIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/etc/apache2"), PathBuf::from)
}

impl ActiveConfig {
    /// The value of the last `name` directive that applies in `vhost`: the virtual host's own,
    /// else the server level's.
    pub fn in_scope(&self, name: &str, vhost: Option<usize>) -> Option<String> {
        let last_in = |v: Option<usize>| {
            self.directives
                .iter()
                .rev()
                .find(|d| d.is(name) && d.vhost == v)
                .map(|d| d.args.trim_matches('"').to_string())
        };
        vhost
            .and_then(|v| last_in(Some(v)))
            .or_else(|| last_in(None))
    }
}

/// Reads the configuration Apache would run with: `main` (apache2 -f), else Debian's
/// apache2ctl default.
pub fn read(main: Option<&Path>) -> Result<ActiveConfig, String> {
    let env = apache_env();
    let (files, configtest_error) = match dump_includes(main, &env) {
        Ok(files) => (files, None),
        Err(e) => {
            let root = main
                .map(Path::to_path_buf)
                .unwrap_or_else(|| confdir().join("apache2.conf"));
            if !root.is_file() {
                return Err(format!("cannot read {}: {e}", root.display()));
            }
            (follow_includes(&root, &env), Some(e))
        }
    };
    let mut directives = Vec::new();
    let mut vhosts = 0;
    for f in files {
        read_file(&f, &env, &mut vhosts, &mut directives);
    }
    Ok(ActiveConfig {
        directives,
        configtest_error,
    })
}

/// The variables Debian's envvars sets (APACHE_RUN_USER, APACHE_RUN_DIR...), over ours.
fn apache_env() -> HashMap<String, String> {
    let mut env: HashMap<String, String> = std::env::vars().collect();
    if let Ok(vars) = crate::shell::sourced_env(&confdir().join("envvars")) {
        env.extend(vars);
    }
    env
}

fn dump_includes(
    main: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<Vec<PathBuf>, String> {
    let mut cmd = match main {
        Some(f) => {
            let mut c = Command::new("apache2");
            c.arg("-f").arg(f);
            c
        }
        None => Command::new("apache2ctl"),
    };
    cmd.args(["-t", "-D", "DUMP_INCLUDES"])
        .env_clear()
        .envs(env);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run apache2ctl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let files: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('(')?.split_once(") "))
        .map(|(_, p)| PathBuf::from(p.trim()))
        .collect();
    if !out.status.success() || files.is_empty() {
        let err = String::from_utf8_lossy(&out.stderr);
        // Apache says where on one line and what on the next.
        let said: Vec<&str> = err
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(2)
            .collect();
        let said = if said.is_empty() {
            "no output".to_string()
        } else {
            said.join(" ")
        };
        return Err(format!("apache2 -t fails: {said}"));
    }
    Ok(files)
}

/// The files an Include/IncludeOptional chain reaches from `root`, in order (globs sorted, as
/// Apache reads them; relative paths from the ServerRoot).
fn follow_includes(root: &Path, env: &HashMap<String, String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let server_root = root.parent().unwrap_or(Path::new("/")).to_path_buf();
    visit(root, &server_root, env, &mut out, 0);
    out
}

fn visit(
    file: &Path,
    server_root: &Path,
    env: &HashMap<String, String>,
    out: &mut Vec<PathBuf>,
    depth: usize,
) {
    if depth > 16 || out.iter().any(|f| f == file) {
        return;
    }
    out.push(file.to_path_buf());
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let mut server_root = server_root.to_path_buf();
    for (_, line) in logical_lines(&text) {
        let line = expand(&line, env);
        let (name, args) = split_directive(&line);
        if name.eq_ignore_ascii_case("ServerRoot") {
            server_root = PathBuf::from(unquote(args));
        } else if name.eq_ignore_ascii_case("Include")
            || name.eq_ignore_ascii_case("IncludeOptional")
        {
            let pattern = server_root.join(unquote(args));
            for f in glob(&pattern) {
                visit(&f, &server_root, env, out, depth + 1);
            }
        }
    }
}

/// A path whose last component may hold `*` (what Debian's Include lines use); sorted.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return if pattern.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(pattern)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_file())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        } else if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            vec![]
        };
    }
    let (pre, post) = name.split_once('*').unwrap_or((&name, ""));
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
                    n.is_some_and(|n| n.starts_with(pre) && n.ends_with(post) && p.is_file())
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn read_file(
    file: &Path,
    env: &HashMap<String, String>,
    vhosts: &mut usize,
    out: &mut Vec<Directive>,
) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let mut vhost = None;
    for (line_no, line) in logical_lines(&text) {
        let line = expand(&line, env);
        let (name, args) = split_directive(&line);
        if name.eq_ignore_ascii_case("<VirtualHost") {
            *vhosts += 1;
            vhost = Some(*vhosts);
            continue;
        }
        if name.eq_ignore_ascii_case("</VirtualHost>") {
            vhost = None;
            continue;
        }
        out.push(Directive {
            file: file.to_path_buf(),
            line: line_no,
            name: name.to_string(),
            args: args.trim_end_matches('>').trim().to_string(),
            vhost,
        });
    }
}

/// Lines with continuations joined and comments left out: (first line number, text).
pub fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut acc) = cur.take().unwrap_or((i + 1, String::new()));
        let l = raw.trim_end();
        if let Some(stripped) = l.strip_suffix('\\') {
            acc.push_str(stripped);
            acc.push(' ');
            cur = Some((start, acc));
            continue;
        }
        acc.push_str(l);
        let t = acc.trim();
        if !t.is_empty() && !t.starts_with('#') {
            out.push((start, t.to_string()));
        }
    }
    out
}

fn split_directive(line: &str) -> (&str, &str) {
    match line.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (line, ""),
    }
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"')
}

/// `${VAR}` from the environment, as Apache expands them (unknown ones stay as written).
pub fn expand(line: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find('}') {
            Some(j) => {
                let name = &rest[i + 2..i + 2 + j];
                match env.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[i..i + 3 + j]),
                }
                rest = &rest[i + 3 + j..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_join_and_comments_go() {
        let t = "# c\nWSGIDaemonProcess a \\\n   user=x\n\n  Listen 80\n";
        assert_eq!(
            logical_lines(t),
            vec![
                (2, "WSGIDaemonProcess a     user=x".to_string()),
                (5, "Listen 80".to_string())
            ]
        );
    }

    #[test]
    fn variables_expand_from_the_environment() {
        let env = HashMap::from([("APACHE_RUN_USER".to_string(), "www-data".to_string())]);
        assert_eq!(expand("User ${APACHE_RUN_USER}", &env), "User www-data");
        assert_eq!(expand("X ${NOPE} y", &env), "X ${NOPE} y");
        assert_eq!(expand("X ${open", &env), "X ${open");
    }
}
