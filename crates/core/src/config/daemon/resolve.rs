//! Which daemon process group a request may use, and group names unique server-wide.

use super::model::{DaemonProcess, is_accessible};
use crate::config::model::ServerConfig;

type Result<T> = std::result::Result<T, String>;

/// Daemon process group names are unique server-wide (mod_wsgi: "Name duplicates previous
/// WSGI daemon definition"). Each server's own declarations are checked as they are parsed;
/// this checks across the main server and all virtual hosts once they are known.
pub fn check_unique(servers: &[&ServerConfig]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for d in servers.iter().flat_map(|s| s.daemons.iter()) {
        if !seen.insert(d.name.as_str()) {
            return Err(format!(
                "Name duplicates previous WSGI daemon definition: '{}' (daemon process group names must be unique across the main server and all virtual hosts)",
                d.name
            ));
        }
    }
    Ok(())
}

/// The daemon process group names one reading of the configuration declares, and where each
/// was declared (`file:line`).
#[derive(Debug, Default)]
pub struct GroupNames(Vec<(String, String)>);

impl GroupNames {
    pub const fn new() -> GroupNames {
        GroupNames(Vec::new())
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Claims `name` for the declaration at `place`; a name claimed before is an error.
    pub fn claim(&mut self, name: &str, place: &str) -> Result<()> {
        if let Some((_, first)) = self.0.iter().find(|(n, _)| n == name) {
            return Err(format!(
                "Name duplicates previous WSGI daemon definition: '{name}' (first declared at {first}; daemon process group names must be unique across the main server and all virtual hosts)"
            ));
        }
        self.0.push((name.to_string(), place.to_string()));
        Ok(())
    }
}

/// The group called `name` among those the servers declare.
pub fn find_daemon<'a>(servers: &[&'a ServerConfig], name: &str) -> Option<&'a DaemonProcess> {
    servers
        .iter()
        .flat_map(|s| s.daemons.iter())
        .find(|d| d.name == name)
}

/// Anything that knows where its daemon process group was declared (`None` = main server),
/// so that [`resolve_process_group`] works on [`DaemonProcess`] as well as on the runtime's
/// own group table.
pub trait GroupScope {
    fn scope(&self) -> Option<&str>;
}

impl GroupScope for DaemonProcess {
    fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

impl<T: GroupScope + ?Sized> GroupScope for &T {
    fn scope(&self) -> Option<&str> {
        (**self).scope()
    }
}

impl<T: GroupScope + ?Sized> GroupScope for std::sync::Arc<T> {
    fn scope(&self) -> Option<&str> {
        (**self).scope()
    }
}

/// Decides which daemon process group serves a request, with mod_wsgi's rules and messages:
///
/// * `requested` is the process group after `%{...}` expansion; `""` (or an unexpanded
///   `%{GLOBAL}`) means embedded mode and gives `Ok(None)`.
/// * `restrict` is the WSGIRestrictProcess list in force (`%{GLOBAL}` already stored as `""`).
///   As in mod_wsgi it is checked first, so it can refuse embedded mode too, and names compare
///   ASCII-case-insensitively (mod_wsgi keeps the list in an APR table).
/// * `lookup` finds a declared group by its exact name.
/// * A group declared in a virtual host serves only virtual hosts with the same ServerName
///   (`request_server_name`); groups of the main server serve everyone.
///
/// The messages carry no trailing period so that callers can append the script's path.
pub fn resolve_process_group<G: GroupScope>(
    requested: &str,
    restrict: Option<&[String]>,
    request_server_name: &str,
    lookup: impl FnOnce(&str) -> Option<G>,
) -> Result<Option<G>> {
    let requested = crate::config::groups::interpreter_of(requested);
    if let Some(allowed) = restrict
        && !allowed.iter().any(|a| a.eq_ignore_ascii_case(requested))
    {
        return Err(format!(
            "Daemon process called '{requested}' cannot be accessed by this WSGI application as not a member of allowed groups"
        ));
    }
    if requested.is_empty() {
        return Ok(None);
    }
    let Some(group) = lookup(requested) else {
        return Err(format!(
            "No WSGI daemon process called '{requested}' has been configured"
        ));
    };
    if !is_accessible(group.scope(), request_server_name) {
        return Err(format!(
            "Daemon process called '{requested}' cannot be accessed by this WSGI application"
        ));
    }
    Ok(Some(group))
}
