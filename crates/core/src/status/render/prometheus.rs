//! `?prometheus`: the text exposition format (version 0.0.4), names after Prometheus's
//! conventions (`rwsgi_` prefix, base units, `_total` counters, `_seconds` histograms).

use super::super::{BUCKETS, Counters, GroupView, StatusView, TargetKind, bucket_bound};
use std::fmt::Write;

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
    }
    fn histogram(&mut self, name: &str, g: &str, hist: &[u64; BUCKETS], sum_us: u64) {
        let mut seen: u64 = 0;
        for (i, n) in hist.iter().enumerate() {
            seen = seen.saturating_add(*n);
            let le = bucket_bound(i).map_or("+Inf".into(), |b| format!("{b}"));
            self.sample(&format!("{name}_bucket"), &format!("{g},le=\"{le}\""), seen);
        }
        self.sample(&format!("{name}_sum"), g, sum_us as f64 / 1e6);
        self.sample(&format!("{name}_count"), g, seen);
    }
}

fn each(v: &StatusView, daemon_only: bool) -> impl Iterator<Item = (String, &GroupView)> {
    v.targets
        .iter()
        .filter(move |g| !daemon_only || g.kind == TargetKind::Daemon)
        .map(|g| {
            // `mode` too: a daemon group may be called "embedded".
            let mode = match g.kind {
                TargetKind::Embedded => "embedded",
                TargetKind::Daemon => "daemon",
            };
            (format!("group=\"{}\",mode=\"{mode}\"", label(&g.name)), g)
        })
}

fn totals(o: &mut Out, v: &StatusView, name: &str, help: &str, f: fn(&Counters) -> u64) {
    o.family(name, "counter", help);
    for (g, view) in each(v, false) {
        o.sample(name, &g, f(&view.apache));
    }
}

pub fn prometheus(v: &StatusView) -> String {
    let mut o = Out(String::new());
    o.family(
        "rwsgi_requests_total",
        "counter",
        "Requests answered, by status class.",
    );
    for (g, view) in each(v, false) {
        for (i, n) in view.apache.classes.iter().enumerate() {
            o.sample(
                "rwsgi_requests_total",
                &format!("{g},class=\"{}xx\"", i + 1),
                n,
            );
        }
    }
    totals(
        &mut o,
        v,
        "rwsgi_request_body_bytes_total",
        "Request body bytes read.",
        |c| c.bytes_in,
    );
    totals(
        &mut o,
        v,
        "rwsgi_response_body_bytes_total",
        "Response bytes sent.",
        |c| c.bytes_out,
    );
    histograms(&mut o, v);
    o.family("rwsgi_requests_in_flight", "gauge", "Requests running now.");
    for (g, view) in each(v, false) {
        o.sample("rwsgi_requests_in_flight", &g, view.in_flight.len());
    }
    o.family(
        "rwsgi_queue_length",
        "gauge",
        "Daemon groups: requests waiting for a thread.",
    );
    for (g, view) in each(v, true) {
        o.sample("rwsgi_queue_length", &g, view.queue_length);
    }
    processes(&mut o, v);
    o.family(
        "rwsgi_unrecorded_requests_total",
        "counter",
        "Requests on threads the status board had no room for.",
    );
    let _ = writeln!(o.0, "rwsgi_unrecorded_requests_total {}", v.unrecorded);
    o.family(
        "rwsgi_start_time_seconds",
        "gauge",
        "When these counters started (Apache's last start or restart; Unix time).",
    );
    let _ = writeln!(
        o.0,
        "rwsgi_start_time_seconds {}",
        v.started_us as f64 / 1e6
    );
    o.0
}

/// Request duration (Apache's view, every target); queue wait and application time (the
/// daemon processes' view).
fn histograms(o: &mut Out, v: &StatusView) {
    o.family(
        "rwsgi_request_duration_seconds",
        "histogram",
        "Time from handing a request to rwsgi to its last byte, as Apache saw it.",
    );
    for (g, view) in each(v, false) {
        o.histogram(
            "rwsgi_request_duration_seconds",
            &g,
            &view.apache.time_hist,
            view.apache.time_sum_us,
        );
    }
    o.family(
        "rwsgi_queue_wait_seconds",
        "histogram",
        "Daemon groups: time a request waited for a daemon thread.",
    );
    for (g, view) in each(v, true) {
        o.histogram(
            "rwsgi_queue_wait_seconds",
            &g,
            &view.daemon.queue_hist,
            view.daemon.queue_sum_us,
        );
    }
    o.family(
        "rwsgi_application_duration_seconds",
        "histogram",
        "Daemon groups: time in the application, in the daemon process.",
    );
    for (g, view) in each(v, true) {
        o.histogram(
            "rwsgi_application_duration_seconds",
            &g,
            &view.daemon.time_hist,
            view.daemon.time_sum_us,
        );
    }
}

fn processes(o: &mut Out, v: &StatusView) {
    type Field = fn(&super::super::ProcessView, u64) -> Option<f64>;
    let families: [(&str, &str, &str, Field); 6] = [
        (
            "rwsgi_process_start_time_seconds",
            "gauge",
            "Start of the process (Unix time).",
            |p, _| Some(p.started_us as f64 / 1e6),
        ),
        (
            "rwsgi_process_requests_total",
            "counter",
            "Requests this process has served.",
            |p, _| Some(p.requests as f64),
        ),
        (
            "rwsgi_process_threads_busy",
            "gauge",
            "Request threads running a request.",
            |p, _| Some(p.busy as f64),
        ),
        (
            "rwsgi_process_threads",
            "gauge",
            "Request threads of the process.",
            |p, _| Some(p.threads as f64),
        ),
        (
            "rwsgi_process_resident_memory_bytes",
            "gauge",
            "Resident memory.",
            |p, _| p.rss_bytes.map(|b| b as f64),
        ),
        (
            "rwsgi_process_restarts_total",
            "counter",
            "Daemon processes of this slot that ended other than asked.",
            |p, _| Some(p.restarts as f64),
        ),
    ];
    for (name, kind, help, field) in families {
        o.family(name, kind, help);
        for (g, view) in each(v, false) {
            for p in view
                .processes
                .iter()
                .filter(|p| p.pid > 0 || name == "rwsgi_process_restarts_total")
            {
                if let Some(x) = field(p, v.now_us) {
                    o.sample(
                        name,
                        &format!("{g},process=\"{}\",pid=\"{}\"", p.slot, p.pid),
                        x,
                    );
                }
            }
        }
    }
}
