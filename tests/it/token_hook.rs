//! The token hook: a signed call to the app's endpoint before tokens are issued; namespaced
//! claims; the failure policies (deny, continue); the time budget; every call in the trace.
use crate::both;
use crate::claim_rules::{fresh_code, latest_trace, step};
use crate::common::*;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
struct Call {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// The app's hook endpoint on port 0: answers `answer` (status, body) after `delay`.
#[derive(Clone)]
struct Hook {
    calls: Arc<Mutex<Vec<Call>>>,
    answer: Arc<Mutex<(u16, String, Duration)>>,
    url: String,
}

async fn answer(req: HttpRequest, body: web::Bytes, h: web::Data<Hook>) -> HttpResponse {
    let g = |k: &str| req.headers().get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    h.calls.lock().unwrap().push(Call {
        id: g("webhook-id"),
        timestamp: g("webhook-timestamp"),
        signature: g("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let (status, text, delay) = h.answer.lock().unwrap().clone();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(text)
}

impl Hook {
    async fn start() -> Hook {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let h = Hook {
            calls: Arc::default(),
            answer: Arc::new(Mutex::new((200, "{}".into(), Duration::ZERO))),
            url: format!("http://127.0.0.1:{port}/hook"),
        };
        let data = web::Data::new(h.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(answer)))
            .workers(1)
            .shutdown_timeout(0)
            .listen(listener)
            .unwrap()
            .run();
        tokio::spawn(server);
        h
    }
    fn answer(&self, status: u16, body: Value) {
        *self.answer.lock().unwrap() = (status, body.to_string(), Duration::ZERO);
    }
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

/// A Standard Webhooks signature, checked with aws-lc's HMAC directly.
fn signed(secret: &str, c: &Call) -> bool {
    use aws_lc_rs::hmac;
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let tag = hmac::sign(&key, format!("{}.{}.{}", c.id, c.timestamp, c.body).as_bytes());
    c.signature == format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(tag.as_ref()))
}

const NS: &str = "https://app.example.com/";

async fn set_hook(app: &TestApp, tenant: &str, body: Value) -> (u16, Value) {
    app.admin(Method::PUT, &format!("/tenants/{tenant}/token-hook"), Some(body)).await
}

async fn hook_adds_namespaced_claims(app: &TestApp) {
    let hook = Hook::start().await;
    let (t, _) = app.tenant("acme", "acme.test", &["Engineering"]).await;
    let (client, secret) = app.client("confidential", "ES256").await;
    let secret = secret.unwrap();
    let (s, h) = set_hook(app, "acme", json!({"url": hook.url, "namespace": NS})).await;
    assert_eq!(s, 200, "{h}");
    let hook_secret = h["secret"].as_str().unwrap().to_string();
    assert!(hook_secret.starts_with("whsec_"));
    assert_eq!((h["timeout_ms"].as_u64(), h["on_failure"].as_str()), (Some(1500), Some("deny")));
    // Shown once: never read back, not rotated by an update.
    let (s, g) = app.get("/tenants/acme/token-hook").await;
    assert_eq!((s, g.get("secret")), (200, None));
    let (_, h2) = set_hook(app, "acme", json!({"url": hook.url, "namespace": NS, "timeout_ms": 2000})).await;
    assert!(h2.get("secret").is_none(), "{h2}");
    // Not in the database in clear.
    let row = fedgate::store::claim_configs::get(&app.state.db, t["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert!(!row.token_hook.unwrap().contains(&hook_secret));

    hook.answer(200, json!({"claims": {"https://app.example.com/plan": "pro", "https://app.example.com/seats": 12}}));
    let b = browser();
    let code = fresh_code(app, &b, &client, "acme").await;
    let (s, tok) = exchange(app, &client, Some(&secret), &code).await;
    assert_eq!(s, 200, "{tok}");
    let id = verify_jwt(app, tok["id_token"].as_str().unwrap(), &client).await;
    assert_eq!(id["https://app.example.com/plan"], "pro");
    assert_eq!(id["https://app.example.com/seats"], 12);
    let at = verify_jwt(app, tok["access_token"].as_str().unwrap(), &client).await;
    assert_eq!(at["https://app.example.com/plan"], "pro");
    // One signed call with the documented body.
    let calls = hook.calls();
    assert_eq!(calls.len(), 1);
    assert!(signed(&hook_secret, &calls[0]), "Standard Webhooks signature");
    let body: Value = serde_json::from_str(&calls[0].body).unwrap();
    assert_eq!(body["type"], "token.issuing");
    let d = &body["data"];
    assert_eq!(d["grant_type"], "authorization_code");
    assert_eq!(d["tenant"]["id"], t["id"]);
    assert_eq!(d["client_id"], client);
    assert_eq!(d["user"]["sub"], id["sub"]);
    assert_eq!(d["user"]["groups"], json!(["Engineering"]));
    assert_eq!(d["connection"]["type"], "dev");
    assert_eq!(d["claims"]["org_id"], t["id"]);
    // The trace shows the call: status, duration, claim names (no values).
    let trace = latest_trace(app, "acme").await;
    let st = step(&trace, "token_hook").unwrap_or_else(|| panic!("{trace}"));
    assert_eq!(st["detail"]["status"], 200);
    assert_eq!(st["detail"]["outcome"], "ok");
    assert_eq!(st["detail"]["webhook_id"], calls[0].id.as_str());
    assert!(st["detail"]["duration_ms"].as_i64().unwrap() >= 0);
    assert!(!st.to_string().contains("\"pro\""), "{st}");
    assert_eq!(trace["status"], "completed");
    // A refresh calls the hook too (grant_type refresh_token) and writes a trace of its own.
    hook.answer(200, json!({"claims": {"https://app.example.com/plan": "team"}}));
    app.clock.advance_secs(1);
    let (s, r) = refresh(app, &client, Some(&secret), tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{r}");
    let id2 = verify_jwt(app, r["id_token"].as_str().unwrap(), &client).await;
    assert_eq!(id2["https://app.example.com/plan"], "team");
    let calls = hook.calls();
    assert_eq!(calls.len(), 2);
    let body: Value = serde_json::from_str(&calls[1].body).unwrap();
    assert_eq!(body["data"]["grant_type"], "refresh_token");
    let trace = latest_trace(app, "acme").await;
    assert!(trace["id"].as_str().unwrap().starts_with("rfr_"), "{trace}");
    assert!(step(&trace, "token_hook").is_some());
    // Removed: no more calls.
    let (s, _) = app.admin(Method::DELETE, "/tenants/acme/token-hook", None).await;
    assert_eq!(s, 204);
    let (s, _) = app.get("/tenants/acme/token-hook").await;
    assert_eq!(s, 404);
    let code = fresh_code(app, &b, &client, "acme").await;
    let (s, _) = exchange(app, &client, Some(&secret), &code).await;
    assert_eq!(s, 200);
    assert_eq!(hook.calls().len(), 2);
}

async fn failures_follow_the_tenant_policy(app: &TestApp) {
    let hook = Hook::start().await;
    app.tenant("beta", "beta.test", &[]).await;
    let (client, secret) = app.client("confidential", "ES256").await;
    let secret = secret.unwrap();
    let (s, _) = set_hook(app, "beta", json!({"url": hook.url, "namespace": NS, "on_failure": "deny"})).await;
    assert_eq!(s, 200);
    let b = browser();
    for (status, answer, cause) in [
        (200, json!({"claims": {"plan": "pro"}}), "outside the hook's namespace"),
        (500, json!({"error": "boom"}), "HTTP 500"),
        (200, json!(["not", "an", "object"]), "not a JSON object"),
    ] {
        hook.answer(status, answer);
        let code = fresh_code(app, &b, &client, "beta").await;
        let (s, e) = exchange(app, &client, Some(&secret), &code).await;
        assert_eq!((s, e["error"].as_str()), (400, Some("access_denied")), "{e}");
        let trace = latest_trace(app, "beta").await;
        assert_eq!(trace["status"], "failed");
        assert_eq!(trace["error"]["code"], "token_hook_failed");
        assert!(trace["error"]["cause"].as_str().unwrap().contains(cause), "{trace}");
        assert!(!trace["error"]["fix"].as_str().unwrap().is_empty());
        let st = step(&trace, "token_hook").unwrap();
        assert_eq!(st["detail"]["outcome"], "failed");
    }
    // Under deny every grant those exchanges opened is revoked (their refresh tokens are dead).
    {
        use sea_orm::EntityTrait;
        let grants = fedgate::store::entities::grant::Entity::find().all(&app.state.db).await.unwrap();
        assert_eq!(grants.len(), 3);
        assert!(grants.iter().all(|g| g.revoked_reason.as_deref() == Some("token_hook_denied")), "{grants:?}");
    }
    // continue: tokens without the hook's claims, and the trace says so.
    let (s, _) = set_hook(app, "beta", json!({"url": hook.url, "namespace": NS, "on_failure": "continue"})).await;
    assert_eq!(s, 200);
    hook.answer(200, json!({"claims": {"plan": "pro", "https://app.example.com/ok": true}}));
    let code = fresh_code(app, &b, &client, "beta").await;
    let (s, tok) = exchange(app, &client, Some(&secret), &code).await;
    assert_eq!(s, 200, "{tok}");
    let id = verify_jwt(app, tok["id_token"].as_str().unwrap(), &client).await;
    assert!(id.get("plan").is_none() && id.get("https://app.example.com/ok").is_none(), "{id}");
    let trace = latest_trace(app, "beta").await;
    assert_eq!(trace["status"], "completed");
    let st = step(&trace, "token_hook").unwrap();
    assert_eq!(
        (st["detail"]["outcome"].as_str(), st["detail"]["on_failure"].as_str()),
        (Some("failed"), Some("continue"))
    );
}

async fn the_time_budget_is_enforced(app: &TestApp) {
    let hook = Hook::start().await;
    app.tenant("gamma", "gamma.test", &[]).await;
    let (client, secret) = app.client("confidential", "ES256").await;
    let secret = secret.unwrap();
    let (s, _) = set_hook(
        app,
        "gamma",
        json!({"url": hook.url, "namespace": "gamma_", "timeout_ms": 200, "on_failure": "deny"}),
    )
    .await;
    assert_eq!(s, 200);
    // The endpoint answers only after 3 s, far past the 200 ms budget.
    *hook.answer.lock().unwrap() = (200, json!({"claims": {"gamma_x": 1}}).to_string(), Duration::from_secs(3));
    let b = browser();
    let code = fresh_code(app, &b, &client, "gamma").await;
    let started = Instant::now();
    let (s, e) = exchange(app, &client, Some(&secret), &code).await;
    let took = started.elapsed();
    assert_eq!((s, e["error"].as_str()), (400, Some("access_denied")), "{e}");
    assert!(took < Duration::from_millis(2500), "the budget bounds the wait: {took:?}");
    let trace = latest_trace(app, "gamma").await;
    assert!(trace["error"]["cause"].as_str().unwrap().contains("time budget of 200 ms"), "{trace}");
    let st = step(&trace, "token_hook").unwrap();
    assert_eq!(st["detail"]["status"], Value::Null);
    assert!(st["detail"]["duration_ms"].as_i64().unwrap() >= 200);
}

async fn hook_settings_are_validated(app: &TestApp) {
    app.tenant("delta", "delta.test", &[]).await;
    for (body, code, field) in [
        (json!({"url": "ftp://x.example.com/h", "namespace": NS}), "invalid_url", "url"),
        (
            json!({"url": "https://x.example.com/h", "namespace": NS, "timeout_ms": 6000}),
            "invalid_token_hook",
            "timeout_ms",
        ),
        (
            json!({"url": "https://x.example.com/h", "namespace": NS, "timeout_ms": 10}),
            "invalid_token_hook",
            "timeout_ms",
        ),
        (json!({"url": "https://x.example.com/h", "namespace": "org_"}), "invalid_token_hook", "namespace"),
        (
            json!({"url": "https://x.example.com/h", "namespace": "http://app.example.com/"}),
            "invalid_token_hook",
            "namespace",
        ),
        (json!({"url": "https://x.example.com/h", "namespace": "ab"}), "invalid_token_hook", "namespace"),
    ] {
        let (s, e) = set_hook(app, "delta", body).await;
        assert_eq!((s, e["error"].as_str(), e["field"].as_str()), (400, Some(code), Some(field)), "{e}");
    }
    let (s, e) =
        set_hook(app, "delta", json!({"url": "https://x.example.com/h", "namespace": NS, "on_failure": "retry"})).await;
    assert_eq!(s, 400, "{e}");
    let (s, _) = app.get("/tenants/delta/token-hook").await;
    assert_eq!(s, 404);
    // Rotation returns a new secret.
    let (s, a) = set_hook(app, "delta", json!({"url": "https://x.example.com/h", "namespace": NS})).await;
    assert_eq!(s, 200);
    let (_, b) =
        set_hook(app, "delta", json!({"url": "https://x.example.com/h", "namespace": NS, "rotate_secret": true})).await;
    assert!(b["secret"].as_str().is_some() && b["secret"] != a["secret"]);
}

/// Outside dev mode (and without allow_private_network) a hook URL must be https.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_urls_are_https_in_production() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.dev_mode = false).await;
    let (s, _) = app.post("/tenants", json!({"name": "E", "slug": "eps", "domains": ["eps.test"]})).await;
    assert_eq!(s, 201);
    let (s, e) = set_hook(&app, "eps", json!({"url": "http://hooks.example.com/h", "namespace": NS})).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_url")), "{e}");
    app.stop().await;
}

both!(
    hook_adds_namespaced_claims,
    failures_follow_the_tenant_policy,
    the_time_budget_is_enforced,
    hook_settings_are_validated
);
