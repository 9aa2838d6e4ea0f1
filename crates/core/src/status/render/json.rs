//! `?json`: the whole view, durations in seconds, times as Unix seconds.

use super::super::{BUCKETS, Counters, GroupView, StatusView, TargetKind, bucket_bound};
use serde_json::{Value, json};

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

/// Counts per bucket (not cumulative); the bounds are the document's `bucket_bounds_seconds`.
fn histogram(h: &[u64]) -> Value {
    json!(h)
}

fn counters(c: &Counters) -> Value {
    json!({
        "requests": c.requests,
        "status": {"1xx": c.classes[0], "2xx": c.classes[1], "3xx": c.classes[2],
                   "4xx": c.classes[3], "5xx": c.classes[4]},
        "bytes_in": c.bytes_in,
        "bytes_out": c.bytes_out,
        "time_seconds_sum": secs(c.time_sum_us),
        "time_histogram": histogram(&c.time_hist),
        "queue_seconds_sum": secs(c.queue_sum_us),
        "queue_histogram": histogram(&c.queue_hist),
    })
}

fn group(g: &GroupView, now_us: u64) -> Value {
    let processes: Vec<Value> = g
        .processes
        .iter()
        .map(|p| {
            json!({
                "slot": p.slot, "pid": p.pid,
                "started": secs(p.started_us),
                "uptime_seconds": (p.pid > 0).then(|| secs(now_us.saturating_sub(p.started_us))),
                "requests": p.requests, "threads_busy": p.busy,
                "threads_idle": p.threads.saturating_sub(p.busy),
                "rss_bytes": p.rss_bytes, "restarts": p.restarts,
                "last_death": p.last_death.as_ref().map(|(why, at)| json!({"cause": why, "at": secs(*at)})),
            })
        })
        .collect();
    let in_flight: Vec<Value> = g
        .in_flight
        .iter()
        .map(|r| {
            json!({
                "pid": r.pid, "thread": r.thread, "request": r.line, "client": r.client,
                "running_seconds": secs(now_us.saturating_sub(r.started_us)),
            })
        })
        .collect();
    json!({
        "name": g.name,
        "mode": match g.kind { TargetKind::Embedded => "embedded", TargetKind::Daemon => "daemon" },
        "requests_per_second": g.rate,
        "queue_length": g.queue_length,
        "apache": counters(&g.apache),
        "daemon": (g.kind == TargetKind::Daemon).then(|| counters(&g.daemon)),
        "processes": processes,
        "in_flight": in_flight,
    })
}

pub fn json(v: &StatusView) -> String {
    let groups: Vec<Value> = v.targets.iter().map(|g| group(g, v.now_us)).collect();
    let doc = json!({
        "version": v.version,
        "now": secs(v.now_us),
        "started": secs(v.started_us),
        "unrecorded_requests": v.unrecorded,
        "bucket_bounds_seconds": (0..BUCKETS).map(bucket_bound).collect::<Vec<_>>(),
        "groups": groups,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
