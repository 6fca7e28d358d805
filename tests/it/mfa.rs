//! MFA the app can rely on (issue 15), end to end over HTTP on SQLite and PostgreSQL: the
//! tenant's policy and the connection's override, what fedgate asks the IdP (OIDC `acr_values` /
//! `claims`, SAML `RequestedAuthnContext`), what it reads (OIDC `amr` / `acr` from the verified
//! ID token only, SAML `AuthnContextClassRef` from the signed assertion), the failure code and the
//! trace's fix, `acr` / `amr` in tokens and across refresh, the app's step-up with `acr_values`,
//! and `max_age` re-authentication.
use crate::common::*;
use crate::oidc_idp::{FixtureIdp, Knobs};
use crate::saml::{post_acs, response, saml_tenant};
use fedgate::clock::Clock;
use serde_json::{json, Value};

const ACR_MFA: &str = "urn:fedgate:acr:mfa";
const ACR_BASIC: &str = "urn:fedgate:acr:basic";
const ACR_IDP: &str = "urn:fedgate:acr:mfa-idp-enforced";
const MULTIPLEAUTHN: &str = "http://schemas.microsoft.com/claims/multipleauthn";

/// `both!` with `allow_private_network` (the fixture OIDC IdP listens on 127.0.0.1).
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

both_private!(
    oidc_policy_met_tokens_carry_acr_and_amr,
    oidc_password_only_fails_with_code_and_fix,
    connection_override_off,
    okta_preset_asks_with_acr_values,
    google_needs_the_operators_word,
);
crate::both!(app_step_up_with_acr_values, max_age_forces_reauthentication, saml_requested_authn_context);

async fn oidc_tenant(app: &TestApp, slug: &str, knobs: Knobs, conn_extra: Value) -> (FixtureIdp, Value) {
    let domain = format!("{slug}.test");
    let idp = FixtureIdp::start(Knobs { email: format!("alice@{domain}"), ..knobs }, 1).await.unwrap();
    let (s, t) = app.post("/tenants", json!({"name": format!("{slug} Inc"), "slug": slug, "domains": [domain]})).await;
    assert_eq!(s, 201, "{t}");
    let mut body = idp.connection_body("IdP");
    for (k, v) in conn_extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, c) = app.post(&format!("/tenants/{slug}/connections"), body).await;
    assert_eq!(s, 201, "{c}");
    (idp, c)
}

async fn require_mfa(app: &TestApp, slug: &str) {
    let (s, t) = app
        .admin(reqwest::Method::PATCH, &format!("/tenants/{slug}"), Some(json!({"settings": {"mfa": "required"}})))
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["settings"]["mfa"], "required", "{t}");
}

/// What the browser ends with after authorize -> IdP -> callback.
struct End {
    status: u16,
    location: String,
    body: String,
    login_id: String,
    /// The query of fedgate's authorization request to the IdP.
    upstream: std::collections::HashMap<String, String>,
}

async fn run_oidc(app: &TestApp, b: &reqwest::Client, cid: &str, extra: &[(&str, &str)]) -> End {
    let r = b.get(authorize_url(app, cid, extra)).send().await.unwrap();
    let to_idp = location(&r);
    assert_eq!(r.status().as_u16(), 302, "{}", r.text().await.unwrap_or_default());
    if to_idp.starts_with(REDIRECT) {
        return End {
            status: 302,
            location: to_idp,
            body: String::new(),
            login_id: String::new(),
            upstream: Default::default(),
        };
    }
    let upstream = query_of(&to_idp);
    let r = b.get(&to_idp).send().await.unwrap();
    let callback = location(&r);
    let login_id = query_of(&callback)["state"].clone();
    let r = b.get(&callback).send().await.unwrap();
    let status = r.status().as_u16();
    let location = location(&r);
    End { status, location, body: r.text().await.unwrap_or_default(), login_id, upstream }
}

fn page_code(body: &str) -> String {
    body.split("Error code <code>").nth(1).and_then(|r| r.split("</code>").next()).unwrap_or_default().to_string()
}

async fn trace(app: &TestApp, id: &str) -> Value {
    let (s, t) = app.get(&format!("/logins/{id}")).await;
    assert_eq!(s, 200, "{t}");
    t
}

