//! Per-request metrics cost: `cargo run --release` (scripts/metrics-bench.sh).
//!
//! Each "request" is what the request middleware records: `fedgate_http_requests_total`
//! {route, method, status} + 1 and one `fedgate_http_request_duration_seconds` {route, method}
//! observation, over a realistic label space (40 route patterns, GET/POST, 4 statuses). Run on
//! 1 thread (the cost itself) and on 2, 4 and 8 threads (contention: every thread records into
//! the same registry, as actix workers do).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "../../../src/metrics.rs"]
#[allow(dead_code)]
mod metrics;

use metrics::Metrics;
use std::sync::Arc;
use std::time::Instant;

const ROUTES: usize = 40;
const STATUSES: [u16; 4] = [200, 302, 400, 404];

fn routes() -> Vec<String> {
    (0..ROUTES).map(|i| format!("/admin/v1/resource{i}/{{id}}")).collect()
}

/// The generic call-site API (`inc` / `observe` with label slices), as the middleware used it.
fn generic(m: &Metrics, route: &str, method: &str, status: u16, secs: f64) {
    let code = status.to_string();
    m.inc("fedgate_http_requests_total", &[("route", route), ("method", method), ("status", &code)]);
    m.observe("fedgate_http_request_duration_seconds", &[("route", route), ("method", method)], secs);
}

/// The typed entry point the middleware uses. The route `String` is made here, although the
/// middleware has it already (actix gives the pattern as a String): counted against it.
fn typed(m: &Metrics, route: &str, method: &str, status: u16, secs: f64) {
    m.http_request(route.to_string(), method, status, secs);
}

fn run(name: &str, threads: usize, per_thread: usize, f: fn(&Metrics, &str, &str, u16, f64)) {
    let m = Arc::new(Metrics::new());
    let routes = Arc::new(routes());
    // Warm up: every label set exists before timing, as in a server that has run a while.
    for r in routes.iter() {
        for s in STATUSES {
            for method in ["GET", "POST"] {
                f(&m, r, method, s, 0.001);
            }
        }
    }
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (m, routes) = (m.clone(), routes.clone());
            std::thread::spawn(move || {
                let mut x: usize = t.wrapping_mul(7919);
                for i in 0..per_thread {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let r = &routes[(x >> 33) % ROUTES];
                    let s = STATUSES[(x >> 20) % STATUSES.len()];
                    let method = if i % 5 == 0 { "POST" } else { "GET" };
                    f(&m, r, method, s, ((x >> 40) % 1000) as f64 / 10_000.0);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = started.elapsed();
    let total = (threads * per_thread) as f64;
    let wall_ns = elapsed.as_nanos() as f64 / total;
    println!(
        "{name:<8} threads={threads}  {:>7.1} ns/request (wall, all threads)  {:>7.1} ns/request per thread  {:>6.2} M requests/s",
        wall_ns,
        wall_ns * threads as f64,
        total / elapsed.as_secs_f64() / 1e6
    );
    let text = m.render(&[]);
    assert!(text.contains("fedgate_http_requests_total{"), "{text}");
}

fn main() {
    let per_thread: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    println!("cores: {}", std::thread::available_parallelism().map(usize::from).unwrap_or(0));
    for threads in [1, 2, 4, 8] {
        run("generic", threads, per_thread, generic);
        run("typed", threads, per_thread, typed);
    }
    let m = Metrics::new();
    for r in routes() {
        for s in STATUSES {
            generic(&m, &r, "GET", s, 0.01);
        }
    }
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..200 {
        bytes = m.render(&[("fedgate_deliveries_pending", 1.0)]).len();
    }
    println!("render   {} series, {bytes} bytes: {:.1} µs", ROUTES * 4, started.elapsed().as_secs_f64() * 1e6 / 200.0);
}
