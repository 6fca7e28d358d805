//! A database that cannot be reached (down, restarting, the pool closed or timed out) is answered
//! 503 with `Retry-After` in each surface's shape — never an opaque 500 — and `/readyz` says so.
//! The outage is made deterministic by closing the app's pool (every acquire then fails at once,
//! as it does once `database.acquire_timeout` runs out against a stopped server). The real
//! thing, a PostgreSQL restart under load behind HAProxy, is tests/ha/run.sh.
use crate::common::{authorize_url, TestApp, REDIRECT, VERIFIER};
use serde_json::json;

crate::both!(every_surface_answers_503_while_the_database_is_unreachable);

/// Closes the app's pool: acquires fail at once from then on. `close()` also waits for the
/// connections in use to come back; that wait runs aside, the pool is closed as soon as it starts.
async fn close_pool(app: &TestApp) {
    macro_rules! close {
        ($pool:expr) => {{
            let pool = $pool.clone();
            let closing = pool.clone();
            tokio::spawn(async move { closing.close().await });
            while !pool.is_closed() {
                tokio::task::yield_now().await;
            }
        }};
    }
    match app.backend {
        crate::common::Backend::Sqlite => close!(app.state.db.get_sqlite_connection_pool()),
        crate::common::Backend::Postgres => close!(app.state.db.get_postgres_connection_pool()),
    }
}

fn retry_after(r: &reqwest::Response) -> Option<String> {
    r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string())
}

async fn every_surface_answers_503_while_the_database_is_unreachable(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (client_id, secret) = app.client("confidential", "ES256").await;
    let (s, tok) = app.post("/tenants/acme/scim-tokens", json!({"name": "idp"})).await;
    assert_eq!(s, 201, "{tok}");
    let scim_base = tok["scim_base_url"].as_str().unwrap().to_string();
    let scim_token = tok["token"].as_str().unwrap().to_string();
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    close_pool(app).await;

    // Readiness (the load balancer's health check).
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(retry_after(&r).as_deref(), Some("2"));
    // Liveness does not need the database.
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // OAuth 2.0 JSON (token endpoint).
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&client_id, secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(retry_after(&r).as_deref(), Some("2"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    // SCIM error schema.
    let r = app.http.get(format!("{scim_base}/Users")).bearer_auth(&scim_token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(retry_after(&r).as_deref(), Some("2"));
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/scim+json"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{body}");
    assert_eq!(body["status"], "503", "{body}");

    // Admin JSON.
    let r = app.http.get(app.url("/admin/v1/tenants")).bearer_auth(&app.admin_key).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(retry_after(&r).as_deref(), Some("2"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "database_unavailable", "{body}");
    assert!(body["request_id"].is_string(), "{body}");

    // The HTML page of a sign-in.
    let r = app.http.get(authorize_url(app, &client_id, &[("organization", "acme")])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(retry_after(&r).as_deref(), Some("2"));
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.contains("database_unavailable"), "{html}");
}