fn step<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["steps"].as_array().unwrap().iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("no {name} in {t}"))
}

async fn tokens(app: &TestApp, cid: &str, secret: Option<&str>, end: &End) -> (Value, Value, Value) {
    assert_eq!(end.status, 303, "{} {}", end.location, end.body);
    let (s, tok) = exchange(app, cid, secret, &query_of(&end.location)["code"]).await;
    assert_eq!(s, 200, "{tok}");
    let id = verify_jwt(app, tok["id_token"].as_str().unwrap(), cid).await;
    let at = verify_jwt(app, tok["access_token"].as_str().unwrap(), cid).await;
    (tok, id, at)
}

async fn oidc_policy_met_tokens_carry_acr_and_amr(app: &TestApp) {
    // The IdP reports MFA in the ID token; userinfo (unverified) says something else, ignored.
    let knobs = Knobs {
        amr: Some(vec!["pwd".into(), "mfa".into(), "otp".into()]),
        userinfo_extra: json!({"amr": ["pwd"], "acr": "userinfo-acr"}),
        ..Knobs::default()
    };
    let (idp, conn) = oidc_tenant(app, "acme", knobs, json!({"fetch_userinfo": true})).await;
    require_mfa(app, "acme").await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme")]).await;
    // Asked upstream: the generic preset asks for amr as an essential claim.
    let claims: Value = serde_json::from_str(&end.upstream["claims"]).unwrap();
    assert_eq!(claims, json!({"id_token": {"amr": {"essential": true}}}));
    assert!(!end.upstream.contains_key("acr_values"), "{:?}", end.upstream);
    assert_eq!(idp.last_authorize()["claims"], end.upstream["claims"]);
    let (tok, id, at) = tokens(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(id["acr"], ACR_MFA, "{id}");
    assert_eq!(id["amr"], json!(["pwd", "mfa", "otp"]), "{id}");
    assert_eq!(at["acr"], ACR_MFA, "{at}");
    assert_eq!(at["amr"], json!(["pwd", "mfa", "otp"]), "{at}");
    assert!(id["auth_time"].is_i64());
    // Refresh keeps them (from the session).
    let (s, r) = refresh(app, &cid, secret.as_deref(), tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{r}");
    let id2 = verify_jwt(app, r["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!((&id2["acr"], &id2["amr"]), (&id["acr"], &id["amr"]));
    let at2 = verify_jwt(app, r["access_token"].as_str().unwrap(), &cid).await;
    assert_eq!(at2["acr"], ACR_MFA);
    // The trace shows the check.
    let tr = trace(app, &end.login_id).await;
    assert_eq!(tr["status"], "completed", "{tr}");
    let checked = step(&tr, "mfa_checked");
    assert_eq!(checked["detail"]["acr"], ACR_MFA, "{checked}");
    assert_eq!(checked["detail"]["met"], true);
    assert_eq!(step(&tr, "mfa_required")["detail"]["policy"], true);
    // Discovery advertises the values.
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(d["acr_values_supported"], json!([ACR_BASIC, ACR_IDP, ACR_MFA]));
    assert!(d["claims_supported"].as_array().unwrap().contains(&json!("acr")));
    let _ = conn;
}

async fn oidc_password_only_fails_with_code_and_fix(app: &TestApp) {
    let knobs = Knobs { amr: Some(vec!["pwd".into()]), ..Knobs::default() };
    let (idp, conn) = oidc_tenant(app, "acme", knobs, json!({"fetch_userinfo": true})).await;
    require_mfa(app, "acme").await;
    let (cid, _) = app.client("confidential", "ES256").await;
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(end.status, 403, "{}", end.body);
    assert_eq!(page_code(&end.body), "mfa_required_not_met");
    assert!(end.body.contains("multi-factor"), "{}", end.body);
    assert!(end.body.contains("error=access_denied"), "the back link tells the app: {}", end.body);
    let tr = trace(app, &end.login_id).await;
    assert_eq!(tr["status"], "failed");
    assert_eq!(tr["error"]["code"], "mfa_required_not_met");
    let cause = tr["error"]["cause"].as_str().unwrap();
    assert!(cause.contains("amr [pwd]") && cause.contains(ACR_BASIC), "{cause}");
    let fix = tr["error"]["fix"].as_str().unwrap();
    assert!(fix.contains("Require MFA") && fix.contains(conn["id"].as_str().unwrap()), "{fix}");
    assert_eq!(step(&tr, "mfa_checked")["detail"]["met"], false);
    // amr and acr from userinfo (not signed by the IdP's ID token key) never count.
    idp.set(|k| {
        k.amr = None;
        k.userinfo_extra = json!({"amr": ["pwd", "mfa"], "acr": "https://refeds.org/profile/mfa"});
    });
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(page_code(&end.body), "mfa_required_not_met", "{}", end.body);
    let cause = trace(app, &end.login_id).await["error"]["cause"].as_str().unwrap().to_string();
    assert!(cause.contains("amr [fed], acr (none)"), "{cause}");
}

async fn connection_override_off(app: &TestApp) {
    let knobs = Knobs { amr: Some(vec!["pwd".into()]), ..Knobs::default() };
    let (idp, conn) = oidc_tenant(app, "acme", knobs, json!({})).await;
    require_mfa(app, "acme").await;
    let path = format!("/tenants/acme/connections/{}", conn["id"].as_str().unwrap());
    let (s, c) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"mfa": "off"}))).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["mfa"], "off", "{c}");
    let (cid, secret) = app.client("confidential", "ES256").await;
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert!(!end.upstream.contains_key("claims"), "not asked: {:?}", end.upstream);
    let (_, id, _) = tokens(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(id["acr"], ACR_BASIC);
    assert_eq!(id["amr"], json!(["pwd"]));
    // Back to inherit: the tenant's policy applies again.
    let (s, c) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"mfa": "inherit"}))).await;
    assert_eq!(s, 200, "{c}");
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(page_code(&end.body), "mfa_required_not_met");
    // And required on the connection of a tenant without the policy.
    let (s, _) = app.admin(reqwest::Method::PATCH, "/tenants/acme", Some(json!({"settings": {"mfa": "off"}}))).await;
    assert_eq!(s, 200);
    let (s, _) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"mfa": "required"}))).await;
    assert_eq!(s, 200);
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(page_code(&end.body), "mfa_required_not_met");
    idp.set(|k| k.amr = Some(vec!["pwd".into(), "otp".into()]));
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (_, id, _) = tokens(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(id["acr"], ACR_MFA, "two kinds of factor: {id}");
}

