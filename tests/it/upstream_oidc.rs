//! Upstream OpenID Connect end to end through the fixture IdP (idp-fixtures/oidc_idp.rs):
//! authorize -> fixture IdP -> /sso/oidc/callback -> code -> token, every negative case with its
//! specific error code, login traces, secrets handling and the SSRF guard.
use crate::common::*;
use crate::oidc_idp::{FixtureIdp, Knobs, Misbehave};
use serde_json::{json, Value};

/// Runs each test on SQLite and PostgreSQL with `allow_private_network = true` (the fixture IdP
/// listens on 127.0.0.1).
macro_rules! both_private {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::common::TestApp::spawn_with($crate::common::Backend::Sqlite, |c| c.allow_private_network = true).await;
                    super::$name(&app).await;
                    app.stop().await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let app = $crate::common::TestApp::spawn_with($crate::common::Backend::Postgres, |c| c.allow_private_network = true).await;
                    super::$name(&app).await;
                    app.stop().await;
                }
            }
        )*
    };
}

/// A tenant whose one connection is an OIDC connection to a fresh fixture IdP.
async fn oidc_tenant(app: &TestApp, slug: &str, domain: &str, mut knobs: Knobs) -> (FixtureIdp, Value, Value) {
    knobs.email = format!("alice@{domain}");
    let idp = FixtureIdp::start(knobs, 1).await.unwrap();
    let (s, t) = app.post("/tenants", json!({"name": format!("{slug} Inc"), "slug": slug, "domains": [domain]})).await;
    assert_eq!(s, 201, "{t}");
    let (s, c) = app.post(&format!("/tenants/{slug}/connections"), idp.connection_body(&format!("{slug} IdP"))).await;
    assert_eq!(s, 201, "{c}");
    (idp, t, c)
}

/// What the browser ends with.
struct End {
    status: u16,
    location: String,
    body: String,
    /// The callback URL the IdP sent the browser to (for replays).
    callback: String,
}

impl End {
    fn code(&self) -> String {
        // The error page shows "Error code <code>xyz</code>".
        self.body
            .split("Error code <code>")
            .nth(1)
            .and_then(|r| r.split("</code>").next())
            .unwrap_or_default()
            .to_string()
    }
}

/// authorize -> IdP -> callback, following exactly the redirects a browser would.
async fn run(app: &TestApp, b: &reqwest::Client, cid: &str, extra: &[(&str, &str)]) -> End {
    let r = b.get(authorize_url(app, cid, extra)).send().await.unwrap();
    let status = r.status().as_u16();
    let to_idp = location(&r);
    if status != 302 || to_idp.starts_with(REDIRECT) {
        return End { status, location: to_idp, body: r.text().await.unwrap_or_default(), callback: String::new() };
    }
    let q = query_of(&to_idp);
    assert_eq!(q["code_challenge_method"], "S256", "{to_idp}");
    assert!(q["nonce"].len() >= 43 && q["state"].starts_with("lgn_"), "{to_idp}");
    assert_eq!(q["redirect_uri"], app.url("/sso/oidc/callback"));
    let r = b.get(&to_idp).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "fixture authorize: {}", r.text().await.unwrap_or_default());
    let callback = location(&r);
    finish(b, &callback).await
}

async fn finish(b: &reqwest::Client, callback: &str) -> End {
    let r = b.get(callback).send().await.unwrap();
    let status = r.status().as_u16();
    let location = location(&r);
    End { status, location, body: r.text().await.unwrap_or_default(), callback: callback.to_string() }
}

async fn trace(app: &TestApp, id: &str) -> Value {
    let (s, t) = app.get(&format!("/logins/{id}")).await;
    assert_eq!(s, 200, "{t}");
    t
}

