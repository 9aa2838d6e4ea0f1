//! `rwsgi doctor`: reads the active Apache configuration and checks the traps mod_wsgi users
//! hit — mod_wsgi still enabled beside rwsgi, script files missing or unreadable by the user
//! that runs them, a python-home of another Python or none at all, a socket directory
//! Apache's children cannot reach, applications in sub-interpreters whose extension modules
//! refuse them. One line per finding (where, what, the fix); exit status
//! 0 when there is nothing to say, 1 otherwise.

pub mod access;
mod active;
mod checks;
mod subinterp;

pub use checks::Finding;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// The main configuration file (as `apache2 -f`); default: what apache2ctl runs
    /// (`$APACHE_CONFDIR/apache2.conf`, /etc/apache2/apache2.conf on Debian).
    #[arg(short = 'f', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Do not import the applications that run in sub-interpreters to try their extension
    /// modules there (the import runs their module-level code, as their own user).
    #[arg(long)]
    pub no_import: bool,
}

/// The findings for the configuration `args` names; Err when it cannot be read at all.
pub fn examine(args: &DoctorArgs) -> Result<Vec<Finding>, String> {
    let cfg = active::read(args.config.as_deref())?;
    Ok(checks::all(&cfg, !args.no_import))
}

/// Prints the findings; true when there were none.
pub fn run(args: &DoctorArgs) -> Result<bool, String> {
    let findings = examine(args)?;
    for f in &findings {
        match &f.at {
            Some(at) => println!("{at}: {}\n    fix: {}", f.what, f.fix),
            None => println!("{}\n    fix: {}", f.what, f.fix),
        }
    }
    if findings.is_empty() {
        println!("rwsgi doctor: no problems found");
    } else {
        println!("rwsgi doctor: {} problem(s)", findings.len());
    }
    Ok(findings.is_empty())
}
