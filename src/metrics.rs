//! Prometheus metrics: counters and latency histograms kept per instance (Prometheus scrapes
//! each instance), plus gauges computed from the database at scrape time (webhook backlog).
//! Exposition format 0.0.4, no external crate needed.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
}

/// Help text for every metric name we emit.
const HELP: &[(&str, &str, &str)] = &[
    ("fedgate_http_requests_total", "counter", "HTTP requests by route pattern, method and status."),
    ("fedgate_http_request_duration_seconds", "histogram", "HTTP request latency by route pattern and method."),
    ("fedgate_logins_total", "counter", "Completed logins by tenant, connection and result."),
    ("fedgate_tokens_issued_total", "counter", "Token responses by grant type."),
    ("fedgate_scim_requests_total", "counter", "SCIM requests by tenant, resource and status."),
    ("fedgate_deliveries_total", "counter", "Webhook and back-channel logout delivery attempts by kind and result."),
    (
        "fedgate_rate_limited_total",
        "counter",
        "Requests refused with 429 by limit (see docs/configuration.md#rate-limits).",
    ),
    (
        "fedgate_anonymous_failures_total",
        "counter",
        "Sign-in failures that match no pending login (not stored; sampled in the log) by tenant, connection and code.",
    ),
    ("fedgate_deliveries_pending", "gauge", "Deliveries waiting to be sent."),
    ("fedgate_deliveries_lag_seconds", "gauge", "Age of the oldest pending delivery."),
];

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn labels(l: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn inc(&self, name: &'static str, l: &[(&'static str, &str)]) {
        let key = (name, l.iter().map(|(k, v)| (*k, (*v).to_string())).collect());
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry(key).or_insert(0) += 1;
    }

    pub fn observe(&self, name: &'static str, l: &[(&'static str, &str)], seconds: f64) {
        let key = (name, l.iter().map(|(k, v)| (*k, (*v).to_string())).collect());
        let mut h = self.histograms.lock().unwrap_or_else(|e| e.into_inner());
        let e = h.entry(key).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                e.counts[i] += 1;
            }
        }
        e.sum += seconds;
        e.count += 1;
    }

    /// The exposition text; `gauges` are (name, value) pairs computed by the caller.
    pub fn render(&self, gauges: &[(&'static str, f64)]) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let hists = self.histograms.lock().unwrap_or_else(|e| e.into_inner());
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((n, l), v) in counters.iter().filter(|((n, _), _)| n == name) {
                let _ = writeln!(out, "{n}{} {v}", labels(l, None));
            }
            for ((n, l), h) in hists.iter().filter(|((n, _), _)| n == name) {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(out, "{n}_bucket{} {}", labels(l, Some(("le", b.to_string()))), h.counts[i]);
                }
                let _ = writeln!(out, "{n}_bucket{} {}", labels(l, Some(("le", "+Inf".into()))), h.count);
                let _ = writeln!(out, "{n}_sum{} {}", labels(l, None), h.sum);
                let _ = writeln!(out, "{n}_count{} {}", labels(l, None), h.count);
            }
            for (g, v) in gauges.iter().filter(|(g, _)| g == name) {
                let _ = writeln!(out, "{g} {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new();
        m.inc("fedgate_logins_total", &[("tenant", "t\"1"), ("result", "ok")]);
        m.inc("fedgate_logins_total", &[("tenant", "t\"1"), ("result", "ok")]);
        m.observe("fedgate_http_request_duration_seconds", &[("route", "/x")], 0.003);
        let t = m.render(&[("fedgate_deliveries_pending", 2.0)]);
        assert!(t.contains("fedgate_logins_total{tenant=\"t\\\"1\",result=\"ok\"} 2"), "{t}");
        assert!(t.contains("fedgate_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.005\"} 1"));
        assert!(t.contains("fedgate_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.001\"} 0"));
        assert!(t.contains("fedgate_deliveries_pending 2"));
    }
}
