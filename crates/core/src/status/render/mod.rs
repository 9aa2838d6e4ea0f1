//! The three forms of the status page: an HTML page a person reads, JSON, and the
//! Prometheus text exposition format.

mod html;
mod json;
mod prometheus;

pub use html::html;
pub use json::json;
pub use prometheus::prometheus;

use super::{BUCKETS, Counters, bucket_bound};

/// Which form a query string asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Html { refresh: bool },
    Json,
    Prometheus,
}

impl Form {
    /// `?json`, `?prometheus` (or `?metrics`), else HTML (`?refresh=0` stops the refresh).
    pub fn of(query: &str) -> Form {
        let pairs: Vec<(&str, &str)> = query
            .split('&')
            .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
            .collect();
        let has = |k: &str| pairs.iter().any(|(key, _)| *key == k);
        if has("json") {
            Form::Json
        } else if has("prometheus") || has("metrics") {
            Form::Prometheus
        } else {
            Form::Html {
                refresh: !pairs.contains(&("refresh", "0")),
            }
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Form::Html { .. } => "text/html; charset=utf-8",
            Form::Json => "application/json",
            Form::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The smallest bucket bound under which a fraction `q` of the histogram lies, in seconds
/// (`None`: empty; infinity: in the last, open bucket).
pub fn quantile(hist: &[u64; BUCKETS], q: f64) -> Option<f64> {
    let total = hist.iter().fold(0u64, |a, &n| a.saturating_add(n));
    if total == 0 {
        return None;
    }
    let want = (total as f64 * q).ceil().max(1.0) as u64;
    let mut seen: u64 = 0;
    for (i, n) in hist.iter().enumerate() {
        seen = seen.saturating_add(*n);
        if seen >= want {
            return Some(bucket_bound(i).unwrap_or(f64::INFINITY));
        }
    }
    Some(f64::INFINITY)
}

fn mean_ms(sum_us: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum_us as f64 / n as f64 / 1000.0)
}

fn queued(c: &Counters) -> u64 {
    c.queue_hist.iter().fold(0u64, |a, &n| a.saturating_add(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_quantiles() {
        assert_eq!(Form::of("json"), Form::Json);
        assert_eq!(Form::of("x=1&prometheus"), Form::Prometheus);
        // Prometheus's `params: {prometheus: [""]}` asks for ?prometheus=
        assert_eq!(Form::of("prometheus="), Form::Prometheus);
        assert_eq!(Form::of(""), Form::Html { refresh: true });
        assert_eq!(Form::of("refresh=0"), Form::Html { refresh: false });
        let mut h = [0; BUCKETS];
        assert_eq!(quantile(&h, 0.5), None);
        h[0] = 90;
        h[3] = 10;
        assert_eq!(quantile(&h, 0.5), Some(0.005));
        assert_eq!(quantile(&h, 0.95), Some(0.04));
        h[14] = 100;
        assert_eq!(quantile(&h, 0.99), Some(f64::INFINITY));
    }
}
