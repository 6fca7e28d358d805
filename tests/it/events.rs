//! Events, signed webhooks, back-channel logout, audit log and metrics.
use crate::common::*;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub path: String,
}

/// A webhook / back-channel logout receiver on port 0 that fails the first `fail_first`
/// requests with 500 (or all of them while `always_fail` is set).
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Received>>>,
    pub fail_first: Arc<AtomicUsize>,
    pub always_fail: Arc<std::sync::atomic::AtomicBool>,
    pub hang_first: Arc<AtomicUsize>,
    pub url: String,
}

async fn receive(req: HttpRequest, body: web::Bytes, r: web::Data<Receiver>) -> HttpResponse {
    if r.hang_first.load(Ordering::SeqCst) > 0 {
        r.hang_first.fetch_sub(1, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    }
    if r.always_fail.load(Ordering::SeqCst) {
        return HttpResponse::InternalServerError().body("down");
    }
    if r.fail_first.load(Ordering::SeqCst) > 0 {
        r.fail_first.fetch_sub(1, Ordering::SeqCst);
        return HttpResponse::InternalServerError().body("temporarily down");
    }
    let h = |k: &str| req.headers().get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    r.got.lock().unwrap().push(Received {
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
        path: req.path().to_string(),
    });
    HttpResponse::Ok().finish()
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let r = Receiver { url: format!("http://127.0.0.1:{port}"), ..Default::default() };
        let data = web::Data::new(r.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(receive)))
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
        tokio::spawn(server);
        r
    }
    pub fn events(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == "/hook")
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    }
}

/// Verifies a Standard Webhooks signature with aws-lc's HMAC directly.
fn verify_signature(secret: &str, r: &Received) -> bool {
    use aws_lc_rs::hmac;
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let expected = hmac::sign(&key, format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(expected.as_ref()));
    r.signature.split(' ').any(|s| s == expected)
}

async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| c.allow_private_network = true).await
}

/// Runs delivery rounds until nothing is due.
async fn drain(app: &TestApp) {
    for _ in 0..50 {
        if fedgate::events::delivery::run_once(&app.state.delivery_worker(), "test").await.unwrap() == 0 {
            return;
        }
    }
}

async fn webhook(app: &TestApp, rx: &Receiver, types: Value) -> (String, String) {
    let (s, w) = app.post("/webhooks", json!({"url": format!("{}/hook", rx.url), "event_types": types})).await;
    assert_eq!(s, 201, "{w}");
    (w["id"].as_str().unwrap().to_string(), w["secret"].as_str().unwrap().to_string())
}