async fn okta_preset_asks_with_acr_values(app: &TestApp) {
    // Okta answers acr_values with the acr it met (amr says only pwd here).
    let knobs = Knobs { amr: Some(vec!["pwd".into()]), honour_acr_values: true, ..Knobs::default() };
    let (idp, _) =
        oidc_tenant(app, "acme", knobs, json!({"preset": "okta", "extra_auth_params": {"acr_values": "x"}})).await;
    require_mfa(app, "acme").await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(end.upstream["acr_values"], "urn:okta:loa:2fa:any", "the preset's value replaces extra_auth_params");
    assert!(!end.upstream.contains_key("claims"));
    let (_, id, _) = tokens(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(id["acr"], ACR_MFA, "{id}");
    // An IdP that ignores acr_values and reports pwd: refused, the fix names Okta's setting.
    idp.set(|k| k.honour_acr_values = false);
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(page_code(&end.body), "mfa_required_not_met");
    let fix = trace(app, &end.login_id).await["error"]["fix"].as_str().unwrap().to_string();
    assert!(fix.contains("urn:okta:loa:2fa:any") && fix.contains("Okta"), "{fix}");
}

async fn google_needs_the_operators_word(app: &TestApp) {
    let knobs = Knobs { extra_claims: json!({"hd": "acme.test"}), ..Knobs::default() };
    let (_idp, conn) = oidc_tenant(app, "acme", knobs, json!({"preset": "google"})).await;
    let path = format!("/tenants/acme/connections/{}", conn["id"].as_str().unwrap());
    // Google sends no MFA signal: requiring MFA on the connection is refused...
    let (s, e) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"mfa": "required"}))).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("mfa_unverifiable")), "{e}");
    // ...unless the operator vouches that Google enforces it.
    let (s, c) =
        app.admin(reqwest::Method::PATCH, &path, Some(json!({"mfa": "required", "mfa_enforced_by_idp": true}))).await;
    assert_eq!(s, 200, "{c}");
    let (cid, secret) = app.client("confidential", "ES256").await;
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert!(!end.upstream.contains_key("acr_values") && !end.upstream.contains_key("claims"));
    let (_, id, _) = tokens(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(id["acr"], ACR_IDP, "the operator's word, not the IdP's: {id}");
    assert_eq!(id["amr"], json!(["fed"]));
    // An app that needs verified MFA does not accept it.
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme"), ("acr_values", ACR_MFA)]).await;
    assert_eq!(query_of(&end.location)["error"], "unmet_authentication_requirements", "{}", end.location);
    // A tenant-wide policy on a connection with no signal fails closed at login.
    let (s, _) =
        app.admin(reqwest::Method::PATCH, &path, Some(json!({"mfa": "inherit", "mfa_enforced_by_idp": false}))).await;
    assert_eq!(s, 200);
    require_mfa(app, "acme").await;
    let end = run_oidc(app, &browser(), &cid, &[("organization", "acme")]).await;
    assert_eq!(page_code(&end.body), "mfa_required_not_met");
    let fix = trace(app, &end.login_id).await["error"]["fix"].as_str().unwrap().to_string();
    assert!(fix.contains("mfa_enforced_by_idp"), "{fix}");
}

