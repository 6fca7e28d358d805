//! Anonymous junk costs (almost) nothing: ACS posts and OIDC callbacks that match no pending
//! login write no row, trace, event or delivery; unrouted logins expire in minutes and are
//! pruned in batches; rate limits answer 429 with Retry-After in each surface's shape, per IP
//! (X-Forwarded-For only from trusted proxies), per client, per tenant and per token. The limits
//! use the app's manual clock, so every test is deterministic.
use crate::common::*;
use crate::saml::saml_tenant;
use fedgate::clock::Clock;
use fedgate::config::Config;
use fedgate::store::entities::{delivery, event, login, login_trace};
use reqwest::Method;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};

/// Runs each test on SQLite and PostgreSQL with a config tweak.
macro_rules! with_config {
    ($tweak:expr => $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = crate::common::TestApp::spawn_with(crate::common::Backend::Sqlite, $tweak).await;
                    super::$name(&app).await;
                    app.stop().await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let app = crate::common::TestApp::spawn_with(crate::common::Backend::Postgres, $tweak).await;
                    super::$name(&app).await;
                    app.stop().await;
                }
            }
        )*
    };
}

/// Default limits (as deployed).
fn defaults(c: &mut Config) {
    c.allow_private_network = true;
}

/// Tiny limits: a burst of 2 and one request a minute on the surface under test; the admin key
/// used for set-up gets room.
fn tiny(c: &mut Config) {
    c.allow_private_network = true;
    let r = &mut c.rate_limits;
    r.authorize_per_ip_per_minute = 1;
    r.authorize_per_ip_burst = 2;
    r.pages_per_ip_per_minute = 1;
    r.pages_per_ip_burst = 2;
    r.token_per_client_per_minute = 1;
    r.token_per_client_burst = 2;
    r.scim_per_token_per_minute = 1;
    r.scim_per_token_burst = 2;
    r.admin_per_key_per_minute = 1;
    r.admin_per_key_burst = 30;
}

/// Tiny per-tenant ACS limit; pages per IP out of the way.
fn tiny_acs(c: &mut Config) {
    c.allow_private_network = true;
    c.rate_limits.acs_per_tenant_per_minute = 1;
    c.rate_limits.acs_per_tenant_burst = 2;
}

/// Loopback is a trusted proxy; authorize allows a burst of 2 per client IP.
fn behind_proxy(c: &mut Config) {
    c.allow_private_network = true;
    c.rate_limits.trusted_proxies = vec!["127.0.0.0/8".into()];
    c.rate_limits.authorize_per_ip_per_minute = 1;
    c.rate_limits.authorize_per_ip_burst = 2;
}

/// Same limit, no trusted proxy.
fn no_proxy(c: &mut Config) {
    c.allow_private_network = true;
    c.rate_limits.authorize_per_ip_per_minute = 1;
    c.rate_limits.authorize_per_ip_burst = 2;
}

async fn rows(app: &TestApp) -> [u64; 4] {
    let db = &app.state.db;
    [
        login::Entity::find().count(db).await.unwrap(),
        login_trace::Entity::find().count(db).await.unwrap(),
        event::Entity::find().count(db).await.unwrap(),
        delivery::Entity::find().count(db).await.unwrap(),
    ]
}