fn steps(t: &Value) -> Vec<String> {
    t["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap().to_string()).collect()
}

async fn full_chain_and_trace(app: &TestApp) {
    let (idp, t, conn) = oidc_tenant(app, "acme", "acme.test", Knobs::default()).await;
    assert_eq!(conn["has_client_secret"], true);
    assert!(conn.get("client_secret").is_none(), "secrets are never returned: {conn}");
    let stored: String = {
        use sea_orm::EntityTrait;
        let row = fedgate::store::entities::connection::Entity::find_by_id(conn["id"].as_str().unwrap().to_string())
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap();
        format!("{} {}", row.config, row.secrets_enc.unwrap_or_default())
    };
    assert!(!stored.contains("fixture-secret"), "the client secret is encrypted at rest");
    let (cid, secret) = app.client("confidential", "ES256").await;
    let end = run(app, &browser(), &cid, &[("login_hint", "Bob@Acme.test")]).await;
    assert_eq!(end.status, 303, "{}", end.body);
    let q = query_of(&end.location);
    assert_eq!(q["state"], "st-123");
    let (s, tok) = exchange(app, &cid, secret.as_deref(), &q["code"]).await;
    assert_eq!(s, 200, "{tok}");
    let c = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(c["org_id"], t["id"]);
    assert_eq!(c["connection_id"], conn["id"]);
    assert_eq!(c["connection_type"], "oidc");
    assert_eq!(c["email"], "bob@acme.test");
    assert_eq!(c["email_verified"], true);
    assert_eq!(c["name"], "Alice Fixture");
    assert_eq!(c["groups"], json!(["engineering"]));
    assert_eq!(c["nonce"], "n-456");
    assert!(c["sub"].as_str().unwrap().starts_with("usr_"));
    // The same upstream subject is the same person next time (and discovery is cached).
    let end2 = run(app, &browser(), &cid, &[("login_hint", "bob@acme.test")]).await;
    let (_, tok2) = exchange(app, &cid, secret.as_deref(), &query_of(&end2.location)["code"]).await;
    assert_eq!(verify_jwt(app, tok2["id_token"].as_str().unwrap(), &cid).await["sub"], c["sub"]);
    assert_eq!(idp.hits("discovery"), 1);
    // The trace: every step, completed.
    let login_id = query_of(&end.callback)["state"].clone();
    let tr = trace(app, &login_id).await;
    assert_eq!(tr["status"], "completed", "{tr}");
    assert_eq!(tr["tenant_id"], t["id"]);
    assert_eq!(
        steps(&tr),
        vec![
            "authorize_received",
            "routed_to_connection",
            "redirected_upstream",
            "callback_received",
            "token_exchanged",
            "id_token_verified",
            "claims_mapped",
            "mfa_checked",
            "user_linked",
            "code_issued"
        ]
    );
    let text = tr.to_string();
    assert!(!text.contains("fixture-at-") && !text.contains("eyJ"), "raw tokens are never stored: {text}");
    let (s, page) = app.get("/tenants/acme/logins?status=completed").await;
    assert_eq!(s, 200);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    // Retention: traces older than tokens.login_trace_retention are removed by maintenance.
    app.clock.advance_secs(31 * 86400);
    app.state.maintenance().await.unwrap();
    assert_eq!(app.get(&format!("/logins/{login_id}")).await.0, 404);
}

async fn explicit_endpoints_and_client_secret_post(app: &TestApp) {
    let idp = FixtureIdp::start(Knobs { email: "alice@acme.test".into(), ..Knobs::default() }, 1).await.unwrap();
    app.post("/tenants", json!({"name": "A", "slug": "acme", "domains": ["acme.test"]})).await;
    let mut body = idp.connection_body("Explicit");
    let i = idp.issuer.clone();
    body["authorization_endpoint"] = json!(format!("{i}/authorize"));
    body["token_endpoint"] = json!(format!("{i}/token"));
    body["jwks_uri"] = json!(format!("{i}/jwks"));
    body["token_endpoint_auth_method"] = json!("client_secret_post");
    body["extra_auth_params"] = json!({"acr_values": "mfa"});
    let (s, c) = app.post("/tenants/acme/connections", body).await;
    assert_eq!(s, 201, "{c}");
    let (cid, _) = app.client("confidential", "ES256").await;
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme"), ("prompt", "login")])).send().await.unwrap();
    let to_idp = query_of(&location(&r));
    assert_eq!((to_idp["acr_values"].as_str(), to_idp["prompt"].as_str()), ("mfa", "login"));
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(end.status, 303, "{}", end.body);
    assert_eq!(idp.hits("discovery"), 0, "explicit endpoints skip discovery");
}

/// Runs one login against a misbehaving IdP and checks the page code and the trace.
async fn expect_failure(app: &TestApp, idp: &FixtureIdp, cid: &str, m: Misbehave, code: &str) -> Value {
    idp.set(|k| k.misbehave = m);
    let end = run(app, &browser(), cid, &[("organization", "acme")]).await;
    idp.set(|k| k.misbehave = Misbehave::Nothing);
    assert_eq!(end.status, 502, "{m:?}: {} {}", end.location, end.body);
    assert_eq!(end.code(), code, "{m:?}");
    let login_id = query_of(&end.callback)["state"].clone();
    assert!(end.body.contains(&login_id), "the page shows the trace id");
    let tr = trace(app, &login_id).await;
    assert_eq!(tr["status"], "failed");
    assert_eq!(tr["error"]["code"], code);
    tr
}

async fn id_token_checks(app: &TestApp) {
    let (idp, _, _) = oidc_tenant(app, "acme", "acme.test", Knobs::default()).await;
    let (cid, _) = app.client("confidential", "ES256").await;
    let tr = expect_failure(app, &idp, &cid, Misbehave::WrongAudience, "id_token_audience_mismatch").await;
    let cause = tr["error"]["cause"].as_str().unwrap();
    assert!(cause.contains("someone-else") && cause.contains("fedgate-client"), "{cause}");
    assert!(tr["error"]["fix"].as_str().unwrap().contains("client ID"), "{tr}");
    expect_failure(app, &idp, &cid, Misbehave::Expired, "id_token_expired").await;
    expect_failure(app, &idp, &cid, Misbehave::NotYetValid, "id_token_not_yet_valid").await;
    expect_failure(app, &idp, &cid, Misbehave::AlgNone, "id_token_alg_not_allowed").await;
    expect_failure(app, &idp, &cid, Misbehave::Hmac, "id_token_alg_not_allowed").await;
    expect_failure(app, &idp, &cid, Misbehave::OtherKey, "id_token_signature_invalid").await;
    expect_failure(app, &idp, &cid, Misbehave::UnknownKid, "id_token_key_unknown").await;
    expect_failure(app, &idp, &cid, Misbehave::WrongNonce, "id_token_nonce_mismatch").await;
    expect_failure(app, &idp, &cid, Misbehave::WrongIssuer, "id_token_issuer_mismatch").await;
    expect_failure(app, &idp, &cid, Misbehave::WrongIssParam, "iss_parameter_mismatch").await;
    expect_failure(app, &idp, &cid, Misbehave::TokenError, "token_exchange_failed").await;
    // Listing: the failures, newest first, filtered by status.
    let (s, page) = app.get("/tenants/acme/logins?status=failed&limit=5").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["data"].as_array().unwrap().len(), 5);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = app.get(&format!("/tenants/acme/logins?status=failed&cursor={cursor}")).await;
    let mut codes: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["data"].as_array().unwrap())
        .map(|t| t["error"]["code"].as_str().unwrap().to_string())
        .collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 10, "{codes:?}");
    assert_eq!(app.get("/tenants/acme/logins?status=nope").await.0, 400);
    assert_eq!(app.get("/logins/lgn_nope").await.0, 404);
    // A good login still works after all that.
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(end.status, 303, "{}", end.body);
}

