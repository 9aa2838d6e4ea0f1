//! Reading Apache's scoreboard (this child's copy of the shared memory), for
//! `mod_wsgi.server_metrics()`.

use crate::bindings as b;
use rwsgi_core::scoreboard::{Process, Scoreboard, Worker, status_letter};
use std::ffi::c_char;

fn text(field: &[c_char]) -> String {
    let bytes: Vec<u8> = field
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn seconds(t: b::apr_time_t) -> f64 {
    t as f64 / 1e6
}

/// The scoreboard, or `None` when there is none (not an Apache process).
pub fn read() -> Option<Scoreboard> {
    // SAFETY: ap_exists_scoreboard_image only reads a global; the scoreboard, when it exists,
    // lives for the process (its shared memory is mapped before the children start).
    unsafe {
        if b::ap_exists_scoreboard_image() == 0 {
            return None;
        }
        let g = b::ap_get_scoreboard_global().as_ref()?;
        let mut sb = Scoreboard {
            server_limit: g.server_limit,
            thread_limit: g.thread_limit,
            running_generation: g.running_generation,
            restart_time: seconds(g.restart_time),
            current_time: seconds(b::apr_time_now()),
            processes: Vec::new(),
        };
        for i in 0..g.server_limit {
            let Some(p) = b::ap_get_scoreboard_process(i).as_ref() else {
                continue;
            };
            let mut process = Process {
                process_num: i,
                pid: p.pid,
                generation: p.generation,
                quiescing: p.quiescing != 0,
                workers: Vec::new(),
            };
            for j in 0..g.thread_limit {
                let Some(w) = b::ap_get_scoreboard_worker_from_indexes(i, j).as_ref() else {
                    continue;
                };
                process.workers.push(Worker {
                    thread_num: w.thread_num,
                    generation: w.generation,
                    status: status_letter(w.status),
                    access_count: w.access_count,
                    bytes_served: w.bytes_served.max(0) as u64,
                    start_time: seconds(w.start_time),
                    stop_time: seconds(w.stop_time),
                    last_used: seconds(w.last_used),
                    client: text(&w.client64),
                    request: text(&w.request),
                    vhost: text(&w.vhost),
                });
            }
            sb.processes.push(process);
        }
        Some(sb)
    }
}