fn page_code(body: &str) -> String {
    body.split("Error code <code>").nth(1).and_then(|r| r.split("</code>").next()).unwrap_or_default().to_string()
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Asserts an HTML error page with this code and the response's request id.
async fn assert_page(r: reqwest::Response, status: u16, code: &str) {
    assert_eq!(r.status().as_u16(), status);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let body = r.text().await.unwrap();
    assert_eq!(page_code(&body), code, "{body}");
    assert!(body.contains(&rid), "the page shows the request id {rid}");
}

async fn acs_junk_writes_nothing(app: &TestApp) {
    let conn = saml_tenant(app, "junk", "junk.test", json!({})).await;
    let idle = saml_tenant(app, "idle", "idle.test", json!({})).await;
    let (s, _) = app
        .admin(Method::PATCH, &format!("/tenants/idle/connections/{}", idle.id), Some(json!({"enabled": false})))
        .await;
    assert_eq!(s, 200);
    let (s, w) =
        app.post("/webhooks", json!({"url": "http://127.0.0.1:9/hook", "event_types": ["login.failed"]})).await;
    assert_eq!(s, 201, "{w}");
    let before = rows(app).await;
    let b = browser();
    let now = app.clock.now();
    let text_plain = b.post(&conn.acs_url).header("content-type", "text/plain").body("garbage").send().await.unwrap();
    assert_page(text_plain, 400, "saml_response_malformed").await;
    let unreadable = b.post(&conn.acs_url).form(&[("SAMLResponse", "bm90IHhtbA==")]).send().await.unwrap();
    assert_eq!(unreadable.status().as_u16(), 400);
    let unreadable_code = page_code(&unreadable.text().await.unwrap());
    assert!(unreadable_code.starts_with("saml_"), "{unreadable_code}");
    let malformed = 21 + u64::from(unreadable_code == "saml_response_malformed");
    let other_request = crate::saml::response(&conn, Some("lgn_00000000000000000000000000"), now, |_| {});
    let r = b.post(&conn.acs_url).form(&[("SAMLResponse", other_request.as_str())]).send().await.unwrap();
    assert_page(r, 400, "saml_in_response_to_mismatch").await;
    let unsolicited = crate::saml::response(&conn, None, now, |_| {});
    let r = b.post(&conn.acs_url).form(&[("SAMLResponse", unsolicited.as_str())]).send().await.unwrap();
    assert_page(r, 400, "saml_unsolicited_response").await;
    for _ in 0..20 {
        let r = b.post(&conn.acs_url).header("content-type", "text/plain").body("x").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
    }
    // A disabled connection: the same page as an unknown one, before anything is read.
    let r = b.post(&idle.acs_url).header("content-type", "text/plain").body("garbage").send().await.unwrap();
    assert_page(r, 404, "connection_not_found").await;
    assert_eq!(rows(app).await, before, "no login row, trace, event or delivery for anonymous junk");
    // Counted instead.
    let metrics = app.state.metrics.render(&[]);
    let line = format!(
        "fedgate_anonymous_failures_total{{tenant=\"{}\",connection=\"{}\",code=\"saml_response_malformed\"}} {malformed}",
        conn.tenant_id, conn.id
    );
    assert!(metrics.contains(&line), "{line} in\n{metrics}");
    // The log samples them: one line per (connection, code) and interval, with the count.
    let interval = app.state.config.rate_limits.failure_log_interval;
    let scope = format!("sign_in:{}", conn.id);
    assert_eq!(
        app.state.failure_log.sample(app.clock.now_ms(), &scope, "saml_response_malformed"),
        None,
        "within the interval"
    );
    app.clock.advance_secs(interval);
    assert_eq!(
        app.state.failure_log.sample(app.clock.now_ms(), &scope, "saml_response_malformed"),
        Some(malformed),
        "the ones since the first line, this check included"
    );
}

async fn oidc_callback_junk_writes_nothing(app: &TestApp) {
    let before = rows(app).await;
    let b = browser();
    for q in ["", "?state=nope", "?state=lgn_00000000000000000000000000&code=x"] {
        let r = b.get(app.url(&format!("/sso/oidc/callback{q}"))).send().await.unwrap();
        assert_page(r, 400, "unknown_state").await;
    }
    assert_eq!(rows(app).await, before);
    let metrics = app.state.metrics.render(&[]);
    assert!(
        metrics.contains("fedgate_anonymous_failures_total{tenant=\"-\",connection=\"-\",code=\"unknown_state\"} 3")
    );
}

async fn unrouted_logins_expire_quickly_and_are_pruned(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (client, _) = app.client("confidential", "ES256").await;
    let b = browser();
    // No routing hint: the email page, and a login row that lives minutes.
    let r = b.get(authorize_url(app, &client, &[])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let page = location(&r);
    let id = page.rsplit('/').next().unwrap().to_string();
    let row = login::Entity::find_by_id(fedgate::ids::LoginId::from_db(id.clone()))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let tokens = &app.state.config.tokens;
    assert!(row.expires_at - app.clock.now() <= tokens.unrouted_login_ttl, "{row:?}");
    // Routed logins get the full login_ttl from routing on.
    let r = b.get(authorize_url(app, &client, &[("login_hint", "bob@acme.test")])).send().await.unwrap();
    assert!(location(&r).contains("/sso/dev/"), "{}", location(&r));
    let routed = location(&r).rsplit('/').next().unwrap().to_string();
    let row = login::Entity::find_by_id(fedgate::ids::LoginId::from_db(routed.clone()))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.expires_at - app.clock.now() > tokens.unrouted_login_ttl, "{row:?}");
    app.clock.advance_secs(tokens.unrouted_login_ttl + 1);
    let r = b.get(&page).send().await.unwrap();
    assert_page(r, 400, "login_expired").await;
    // A backlog of never-routed logins (an anonymous flood) goes in bounded batches.
    let now = app.clock.now();
    let mut junk = Vec::new();
    for i in 0..2500 {
        junk.push(login::ActiveModel {
            id: sea_orm::Set(fedgate::ids::LoginId::from_db(format!("lgn_junk{i:022}"))),
            client_id: sea_orm::Set(client.clone()),
            redirect_uri: sea_orm::Set(REDIRECT.into()),
            scope: sea_orm::Set("openid".into()),
            state: sea_orm::Set(None),
            nonce: sea_orm::Set(None),
            code_challenge: sea_orm::Set(None),
            prompt: sea_orm::Set(None),
            acr_values: sea_orm::Set(None),
            max_age: sea_orm::Set(None),
            login_hint: sea_orm::Set(None),
            tenant_id: sea_orm::Set(None),
            connection_id: sea_orm::Set(None),
            connector_state: sea_orm::Set(None),
            binding_hash: sea_orm::Set("x".into()),
            status: sea_orm::Set(login::LoginStatus::Pending),
            error_code: sea_orm::Set(None),
            created_at: sea_orm::Set(now - 400),
            expires_at: sea_orm::Set(now - 100),
            completed_at: sea_orm::Set(None),
        });
    }
    for chunk in junk.chunks(500) {
        login::Entity::insert_many(chunk.to_vec()).exec(&app.state.db).await.unwrap();
    }
    app.state.maintenance().await.unwrap();
    assert!(
        login::Entity::find_by_id(fedgate::ids::LoginId::from_db(id)).one(&app.state.db).await.unwrap().is_none(),
        "unrouted and expired: gone"
    );
    assert_eq!(login::Entity::find().count(&app.state.db).await.unwrap(), 1, "only the routed login is kept");
    assert!(login::Entity::find_by_id(fedgate::ids::LoginId::from_db(routed))
        .one(&app.state.db)
        .await
        .unwrap()
        .is_some());
}

async fn each_surface_answers_429_in_its_shape(app: &TestApp) {
    let (client, _) = app.client("confidential", "ES256").await;
    let scim_a = crate::scim::Scim::setup(app, "alpha", "alpha.test").await;
    let scim_b = crate::scim::Scim::setup(app, "beta", "beta.test").await;
    let b = browser();

    // /oauth2/authorize: an HTML page (the redirect_uri is not validated before the limit).
    let url = authorize_url(app, &client, &[]);
    for _ in 0..2 {
        assert_eq!(b.get(&url).send().await.unwrap().status().as_u16(), 302);
    }
    let r = b.get(&url).send().await.unwrap();
    let wait = retry_after(&r);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_page(r, 429, "rate_limited").await;
    app.clock.advance_secs(wait as i64);
    assert_eq!(b.get(&url).send().await.unwrap().status().as_u16(), 302, "allowed again after Retry-After");

    // /login/... and /sso/... pages: HTML.
    for _ in 0..2 {
        assert_eq!(b.get(app.url("/login/lgn_x")).send().await.unwrap().status().as_u16(), 404);
    }
    let r = b.post(app.url("/sso/oidc/callback")).form(&[("state", "x")]).send().await.unwrap();
    assert!(retry_after(&r) >= 1);
    assert_page(r, 429, "rate_limited").await;

    // /oauth2/token: OAuth JSON, per client_id (form or HTTP Basic).
    let token = |id: &'static str, basic: bool| {
        let mut r = app.http.post(app.url("/oauth2/token"));
        let mut form = vec![("grant_type", "authorization_code"), ("code", "x")];
        if basic {
            r = r.basic_auth(id, Some("wrong"));
        } else {
            form.push(("client_id", id));
        }
        r.form(&form).send()
    };
    assert_ne!(token("app-one", false).await.unwrap().status().as_u16(), 429);
    assert_ne!(token("app-one", true).await.unwrap().status().as_u16(), 429);
    let r = token("app-one", false).await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(retry_after(&r) >= 1);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "temporarily_unavailable", "{v}");
    assert!(v["error_description"].as_str().unwrap().contains("try again"));
    assert_ne!(token("app-two", false).await.unwrap().status().as_u16(), 429, "another client is not limited");
    // The form body read by the limit still reaches the handler intact.
    let r = token("app-two", false).await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "unknown client: invalid_client");

    // SCIM: the SCIM error schema, per token; tenant A's flood leaves tenant B alone.
    for _ in 0..2 {
        assert_eq!(scim_a.get("/Users").await.0, 200);
    }
    let ((s, v), h) = scim_a.req_h(Method::GET, "/Users", None, &[]).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    assert_eq!(v["status"], "429");
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert!(h["content-type"].to_str().unwrap().starts_with("application/scim+json"));
    assert_eq!(scim_b.get("/Users").await.0, 200, "tenant B's token is not limited by tenant A's flood");

    // Admin API: admin JSON, per key; the other key goes on.
    let (_, second) =
        fedgate::admin::auth::create_key(&app.state.db, "ci", app.clock.now_ms(), &fedgate::clock::SystemRng)
            .await
            .unwrap();
    let admin2 = || app.http.get(app.url("/admin/v1/tenants")).bearer_auth(&second).send();
    let mut last = None;
    for _ in 0..31 {
        let r = admin2().await.unwrap();
        if r.status().as_u16() == 429 {
            last = Some(r);
            break;
        }
    }
    let r = last.expect("the second key is limited after its burst");
    assert!(retry_after(&r) >= 1);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "rate_limited", "{v}");
    assert_eq!(v["request_id"], rid.as_str());
    assert_eq!(app.get("/tenants").await.0, 200, "the first key is not limited");

    let metrics = app.state.metrics.render(&[]);
    for l in ["authorize_per_ip", "pages_per_ip", "token_per_client", "scim_per_token", "admin_per_key"] {
        assert!(metrics.contains(&format!("fedgate_rate_limited_total{{limit=\"{l}\"}}")), "{l}: {metrics}");
    }
}

