//! The operator console over real HTTP with a cookie jar, on SQLite and PostgreSQL: operators
//! sign in through fedgate's own login path (the operators' tenant's dev connection), read-only
//! operators and CSRF-less forms are refused with nothing written, customers' people never get
//! in, and "why can't they log in?" finds failed SAML logins, abandoned email pages and refused
//! authorization requests by email.
use crate::both;
use crate::common::*;
use crate::saml::{post_acs, response, saml_tenant};
use fedgate::clock::Clock;
use fedgate::store::entities::operator::OperatorRole;
use serde_json::json;

async fn bootstrap(app: &TestApp, email: &str, role: OperatorRole) {
    fedgate::console::bootstrap(&app.state, email, role).await.expect("bootstrap");
}

/// /console/login → authorize → the dev page of the operators' tenant → approve → callback.
/// Returns the browser and the callback's answer (status, body).
async fn sign_in_with(
    app: &TestApp,
    email: &str,
    tweak: impl FnOnce(String) -> String,
) -> (reqwest::Client, u16, String) {
    let b = browser();
    let r = b.get(app.url(&format!("/console/login?email={email}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let authorize = tweak(location(&r));
    assert!(authorize.contains("client_id=fedgate-console") && authorize.contains("code_challenge="), "{authorize}");
    let r = b.get(&authorize).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "{}", r.text().await.unwrap_or_default());
    let dev = location(&r);
    assert!(dev.contains("/sso/dev/"), "{dev}");
    let r = b.post(&dev).form(&[("action", "approve")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    let back = location(&r);
    assert!(back.starts_with(&app.url("/console/callback?")), "{back}");
    let r = b.get(&back).send().await.unwrap();
    let s = r.status().as_u16();
    (b, s, r.text().await.unwrap())
}

async fn sign_in(app: &TestApp, email: &str) -> reqwest::Client {
    let (b, s, body) = sign_in_with(app, email, |u| u).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("data-kind=\"signed_in\""), "{body}");
    b
}

async fn get(app: &TestApp, b: &reqwest::Client, path: &str) -> (u16, String) {
    let r = b.get(app.url(path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("a csrf field").to_string()
}

async fn post(app: &TestApp, b: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = b.post(app.url(path)).form(form).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

async fn audit_actors(app: &TestApp) -> Vec<(String, String)> {
    let (s, v) = app.get("/audit-log?limit=1000").await;
    assert_eq!(s, 200, "{v}");
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap().to_string(), e["action"].as_str().unwrap().to_string()))
        .collect()
}

async fn unauthenticated_is_sent_to_sign_in(app: &TestApp) {
    let b = browser();
    for path in ["/console", "/console/logins", "/console/audit", "/console/webhooks", "/console/events"] {
        let r = b.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303, "{path}");
        assert_eq!(location(&r), "/console/login", "{path}");
    }
    // Before bootstrap the sign-in says what to do.
    let (s, body) = get(app, &b, "/console/login").await;
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("console_not_set_up") && body.contains("fedgate console bootstrap"), "{body}");
    // A form without a session writes nothing.
    let (s, _) = post(app, &b, "/console/tenants", &[("name", "X"), ("slug", "x"), ("csrf", "x")]).await;
    assert_eq!(s, 401);
    assert_eq!(app.get("/tenants/x").await.0, 404);
    // The stylesheet is a file; console pages forbid inline code and framing.
    bootstrap(app, "ops@ops.test", OperatorRole::Full).await;
    let b = sign_in(app, "ops@ops.test").await;
    let r = b.get(app.url("/console")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(!csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let css = b.get(app.url("/console/assets/console.css")).send().await.unwrap();
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
}

async fn session_cookie_and_sign_out(app: &TestApp) {
    bootstrap(app, "ops@ops.test", OperatorRole::Full).await;
    let b = browser();
    let r = b.get(app.url("/console/login?email=ops@ops.test")).send().await.unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    let dev = location(&r);
    let r = b.post(&dev).form(&[("action", "approve")]).send().await.unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let set: Vec<String> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let session = set.iter().find(|c| c.starts_with("fedgate_console=")).expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict") && session.contains("Path=/"),
        "{session}"
    );
    let (s, page) = get(app, &b, "/console").await;
    assert_eq!(s, 200);
    assert!(page.contains("ops@ops.test"), "{page}");
    // The callback cannot be replayed (the sign-in cookie is gone, the code is used).
    let (s, _) = post(app, &b, "/console/logout", &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(s, 200);
    let r = b.get(app.url("/console")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "signed out");
    assert!(audit_actors(app).await.contains(&("operator:ops@ops.test".into(), "console.sign_in".into())));
}

async fn non_operator_is_refused(app: &TestApp) {
    bootstrap(app, "ops@ops.test", OperatorRole::Full).await;
    // eve is a user of the operators' tenant (its connection signs her in), not an operator.
    let (b, s, body) = sign_in_with(app, "eve@ops.test", |u| u).await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("operator_required"), "{body}");
    let r = b.get(app.url("/console")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "no session");
}

async fn customer_user_never_reaches_the_console(app: &TestApp) {
    bootstrap(app, "ops@ops.test", OperatorRole::Full).await;
    app.tenant("acme", "acme.test", &[]).await;
    // Even listed as an operator, a user of a customer tenant is not one.
    fedgate::store::operators::upsert(&app.state.db, "op_x", "alice@acme.test", OperatorRole::Full, app.clock.now())
        .await
        .unwrap();
    // The console's own sign-in, steered to the customer tenant: the code is valid, the
    // person is not an operator.
    let (b, s, body) =
        sign_in_with(app, "alice@acme.test", |u| u.replace("organization=fedgate-operators", "organization=acme"))
            .await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("operator_required"), "{body}");
    assert_eq!(b.get(app.url("/console")).send().await.unwrap().status().as_u16(), 303);
    // A customer's fedgate session does not carry over: the console's request names the
    // operators' tenant, so the person is sent to its sign-in instead.
    let (client, _) = app.client("confidential", "ES256").await;
    let c = browser();
    code_for(app, &c, &client, &[("organization", "acme")]).await;
    let r = c.get(app.url("/console/login")).send().await.unwrap();
    let r = c.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert!(location(&r).contains("/sso/dev/"), "not answered from the customer's session");
}

async fn read_only_operator_cannot_write(app: &TestApp) {
    bootstrap(app, "ro@ops.test", OperatorRole::ReadOnly).await;
    app.tenant("acme", "acme.test", &[]).await;
    let (s, tok) = app.post("/tenants/acme/scim-tokens", json!({"name": "Okta"})).await;
    assert_eq!(s, 201);
    let tok_id = tok["id"].as_str().unwrap().to_string();
    let b = sign_in(app, "ro@ops.test").await;
    let (s, page) = get(app, &b, "/console/tenants/acme").await;
    assert_eq!(s, 200);
    assert!(!page.contains("data-testid=\"tenant-form\"") && !page.contains("scim-token-revoke"), "no write forms");
    let csrf = csrf_of(&page);
    let before = audit_actors(app).await;
    let writes: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/console/tenants".into(), vec![("name", "New"), ("slug", "new"), ("domains", "new.test")]),
        ("/console/tenants/acme".into(), vec![("name", "Renamed"), ("slug", "acme"), ("domains", "acme.test")]),
        ("/console/tenants/acme/scim-tokens".into(), vec![("name", "x")]),
        (format!("/console/tenants/acme/scim-tokens/{tok_id}/revoke"), vec![]),
        ("/console/deliveries/dlv_x/replay".into(), vec![]),
        ("/console/tenants/acme/setup-links".into(), vec![("intent_sso", "on")]),
    ];
    for (path, mut form) in writes {
        form.push(("csrf", &csrf));
        let (s, body) = post(app, &b, &path, &form).await;
        assert_eq!(s, 403, "{path}: {body}");
        assert!(body.contains("operator_read_only") && body.contains("read-only operator"), "{path}: {body}");
    }
    assert_eq!(app.get("/tenants/new").await.0, 404);
    let (_, t) = app.get("/tenants/acme").await;
    assert_eq!(t["name"], "acme Inc");
    let (_, toks) = app.get("/tenants/acme/scim-tokens").await;
    assert_eq!(toks["data"].as_array().unwrap().len(), 1);
    assert!(toks["data"][0]["revoked_at"].is_null());
    assert_eq!(audit_actors(app).await, before, "nothing audited, nothing written");
    // Reading is fine.
    for path in ["/console", "/console/logins", "/console/audit", "/console/webhooks", "/console/events"] {
        assert_eq!(get(app, &b, path).await.0, 200, "{path}");
    }
}

async fn forms_need_their_csrf_token_and_writes_are_audited(app: &TestApp) {
    bootstrap(app, "ops@ops.test", OperatorRole::Full).await;
    let b = sign_in(app, "ops@ops.test").await;
    let (_, page) = get(app, &b, "/console").await;
    let csrf = csrf_of(&page);
    let form = [("name", "Globex"), ("slug", "globex"), ("domains", "globex.test\nglobex.example")];
    let (s, body) = post(app, &b, "/console/tenants", &form).await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("csrf_token_invalid"), "{body}");
    let mut bad = form.to_vec();
    bad.push(("csrf", "forged"));
    assert_eq!(post(app, &b, "/console/tenants", &bad).await.0, 403);
    assert_eq!(app.get("/tenants/globex").await.0, 404, "nothing written");
    let mut good = form.to_vec();
    good.push(("csrf", &csrf));
    let r = b.post(app.url("/console/tenants")).form(&good).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(location(&r), "/console/tenants/globex?notice=created");
    let (_, t) = app.get("/tenants/globex").await;
    assert_eq!(t["domains"], json!(["globex.example", "globex.test"]));
    // Validation errors come from the admin API's own rules, next to the form.
    let mut dup = good.clone();
    dup[1] = ("slug", "globex");
    let (s, body) = post(app, &b, "/console/tenants", &dup).await;
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("data-testid=\"write-error\""), "{body}");
    // Edit, SCIM token shown once, revoke.
    let edit = [("name", "Globex Corp"), ("slug", "globex"), ("domains", "globex.test"), ("csrf", &csrf)];
    assert_eq!(post(app, &b, "/console/tenants/globex", &edit).await.0, 303);
    let (s, body) = post(app, &b, "/console/tenants/globex/scim-tokens", &[("name", "Okta"), ("csrf", &csrf)]).await;
    assert_eq!(s, 201, "{body}");
    let token = body.split("data-testid=\"scim-token-value\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(token.starts_with("fgscim_") || token.len() > 30, "{token}");
    let (_, again) = get(app, &b, "/console/tenants/globex").await;
    assert!(!again.contains(&token), "shown once");
    let (_, toks) = app.get("/tenants/globex/scim-tokens").await;
    let id = toks["data"][0]["id"].as_str().unwrap().to_string();
    let r = post(app, &b, &format!("/console/tenants/globex/scim-tokens/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(r.0, 303);
    let (_, toks) = app.get("/tenants/globex/scim-tokens").await;
    assert!(toks["data"][0]["revoked_at"].is_string());
    let actions: Vec<String> =
        audit_actors(app).await.into_iter().filter(|(a, _)| a == "operator:ops@ops.test").map(|(_, act)| act).collect();
    for want in ["tenant.create", "tenant.update", "scim_token.create", "scim_token.revoke"] {
        assert!(actions.contains(&want.to_string()), "{want} in {actions:?}");
    }
    // The audit page filters by actor.
    let (s, page) = get(app, &b, "/console/audit?actor=operator%3Aops%40ops.test&action=tenant.").await;
    assert_eq!(s, 200);
    assert!(
        page.contains("tenant.create") && page.contains("tenant.update") && !page.contains("scim_token.create"),
        "{page}"
    );
}

async fn trace_search_finds_a_failed_saml_login_by_email(app: &TestApp) {
    bootstrap(app, "ops@ops.test", OperatorRole::ReadOnly).await;
    let conn = saml_tenant(app, "samlco", "samlco.test", json!({})).await;
    let (client, _) = app.client("confidential", "ES256").await;
    let person = browser();
    let r = person
        .get(authorize_url(app, &client, &[("connection", &conn.id), ("login_hint", "Alice@samlco.test")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let login = query_of(&location(&r))["RelayState"].clone();
    let bad = response(&conn, Some(&login), app.clock.now(), |p| p.audience = Some("https://other.test/sp".into()));
    let r = post_acs(&person, &conn, &bad, &login).await;
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains(&login), "the error page shows the trace id");

    let b = sign_in(app, "ops@ops.test").await;
    let (s, page) = get(app, &b, "/console/logins?email=alice%40samlco.test&status=failed&tenant=samlco").await;
    assert_eq!(s, 200);
    assert!(page.contains(&format!("data-trace-id=\"{login}\"")), "{page}");
    assert!(page.contains("Wrong audience"), "the cause at a glance: {page}");
    // Searching by the trace id from the error page opens it.
    let r = b.get(app.url(&format!("/console/logins?id={login}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let (s, trace) = get(app, &b, &location(&r)).await;
    assert_eq!(s, 200);
    assert!(trace.contains("saml_audience_mismatch") && trace.contains("data-testid=\"trace-cause\""), "{trace}");
    assert!(trace.contains("data-testid=\"trace-fix\"") && trace.contains("saml_request_sent"), "{trace}");
    // The connection's health shows the failure.
    let (_, t) = get(app, &b, "/console/tenants/samlco").await;
    assert!(t.contains("saml_audience_mismatch") && t.contains(&login), "{t}");
    // Other filters exclude it.
    let (_, none) = get(app, &b, "/console/logins?email=bob%40samlco.test").await;
    assert!(!none.contains(&login));
    let (_, none) = get(app, &b, "/console/logins?email=alice%40samlco.test&status=completed").await;
    assert!(!none.contains(&login));
    let (_, day) = get(app, &b, "/console/logins?tenant=samlco&from=1970-01-01&until=2999-12-31").await;
    assert!(day.contains(&login));
}

async fn abandoned_email_page_and_authorize_refusals_leave_traces(app: &TestApp) {
    bootstrap(app, "ops@ops.test", OperatorRole::Full).await;
    let (client, _) = app.client("public", "ES256").await;
    // 1. The person reaches the email page, types an address no tenant has, and gives up.
    let person = browser();
    let r = person.get(authorize_url(app, &client, &[])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let page = location(&r);
    assert!(page.contains("/login/lgn_"), "{page}");
    let login = page.rsplit('/').next().unwrap().to_string();
    assert_eq!(person.get(&page).send().await.unwrap().status().as_u16(), 200);
    let r = person.post(&page).form(&[("email", "Carol@Unknown.test")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    app.clock.advance_secs(app.state.config.tokens.unrouted_login_ttl + 5);
    app.state.maintenance().await.unwrap();
    let (s, tr) = app.get(&format!("/logins/{login}")).await;
    assert_eq!(s, 200, "the abandoned login left its trace: {tr}");
    assert_eq!(tr["status"], "abandoned", "{tr}");
    assert_eq!(tr["email"], "carol@unknown.test", "{tr}");
    let steps: Vec<&str> = tr["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert!(steps.contains(&"email_page_shown") && steps.contains(&"email_submitted"), "{steps:?}");

    // 2. Refused at authorize, attributable: a known client with a bad redirect_uri (the page
    // shows the trace id), and a valid redirect with a bad request (missing PKCE).
    let r = person
        .get(
            authorize_url(app, &client, &[("login_hint", "dave@unknown.test")])
                .replace("127.0.0.1%3A9%2Fcb", "evil.test%2Fcb"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("invalid_redirect_uri"), "{body}");
    let trace_id =
        body.split("Trace <code>").nth(1).and_then(|r| r.split('<').next()).expect("trace id on the page").to_string();
    let (s, tr) = app.get(&format!("/logins/{trace_id}")).await;
    assert_eq!(s, 200, "{tr}");
    assert_eq!(tr["error"]["code"], "invalid_redirect_uri");
    assert_eq!(tr["email"], "dave@unknown.test");
    let url = authorize_url(app, &client, &[("login_hint", "erin@unknown.test")])
        .replace("&code_challenge_method=S256", "")
        .replace(&format!("&code_challenge={CHALLENGE}"), "");
    let r = person.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert!(location(&r).contains("error=invalid_request"));

    let b = sign_in(app, "ops@ops.test").await;
    let (_, found) = get(app, &b, "/console/logins?email=erin%40unknown.test").await;
    assert!(found.contains("data-testid=\"trace-row\"") && found.contains("invalid_request"), "{found}");
    assert!(found.contains("sign-in request was refused"), "{found}");
    let (_, found) = get(app, &b, "/console/logins?email=carol%40unknown.test&status=abandoned").await;
    assert!(found.contains(&login) && found.contains("Abandoned"), "{found}");

    // 3. Not attributable: an unknown client leaves nothing.
    let before = fedgate::store::traces::search(
        &app.state.db,
        &Default::default(),
        fedgate::store::page::PageRequest { cursor: None, limit: 1000 },
    )
    .await
    .unwrap()
    .rows
    .len();
    for _ in 0..5 {
        let r = person.get(authorize_url(app, "cli_unknown", &[])).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
    }
    let after = fedgate::store::traces::search(
        &app.state.db,
        &Default::default(),
        fedgate::store::page::PageRequest { cursor: None, limit: 1000 },
    )
    .await
    .unwrap()
    .rows
    .len();
    assert_eq!(before, after);
}

async fn events_webhooks_and_replay(app: &TestApp) {
    bootstrap(app, "ops@ops.test", OperatorRole::Full).await;
    let (s, wh) = app.post("/webhooks", json!({"url": "http://127.0.0.1:9/hook", "event_types": ["login.*"]})).await;
    assert_eq!(s, 201, "{wh}");
    let wid = wh["id"].as_str().unwrap().to_string();
    // The operator's own sign-in emits login.succeeded: one delivery to the endpoint.
    let b = sign_in(app, "ops@ops.test").await;
    let (s, page) = get(app, &b, "/console/events").await;
    assert_eq!(s, 200);
    assert!(page.contains("data-testid=\"events-table\""), "{page}");
    // On PostgreSQL the events list shows only transactions older than the oldest running one
    // in the cluster (docs/architecture.md), which other tests' transactions may hold back.
    if app.backend == Backend::Sqlite {
        assert!(page.contains("login.succeeded"), "{page}");
    }
    let (s, page) = get(app, &b, "/console/webhooks").await;
    assert_eq!(s, 200);
    assert!(page.contains(&format!("/console/webhooks/{wid}")), "{page}");
    let (s, page) = get(app, &b, &format!("/console/webhooks/{wid}")).await;
    assert_eq!(s, 200);
    let did =
        page.split("data-delivery-id=\"").nth(1).and_then(|r| r.split('"').next()).expect("a delivery").to_string();
    let csrf = csrf_of(&page);
    let r = b
        .post(app.url(&format!("/console/deliveries/{did}/replay")))
        .form(&[("csrf", csrf.as_str()), ("webhook", wid.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(location(&r), format!("/console/webhooks/{wid}?notice=replayed"));
    assert!(audit_actors(app).await.contains(&("operator:ops@ops.test".into(), "delivery.replay".into())));
    let (s, _) = post(app, &b, "/console/deliveries/dlv_none/replay", &[("csrf", &csrf)]).await;
    assert_eq!(s, 404);
}

/// The operator creates a setup link for a tenant (shown once), the link opens the tenant's
/// portal, and revoking it from the console ends it.
async fn operator_creates_and_revokes_setup_links(app: &TestApp) {
    bootstrap(app, "ops@ops.test", OperatorRole::Full).await;
    app.tenant("acme", "acme.test", &[]).await;
    let b = sign_in(app, "ops@ops.test").await;
    let (_, page) = get(app, &b, "/console/tenants/acme").await;
    assert!(page.contains("data-testid=\"setup-link-form\""), "a full operator sees the form");
    let csrf = csrf_of(&page);
    let (s, page) = post(
        app,
        &b,
        "/console/tenants/acme/setup-links",
        &[("csrf", &csrf), ("intent_sso", "on"), ("intent_scim", "on"), ("expires_days", "3")],
    )
    .await;
    assert_eq!(s, 201, "{page}");
    let url = page
        .split("data-testid=\"setup-link-url\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("the link is shown once")
        .to_string();
    assert!(url.starts_with(&app.url("/setup/")), "{url}");
    // The link opens the portal's landing page; the list never shows the token again.
    let landing = reqwest::get(&url).await.unwrap();
    assert_eq!(landing.status().as_u16(), 200);
    let (_, again) = get(app, &b, "/console/tenants/acme").await;
    let token = url.rsplit('/').next().unwrap();
    assert!(!again.contains(token), "the list never shows the link again");
    let (_, links) = app.get("/tenants/acme/setup-links").await;
    let link = &links["data"][0];
    assert_eq!(link["intents"], json!(["sso", "scim"]));
    assert!(link["created_by"].as_str().unwrap().contains("ops@ops.test"), "{link}");
    // A lifetime outside 1..30 days is refused with the reason.
    let (s, body) = post(
        app,
        &b,
        "/console/tenants/acme/setup-links",
        &[("csrf", &csrf), ("intent_sso", "on"), ("expires_days", "90")],
    )
    .await;
    assert_eq!(s, 400, "{body}");
    // Revoked from the console: the link stops opening the portal.
    let id = link["id"].as_str().unwrap();
    let (s, _) = post(app, &b, &format!("/console/tenants/acme/setup-links/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(s, 303);
    let dead = reqwest::get(&url).await.unwrap();
    assert_eq!(dead.status().as_u16(), 410);
    let actions: Vec<String> = audit_actors(app).await.into_iter().map(|(_, a)| a).collect();
    assert!(actions.contains(&"setup_link.create".into()) && actions.contains(&"setup_link.revoke".into()));
}

both!(
    operator_creates_and_revokes_setup_links,
    unauthenticated_is_sent_to_sign_in,
    events_webhooks_and_replay,
    session_cookie_and_sign_out,
    non_operator_is_refused,
    customer_user_never_reaches_the_console,
    read_only_operator_cannot_write,
    forms_need_their_csrf_token_and_writes_are_audited,
    trace_search_finds_a_failed_saml_login_by_email,
    abandoned_email_page_and_authorize_refusals_leave_traces,
);