async fn state_and_replay(app: &TestApp) {
    let (_idp, _, _) = oidc_tenant(app, "acme", "acme.test", Knobs::default()).await;
    let (cid, _) = app.client("confidential", "ES256").await;
    let b = browser();
    let end = run(app, &b, &cid, &[("organization", "acme")]).await;
    assert_eq!(end.status, 303);
    // Replayed callback: the login is already finished.
    let again = finish(&b, &end.callback).await;
    assert_eq!((again.status, again.code().as_str()), (400, "login_already_used"), "{}", again.body);
    // Wrong state: not a login in progress.
    let wrong = end.callback.replace(&query_of(&end.callback)["state"], "lgn_00000000000000000000000000");
    let w = finish(&b, &wrong).await;
    assert_eq!((w.status, w.code().as_str()), (400, "unknown_state"), "{}", w.body);
    let w = finish(&b, &app.url("/sso/oidc/callback?code=x")).await;
    assert_eq!(w.code(), "unknown_state");
    // Another browser cannot finish someone's login.
    let b2 = browser();
    let r = b2.get(authorize_url(app, &cid, &[("organization", "acme")])).send().await.unwrap();
    let cb = location(&b2.get(location(&r)).send().await.unwrap());
    let other = finish(&browser(), &cb).await;
    assert_eq!(other.code(), "login_binding_mismatch");
}