async fn set_dev_amr(app: &TestApp, conn: &Value, amr: Value) {
    let path = format!("/tenants/acme/connections/{}", conn["id"].as_str().unwrap());
    let (s, c) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"amr": amr}))).await;
    assert_eq!(s, 200, "{c}");
}

async fn app_step_up_with_acr_values(app: &TestApp) {
    let (_, conn) = app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let b = browser();
    // A plain login: basic.
    let code = code_for(app, &b, &cid, &[("organization", "acme")]).await;
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &code).await;
    let id = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!((id["acr"].as_str(), &id["amr"]), (Some(ACR_BASIC), &json!(["user"])));
    // Unknown acr values are refused, not ignored.
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme"), ("acr_values", "mfa")])).send().await.unwrap();
    let q = query_of(&location(&r));
    assert_eq!(q["error"], "invalid_request", "{q:?}");
    // Step-up: the basic session is not reused; the dev page asserts no MFA -> the app is told.
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme"), ("acr_values", ACR_MFA)])).send().await.unwrap();
    let dev = location(&r);
    assert!(dev.contains("/sso/dev/"), "the session is below the level: {dev}");
    let r = b.post(&dev).form(&[("action", "approve")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let q = query_of(&location(&r));
    assert_eq!(q["error"], "unmet_authentication_requirements", "{q:?}");
    assert_eq!(q["state"], "st-123");
    let login_id = dev.rsplit('/').next().unwrap().to_string();
    let tr = trace(app, &login_id).await;
    assert_eq!(tr["error"]["code"], "mfa_required_not_met", "{tr}");
    assert!(tr["error"]["cause"].as_str().unwrap().contains("acr_values urn:fedgate:acr:mfa"), "{tr}");
    // With MFA asserted: the login reaches the level, and the session then answers step-up.
    set_dev_amr(app, &conn, json!(["pwd", "mfa"])).await;
    let code = code_for(app, &b, &cid, &[("organization", "acme"), ("acr_values", ACR_MFA)]).await;
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &code).await;
    let id = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!((id["acr"].as_str(), &id["amr"]), (Some(ACR_MFA), &json!(["pwd", "mfa"])));
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme"), ("acr_values", ACR_MFA)])).send().await.unwrap();
    assert!(location(&r).starts_with(REDIRECT), "an MFA session answers: {}", location(&r));
    // The tenant's policy applies to reused sessions too: a basic session is not reused.
    set_dev_amr(app, &conn, json!(["pwd"])).await;
    let b2 = browser();
    code_for(app, &b2, &cid, &[("organization", "acme")]).await;
    require_mfa(app, "acme").await;
    let r = b2.get(authorize_url(app, &cid, &[("organization", "acme")])).send().await.unwrap();
    assert!(location(&r).contains("/sso/dev/"), "{}", location(&r));
}

