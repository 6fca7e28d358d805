//! Prometheus metrics on `prometheus-client`: counters and latency histograms kept per instance
//! (Prometheus scrapes each instance), plus gauges computed from the database at scrape time
//! (webhook backlog). Exposition: the Prometheus text format 0.0.4.
//!
//! Every metric is registered once, here ([`COUNTERS`], [`HISTOGRAMS`], [`GAUGES`]), with its
//! name and help text. Call sites use [`Metrics::inc`] / [`Metrics::observe`] with the metric's
//! name and its labels; the per-request HTTP metrics have a typed entry point
//! ([`Metrics::http_request`]). Recording takes no global lock: a family's label-set table is
//! behind a read-write lock taken for reading (for writing only when a label set is seen for
//! the first time), counters are atomics, and each histogram series has its own small lock.
//!
//! Label values are bounded: routes are actix route patterns (or `unmatched`), methods the
//! standard HTTP methods (else `other`), statuses numbers; the other labels are tenant,
//! connection and client ids, codes and kinds that fedgate itself chose.
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

pub const HTTP_REQUESTS: &str = "fedgate_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "fedgate_http_request_duration_seconds";

/// Counters: exposition name (with `_total`), help text. Their labels are the call site's.
pub const COUNTERS: &[(&str, &str)] = &[
    (HTTP_REQUESTS, "HTTP requests by route pattern, method and status."),
    (
        "fedgate_logins_total",
        "Finished logins by tenant, connection, protocol (oidc, saml, dev), result and code (ok or the error code).",
    ),
    ("fedgate_tokens_issued_total", "Token responses by grant type."),
    ("fedgate_scim_requests_total", "SCIM requests by tenant, resource, method and status."),
    (
        "fedgate_deliveries_total",
        "Webhook and back-channel logout delivery attempts by kind, target (webhook endpoint or client id) and result.",
    ),
    ("fedgate_rate_limited_total", "Requests refused with 429 by limit (see docs/configuration.md#rate-limits)."),
    (
        "fedgate_anonymous_failures_total",
        "Sign-in failures that match no pending login (not stored; sampled in the log) by tenant, connection and code.",
    ),
    (
        "fedgate_saml_busy_total",
        "SAML messages answered 503 (saml_busy): every verification worker busy and the queue full.",
    ),
    ("fedgate_saml_responses_refused_total", "SAML responses refused for a pending sign-in, by error code."),
    (
        "fedgate_saml_metadata_refreshes_total",
        "SAML metadata refreshes (scheduled and on demand) by tenant, connection and result (changed, unchanged, failed, superseded).",
    ),
    (
        "fedgate_job_runs_total",
        "Scheduled job runs on this instance (the one holding the job's lease) by job and result.",
    ),
];

/// Histograms (seconds, [`BUCKETS`]): name, help text.
pub const HISTOGRAMS: &[(&str, &str)] = &[
    (HTTP_REQUEST_DURATION, HTTP_REQUEST_DURATION_HELP),
    ("fedgate_job_duration_seconds", "Scheduled job run time by job."),
];
const HTTP_REQUEST_DURATION_HELP: &str = "HTTP request latency by route pattern and method.";

/// Gauges computed by the caller at scrape time (see [`Metrics::render`]): name, help text.
pub const GAUGES: &[(&str, &str)] = &[
    ("fedgate_deliveries_pending", "Deliveries waiting to be sent."),
    ("fedgate_deliveries_lag_seconds", "Age of the oldest pending delivery."),
    ("fedgate_db_statements", "SQL statements this instance has executed since it started."),
    ("fedgate_db_transactions", "Database transactions this instance has begun since it started."),
    ("fedgate_db_pool_connections", "Open connections in this instance's database pool."),
    ("fedgate_db_pool_idle_connections", "Idle connections in this instance's database pool."),
    ("fedgate_db_pool_in_use_connections", "Connections of this instance's database pool in use."),
    ("fedgate_db_pool_max_connections", "The largest size of this instance's database pool (SQLite: 1)."),
    ("fedgate_sqlite_checkpoints", "WAL checkpoints this instance's SQLite checkpointer has run since it started."),
    (
        "fedgate_sqlite_checkpoint_frames",
        "WAL frames (pages) this instance's SQLite checkpointer has copied into the database file since it started.",
    ),
    (
        "fedgate_db_pool_acquire_timeouts",
        "Requests that found no free database connection within database.acquire_timeout, since this instance started.",
    ),
];

