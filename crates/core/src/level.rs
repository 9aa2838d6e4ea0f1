//! The one log level rwsgi uses everywhere: Apache's error log, the daemon processes' lines,
//! the wire (a daemon's log line for a request), Python's `wsgi.errors`.

/// A log level, ordered from the most to the least severe (Apache's APLOG_* order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Crit = 2,
    Error = 3,
    Warn = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Level {
    /// The name Apache prints (`[wsgi:warn]`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Crit => "crit",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Notice => "notice",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    /// Apache's APLOG_* number.
    pub fn aplog(self) -> i32 {
        self as i32
    }

    /// From an APLOG_* number (anything above debug is debug: trace levels).
    pub fn from_aplog(n: i32) -> Level {
        match n {
            i32::MIN..=2 => Level::Crit,
            3 => Level::Error,
            4 => Level::Warn,
            5 => Level::Notice,
            6 => Level::Info,
            _ => Level::Debug,
        }
    }

    /// Whether a message at this level passes a configured `LogLevel` (APLOG_* number).
    pub fn passes(self, log_level: i32) -> bool {
        self.aplog() <= log_level
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Level;

    #[test]
    fn levels_round_trip_and_filter() {
        for l in [
            Level::Crit,
            Level::Error,
            Level::Warn,
            Level::Notice,
            Level::Info,
            Level::Debug,
        ] {
            assert_eq!(Level::from_aplog(l.aplog()), l);
        }
        assert_eq!(Level::from_aplog(9), Level::Debug);
        assert!(Level::Error.passes(4) && !Level::Info.passes(4));
        assert_eq!(Level::Warn.to_string(), "warn");
    }
}
