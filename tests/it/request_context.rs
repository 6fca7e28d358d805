//! The request middleware (src/http/mod.rs): request ids, security headers and the per-request
//! metrics as Prometheus scrapes them.
use crate::both;
use crate::common::*;
use reqwest::Method;

/// A well-formed `X-Request-Id` is kept: echoed, and shown on error pages and in admin errors;
/// anything else is replaced by a fresh id.
async fn request_ids_are_kept_when_well_formed(app: &TestApp) {
    let r = app.http.get(app.url("/oauth2/authorize")).header("x-request-id", "trace-abc_1").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-abc_1");
    assert!(r.text().await.unwrap().contains("trace-abc_1"), "the error page shows the id");
    let r = app
        .http
        .get(app.url("/admin/v1/no-such-route"))
        .bearer_auth(&app.admin_key)
        .header("x-request-id", "admin-req-7")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["request_id"], "admin-req-7");
    for bad in ["has space", "semi;colon", &"x".repeat(65), "<script>"] {
        let r = app.http.get(app.url("/oauth2/authorize")).header("x-request-id", bad).send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_ne!(id, bad);
        assert!(id.len() >= 20 && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        let page = r.text().await.unwrap();
        assert!(page.contains(&id) && !page.contains("<script>"), "the page shows the new id");
    }
    // Two requests without an id get two ids.
    let a = app.http.get(app.url("/healthz")).send().await.unwrap().headers()["x-request-id"].clone();
    let b = app.http.get(app.url("/healthz")).send().await.unwrap().headers()["x-request-id"].clone();
    assert_ne!(a, b);
}

/// Security headers on every answer, routed or not, success or error.
async fn security_headers_on_every_response(app: &TestApp) {
    for path in ["/healthz", "/no-such-page", "/oauth2/authorize", "/admin/v1/tenants"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"), "{path}");
    }
}

/// `/metrics` counts requests by route pattern (never the raw path with its ids), method and
/// status, with a latency histogram; made-up methods share one series.
async fn request_metrics_by_route_pattern(app: &TestApp) {
    let app = TestApp::spawn_with(app.backend, |c| {
        c.metrics.token = Some(fedgate::config::SecretString("12345678".into()));
    })
    .await;
    for id in ["org_does_not_exist_1", "org_does_not_exist_2"] {
        let (s, _) = app.admin(Method::GET, &format!("/tenants/{id}"), None).await;
        assert_eq!(s, 404);
    }
    for m in ["BREW", "WHEN"] {
        app.http.request(Method::from_bytes(m.as_bytes()).unwrap(), app.url("/healthz")).send().await.unwrap();
    }
    let r = app.http.get(app.url("/metrics")).bearer_auth("12345678").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4");
    let text = r.text().await.unwrap();
    assert!(!text.contains("does_not_exist"), "raw paths stay out:\n{text}");
    assert!(
        text.contains(
            "fedgate_http_requests_total{route=\"/admin/v1/tenants/{tenant}\",method=\"GET\",status=\"404\"} 2\n"
        ),
        "{text}"
    );
    assert!(text.contains(
        "fedgate_http_request_duration_seconds_count{route=\"/admin/v1/tenants/{tenant}\",method=\"GET\"} 2\n"
    ));
    assert!(text.contains("fedgate_http_request_duration_seconds_bucket{route=\"/admin/v1/tenants/{tenant}\",method=\"GET\",le=\"+Inf\"} 2\n"));
    assert!(text.contains("# HELP fedgate_http_requests_total HTTP requests by route pattern, method and status.\n"));
    assert!(text.contains("# TYPE fedgate_http_request_duration_seconds histogram\n"));
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(!text.contains("BREW") && !text.contains("WHEN"));
    assert!(text.contains("# TYPE fedgate_deliveries_pending gauge\nfedgate_deliveries_pending 0"), "{text}");
    app.stop().await;
}

both!(request_ids_are_kept_when_well_formed, security_headers_on_every_response, request_metrics_by_route_pattern);
