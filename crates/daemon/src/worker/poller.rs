//! The daemon process's one polling thread: hands the connections the [`Hub`] finds with a
//! frame waiting to the request threads over a bounded channel (back-pressure: when all are
//! busy, requests wait in their sockets). The request threads put connections back into the
//! hub themselves. Ends once the process stops (the hub is closed).

use super::hub::{Hub, Token};
use super::pool::Shared;
use super::session::Conn;

pub fn run(hub: &Hub, shared: &Shared, work_tx: crossbeam_channel::Sender<(Token, Conn)>) {
    let mut ready = Vec::new();
    while !hub.closed() {
        hub.wait(shared, &mut ready);
        for taken in ready.drain(..) {
            if work_tx.send(taken).is_err() {
                return;
            }
        }
    }
}
