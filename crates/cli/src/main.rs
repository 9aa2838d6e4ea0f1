//! `rwsgi`: from a WSGI file to a running Apache in one command (in the spirit of
//! mod_wsgi-express), and the lines to paste into an existing Apache configuration.

mod apache_conf;
mod doctor;
mod shell;
mod site;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "rwsgi", version = site::VERSION_LINE.as_str(), about = "Run Python WSGI applications with Apache httpd and mod_rwsgi")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate an Apache configuration for an application and run Apache in the foreground.
    Serve(Box<site::ServeArgs>),
    /// Print the LoadModule line (and WSGIPythonHome for the active virtualenv) to paste into
    /// an existing Apache configuration.
    ModuleConfig,
    /// Check the active Apache configuration for what keeps WSGI applications from running
    /// (mod_wsgi still enabled, unreadable scripts, a python-home of another Python, an
    /// unreachable socket directory); exit status 1 when something is wrong.
    Doctor(doctor::DoctorArgs),
    /// Print the skeleton of a self-contained Apache configuration (server root, listener,
    /// logs, base modules, default-deny) that `rwsgi serve`, the tests and the benchmark share.
    #[command(hide = true)]
    ApacheConfig(Box<apache_conf::Skeleton>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => site::serve(*args),
        Command::ModuleConfig => {
            print!("{}", site::module_config());
            Ok(())
        }
        Command::ApacheConfig(skeleton) => {
            print!("{}", skeleton.render());
            Ok(())
        }
        Command::Doctor(args) => match doctor::run(&args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rwsgi: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where mod_rwsgi.so is: next to this binary (a build tree), else Apache's module directory.
pub fn module_path() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let local = dir.join("mod_rwsgi.so");
            if local.exists() {
                return local;
            }
        }
    }
    PathBuf::from("/usr/lib/apache2/modules/mod_rwsgi.so")
}
