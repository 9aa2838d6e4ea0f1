//! Apache's scoreboard as plain data: what `mod_wsgi.server_metrics()` returns
//! (WSGIServerMetrics On), read by the Apache layer, turned into Python by the Python layer.

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scoreboard {
    pub server_limit: i32,
    pub thread_limit: i32,
    pub running_generation: i32,
    /// Seconds since the epoch.
    pub restart_time: f64,
    pub current_time: f64,
    pub processes: Vec<Process>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Process {
    pub process_num: i32,
    pub pid: i32,
    pub generation: i32,
    pub quiescing: bool,
    pub workers: Vec<Worker>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Worker {
    pub thread_num: i32,
    pub generation: i32,
    /// mod_status's letter: `.` dead, `_` ready, `S` starting, `R` reading, `W` writing,
    /// `K` keep-alive, `L` logging, `D` DNS, `C` closing, `G` graceful, `I` idle kill.
    pub status: char,
    pub access_count: u64,
    pub bytes_served: u64,
    pub start_time: f64,
    pub stop_time: f64,
    pub last_used: f64,
    pub client: String,
    pub request: String,
    pub vhost: String,
}

/// mod_status's letter for a scoreboard status number.
pub fn status_letter(status: u8) -> char {
    const LETTERS: &[u8; 11] = b"._SRWKLDCGI";
    LETTERS.get(status as usize).map_or('?', |&b| b as char)
}

#[cfg(test)]
mod tests {
    #[test]
    fn letters_follow_mod_status() {
        assert_eq!(super::status_letter(0), '.');
        assert_eq!(super::status_letter(4), 'W');
        assert_eq!(super::status_letter(10), 'I');
        assert_eq!(super::status_letter(42), '?');
    }
}
