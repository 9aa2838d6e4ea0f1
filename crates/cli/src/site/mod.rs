//! `rwsgi serve`: writes a complete, readable Apache configuration into a server root of its
//! own and runs the system's apache2 in the foreground with mod_rwsgi.

mod app;
mod config;
mod run;

use clap::Args;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

const DEFAULT_APACHE: &str = "/usr/sbin/apache2";

/// The apache2 binary to run: `$RWSGI_APACHE` when set, else Debian's /usr/sbin/apache2.
fn apache() -> PathBuf {
    std::env::var_os("RWSGI_APACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_APACHE))
}

pub static VERSION_LINE: LazyLock<String> = LazyLock::new(|| {
    let apache = Command::new(apache())
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.trim_start_matches("Server version: ").to_string())
        })
        .unwrap_or_else(|| "Apache not found".into());
    format!(
        "{} ({apache}; Python {})",
        env!("CARGO_PKG_VERSION"),
        env!("RWSGI_PYTHON_VERSION")
    )
});

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The WSGI script (any file name), or a Django project directory with --django.
    #[arg(help_heading = "Application")]
    pub app: Option<PathBuf>,
    /// Run `module:callable` (importable from --python-path or the current directory).
    #[arg(
        long,
        value_name = "MODULE:CALLABLE",
        conflicts_with = "app",
        help_heading = "Application"
    )]
    pub module: Option<String>,
    /// The app argument is a Django project directory (its <name>/wsgi.py is served, and
    /// STATIC_URL/MEDIA_URL from STATIC_ROOT/MEDIA_ROOT).
    #[arg(long, help_heading = "Application")]
    pub django: bool,
    /// The name of the WSGI callable in the script.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "application",
        help_heading = "Application"
    )]
    pub callable_object: String,
    /// Python home / virtualenv (default: the active virtualenv, $VIRTUAL_ENV).
    #[arg(long, value_name = "DIR", help_heading = "Application")]
    pub python_home: Option<PathBuf>,
    /// Extra directories for sys.path (repeatable).
    #[arg(long, value_name = "DIR", help_heading = "Application")]
    pub python_path: Vec<PathBuf>,
    /// The directory the daemon processes start in (daemon mode's home=).
    #[arg(long, value_name = "DIR", help_heading = "Application")]
    pub working_directory: Option<PathBuf>,
    /// Restart the daemon processes when a Python file under the application changes.
    #[arg(long, help_heading = "Application")]
    pub reload_on_changes: bool,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", help_heading = "Network")]
    pub host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 8000, help_heading = "Network")]
    pub port: u16,
    /// Also serve HTTPS on this port (needs --ssl-certificate-file and --ssl-certificate-key-file).
    #[arg(long, value_name = "PORT", requires_all = ["ssl_certificate_file", "ssl_certificate_key_file"], help_heading = "Network")]
    pub https_port: Option<u16>,
    /// The certificate (PEM) for --https-port.
    #[arg(
        long,
        value_name = "FILE",
        requires = "https_port",
        help_heading = "Network"
    )]
    pub ssl_certificate_file: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "https_port",
        help_heading = "Network"
    )]
    pub ssl_certificate_key_file: Option<PathBuf>,

    /// Daemon processes (daemon mode).
    #[arg(long, default_value_t = 1, help_heading = "Processes")]
    pub processes: u32,
    /// Threads per daemon process.
    #[arg(long, default_value_t = 5, help_heading = "Processes")]
    pub threads: u32,
    /// Run the application inside the Apache children instead of daemon processes.
    #[arg(long, help_heading = "Processes")]
    pub embedded: bool,
    /// Recycle a daemon process after this many requests (0: never).
    #[arg(long, default_value_t = 0, help_heading = "Processes")]
    pub max_requests: u64,
    /// Seconds a request may run before its daemon process is restarted (504).
    #[arg(long, default_value_t = 60, help_heading = "Processes")]
    pub request_timeout: u64,
    /// When started as root: the user Apache's children and the application run as (default
    /// www-data).
    #[arg(long, value_name = "NAME", help_heading = "Processes")]
    pub user: Option<String>,
    /// When started as root: their group (default: the user's name).
    #[arg(long, value_name = "NAME", help_heading = "Processes")]
    pub group: Option<String>,

    /// Serve static files: URL prefix and directory or file (repeatable).
    #[arg(long, num_args = 2, value_names = ["URL", "PATH"], help_heading = "Content")]
    pub url_alias: Vec<String>,
    /// Apache's DocumentRoot (static files under URLs the application does not own).
    #[arg(long, value_name = "DIR", help_heading = "Content")]
    pub document_root: Option<PathBuf>,
    /// Compress text responses (mod_deflate: HTML, CSS, JavaScript, JSON, XML, plain text).
    #[arg(long, help_heading = "Content")]
    pub compress_responses: bool,

    /// Write an access log (to the terminal, or to --log-directory).
    #[arg(long, help_heading = "Logging")]
    pub access_log: bool,
    /// Apache LogLevel.
    #[arg(long, default_value = "warn", help_heading = "Logging")]
    pub log_level: String,
    /// Send the error log to the terminal (the default).
    #[arg(long, overrides_with = "no_log_to_terminal", help_heading = "Logging")]
    pub log_to_terminal: bool,
    /// Write the error log to <server-root>/error.log instead of the terminal.
    #[arg(long, overrides_with = "log_to_terminal", help_heading = "Logging")]
    pub no_log_to_terminal: bool,
    /// Write error_log (and access_log) into this directory instead of the terminal.
    #[arg(long, value_name = "DIR", help_heading = "Logging")]
    pub log_directory: Option<PathBuf>,

    /// Where the configuration and logs go (default /tmp/rwsgi-<port>-<uid>).
    #[arg(long, value_name = "DIR", help_heading = "Server")]
    pub server_root: Option<PathBuf>,
    /// Apache's PidFile (default: in the server root).
    #[arg(long, value_name = "FILE", help_heading = "Server")]
    pub pid_file: Option<PathBuf>,
    /// More Apache configuration, included after the generated one (repeatable).
    #[arg(long, value_name = "FILE", help_heading = "Server")]
    pub include_file: Vec<PathBuf>,
    /// A shell script sourced for the environment Apache (and the application) start with.
    #[arg(long, value_name = "FILE", help_heading = "Server")]
    pub envvars_script: Option<PathBuf>,
    /// Mount the status page (rwsgi-status: HTML, ?json, ?prometheus) at URL, for clients on
    /// this machine only (default URL /rwsgi-status).
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        default_missing_value = "/rwsgi-status",
        help_heading = "Server"
    )]
    pub status: Option<String>,
    /// Write the configuration and an apachectl script, then exit.
    #[arg(long, help_heading = "Server")]
    pub setup_only: bool,
}

fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

fn port_is_free(host: &str, port: u16) -> bool {
    std::net::TcpListener::bind((host, port)).is_ok()
}

fn write_apachectl(root: &Path, envvars: Option<&Path>) -> Result<(), String> {
    let p = root.join("apachectl");
    let source = match envvars {
        Some(f) => {
            let f = std::fs::canonicalize(f).map_err(|e| format!("{}: {e}", f.display()))?;
            format!(". \"{}\"\n", f.display())
        }
        None => String::new(),
    };
    let text = format!(
        "#!/bin/sh\n# Generated by rwsgi serve --setup-only: start|stop|restart|graceful|configtest\n{source}exec \"{}\" -f \"{}/httpd.conf\" -k \"${{1:-start}}\"\n",
        apache().display(),
        root.display()
    );
    std::fs::write(&p, text).map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())
}

pub fn serve(a: ServeArgs) -> Result<(), String> {
    let apache = installed_apache()?;
    let root = a
        .server_root
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/rwsgi-{}-{}", a.port, uid())));
    std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let (script, path) = app::resolve_app(&a, &root)?;
    let home = app::python_home(&a);
    let mut sys_path = path.clone();
    sys_path.extend(a.python_path.iter().cloned());
    let statics = app::check_import(&script, &sys_path, &home, &a.callable_object, a.django)?;
    for n in &statics.notices {
        println!("rwsgi: {n}");
    }
    if nix::unistd::geteuid().is_root() {
        readable_by_runner(&a, &script, &sys_path, &home)?;
    }
    if a.embedded && a.working_directory.is_some() {
        return Err(
            "--working-directory sets the daemon processes' home=: not with --embedded".into(),
        );
    }
    if let Some(d) = &a.log_directory {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let conf = root.join("httpd.conf");
    let mounts = config::Mounts {
        app: &script,
        path: &sys_path,
        home: &home,
        statics: &statics.mounts,
    };
    std::fs::write(&conf, config::render(&a, &root, &mounts))
        .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    configtest(&apache, &conf)?;
    if a.setup_only {
        write_apachectl(&root, a.envvars_script.as_deref())?;
        println!(
            "rwsgi: configuration written to {} (start with {}/apachectl start)",
            conf.display(),
            root.display()
        );
        return Ok(());
    }
    start(&a, &apache, &conf, &script, &path)
}

/// Starts Apache in the foreground with the configuration written, once its ports are free.
fn start(
    a: &ServeArgs,
    apache: &Path,
    conf: &Path,
    script: &Path,
    path: &[PathBuf],
) -> Result<(), String> {
    for (port, option) in [(Some(a.port), "--port"), (a.https_port, "--https-port")] {
        if let Some(port) = port.filter(|&p| !port_is_free(&a.host, p)) {
            return Err(format!(
                "{}:{port} is already in use (choose another with {option})",
                a.host
            ));
        }
    }
    let mode = if a.embedded {
        "embedded".to_string()
    } else {
        format!(
            "daemon, {} process(es) x {} thread(s)",
            a.processes, a.threads
        )
    };
    let https = a
        .https_port
        .map(|p| format!(" and https://{}:{p}/", a.host))
        .unwrap_or_default();
    let status = a
        .status
        .as_ref()
        .map(|u| format!("; status page http://{}:{}{u}", a.host, a.port))
        .unwrap_or_default();
    let announce = || {
        println!(
            "rwsgi: serving {} on http://{}:{}/{https} ({mode}; config {}{status})",
            script.display(),
            a.host,
            a.port,
            conf.display()
        )
    };
    let watch = a
        .reload_on_changes
        .then(|| (script.to_path_buf(), path.to_vec()));
    let env = match &a.envvars_script {
        Some(f) => Some(crate::shell::sourced_env(f).map_err(|e| format!("--envvars-script {e}"))?),
        None => None,
    };
    run::run_apache(apache, conf, watch, env, announce)
}

/// Started as root, Apache's children and the application run as --user (www-data): what the
/// application needs must be theirs to read, or Apache would answer every request 403/500.
/// One line naming the file, the user and the fix, before anything starts.
fn readable_by_runner(
    a: &ServeArgs,
    script: &Path,
    sys_path: &[PathBuf],
    home: &Option<PathBuf>,
) -> Result<(), String> {
    use crate::doctor::access::{Want, Who, blocked};
    let user = a.user.clone().unwrap_or_else(|| "www-data".into());
    let who = Who::named(&user).map_err(|e| format!("--user {user}: {e}"))?;
    let wanted = std::iter::once((script.to_path_buf(), Want::Read))
        .chain(sys_path.iter().map(|p| (p.clone(), Want::Enter)))
        .chain(home.iter().map(|h| (h.clone(), Want::Enter)));
    for (path, want) in wanted {
        if let Some(why) = blocked(&path, &who, want) {
            let readable = "make it readable (chmod o+r, and o+x on each directory above it)";
            let fix = match owner_name(&path) {
                Some(owner) if owner != "root" => format!("run with --user {owner}, or {readable}"),
                _ => format!("{readable}, or give it to a user and pass --user"),
            };
            return Err(format!(
                "{} is not readable by {user}, the user the application runs as when rwsgi serve is started as root ({why}); {fix}",
                path.display()
            ));
        }
    }
    Ok(())
}

fn owner_name(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(path).ok()?.uid();
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
    Some(user.name)
}

/// apache2 and mod_rwsgi.so, or one line that says what to install.
fn installed_apache() -> Result<PathBuf, String> {
    let apache = apache();
    if !apache.is_file() {
        return Err(format!(
            "apache2 not found at {}: install Apache with `sudo apt-get install apache2`{}",
            apache.display(),
            if std::env::var_os("RWSGI_APACHE").is_some() {
                " or correct RWSGI_APACHE"
            } else {
                " (or set RWSGI_APACHE to its path)"
            }
        ));
    }
    let module = crate::module_path();
    if !module.exists() {
        return Err(format!(
            "{} not found: build it (scripts/build) or install the rwsgi package",
            module.display()
        ));
    }
    Ok(apache)
}

fn configtest(apache: &Path, conf: &Path) -> Result<(), String> {
    let test = Command::new(apache)
        .arg("-t")
        .arg("-f")
        .arg(conf)
        .output()
        .map_err(|e| e.to_string())?;
    if test.status.success() {
        Ok(())
    } else {
        Err(format!(
            "the generated configuration does not pass apache2 -t:\n{}",
            String::from_utf8_lossy(&test.stderr)
        ))
    }
}

pub fn module_config() -> String {
    let mut s = format!(
        "LoadModule wsgi_module \"{}\"\n",
        crate::module_path().display()
    );
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        let _ = writeln!(s, "WSGIPythonHome \"{}\"", PathBuf::from(venv).display());
    }
    s
}