/// A connection disabled while its login is at the IdP finishes nothing, whatever fedgate
/// caches (the callback reads the login, its connection and tenant in one query), and once
/// enabled again the still-pending login finishes with its code.
async fn disabled_connection_stops_at_once(app: &TestApp) {
    let (_idp, _, conn) = oidc_tenant(app, "dis", "dis.test", Knobs::default()).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    // Warm every cache on this connection first: a whole login through it.
    let end = run(app, &browser(), &cid, &[("organization", "dis")]).await;
    assert_eq!(end.status, 303, "{}", end.body);
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[("organization", "dis")])).send().await.unwrap();
    let cb = location(&b.get(location(&r)).send().await.unwrap());
    let path = format!("/tenants/dis/connections/{}", conn["id"].as_str().unwrap());
    let (s, v) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"enabled": false}))).await;
    assert_eq!(s, 200, "{v}");
    let end = finish(&b, &cb).await;
    assert_eq!((end.status, end.code().as_str()), (404, "connection_not_found"), "{}", end.body);
    let (s, v) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"enabled": true}))).await;
    assert_eq!(s, 200, "{v}");
    let end = finish(&b, &cb).await;
    assert_eq!(end.status, 303, "{}", end.body);
    let q = query_of(&end.location);
    let (s, tok) = exchange(app, &cid, secret.as_deref(), &q["code"]).await;
    assert_eq!(s, 200, "{tok}");
}

async fn denied_down_and_domains(app: &TestApp) {
    let (idp, _, _) = oidc_tenant(app, "acme", "acme.test", Knobs::default()).await;
    let (cid, _) = app.client("confidential", "ES256").await;
    // Upstream access_denied: the app gets access_denied on its redirect_uri.
    idp.set(|k| k.misbehave = Misbehave::AccessDenied);
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(end.status, 303, "{}", end.body);
    let q = query_of(&end.location);
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("access_denied", "st-123"));
    let tr = trace(app, &query_of(&end.callback)["state"]).await;
    assert_eq!(tr["error"]["code"], "upstream_denied");
    idp.set(|k| k.misbehave = Misbehave::Nothing);
    // Email outside the tenant's domains.
    let end = run(app, &browser(), &cid, &[("organization", "acme"), ("login_hint", "mallory@evil.test")]).await;
    assert_eq!((end.status, end.code().as_str()), (403, "email_domain_not_allowed"), "{}", end.body);
    let tr = trace(app, &query_of(&end.callback)["state"]).await;
    assert!(tr["error"]["cause"].as_str().unwrap().contains("evil.test"), "{tr}");
    // Upstream down between the redirect and the callback: a page for the person with a way
    // back, and the app gets an error.
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme")])).send().await.unwrap();
    let cb = location(&b.get(location(&r)).send().await.unwrap());
    idp.stop().await;
    let end = finish(&b, &cb).await;
    assert_eq!((end.status, end.code().as_str()), (502, "upstream_unreachable"), "{}", end.body);
    assert!(end.body.contains("error=temporarily_unavailable"), "{}", end.body);
}

async fn discovery_down_and_ssrf(app: &TestApp) {
    // An issuer nobody listens on: the person gets a page at authorize time.
    let (s, _) = app.post("/tenants", json!({"name": "Down", "slug": "down", "domains": ["down.test"]})).await;
    assert_eq!(s, 201);
    let (s, c) = app
        .post(
            "/tenants/down/connections",
            json!({"type": "oidc", "name": "Gone", "issuer": "http://127.0.0.1:9", "client_id": "x", "client_secret": "y"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let (cid, _) = app.client("confidential", "ES256").await;
    let end = run(app, &browser(), &cid, &[("login_hint", "a@down.test")]).await;
    assert_eq!((end.status, end.code().as_str()), (502, "upstream_unreachable"), "{}", end.body);
}

async fn tenant_routing_and_cross_tenant_connection(app: &TestApp) {
    let (_a, ta, _) = oidc_tenant(app, "acme", "acme.test", Knobs::default()).await;
    let (_g, tg, cg) = oidc_tenant(app, "globex", "globex.test", Knobs::default()).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    for (hint, t) in [("x@acme.test", &ta), ("y@globex.test", &tg)] {
        let end = run(app, &browser(), &cid, &[("login_hint", hint)]).await;
        assert_eq!(end.status, 303, "{}", end.body);
        let (_, tok) = exchange(app, &cid, secret.as_deref(), &query_of(&end.location)["code"]).await;
        assert_eq!(verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await["org_id"], t["id"]);
    }
    // domain_hint routes too.
    let end = run(app, &browser(), &cid, &[("domain_hint", "globex.test")]).await;
    assert_eq!(end.status, 303, "{}", end.body);
    // An unknown domain: the work-email page with a message that names no tenant.
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[("login_hint", "z@nowhere.test")])).send().await.unwrap();
    let page = b.get(location(&r)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("couldn&#x27;t find single sign-on") && !page.contains("globex"), "{page}");
    // Globex's connection with Acme's organization: refused to the app.
    let r = browser()
        .get(authorize_url(app, &cid, &[("organization", "acme"), ("connection", cg["id"].as_str().unwrap())]))
        .send()
        .await
        .unwrap();
    let q = query_of(&location(&r));
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("does not belong"));
}