async fn max_age_forces_reauthentication(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let b = browser();
    let code = code_for(app, &b, &cid, &[("organization", "acme")]).await;
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &code).await;
    let first = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await["auth_time"].as_i64().unwrap();
    app.clock.advance_secs(600);
    // Without max_age the session answers, with the first auth_time.
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme")])).send().await.unwrap();
    let back = location(&r);
    assert!(back.starts_with(REDIRECT), "{back}");
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &query_of(&back)["code"]).await;
    assert_eq!(verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await["auth_time"], first);
    // max_age=300: the 600 s old session is not reused; a fresh sign-in, a new auth_time.
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme"), ("max_age", "300")])).send().await.unwrap();
    assert!(location(&r).contains("/sso/dev/"), "{}", location(&r));
    // The test clock moves 1 ms at every reading, so the sign-in may end in the next second:
    // auth_time lies between the clock before and after it.
    let before = app.clock.now();
    let code = code_for(app, &b, &cid, &[("organization", "acme"), ("max_age", "300")]).await;
    let after = app.clock.now();
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &code).await;
    let at = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await["auth_time"].as_i64().unwrap();
    assert!((before..=after).contains(&at), "re-authenticated now: {before} <= {at} <= {after}");
    assert!(at >= first + 600);
}

fn inflate(b64: &str) -> String {
    use base64::Engine;
    use std::io::Read;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(raw.as_slice()).read_to_string(&mut xml).unwrap();
    xml
}

/// authorize?connection= -> the AuthnRequest XML and the login id.
async fn saml_start(app: &TestApp, b: &reqwest::Client, cid: &str, conn: &str) -> (String, String) {
    let r = b.get(authorize_url(app, cid, &[("connection", conn)])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let q = query_of(&location(&r));
    (inflate(&q["SAMLRequest"]), q["RelayState"].clone())
}

async fn saml_requested_authn_context(app: &TestApp) {
    let conn = saml_tenant(app, "acme", "acme.test", json!({"preset": "adfs", "mfa": "required"})).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let b = browser();
    let (xml, login) = saml_start(app, &b, &cid, &conn.id).await;
    assert!(
        xml.contains(&format!("<samlp:RequestedAuthnContext Comparison=\"exact\"><saml:AuthnContextClassRef>{MULTIPLEAUTHN}</saml:AuthnContextClassRef></samlp:RequestedAuthnContext>")),
        "{xml}"
    );
    assert!(xml.find("NameIDPolicy").unwrap() < xml.find("RequestedAuthnContext").unwrap(), "schema order: {xml}");
    // The signed assertion says multipleauthn: MFA.
    let resp = response(&conn, Some(&login), app.clock.now(), |p| p.authn_context = MULTIPLEAUTHN.into());
    let r = post_acs(&b, &conn, &resp, &login).await;
    assert_eq!(r.status().as_u16(), 303);
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    let (s, tok) = exchange(app, &cid, secret.as_deref(), &query_of(&location(&r))["code"]).await;
    assert_eq!(s, 200, "{tok}");
    let id = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!((id["acr"].as_str(), &id["amr"]), (Some(ACR_MFA), &json!(["mfa"])), "{id}");
    // PasswordProtectedTransport: refused with the code, the trace's fix names AD FS.
    let b = browser();
    let (_, login) = saml_start(app, &b, &cid, &conn.id).await;
    let resp = response(&conn, Some(&login), app.clock.now(), |_| {});
    let r = post_acs(&b, &conn, &resp, &login).await;
    assert_eq!(r.status().as_u16(), 303);
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(page_code(&r.text().await.unwrap()), "mfa_required_not_met");
    let tr = trace(app, &login).await;
    assert!(tr["error"]["cause"].as_str().unwrap().contains("PasswordProtectedTransport"), "{tr}");
    assert!(tr["error"]["fix"].as_str().unwrap().contains("AD FS"), "{tr}");
    // Override off: no RequestedAuthnContext at all.
    let (s, c) = app
        .admin(reqwest::Method::PATCH, &format!("/tenants/acme/connections/{}", conn.id), Some(json!({"mfa": "off"})))
        .await;
    assert_eq!(s, 200, "{c}");
    let (xml, _) = saml_start(app, &browser(), &cid, &conn.id).await;
    assert!(!xml.contains("RequestedAuthnContext"), "{xml}");
}