async fn events_are_signed_ordered_and_resumable(app: &TestApp) {
    let rx = Receiver::start().await;
    let (_, secret) = webhook(app, &rx, json!([])).await;
    let (tenant, conn) = app.tenant("acme", "acme.test", &["eng"]).await;
    let (cid, secret_c) = app.client("confidential", "ES256").await;
    let b = browser();
    let code = code_for(app, &b, &cid, &[("organization", "acme"), ("login_hint", "bob@acme.test")]).await;
    let (_, t) = exchange(app, &cid, secret_c.as_deref(), &code).await;
    let r = b
        .get(app.url("/oauth2/logout"))
        .query(&[("id_token_hint", t["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drain(app).await;
    let got = rx.events();
    let types: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["connection.activated", "user.created", "login.succeeded", "session.revoked"]);
    for r in rx.got.lock().unwrap().iter() {
        assert!(verify_signature(&secret, r), "bad signature on {}", r.id);
        assert!(r.id.starts_with("evt_"));
    }
    assert_eq!(got[0]["data"]["id"], conn["id"]);
    assert_eq!(got[1]["data"]["email"], "bob@acme.test");
    assert_eq!(got[1]["data"]["tenant_id"], tenant["id"]);
    // The events API: same order, resumable, filterable. On PostgreSQL it shows an event once
    // every older transaction in the cluster has finished (other tests run beside this one), so
    // wait — bounded — until all four are readable. The bound is generous (60 s): a test
    // beside this one may hold a transaction open for seconds (a 1,000-member PATCH, a bulk
    // fill), and how long depends on how many tests run at once, not on this test.
    for _ in 0..1200 {
        if app.get("/events").await.1["data"].as_array().unwrap().len() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (s, page) = app.get("/events?limit=2").await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = page["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["connection.activated", "user.created"]);
    let (_, page2) = app.get(&format!("/events?after={}", page["next_cursor"].as_str().unwrap())).await;
    let ids: Vec<&str> = page2["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["login.succeeded", "session.revoked"]);
    let (_, empty) = app.get(&format!("/events?after={}", page2["next_cursor"].as_str().unwrap())).await;
    assert!(empty["data"].as_array().unwrap().is_empty());
    assert_eq!(empty["next_cursor"], page2["next_cursor"], "polling at the head keeps the cursor");
    let (_, only) = app.get("/events?types=login.succeeded,login.failed").await;
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    let (s, _) = app.get("/events?types=nope").await;
    assert_eq!(s, 400);
    let (s, _) = app.get("/events?after=%%%").await;
    assert_eq!(s, 400);
}

async fn failing_receiver_gets_everything_after_recovery(app: &TestApp) {
    let rx = Receiver::start().await;
    rx.fail_first.store(4, Ordering::SeqCst);
    let (wid, secret) = webhook(app, &rx, json!(["connection.*"])).await;
    app.tenant("acme", "acme.test", &[]).await;
    for i in 0..3 {
        let (s, _) = app.post("/tenants/acme/connections", json!({"type": "dev", "name": format!("c{i}")})).await;
        assert_eq!(s, 201);
    }
    // Retries follow the backoff schedule (first retry after 5 s) and keep per-tenant order.
    for step in [0, 5, 30, 120, 600] {
        app.clock.advance_secs(step);
        drain(app).await;
    }
    let got = rx.events();
    assert_eq!(got.len(), 4, "{got:?}");
    let names: Vec<&str> = got.iter().map(|e| e["data"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Dev", "c0", "c1", "c2"], "tenant order preserved through failures");
    for r in rx.got.lock().unwrap().iter() {
        assert!(verify_signature(&secret, r));
    }
    // The delivery log shows the failed attempts, with status and latency.
    let (s, log) = app.get(&format!("/webhooks/{wid}/deliveries")).await;
    assert_eq!(s, 200);
    let all = log["data"].as_array().unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|d| d["status"] == "succeeded"));
    let first = all.iter().find(|d| d["attempts"].as_i64().unwrap() > 1).expect("a retried delivery");
    assert_eq!(first["attempt_log"][0]["status"], 500);
    // Manual replay re-sends with the same webhook-id.
    let did = all[0]["id"].as_str().unwrap();
    let (s, _) = app.post(&format!("/deliveries/{did}/replay"), json!({})).await;
    assert_eq!(s, 202);
    drain(app).await;
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 5);
    assert_eq!(got.iter().filter(|r| r.id == got[4].id).count(), 2, "a replay is detectable by webhook-id");
}

async fn failing_endpoint_is_disabled_with_an_event(app: &TestApp) {
    let rx = Receiver::start().await;
    rx.always_fail.store(true, Ordering::SeqCst);
    let (wid, _) = webhook(app, &rx, json!(["connection.activated"])).await;
    let rx2 = Receiver::start().await;
    webhook(app, &rx2, json!(["webhook.endpoint_disabled"])).await;
    app.tenant("acme", "acme.test", &[]).await;
    // Events keep coming for four days while the endpoint keeps failing.
    for i in 0..32 {
        app.clock.advance_secs(3 * 3600);
        app.post("/tenants/acme/connections", json!({"type": "dev", "name": format!("c{i}")})).await;
        drain(app).await;
    }
    let (_, w) = app.get(&format!("/webhooks/{wid}")).await;
    assert_eq!(w["enabled"], false, "{w}");
    assert!(w["disabled_reason"].as_str().unwrap().contains("failing since"));
    let got = rx2.events();
    assert!(got.iter().any(|e| e["type"] == "webhook.endpoint_disabled" && e["data"]["endpoint_id"] == wid.as_str()));
    // Re-enabling clears the failure.
    let (s, w) = app.admin(Method::PATCH, &format!("/webhooks/{wid}"), Some(json!({"enabled": true}))).await;
    assert_eq!((s, w["enabled"].clone(), w["failing_since"].clone()), (200, json!(true), Value::Null));
}

async fn backchannel_logout_on_admin_revocation(app: &TestApp) {
    let rx = Receiver::start().await;
    app.tenant("acme", "acme.test", &[]).await;
    let (s, c) = app
        .post(
            "/clients",
            json!({"name": "BCL app", "type": "confidential", "redirect_uris": [REDIRECT], "id_token_signed_response_alg": "RS256",
                   "backchannel_logout_uri": format!("{}/bcl", rx.url)}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let cid = c["id"].as_str().unwrap().to_string();
    let secret = c["client_secret"].as_str().unwrap().to_string();
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (_, t) = exchange(app, &cid, Some(&secret), &code).await;
    let idc = verify_jwt(app, t["id_token"].as_str().unwrap(), &cid).await;
    let user = idc["sub"].as_str().unwrap();
    let (s, r) = app.post(&format!("/tenants/acme/users/{user}/revoke-sessions"), json!({})).await;
    assert_eq!((s, r["sessions_revoked"].as_i64()), (200, Some(1)));
    drain(app).await;
    let got = rx.got.lock().unwrap().clone();
    let bcl: Vec<&Received> = got.iter().filter(|r| r.path == "/bcl").collect();
    assert_eq!(bcl.len(), 1);
    let token =
        url::form_urlencoded::parse(bcl[0].body.as_bytes()).find(|(k, _)| k == "logout_token").unwrap().1.to_string();
    assert_eq!(jwt_header(&token)["typ"], "logout+jwt");
    let claims = verify_jwt(app, &token, &cid).await;
    assert_eq!(claims["sub"], user);
    assert_eq!(claims["sid"], idc["sid"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    assert!(claims["jti"].is_string());
    // And the user's tokens are dead.
    let (st, _) = refresh(app, &cid, Some(&secret), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 400);
    assert_eq!(introspect(app, &cid, &secret, t["access_token"].as_str().unwrap()).await["active"], false);
    // Another tenant's URL cannot reach this user.
    app.tenant("globex", "globex.test", &[]).await;
    let (s, _) = app.post(&format!("/tenants/globex/users/{user}/revoke-sessions"), json!({})).await;
    assert_eq!(s, 404);
}

async fn audit_log_records_admin_actions_without_secrets(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let (s, _) = app.admin(Method::DELETE, &format!("/clients/{cid}"), None).await;
    assert_eq!(s, 204);
    // SCIM tokens: created and revoked with an audit entry each; revoking again changes nothing.
    let (s, tok) = app.post("/tenants/acme/scim-tokens", json!({"name": "okta"})).await;
    assert_eq!(s, 201, "{tok}");
    let tok_id = tok["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let (s, _) = app.admin(Method::DELETE, &format!("/tenants/acme/scim-tokens/{tok_id}"), None).await;
        assert_eq!(s, 204);
    }
    let (s, log) = app.get("/audit-log").await;
    assert_eq!(s, 200);
    let actions: Vec<&str> = log["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        vec![
            "tenant.create",
            "connection.create",
            "client.create",
            "client.delete",
            "scim_token.create",
            "scim_token.revoke"
        ]
    );
    let text = log.to_string();
    assert!(!text.contains(tok["token"].as_str().unwrap()), "SCIM tokens never reach the audit log");
    assert!(!text.contains(secret.as_deref().unwrap()), "secrets never reach the audit log");
    assert!(!text.contains(&app.admin_key));
    let e = &log["data"][0];
    assert!(e["actor"].as_str().unwrap().starts_with("tests (adk_"));
    assert_eq!(e["ip"], "127.0.0.1");
    assert!(e["request_id"].as_str().unwrap().len() > 10);
}

async fn metrics_are_protected(app: &TestApp) {
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404, "no token configured: not served");
    let app2 = TestApp::spawn_with(app.backend, |c| {
        c.metrics.token = Some(fedgate::config::SecretString("m-token-123".into()));
    })
    .await;
    app2.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app2.client("confidential", "ES256").await;
    let code = code_for(&app2, &browser(), &cid, &[("organization", "acme")]).await;
    exchange(&app2, &cid, secret.as_deref(), &code).await;
    let r = app2.http.get(app2.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app2.http.get(app2.url("/metrics")).bearer_auth("m-token-123").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("fedgate_logins_total{tenant=\"org_"), "{text}");
    assert!(text.contains("protocol=\"dev\",code=\"ok\",result=\"succeeded\"} 1"), "{text}");
    // The pool at scrape time (SQLite: one connection; PostgreSQL: database.max_connections).
    let max = if app.backend == Backend::Sqlite { 1 } else { 8 };
    assert!(text.contains(&format!("fedgate_db_pool_max_connections {max}.0\n")), "{text}");
    assert!(text.contains("fedgate_db_pool_in_use_connections "), "{text}");
    assert!(text.contains("fedgate_db_pool_acquire_timeouts 0.0\n"), "{text}");
    assert!(text.contains("fedgate_tokens_issued_total{grant=\"authorization_code\"} 1"));
    assert!(text.contains(
        "fedgate_http_request_duration_seconds_bucket{route=\"/oauth2/token\",method=\"POST\",le=\"+Inf\"} 1"
    ));
    assert!(text.contains("fedgate_deliveries_pending 0"));
    app2.stop().await;
}

crate::both!(
    events_are_signed_ordered_and_resumable,
    failing_receiver_gets_everything_after_recovery,
    failing_endpoint_is_disabled_with_an_event,
    backchannel_logout_on_admin_revocation,
    audit_log_records_admin_actions_without_secrets,
    metrics_are_protected,
);

/// Several instances share the delivery work on PostgreSQL: every delivery goes out exactly
/// once when nobody crashes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_deliveries_without_duplicates() {
    let a = spawn(Backend::Postgres).await;
    let b = a.second_instance().await;
    let rx = Receiver::start().await;
    webhook(&a, &rx, json!(["connection.*"])).await;
    a.tenant("acme", "acme.test", &[]).await;
    for i in 0..30 {
        a.post("/tenants/acme/connections", json!({"type": "dev", "name": format!("c{i}")})).await;
    }
    // Per-tenant order means one delivery of the tenant's queue is in flight at a time.
    for _ in 0..200 {
        let (wa, wb) = (a.state.delivery_worker(), b.state.delivery_worker());
        let (x, y) =
            tokio::join!(fedgate::events::delivery::run_once(&wa, "a"), fedgate::events::delivery::run_once(&wb, "b"));
        if x.unwrap() + y.unwrap() == 0 {
            break;
        }
    }
    let got = rx.got.lock().unwrap().clone();
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 31);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 31, "no duplicates");
    b.stop().await;
    a.stop().await;
}

/// At least once through a crash: the fedgate process is SIGKILLed while a webhook request is in
/// flight; after a restart every event is still delivered (the in-flight one again, with the
/// same webhook-id), in order. Real processes, real time (lease of 2 s, bounded polling).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_instance_loses_nothing() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let env: Vec<(&str, String)> = vec![
        ("FEDGATE_DATABASE_URL", format!("sqlite://{}/f.db?mode=rwc", dir.path().display())),
        ("FEDGATE_DATA_DIR", dir.path().display().to_string()),
        ("FEDGATE_LISTEN", format!("127.0.0.1:{port}")),
        ("FEDGATE_ISSUER", base.clone()),
        ("FEDGATE_DEV_MODE", "1".into()),
        ("FEDGATE_ALLOW_PRIVATE_NETWORK", "1".into()),
        ("FEDGATE__WEBHOOKS__LEASE_SECS", "2".into()),
        ("FEDGATE__WEBHOOKS__POLL_INTERVAL_MS", "100".into()),
        ("FEDGATE_LOG", "warn".into()),
    ];
    let bin = env!("CARGO_BIN_EXE_fedgate");
    let run = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.args(args).current_dir(dir.path()).stdin(Stdio::null());
        for (k, v) in &env {
            c.env(k, v);
        }
        c
    };
    let key = String::from_utf8(run(&["admin-key", "create", "--name", "kill"]).output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let http = reqwest::Client::new();
    let wait_ready = || async {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fedgate did not become ready");
    };
    let mut server = run(&["serve"]).stderr(Stdio::null()).spawn().unwrap();
    wait_ready().await;
    let rx = Receiver::start().await;
    rx.hang_first.store(1, Ordering::SeqCst);
    let admin =
        |path: &str, body: Value| http.post(format!("{base}/admin/v1{path}")).bearer_auth(&key).json(&body).send();
    let w: Value = admin("/webhooks", json!({"url": format!("{}/hook", rx.url)})).await.unwrap().json().await.unwrap();
    assert!(w["secret"].is_string(), "{w}");
    admin("/tenants", json!({"name": "Acme", "slug": "acme"})).await.unwrap();
    for i in 0..5 {
        let r = admin("/tenants/acme/connections", json!({"type": "dev", "name": format!("c{i}")})).await.unwrap();
        assert_eq!(r.status(), 201);
    }
    // Wait for the first delivery to be in flight (the receiver holds it), then SIGKILL.
    let start = Instant::now();
    while rx.hang_first.load(Ordering::SeqCst) > 0 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rx.hang_first.load(Ordering::SeqCst), 0, "the first delivery never arrived");
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(rx.events().is_empty(), "nothing completed before the crash");
    let mut server = run(&["serve"]).stderr(Stdio::null()).spawn().unwrap();
    wait_ready().await;
    let start = Instant::now();
    while rx.events().len() < 5 && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let got = rx.events();
    let names: Vec<&str> = got.iter().map(|e| e["data"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["c0", "c1", "c2", "c3", "c4"], "every event, in order, after the crash");
}

/// A SCIM provisioning sequence produces exactly the expected events, in order, each carrying
/// the resource's state — and deactivation ends the person's session.
async fn scim_sequence_produces_the_expected_events(app: &TestApp) {
    let rx = Receiver::start().await;
    let (_, secret) = webhook(app, &rx, json!([])).await;
    let scim = crate::scim::Scim::setup(app, "acme", "acme.test").await;
    let (s, u) = scim
        .req(
            Method::POST,
            "/Users",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@acme.test",
                        "name": {"givenName": "Alice", "familyName": "Anderson"},
                        "emails": [{"value": "alice@acme.test", "primary": true}], "active": true})),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    let uid = u["id"].as_str().unwrap().to_string();
    let (cid, _) = app.client("confidential", "ES256").await;
    code_for(app, &browser(), &cid, &[("organization", "acme"), ("login_hint", "alice@acme.test")]).await;
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let (s, _) = scim
        .req(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch(json!([{"op": "replace", "path": "name.givenName", "value": "Alicia"}]))),
        )
        .await;
    assert_eq!(s, 200);
    let (s, g) = scim
        .req(Method::POST, "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "eng", "members": [{"value": uid}]})))
        .await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    let (s, _) = scim
        .req(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(patch(json!([{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]))),
        )
        .await;
    assert!(s == 200 || s == 204, "{s}");
    let (s, _) = scim
        .req(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(patch(json!([{"op": "replace", "value": {"displayName": "engineering"}}]))),
        )
        .await;
    assert!(s == 200 || s == 204, "{s}");
    for active in ["False", "True"] {
        let (s, _) = scim
            .req(
                Method::PATCH,
                &format!("/Users/{uid}"),
                Some(patch(json!([{"op": "Replace", "path": "active", "value": active}]))),
            )
            .await;
        assert_eq!(s, 200);
    }
    let (s, _) = scim.req(Method::DELETE, &format!("/Users/{uid}"), None).await;
    assert_eq!(s, 204);
    let (s, _) = scim.req(Method::DELETE, &format!("/Groups/{gid}"), None).await;
    assert_eq!(s, 204);
    drain(app).await;
    let got = rx.events();
    let types: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec![
            "connection.activated",
            "user.created",
            "login.succeeded",
            "user.updated",
            "group.created",
            "group.member_added",
            "group.member_removed",
            "group.updated",
            "session.revoked",
            "user.deactivated",
            "user.reactivated",
            "user.deleted",
            "group.deleted",
        ]
    );
    for r in rx.got.lock().unwrap().iter() {
        assert!(verify_signature(&secret, r));
    }
    let by = |t: &str| got.iter().find(|e| e["type"] == t).unwrap()["data"].clone();
    assert_eq!(by("user.created")["user_id"], uid.as_str());
    assert_eq!(by("user.updated")["given_name"], "Alicia");
    assert_eq!(by("user.deactivated")["active"], false);
    assert_eq!(by("group.member_added")["user_id"], uid.as_str());
    assert_eq!(by("group.updated")["display_name"], "engineering");
    assert_eq!(by("session.revoked")["reason"], "user_deactivated");
}