async fn connection_validation(app: &TestApp) {
    app.post("/tenants", json!({"name": "A", "slug": "acme", "domains": ["acme.test"]})).await;
    let base = json!({"type": "oidc", "name": "X", "issuer": "https://idp.example", "client_id": "c"});
    let bad = |patch: Value| {
        let mut b = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (body, field) in [
        (bad(json!({"issuer": "ftp://x"})), "issuer"),
        (bad(json!({"id_token_signing_algs": ["HS256"]})), "id_token_signing_algs"),
        (bad(json!({"id_token_signing_algs": ["none"]})), "id_token_signing_algs"),
        (bad(json!({"extra_auth_params": {"state": "x"}})), "extra_auth_params"),
        (bad(json!({"claim_mapping": {"org_id": "x"}})), "claim_mapping"),
        (bad(json!({"client_secret": 5})), "client_secret"),
        (
            bad(json!({"preset": "entra", "issuer": "https://login.microsoftonline.com/common/v2.0"})),
            "allowed_tenant_ids",
        ),
    ] {
        let (s, e) = app.post("/tenants/acme/connections", body).await;
        assert_eq!((s, e["field"].as_str()), (400, Some(field)), "{e}");
    }
    let (s, c) = app.post("/tenants/acme/connections", base.clone()).await;
    assert_eq!((s, c["has_client_secret"].as_bool()), (201, Some(false)), "{c}");
    let id = c["id"].as_str().unwrap();
    let (s, c) = app
        .admin(reqwest::Method::PATCH, &format!("/tenants/acme/connections/{id}"), Some(json!({"client_secret": "s3"})))
        .await;
    assert_eq!((s, c["has_client_secret"].as_bool(), c["version"].as_i64()), (200, Some(true), Some(2)), "{c}");
    let (s, c) = app
        .admin(reqwest::Method::PATCH, &format!("/tenants/acme/connections/{id}"), Some(json!({"preset": "okta"})))
        .await;
    assert_eq!((s, c["has_client_secret"].as_bool(), c["preset"].as_str()), (200, Some(true), Some("okta")), "{c}");
}

async fn ssrf_guard_refuses_loopback(shared: &TestApp) {
    // An instance with allow_private_network = false (the production default).
    let own = TestApp::spawn_with(shared.backend, |c| c.allow_private_network = false).await;
    let app = &own;
    let idp = FixtureIdp::start(Knobs::default(), 1).await.unwrap();
    app.post("/tenants", json!({"name": "A", "slug": "acme", "domains": ["acme.test"]})).await;
    let (s, _) = app.post("/tenants/acme/connections", idp.connection_body("Local")).await;
    assert_eq!(s, 201);
    let (cid, _) = app.client("confidential", "ES256").await;
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!((end.status, end.code().as_str()), (502, "connection_misconfigured"), "{}", end.body);
    assert_eq!(idp.hits("discovery"), 0, "no request reached the loopback IdP");
    drop(idp);
    own.stop().await;
}

async fn jwks_refresh_on_key_rotation(app: &TestApp) {
    let (idp, _, _) = oidc_tenant(app, "acme", "acme.test", Knobs::default()).await;
    let (cid, _) = app.client("confidential", "ES256").await;
    assert_eq!(run(app, &browser(), &cid, &[("organization", "acme")]).await.status, 303);
    idp.rotate().unwrap();
    // The JWKS was fetched a moment ago: the refresh is rate-limited and the login fails closed.
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(end.code(), "id_token_key_unknown", "{}", end.body);
    assert_eq!(idp.hits("jwks"), 1);
    // A minute later the unknown kid triggers one refresh, and the login succeeds.
    app.clock.advance_secs(61);
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(end.status, 303, "{}", end.body);
    assert_eq!(idp.hits("jwks"), 2);
}

async fn presets_userinfo_and_roles(app: &TestApp) {
    let (idp, t, conn) = oidc_tenant(app, "acme", "acme.test", Knobs::default()).await;
    let id = conn["id"].as_str().unwrap();
    let path = format!("/tenants/acme/connections/{id}");
    let patch = |body: Value| app.admin(reqwest::Method::PATCH, &path, Some(body));
    // Entra: subject from tid+oid, groups overage recorded in the trace, userinfo merged.
    let (s, c) = patch(json!({"preset": "entra", "fetch_userinfo": true})).await;
    assert_eq!(s, 200, "{c}");
    idp.set(|k| {
        k.extra_claims = json!({"tid": "tenant-1", "oid": "object-1", "_claim_names": {"groups": "src1"},
                                "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/me/getMemberObjects"}}})
    });
    let (s, _) = app
        .admin(
            reqwest::Method::PATCH,
            "/tenants/acme",
            Some(json!({"settings": {"role_mapping": {"engineering": ["developer", "reader"]}}})),
        )
        .await;
    assert_eq!(s, 200);
    let (cid, secret) = app.client("confidential", "ES256").await;
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(end.status, 303, "{}", end.body);
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &query_of(&end.location)["code"]).await;
    let claims = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(claims["org_id"], t["id"]);
    assert_eq!(claims["roles"], json!(["developer", "reader"]));
    let tr = trace(app, &query_of(&end.callback)["state"]).await;
    let text = tr.to_string();
    assert!(text.contains("groups_overage") && text.contains("userinfo_merged"), "{text}");
    {
        use fedgate::store::entities::identity;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let idn = identity::Entity::find()
            .filter(identity::Column::ConnectionId.eq(id))
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(idn.subject, "tenant-1:object-1");
        assert!(idn.attributes.contains("en-GB"), "{}", idn.attributes);
    }
    // Google: hd must be one of the hosted domains.
    let (s, _) = patch(json!({"preset": "google", "hosted_domains": ["acme.test"], "fetch_userinfo": false})).await;
    assert_eq!(s, 200);
    idp.set(|k| k.extra_claims = json!({"hd": "gmail.com"}));
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!((end.status, end.code().as_str()), (502, "google_hd_mismatch"), "{}", end.body);
    idp.set(|k| k.extra_claims = json!({"hd": "acme.test"}));
    assert_eq!(run(app, &browser(), &cid, &[("organization", "acme")]).await.status, 303);
    // Custom rules: groups from a dotted path; email trust by domain.
    let (s, _) = patch(json!({"preset": "keycloak", "claim_mapping": {"groups": "realm_access.roles"}})).await;
    assert_eq!(s, 200);
    idp.set(|k| k.extra_claims = json!({"realm_access": {"roles": ["admins"]}, "email_verified": false}));
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &query_of(&end.location)["code"]).await;
    let claims = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(claims["groups"], json!(["admins"]));
    assert_eq!(claims["roles"], json!([]));
    assert_eq!(claims["email_verified"], false);
}