/// Days until the last trusted IdP signing certificate of a SAML connection expires (a gauge
/// with the labels tenant and connection, computed at scrape time).
pub const CERT_EXPIRY: &str = "fedgate_saml_certificate_expiry_days";
const CERT_EXPIRY_HELP: &str =
    "Days until the newest trusted IdP signing certificate of each enabled SAML connection expires.";

/// Pending webhook deliveries per endpoint (labels: endpoint), at scrape time.
pub const WEBHOOK_PENDING: &str = "fedgate_webhook_deliveries_pending";
/// Age in seconds of each endpoint's oldest pending delivery (labels: endpoint), at scrape time.
pub const WEBHOOK_LAG: &str = "fedgate_webhook_lag_seconds";

/// Gauges with labels computed at scrape time: name, help text.
pub const LABELLED_GAUGES: &[(&str, &str)] = &[
    (CERT_EXPIRY, CERT_EXPIRY_HELP),
    (WEBHOOK_PENDING, "Webhook deliveries waiting to be sent, by endpoint (endpoints are created by administrators)."),
    (WEBHOOK_LAG, "Age of the oldest pending webhook delivery, by endpoint."),
];

/// One sample of a labelled gauge (see [`LABELLED_GAUGES`]).
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// Labels as the generic call sites give them: (name, value) in the call site's order.
type Labels = Vec<(&'static str, String)>;
type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLatencyLabels {
    route: String,
    method: &'static str,
}

fn new_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The method label: the standard methods by name, anything else `other` (a client may send
/// any token as a method; it must not grow the metrics).
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE"];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

/// A registered name without the `_total` that prometheus-client appends to counters, and a
/// help text without the final period it appends.
fn registered(name: &str, help: &str) -> (String, String) {
    (name.strip_suffix("_total").unwrap_or(name).to_string(), help.strip_suffix('.').unwrap_or(help).to_string())
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpRequestLabels, Counter>,
    http_duration: HistogramFamily<HttpLatencyLabels>,
    /// The other counters and histograms, by exposition name.
    counters: Vec<(&'static str, Family<Labels, Counter>)>,
    histograms: Vec<(&'static str, HistogramFamily<Labels>)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpRequestLabels, Counter>::default();
        let http_duration = HistogramFamily::<HttpLatencyLabels>::new_with_constructor(new_histogram as fn() -> _);
        // Registered in the order of the exposition: the counters, the request latency right
        // after the request counter, then the other histograms.
        let mut counters = Vec::new();
        for (name, help) in COUNTERS {
            let (n, h) = registered(name, help);
            if *name == HTTP_REQUESTS {
                registry.register(n, h, http_requests.clone());
                let (n, h) = registered(HTTP_REQUEST_DURATION, HTTP_REQUEST_DURATION_HELP);
                registry.register(n, h, http_duration.clone());
            } else {
                let family = Family::<Labels, Counter>::default();
                registry.register(n, h, family.clone());
                counters.push((*name, family));
            }
        }
        let mut histograms = Vec::new();
        for (name, help) in HISTOGRAMS.iter().filter(|(n, _)| *n != HTTP_REQUEST_DURATION) {
            let family = HistogramFamily::<Labels>::new_with_constructor(new_histogram as fn() -> _);
            let (n, h) = registered(name, help);
            registry.register(n, h, family.clone());
            histograms.push((*name, family));
        }
        Self { registry, http_requests, http_duration, counters, histograms }
    }

    /// Whether `name` is a registered counter or histogram (what `inc` and `observe` record).
    pub fn is_registered(name: &str) -> bool {
        COUNTERS.iter().chain(HISTOGRAMS).any(|(n, _)| *n == name)
    }

    /// One HTTP request: `fedgate_http_requests_total{route, method, status}` + 1 and its
    /// latency in `fedgate_http_request_duration_seconds{route, method}`.
    pub fn http_request(&self, route: String, method: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        let latency = HttpLatencyLabels { route, method };
        self.http_duration.get_or_create(&latency).observe(seconds);
        self.http_requests.get_or_create(&HttpRequestLabels { route: latency.route, method, status }).inc();
    }

    /// Adds one to the counter `name` with these labels. A name not in [`COUNTERS`] is ignored
    /// (a test checks that every name the code uses is registered).
    pub fn inc(&self, name: &'static str, l: &[(&'static str, &str)]) {
        if name == HTTP_REQUESTS {
            let status = label(l, "status").and_then(|s| s.parse().ok()).unwrap_or(0);
            let labels = HttpRequestLabels {
                route: label(l, "route").unwrap_or("unmatched").to_string(),
                method: method_label(label(l, "method").unwrap_or("")),
                status,
            };
            self.http_requests.get_or_create(&labels).inc();
        } else if let Some((_, family)) = self.counters.iter().find(|(n, _)| *n == name) {
            family.get_or_create(&owned(l)).inc();
        }
    }

    /// Records `seconds` in the histogram `name` with these labels (names not in
    /// [`HISTOGRAMS`] are ignored).
    pub fn observe(&self, name: &'static str, l: &[(&'static str, &str)], seconds: f64) {
        if name == HTTP_REQUEST_DURATION {
            let labels = HttpLatencyLabels {
                route: label(l, "route").unwrap_or("unmatched").to_string(),
                method: method_label(label(l, "method").unwrap_or("")),
            };
            self.http_duration.get_or_create(&labels).observe(seconds);
        } else if let Some((_, family)) = self.histograms.iter().find(|(n, _)| *n == name) {
            family.get_or_create(&owned(l)).observe(seconds);
        }
    }

    /// The exposition text (Prometheus text format 0.0.4); `gauges` are (name, value) pairs
    /// computed by the caller, for names in [`GAUGES`].
    pub fn render(&self, gauges: &[(&'static str, f64)]) -> String {
        self.render_with(gauges, &[])
    }

    /// [`Metrics::render`] plus `fedgate_saml_certificate_expiry_days{tenant, connection}` for
    /// each (tenant id, connection id, days) given (computed from the database at scrape time).
    pub fn render_with(&self, gauges: &[(&'static str, f64)], cert_expiry: &[(String, String, f64)]) -> String {
        let samples: Vec<Sample> = cert_expiry
            .iter()
            .map(|(tenant, connection, days)| Sample {
                name: CERT_EXPIRY,
                labels: vec![("tenant", tenant.clone()), ("connection", connection.clone())],
                value: *days,
            })
            .collect();
        self.render_samples(gauges, &samples)
    }

    /// [`Metrics::render`] plus the labelled gauges (names in [`LABELLED_GAUGES`]; others are
    /// ignored) computed at scrape time.
    pub fn render_samples(&self, gauges: &[(&'static str, f64)], samples: &[Sample]) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        let mut scraped = Registry::default();
        for (name, help) in GAUGES {
            if let Some((_, v)) = gauges.iter().find(|(g, _)| g == name) {
                let gauge = Gauge::<f64, AtomicU64>::default();
                gauge.set(*v);
                let (n, h) = registered(name, help);
                scraped.register(n, h, gauge);
            }
        }
        for (name, help) in LABELLED_GAUGES {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.name == *name).collect();
            if mine.is_empty() {
                continue;
            }
            let family = Family::<Vec<(&'static str, String)>, Gauge<f64, AtomicU64>>::default();
            for s in mine {
                family.get_or_create(&s.labels).set(s.value);
            }
            let (n, h) = registered(name, help);
            scraped.register(n, h, family);
        }
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &scraped);
        out
    }
}

fn label<'a>(l: &[(&'static str, &'a str)], name: &str) -> Option<&'a str> {
    l.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn owned(l: &[(&'static str, &str)]) -> Labels {
    l.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new();
        m.inc("fedgate_logins_total", &[("tenant", "t\"1"), ("result", "ok")]);
        m.inc("fedgate_logins_total", &[("tenant", "t\"1"), ("result", "ok")]);
        m.observe("fedgate_http_request_duration_seconds", &[("route", "/x"), ("method", "GET")], 0.003);
        let t = m.render(&[("fedgate_deliveries_pending", 2.0)]);
        assert!(t.contains("fedgate_logins_total{tenant=\"t\\\"1\",result=\"ok\"} 2"), "{t}");
        assert!(t.contains("fedgate_http_request_duration_seconds_bucket{route=\"/x\",method=\"GET\",le=\"0.005\"} 1"));
        assert!(t.contains("fedgate_http_request_duration_seconds_bucket{route=\"/x\",method=\"GET\",le=\"0.001\"} 0"));
        assert!(t.contains("fedgate_http_request_duration_seconds_bucket{route=\"/x\",method=\"GET\",le=\"+Inf\"} 1"));
        assert!(t.contains("fedgate_http_request_duration_seconds_count{route=\"/x\",method=\"GET\"} 1"));
        assert!(t.contains("fedgate_deliveries_pending 2"), "{t}");
    }

    /// The names, types and help texts dashboards and docs/operations.md rely on.
    #[test]
    fn exposition_names_types_and_help() {
        let m = Metrics::new();
        for (name, _) in COUNTERS {
            m.inc(name, &[("x", "1")]);
        }
        for (name, _) in HISTOGRAMS.iter().filter(|(n, _)| *n != HTTP_REQUEST_DURATION) {
            m.observe(name, &[("job", "x")], 0.1);
        }
        m.http_request("/admin/v1/tenants/{tenant}".into(), "GET", 200, 0.02);
        let mut gauges: Vec<(&'static str, f64)> = GAUGES.iter().map(|(n, _)| (*n, 1.0)).collect();
        gauges[1] = ("fedgate_deliveries_lag_seconds", 3.5);
        let samples: Vec<Sample> = LABELLED_GAUGES
            .iter()
            .map(|(name, _)| Sample { name, labels: vec![("endpoint", "whe_1".into())], value: 2.0 })
            .collect();
        let t = m.render_samples(&gauges, &samples);
        for (name, help) in LABELLED_GAUGES {
            assert!(t.contains(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n")), "{name}:\n{t}");
            assert!(t.contains(&format!("{name}{{endpoint=\"whe_1\"}} 2.0\n")), "{name}:\n{t}");
        }
        for (name, help) in COUNTERS {
            assert!(t.contains(&format!("# HELP {name} {help}\n# TYPE {name} counter\n")), "{name}:\n{t}");
        }
        for (name, help) in HISTOGRAMS {
            assert!(t.contains(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n")), "{name}:\n{t}");
        }
        for (name, help) in GAUGES {
            assert!(t.contains(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n")), "{name}:\n{t}");
        }
        assert!(t.contains("fedgate_deliveries_lag_seconds 3.5\n"), "{t}");
        assert!(t.contains(
            "fedgate_http_requests_total{route=\"/admin/v1/tenants/{tenant}\",method=\"GET\",status=\"200\"} 1\n"
        ));
        assert!(t.contains(
            "fedgate_http_request_duration_seconds_sum{route=\"/admin/v1/tenants/{tenant}\",method=\"GET\"} 0.02\n"
        ));
        assert!(t.contains("fedgate_saml_busy_total{x=\"1\"} 1\n"), "{t}");
        assert!(!t.contains("_total_total") && !t.contains(".."), "{t}");
        assert!(!t.contains("# EOF"), "the 0.0.4 text format has no EOF marker");
    }

    /// The generic API and the typed one record into the same series.
    #[test]
    fn generic_and_typed_http_metrics_agree() {
        let m = Metrics::new();
        m.http_request("/r".into(), "POST", 201, 0.5);
        m.inc(HTTP_REQUESTS, &[("route", "/r"), ("method", "POST"), ("status", "201")]);
        m.observe(HTTP_REQUEST_DURATION, &[("route", "/r"), ("method", "POST")], 0.5);
        let t = m.render(&[]);
        assert!(t.contains("fedgate_http_requests_total{route=\"/r\",method=\"POST\",status=\"201\"} 2\n"), "{t}");
        assert!(t.contains("fedgate_http_request_duration_seconds_count{route=\"/r\",method=\"POST\"} 2\n"), "{t}");
    }

    /// Methods a client makes up share one `other` series.
    #[test]
    fn unknown_methods_do_not_grow_the_label_space() {
        let m = Metrics::new();
        for i in 0..100 {
            m.http_request("unmatched".into(), &format!("X{i}"), 404, 0.001);
        }
        let t = m.render(&[]);
        assert!(t.contains("fedgate_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 100\n"));
        assert_eq!(t.matches("fedgate_http_requests_total{").count(), 1, "{t}");
    }

    /// Every metric name passed to `inc` / `observe` anywhere in src/ is registered (an
    /// unregistered name would be dropped silently).
    #[test]
    fn every_metric_the_code_records_is_registered() {
        fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        let mut files = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let mut found = 0;
        for (path, text) in files {
            for call in [".inc(", ".observe("] {
                for (i, _) in text.match_indices(call) {
                    let rest = text[i + call.len()..].trim_start();
                    let Some(rest) = rest.strip_prefix('"') else { continue };
                    let name = rest.split('"').next().unwrap();
                    if name.starts_with("fedgate_") {
                        found += 1;
                        assert!(Metrics::is_registered(name), "{path}: {name} is recorded but not registered");
                    }
                }
            }
        }
        assert!(found >= 10, "the scan found the call sites ({found})");
    }
}