async fn acs_is_limited_per_tenant(app: &TestApp) {
    let a = saml_tenant(app, "flooded", "flooded.test", json!({})).await;
    let b_conn = saml_tenant(app, "quiet", "quiet.test", json!({})).await;
    let b = browser();
    let post = |url: String| b.post(url).header("content-type", "text/plain").body("junk").send();
    for _ in 0..2 {
        assert_eq!(post(a.acs_url.clone()).await.unwrap().status().as_u16(), 400);
    }
    let r = post(a.acs_url.clone()).await.unwrap();
    assert!(retry_after(&r) >= 1);
    assert_page(r, 429, "rate_limited").await;
    assert_eq!(post(b_conn.acs_url.clone()).await.unwrap().status().as_u16(), 400, "another tenant's ACS is open");
}

async fn forwarded_for_only_from_trusted_proxies(app: &TestApp) {
    let (client, _) = app.client("confidential", "ES256").await;
    let url = authorize_url(app, &client, &[]);
    let b = browser();
    let get = |xff: &'static str| b.get(&url).header("x-forwarded-for", xff).send();
    if app.state.config.rate_limits.trusted_proxies.is_empty() {
        // Spoofed X-Forwarded-For from an untrusted peer changes nothing: all of it is 127.0.0.1.
        assert_eq!(get("198.51.100.1").await.unwrap().status().as_u16(), 302);
        assert_eq!(get("198.51.100.2").await.unwrap().status().as_u16(), 302);
        assert_eq!(get("198.51.100.3").await.unwrap().status().as_u16(), 429);
    } else {
        // Behind a trusted proxy: each client has its own budget...
        for _ in 0..2 {
            assert_eq!(get("198.51.100.1").await.unwrap().status().as_u16(), 302);
        }
        assert_eq!(get("198.51.100.1").await.unwrap().status().as_u16(), 429);
        assert_eq!(get("198.51.100.2").await.unwrap().status().as_u16(), 302);
        // ...and entries left of the right-most untrusted one (client-supplied) do not count.
        assert_eq!(get("203.0.113.77, 198.51.100.1").await.unwrap().status().as_u16(), 429);
        // Trusted hops to the right are skipped.
        assert_eq!(get("198.51.100.1, 127.0.0.5").await.unwrap().status().as_u16(), 429);
    }
}

async fn defaults_let_a_login_wave_through(app: &TestApp) {
    // A morning wave behind one NAT address: 500 people start a sign-in within seconds.
    let (client, _) = app.client("confidential", "ES256").await;
    let url = authorize_url(app, &client, &[]);
    let b = browser();
    for i in 0..500 {
        let r = b.get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 302, "request {i}");
    }
}

with_config!(super::defaults => acs_junk_writes_nothing, oidc_callback_junk_writes_nothing, unrouted_logins_expire_quickly_and_are_pruned, defaults_let_a_login_wave_through);
with_config!(super::tiny => each_surface_answers_429_in_its_shape);
with_config!(super::tiny_acs => acs_is_limited_per_tenant);

mod trusted_proxy {
    use super::*;
    with_config!(super::behind_proxy => forwarded_for_only_from_trusted_proxies);
}
mod untrusted_peer {
    use super::*;
    with_config!(super::no_proxy => forwarded_for_only_from_trusted_proxies);
}