async fn entra_multi_tenant_issuer(app: &TestApp) {
    let knobs =
        Knobs { email: "alice@acme.test".into(), send_iss: false, entra_tid: Some("dir-1".into()), ..Knobs::default() };
    let idp = FixtureIdp::start(knobs, 1).await.unwrap();
    app.post("/tenants", json!({"name": "A", "slug": "acme", "domains": ["acme.test"]})).await;
    let mut body = idp.connection_body("Entra common");
    body["issuer"] = json!(format!("{}/common/v2.0", idp.issuer));
    body["preset"] = json!("entra");
    body["allowed_tenant_ids"] = json!(["dir-1"]);
    let (s, c) = app.post("/tenants/acme/connections", body).await;
    assert_eq!(s, 201, "{c}");
    let (cid, secret) = app.client("confidential", "ES256").await;
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(end.status, 303, "{}", end.body);
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &query_of(&end.location)["code"]).await;
    let claims = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(claims["email"], "alice@acme.test", "email from preferred_username");
    // A token whose iss names another directory than its tid: refused.
    idp.set(|k| k.entra_iss_tid = Some("dir-2".into()));
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(end.code(), "id_token_issuer_mismatch", "{}", end.body);
    // A directory that is not allowed.
    idp.set(|k| {
        k.entra_iss_tid = None;
        k.entra_tid = Some("dir-9".into());
    });
    let end = run(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(end.code(), "entra_tenant_not_allowed", "{}", end.body);
}

