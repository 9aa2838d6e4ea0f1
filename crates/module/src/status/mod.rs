//! The status board on the Apache side: made by the parent for each configuration generation
//! (with one board per daemon group, handed to the supervisors), a process slot taken by each
//! child, a thread slot by each thread that runs a request, and each request counted by
//! [`begin`] / [`Recording::end`] around the handler. [`page`] serves `rwsgi-status`.
//!
//! Built without the `status` feature (the default has it), recording compiles to nothing:
//! that build is what `bench/` compares against to show what the counters cost.

pub mod page;
mod stacks;

use rwsgi_apache::hooks::Handled;
use rwsgi_apache::{Pool, Request, log, process};
use rwsgi_core::Level;
use rwsgi_core::spec::GroupSpec;
use rwsgi_core::status::{Boards, Finished, Shape, ThreadSlot, identity_of, is_alive, now_us};
use std::sync::{Arc, OnceLock, RwLock};

/// The parent's boards of the current generation.
static CURRENT: RwLock<Option<Arc<Boards>>> = RwLock::new(None);
/// A child's boards and its process slot (a child lives in one generation).
static CHILD: OnceLock<(Arc<Boards>, usize)> = OnceLock::new();

/// Makes the boards of a new configuration generation (Apache parent, post_config). They are
/// unmapped in the parent when the generation ends; children and supervisors keep their
/// copies. `None` (with a warning) if the memory cannot be had: rwsgi runs without a page.
pub fn create(pconf: &Pool, specs: &[GroupSpec]) -> Option<Arc<Boards>> {
    if !cfg!(feature = "status") {
        return None;
    }
    let (processes, threads) = process::mpm_hard_limits();
    let shape = Shape {
        apache_processes: processes,
        // Room for mod_http2's workers beside the MPM's threads.
        apache_threads: threads * 2 + 8,
        groups: specs
            .iter()
            .map(|s| {
                let name = s.name().to_string();
                (name, s.processes() as usize, s.threads().max(1) as usize)
            })
            .collect(),
    };
    let boards = match Boards::create(shape) {
        Ok(b) => Arc::new(b),
        Err(e) => {
            log::server(
                Level::Warn,
                &format!("rwsgi: no status board ({e}); the rwsgi-status handler will say so"),
            );
            return None;
        }
    };
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(boards.clone());
    let parent = std::process::id();
    pconf.on_cleanup(move || {
        if std::process::id() == parent {
            CURRENT.write().unwrap_or_else(|e| e.into_inner()).take();
        }
    });
    Some(boards)
}

/// A child starts: it takes a process slot (one whose process has gone, if none is free).
pub fn child_init() {
    let Some(boards) = CURRENT.read().unwrap_or_else(|e| e.into_inner()).clone() else {
        return;
    };
    let Some(me) = identity_of(std::process::id() as i32) else {
        return;
    };
    if let Some(p) = boards.server.claim_process(me, is_alive) {
        let _ = CHILD.set((boards, p));
        stacks::start_watcher();
    }
}

/// A child ends (before Python's atexit callbacks run).
pub fn child_exit() {
    stacks::stop_watcher();
}

/// This child's boards (for the page).
pub fn boards() -> Option<&'static Arc<Boards>> {
    CHILD.get().map(|(b, _)| b)
}

/// A thread's claim on a thread slot, given back when the thread ends.
struct Claim(usize);

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(s) = thread_slot_at(self.0) {
            s.clear();
            s.owner().store(0, std::sync::atomic::Ordering::Release);
        }
    }
}

thread_local! {
    static CLAIM: std::cell::OnceCell<Option<Claim>> = const { std::cell::OnceCell::new() };
}

fn thread_slot_at(t: usize) -> Option<ThreadSlot<'static>> {
    let (boards, p) = CHILD.get()?;
    boards.server.apache_slot(*p, t)
}

/// This thread's slot, claimed on its first request.
fn thread_slot() -> Option<ThreadSlot<'static>> {
    let (boards, p) = CHILD.get()?;
    let t = CLAIM
        .try_with(|c| {
            c.get_or_init(|| {
                let tid = nix::unistd::gettid().as_raw() as u64;
                let claimed = boards.server.claim_thread(*p, tid).map(Claim);
                if claimed.is_none() {
                    log::server(
                        Level::Warn,
                        "rwsgi: more request threads than the status board has room for; their requests are counted as unrecorded",
                    );
                }
                claimed
            })
            .as_ref()
            .map(|c| c.0)
        })
        .ok()
        .flatten();
    match t {
        Some(t) => boards.server.apache_slot(*p, t),
        None => {
            if let Some(u) = boards.server.unrecorded(*p) {
                u.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            None
        }
    }
}

/// A request being counted.
pub struct Recording {
    slot: Option<ThreadSlot<'static>>,
    target: usize,
    started_us: u64,
}

/// The handler starts running a request on `daemon_group` (`None`: embedded).
pub fn begin(req: &Request<'_>, daemon_group: Option<&str>) -> Recording {
    if !cfg!(feature = "status") {
        return Recording {
            slot: None,
            target: 0,
            started_us: 0,
        };
    }
    let slot = thread_slot();
    let target = match (daemon_group, CHILD.get()) {
        (Some(g), Some((b, _))) => b.target_of(g),
        _ => 0,
    };
    let started_us = now_us();
    if let Some(s) = slot {
        let mut line = [0u8; 192];
        let n = join(
            &mut line,
            &[req.method().as_bytes(), b" ", req.unparsed_uri().as_bytes()],
        );
        let ident = rwsgi_python::interpreters::thread_ident();
        s.begin(
            target,
            started_us,
            &line[..n],
            req.client_ip().as_bytes(),
            ident,
        );
    }
    Recording {
        slot,
        target,
        started_us,
    }
}

/// `parts` one after the other in `buf`, cut to fit; the length used.
fn join(buf: &mut [u8], parts: &[&[u8]]) -> usize {
    let mut n = 0;
    for p in parts {
        let take = p.len().min(buf.len() - n);
        buf[n..n + take].copy_from_slice(&p[..take]);
        n += take;
    }
    n
}

impl Recording {
    /// The handler is done: `handled` is what it returns to Apache.
    pub fn end(self, req: &Request<'_>, handled: Handled) {
        let Some(s) = self.slot else { return };
        let status = match handled {
            Handled::Status(st) => st.code(),
            Handled::Done => req.status(),
            Handled::Declined => 0,
        };
        s.end(
            self.target,
            &Finished {
                status,
                bytes_in: req.body_bytes_read(),
                bytes_out: req.bytes_sent(),
                time_us: now_us().saturating_sub(self.started_us),
                queue_us: None,
            },
        );
    }
}
