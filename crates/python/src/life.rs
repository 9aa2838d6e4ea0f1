//! A request's life as the `mod_wsgi` module shows it to applications: `request_data()` and
//! `active_requests` from before the script loads (a script imported by the request already
//! runs in it) until the response is done; the request events for subscribers
//! (`subscribe_events`); the figures behind `process_metrics()` / `request_metrics()`. With no
//! subscriber no event is built.

use super::exchange::Exchange;
use super::ffi::interp::Py;
use super::ffi::object::{Obj, Pending};
use super::interpreters::Api;
use super::metrics;
use rwsgi_core::{AppRequest, Level};
use std::time::Instant;

pub struct Life<'a, 'py> {
    py: Py<'py>,
    api: &'a Api,
    request_id: Obj,
    data: Option<Obj>,
    /// Whether anything subscribed to the events when the application was called.
    events: bool,
    /// `mod_wsgi.request_start` and `queue_start` (µs since the epoch), for the metrics.
    request_start: Option<i64>,
    queue_start: Option<i64>,
    application_start: Option<(Instant, f64)>,
    cpu_start: Option<(f64, f64)>,
}

fn micros(req: &AppRequest, key: &str) -> Option<i64> {
    std::str::from_utf8(req.environ.get(key)?)
        .ok()?
        .parse()
        .ok()
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This thread's user and system CPU seconds.
fn thread_cpu() -> Option<(f64, f64)> {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD).ok()?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Some((secs(u.user_time()), secs(u.system_time())))
}

/// Logs (and clears) an exception raised by the module's own bookkeeping code.
fn report(what: &str) {
    if let Some(p) = Pending::fetch() {
        super::transport::server_log(
            Level::Error,
            &format!("rwsgi (pid={}): {what} failed:", std::process::id()),
        );
        for line in p.format() {
            super::transport::server_log(Level::Error, &line);
        }
    }
}

impl<'a, 'py> Life<'a, 'py> {
    /// The request begins for the module (`request_data()` works from here on).
    pub fn begin(py: Py<'py>, api: &'a Api, req: &AppRequest) -> Life<'a, 'py> {
        let id = req.environ.get("mod_wsgi.request_id").unwrap_or_default();
        let request_id = Obj::latin1(py, id).unwrap_or_else(|_| Obj::none(py));
        let data = api.begin.get(py).call(&[&request_id]).ok();
        if data.is_none() {
            report("mod_wsgi._request_begin");
        }
        Life {
            py,
            api,
            request_id,
            data,
            events: false,
            request_start: micros(req, "mod_wsgi.request_start"),
            queue_start: micros(req, "mod_wsgi.queue_start"),
            application_start: None,
            cpu_start: None,
        }
    }

    fn data(&self) -> Obj {
        self.data.clone().unwrap_or_else(|| Obj::none(self.py))
    }

    /// The application is about to be called: publishes request_started to subscribers,
    /// who may wrap the application; returns what to call, and the start_response to pass.
    pub fn started(
        &mut self,
        environ: &Obj,
        application: &Obj,
        start_response: &Obj,
    ) -> (Obj, Obj) {
        self.application_start = Some((Instant::now(), now_secs()));
        self.events = self.api.events(self.py);
        if !self.events {
            return (application.clone(), start_response.clone());
        }
        self.cpu_start = thread_cpu();
        let data = self.data();
        let app = self
            .api
            .started
            .get(self.py)
            .call(&[environ, application, &data])
            .unwrap_or_else(|_| {
                report("the request_started event");
                application.clone()
            });
        let sr = self
            .api
            .wrap_start_response
            .get(self.py)
            .call(&[start_response, &self.request_id, &data])
            .unwrap_or_else(|_| {
                report("the response_started event");
                start_response.clone()
            });
        (app, sr)
    }

    /// The application raised (while called, iterated or closed): request_exception.
    /// Whether the request ended with `mod_wsgi.RequestTimeout` (raised by interrupt-timeout,
    /// or by the application itself).
    pub fn is_request_timeout(&self, pending: &Pending) -> bool {
        pending.is_instance_of(&self.api.request_timeout.get(self.py))
    }

    pub fn exception(&self, pending: &Pending) {
        if !self.events {
            return;
        }
        let py = self.py;
        let r = pending.exc_info(py).and_then(|info| {
            self.api
                .exception
                .get(py)
                .call(&[&self.request_id, &info, &self.data()])
        });
        if r.is_err() {
            report("the request_exception event");
        }
    }

    /// The response is done: request_finished, and the process's request figures.
    pub fn finished(&self, ex: &Exchange, thread_id: u64) {
        let Some((t0, wall0)) = self.application_start else {
            return;
        };
        let application = t0.elapsed().as_secs_f64();
        let now_us = (now_secs() * 1e6) as i64;
        let since = |start: Option<i64>| start.map(|s| (now_us - s).max(0) as f64 / 1e6);
        metrics::finished(&metrics::Timing {
            thread_id,
            server: since(self.request_start).unwrap_or(application),
            application,
            queue: self
                .queue_start
                .map(|q| ((wall0 * 1e6) as i64 - q).max(0) as f64 / 1e6),
            daemon: None,
        });
        if !self.events {
            return;
        }
        let py = self.py;
        let (reads, read_bytes, read_time, writes, written, write_time) = ex.io_stats();
        let (cpu_user, cpu_system) = match (self.cpu_start, thread_cpu()) {
            (Some((u0, s0)), Some((u1, s1))) => (u1 - u0, s1 - s0),
            _ => (0.0, 0.0),
        };
        let r = (|| {
            let stats = Obj::tuple(
                py,
                vec![
                    Obj::int(py, reads as i64)?,
                    Obj::int(py, read_bytes as i64)?,
                    Obj::float(py, read_time)?,
                    Obj::int(py, writes as i64)?,
                    Obj::int(py, written as i64)?,
                    Obj::float(py, write_time)?,
                    Obj::float(py, cpu_user)?,
                    Obj::float(py, cpu_system)?,
                ],
            )?;
            self.api.finished.get(py).call(&[
                &self.request_id,
                &stats,
                &Obj::float(py, wall0)?,
                &self.data(),
            ])
        })();
        if r.is_err() {
            report("the request_finished event");
        }
    }
}

impl Drop for Life<'_, '_> {
    fn drop(&mut self) {
        // Runs attached: the Life lives inside the request's attached scope.
        if self.api.end.get(self.py).call(&[&self.request_id]).is_err() {
            report("mod_wsgi._request_end");
        }
    }
}