/// A first SSO login links to a SCIM-provisioned user by email only when the IdP vouches for
/// the address; an unverified email gets its own (JIT) user instead of taking over the account.
async fn unverified_email_never_links_to_a_provisioned_user(app: &TestApp) {
    for verified in [false, true] {
        let slug = if verified { "ver" } else { "unver" };
        let domain = format!("{slug}.test");
        let knobs = Knobs { extra_claims: json!({"email_verified": verified}), ..Knobs::default() };
        let (_idp, _, _) = oidc_tenant(app, slug, &domain, knobs).await;
        let scim = crate::scim::Scim::token_for(app, slug).await;
        let email = format!("alice@{domain}");
        let (s, u) = scim
            .req(
                reqwest::Method::POST,
                "/Users",
                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email,
                            "emails": [{"value": email, "primary": true}], "active": true})),
            )
            .await;
        assert_eq!(s, 201, "{u}");
        let (cid, secret) = app.client("confidential", "ES256").await;
        let end = run(app, &browser(), &cid, &[("organization", slug), ("login_hint", &email)]).await;
        assert_eq!(end.status, 303, "{}", end.body);
        let (_, tok) = exchange(app, &cid, secret.as_deref(), &query_of(&end.location)["code"]).await;
        let c = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
        if verified {
            assert_eq!(c["sub"], u["id"], "a verified email links to the provisioned user");
        } else {
            assert_ne!(c["sub"], u["id"], "an unverified email must not take over the provisioned user");
        }
    }
}

/// An IdP vouching for an address outside the tenant's domains (`email_verified: true`, and even
/// the connection's trusted_email_domains listing it), let in by allow_email_outside_domains:
/// tokens say `email_verified: false`. Only the tenant's domains make an address verified.
async fn vouched_address_outside_the_tenant_is_not_verified(app: &TestApp) {
    let knobs = Knobs { extra_claims: json!({"email_verified": true}), ..Knobs::default() };
    let idp = FixtureIdp::start(knobs, 1).await.unwrap();
    let (s, t) = app
        .post(
            "/tenants",
            json!({"name": "Acme", "slug": "acme", "domains": ["acme.test"], "settings": {"allow_email_outside_domains": true}}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let mut body = idp.connection_body("Acme IdP");
    body["trusted_email_domains"] = json!(["victim.example"]);
    let (s, c) = app.post("/tenants/acme/connections", body).await;
    assert_eq!(s, 201, "{c}");
    let (cid, secret) = app.client("confidential", "ES256").await;
    for (email, verified) in [("ceo@victim.example", false), ("bob@acme.test", true)] {
        let end = run(app, &browser(), &cid, &[("organization", "acme"), ("login_hint", email)]).await;
        assert_eq!(end.status, 303, "{}", end.body);
        let (_, tok) = exchange(app, &cid, secret.as_deref(), &query_of(&end.location)["code"]).await;
        let c = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
        assert_eq!((c["email"].as_str(), c["email_verified"].as_bool()), (Some(email), Some(verified)), "{c}");
    }
}

both_private!(
    vouched_address_outside_the_tenant_is_not_verified,
    unverified_email_never_links_to_a_provisioned_user,
    entra_multi_tenant_issuer,
    explicit_endpoints_and_client_secret_post,
    jwks_refresh_on_key_rotation,
    presets_userinfo_and_roles,
    full_chain_and_trace,
    id_token_checks,
    state_and_replay,
    denied_down_and_domains,
    disabled_connection_stops_at_once,
    discovery_down_and_ssrf,
    tenant_routing_and_cross_tenant_connection,
    connection_validation,
);
crate::both!(ssrf_guard_refuses_loopback);