crate::both!(scim_sequence_produces_the_expected_events);

crate::both!(a_slow_endpoint_does_not_hold_the_others, a_lost_lease_writes_nothing);

/// One endpoint hangs (until the 10 s HTTP timeout); the worker keeps delivering to the other.
async fn a_slow_endpoint_does_not_hold_the_others(app: &TestApp) {
    let slow = Receiver::start().await;
    slow.hang_first.store(1, Ordering::SeqCst);
    let fast = Receiver::start().await;
    webhook(app, &slow, json!([])).await;
    webhook(app, &fast, json!([])).await;
    app.tenant("acme", "acme.test", &[]).await;
    app.tenant("beta", "beta.test", &[]).await;
    let worker = tokio::spawn(fedgate::events::delivery::run_forever(
        app.state.delivery_worker(),
        "w".into(),
        std::time::Duration::from_millis(20),
        8,
    ));
    // Every event reaches the fast endpoint while the slow one still hangs on its first.
    let expected = 2; // connection.activated for acme and for beta
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
    while fast.events().len() < expected && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(fast.events().len(), expected, "the fast endpoint got everything: {:?}", fast.events());
    assert!(slow.events().len() <= 1, "the slow endpoint hangs on one of its two deliveries");
    // Even the slow endpoint's other tenant is not held behind the hanging delivery: order is
    // per (endpoint, tenant), so only the hanging tenant waits.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
    while slow.events().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(slow.events().len(), 1, "the slow endpoint's other tenant got its event");
    worker.abort();
}

