//! The program each daemon process of a WSGIDaemonProcess group runs: its supervisor forks and
//! executes it (so a daemon process starts with nothing of Apache's memory or descriptors),
//! with the group's socket and settings on fixed descriptors. Not meant to be run by hand.

fn main() {
    rwsgi_daemon::worker::program_main()
}
