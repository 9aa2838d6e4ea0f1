//! The page a person reads: one section per target (embedded, each daemon group) with its
//! figures, processes and requests in flight; refreshes itself every 5 seconds.

use super::super::{Counters, GroupView, StatusView, TargetKind};
use super::{mean_ms, quantile, queued};
use std::fmt::Write;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn duration(us: u64) -> String {
    let s = us / 1_000_000;
    match s {
        0..60 => format!("{:.1} s", us as f64 / 1e6),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, (s / 60) % 60),
        _ => format!("{}d {:02}h", s / 86400, (s / 3600) % 24),
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if n < 10_240 {
        return format!("{n} B");
    }
    let mut x = n as f64 / 1024.0;
    let mut unit = 0;
    while x >= 10_240.0 && unit < UNITS.len() - 1 {
        x /= 1024.0;
        unit += 1;
    }
    format!("{x:.1} {}", UNITS[unit])
}

fn seconds(s: Option<f64>) -> String {
    match s {
        None => "–".into(),
        Some(x) if x.is_infinite() => "&gt; 41 s".into(),
        Some(x) if x < 1.0 => format!("≤ {:.0} ms", x * 1000.0),
        Some(x) => format!("≤ {x:.2} s"),
    }
}

fn latency_row(o: &mut String, what: &str, hist: &[u64; super::BUCKETS], sum_us: u64, n: u64) {
    let mean = mean_ms(sum_us, n).map_or("–".into(), |m| format!("{m:.1} ms"));
    let _ = write!(
        o,
        "<tr><th>{what}</th><td>{mean}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        seconds(quantile(hist, 0.5)),
        seconds(quantile(hist, 0.95)),
        seconds(quantile(hist, 0.99))
    );
}

fn summary(o: &mut String, g: &GroupView) {
    let c: &Counters = &g.apache;
    let rate = g.rate.map_or("–".into(), |r| format!("{r:.1}/s"));
    let _ = write!(
        o,
        "<table class=\"summary\"><tr><th>requests</th><th>rate</th><th>in flight</th><th>queued</th>\
         <th>1xx</th><th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>bytes in</th><th>bytes out</th></tr>\
         <tr><td class=\"requests\">{}</td><td>{rate}</td><td class=\"in-flight\">{}</td><td>{}</td>",
        c.requests,
        g.in_flight.len(),
        if g.kind == TargetKind::Daemon {
            g.queue_length.to_string()
        } else {
            "–".into()
        }
    );
    for n in c.classes {
        let _ = write!(o, "<td>{n}</td>");
    }
    let _ = write!(
        o,
        "<td>{}</td><td>{}</td></tr></table>",
        bytes(c.bytes_in),
        bytes(c.bytes_out)
    );
    o.push_str("<table class=\"latency\"><tr><th></th><th>mean</th><th>p50</th><th>p95</th><th>p99</th></tr>");
    latency_row(
        o,
        "request (Apache)",
        &c.time_hist,
        c.time_sum_us,
        c.requests,
    );
    if g.kind == TargetKind::Daemon {
        let d = &g.daemon;
        latency_row(o, "queue wait", &d.queue_hist, d.queue_sum_us, queued(d));
        latency_row(o, "application", &d.time_hist, d.time_sum_us, d.requests);
    }
    o.push_str("</table>");
}

fn processes(o: &mut String, g: &GroupView, now: u64) {
    o.push_str(
        "<table class=\"processes\"><tr><th>#</th><th>pid</th><th>uptime</th><th>requests</th>\
         <th>busy</th><th>idle</th><th>memory</th><th>restarts</th><th>last death</th></tr>",
    );
    for p in &g.processes {
        let up = if p.pid > 0 {
            duration(now.saturating_sub(p.started_us))
        } else {
            "not running".into()
        };
        let death = p.last_death.as_ref().map_or(String::new(), |(why, at)| {
            format!("{} ({} ago)", esc(why), duration(now.saturating_sub(*at)))
        });
        let _ = write!(
            o,
            "<tr class=\"process\"><td>{}</td><td>{}</td><td>{up}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{death}</td></tr>",
            p.slot,
            p.pid,
            p.requests,
            p.busy,
            p.threads.saturating_sub(p.busy),
            p.rss_bytes.map_or("–".into(), bytes),
            p.restarts
        );
    }
    o.push_str("</table>");
}

fn in_flight(o: &mut String, g: &GroupView, now: u64) {
    if g.in_flight.is_empty() {
        o.push_str("<p class=\"idle\">No request running.</p>");
        return;
    }
    o.push_str("<table class=\"in-flight\"><tr><th>pid</th><th>thread</th><th>request</th><th>client</th><th>running for</th></tr>");
    let mut rows: Vec<_> = g.in_flight.iter().collect();
    rows.sort_by_key(|r| r.started_us);
    for r in rows {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"uri\">{}</td><td>{}</td><td>{}</td></tr>",
            r.pid,
            r.thread,
            esc(&r.line),
            esc(&r.client),
            duration(now.saturating_sub(r.started_us))
        );
    }
    o.push_str("</table>");
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}table{border-collapse:collapse;margin:.5em 0}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}\
td.uri{text-align:left;font-family:monospace}.muted{color:#777}form{display:inline}";

pub fn html(v: &StatusView, refresh: bool) -> String {
    let mut o = String::with_capacity(8192);
    let _ = write!(
        o,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>rwsgi status</title>{}<style>{STYLE}</style></head><body>\
         <h1>rwsgi status</h1><p class=\"muted\">{} · up {} · {} · <a href=\"?json\">json</a> · <a href=\"?prometheus\">prometheus</a></p>",
        if refresh {
            "<meta http-equiv=\"refresh\" content=\"5\">"
        } else {
            ""
        },
        esc(&v.version),
        duration(v.now_us.saturating_sub(v.started_us)),
        if refresh {
            "refreshes every 5 s (<a href=\"?refresh=0\">stop</a>)"
        } else {
            "<a href=\"?\">refresh</a>"
        }
    );
    for g in &v.targets {
        if g.kind == TargetKind::Embedded && g.apache.requests == 0 && g.in_flight.is_empty() {
            continue;
        }
        let title = match g.kind {
            TargetKind::Embedded => "Embedded (in the Apache children)".to_string(),
            TargetKind::Daemon => format!("Daemon process group “{}”", esc(&g.name)),
        };
        let _ = write!(
            o,
            "<section class=\"group\" data-group=\"{}\"><h2>{title}</h2>",
            esc(&g.name)
        );
        summary(&mut o, g);
        processes(&mut o, g, v.now_us);
        in_flight(&mut o, g, v.now_us);
        let action = match g.kind {
            TargetKind::Embedded => "embedded-stacks".to_string(),
            TargetKind::Daemon => format!("stacks={}", url_encode(&g.name)),
        };
        let _ = write!(
            o,
            "<form method=\"post\" action=\"?{action}\"><button>Log the Python stacks of its running requests</button></form>"
        );
        o.push_str("</section>");
    }
    if v.unrecorded > 0 {
        let _ = write!(
            o,
            "<p class=\"muted\">{} requests ran on threads beyond the status board's room and are not counted above.</p>",
            v.unrecorded
        );
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_requests_is_escaped() {
        assert_eq!(esc("<script>\"&'"), "&lt;script&gt;&quot;&amp;&#39;");
        assert_eq!(esc("a\u{1b}b"), "a\u{FFFD}b");
        assert_eq!(duration(90_000_000), "1m 30s");
        assert_eq!(bytes(2048), "2048 B");
    }
}