async fn a_lost_lease_writes_nothing(app: &TestApp) {
    use fedgate::store::deliveries::{self, Attempt};
    use fedgate::store::entities::{delivery, delivery_attempt};
    use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};
    let db = &app.state.db;
    let now = fedgate::clock::Clock::now(&app.clock);
    delivery::ActiveModel {
        id: Set("d1".into()),
        kind: Set("webhook".into()),
        target_id: Set("wh".into()),
        event_id: Set(None),
        event_seq: Set(1),
        ordering_key: Set("t".into()),
        payload: Set("{}".into()),
        status: Set(delivery::PENDING.into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        lease_owner: Set(None),
        lease_until: Set(None),
        last_status: Set(None),
        last_error: Set(None),
        last_latency_ms: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
    }
    .insert(db)
    .await
    .unwrap();
    let a = deliveries::lease(db, "a", now, now + 60, 10).await.unwrap();
    assert_eq!(a.len(), 1);
    // A's send outlives its lease; B takes the delivery over.
    assert!(deliveries::lease(db, "b", now + 30, now + 90, 10).await.unwrap().is_empty(), "still leased to a");
    let b = deliveries::lease(db, "b", now + 61, now + 121, 10).await.unwrap();
    assert_eq!(b.len(), 1);
    let attempt = |status: &'static str, at: i64| Attempt {
        at,
        status,
        http_status: Some(200),
        error: None,
        latency_ms: 1,
        next_attempt_at: at,
    };
    assert!(deliveries::record_attempt(db, &b[0], attempt(delivery::SUCCEEDED, now + 62)).await.unwrap());
    // A's late write is fenced off: B's outcome stands, no second attempt row.
    assert!(!deliveries::record_attempt(db, &a[0], attempt(delivery::PENDING, now + 70)).await.unwrap());
    let row = delivery::Entity::find_by_id("d1".to_string()).one(db).await.unwrap().unwrap();
    assert_eq!(row.status, delivery::SUCCEEDED);
    assert_eq!(row.attempts, 1);
    assert_eq!(delivery_attempt::Entity::find().count(db).await.unwrap(), 1);
}
