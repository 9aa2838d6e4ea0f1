//! How log lines name things, written once.

use std::fmt;

/// `daemon process 'NAME'`, the way every log line about a daemon group names it (mod_wsgi's
/// wording, which admins grep for).
pub struct DaemonName<'a>(pub &'a str);

impl fmt::Display for DaemonName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "daemon process '{}'", self.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn daemon_name_reads_as_mod_wsgi_writes_it() {
        assert_eq!(
            super::DaemonName("site").to_string(),
            "daemon process 'site'"
        );
    }
}
