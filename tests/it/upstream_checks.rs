//! Checks on what upstream identity providers answer: `prompt=login` and `max_age` are forwarded
//! and then held against the upstream's own authentication time (OIDC `auth_time`, SAML
//! `AuthnInstant`); error pages show our code and sentence, never xmlsec or OpenSSL text; a
//! metadata refresh is checked as strictly as the first import; webhooks scoped by tenant slug
//! fire.
use crate::common::*;
use crate::oidc_idp::{FixtureIdp as OidcIdp, Knobs};
use crate::saml_corpus::saml_idp::{post_form_fields, FixtureIdp, ResponseParams};
use fedgate::clock::Clock;
use serde_json::{json, Value};

const IDP: &str = "https://idp.fixture.test/saml";

/// The page's error code ("Error code <code>xyz</code>").
fn page_code(body: &str) -> String {
    body.split("Error code <code>").nth(1).and_then(|r| r.split("</code>").next()).unwrap_or_default().to_string()
}

async fn trace(app: &TestApp, login: &str) -> Value {
    let (s, t) = app.get(&format!("/logins/{login}")).await;
    assert_eq!(s, 200, "{t}");
    t
}

/// What a login ended with: the app redirect (code) or an error page.
struct Outcome {
    status: u16,
    location: String,
    body: String,
    login: String,
    /// The redirect that sent the browser upstream.
    upstream: String,
}

/// authorize -> fixture OIDC IdP -> callback.
async fn oidc_login(app: &TestApp, cid: &str, extra: &[(&str, &str)]) -> Outcome {
    let b = browser();
    let mut params = vec![("organization", "acme")];
    params.extend_from_slice(extra);
    let r = b.get(authorize_url(app, cid, &params)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let upstream = location(&r);
    let login = query_of(&upstream)["state"].clone();
    let r = b.get(&upstream).send().await.unwrap();
    let callback = location(&r);
    let r = b.get(&callback).send().await.unwrap();
    let status = r.status().as_u16();
    let location = location(&r);
    Outcome { status, location, body: r.text().await.unwrap_or_default(), login, upstream }
}

async fn id_token_claims(app: &TestApp, cid: &str, secret: &str, o: &Outcome) -> Value {
    assert_eq!(o.status, 303, "{}", o.body);
    let (s, tok) = exchange(app, cid, Some(secret), &query_of(&o.location)["code"]).await;
    assert_eq!(s, 200, "{tok}");
    verify_jwt(app, tok["id_token"].as_str().unwrap(), cid).await
}

async fn expect_reauth_failure(app: &TestApp, o: &Outcome) {
    assert_eq!(o.status, 502, "{}", o.body);
    assert_eq!(page_code(&o.body), "upstream_reauthentication_missing", "{}", o.body);
    let t = trace(app, &o.login).await;
    assert_eq!(t["status"], "failed");
    assert_eq!(t["error"]["code"], "upstream_reauthentication_missing", "{t}");
    assert!(!t["error"]["cause"].as_str().unwrap().is_empty() && !t["error"]["fix"].as_str().unwrap().is_empty());
}

/// The attack: an app asks for `prompt=login` (e.g. before a sensitive action) and the IdP
/// silently reuses a week-old session; before the fix fedgate only set a flag and believed it.
async fn oidc_prompt_login_and_max_age_are_forwarded_and_checked(app: &TestApp) {
    let idp = OidcIdp::start(Knobs { email: "alice@acme.test".into(), ..Knobs::default() }, 1).await.unwrap();
    let (s, t) = app.post("/tenants", json!({"name": "Acme", "slug": "acme", "domains": ["acme.test"]})).await;
    assert_eq!(s, 201, "{t}");
    let (s, c) = app.post("/tenants/acme/connections", idp.connection_body("Acme OIDC")).await;
    assert_eq!(s, 201, "{c}");
    let (cid, secret) = app.client("confidential", "ES256").await;
    let secret = secret.unwrap();
    let now = app.clock.now();
    let set_auth_time = |t: Option<i64>| {
        idp.set(|k| k.extra_claims = t.map_or(json!({}), |t| json!({"auth_time": t})));
    };

    // prompt=login goes upstream; a fresh authentication passes and becomes the session's time.
    set_auth_time(Some(now));
    let o = oidc_login(app, &cid, &[("prompt", "login")]).await;
    assert_eq!(query_of(&o.upstream).get("prompt").map(String::as_str), Some("login"), "{}", o.upstream);
    assert_eq!(id_token_claims(app, &cid, &secret, &o).await["auth_time"], now);
    // The IdP reused an hour-old session: refused, with its own code.
    set_auth_time(Some(now - 3600));
    expect_reauth_failure(app, &oidc_login(app, &cid, &[("prompt", "login")]).await).await;
    // ... or does not say when.
    set_auth_time(None);
    expect_reauth_failure(app, &oidc_login(app, &cid, &[("prompt", "login")]).await).await;

    // max_age goes upstream as max_age; the upstream time must be within it.
    set_auth_time(Some(now - 100));
    let o = oidc_login(app, &cid, &[("max_age", "300")]).await;
    assert_eq!(query_of(&o.upstream).get("max_age").map(String::as_str), Some("300"), "{}", o.upstream);
    assert!(!query_of(&o.upstream).contains_key("prompt"), "max_age alone does not force prompt=login");
    assert_eq!(id_token_claims(app, &cid, &secret, &o).await["auth_time"], now - 100, "the upstream's time");
    set_auth_time(Some(now - 1000));
    expect_reauth_failure(app, &oidc_login(app, &cid, &[("max_age", "300")]).await).await;
    set_auth_time(None);
    expect_reauth_failure(app, &oidc_login(app, &cid, &[("max_age", "300")]).await).await;

    // Neither asked: nothing is required, and the session's auth_time is the upstream's when
    // known, else now.
    let o = oidc_login(app, &cid, &[]).await;
    let at = id_token_claims(app, &cid, &secret, &o).await["auth_time"].as_i64().unwrap();
    assert!((now..=now + 2).contains(&at), "now (the manual clock ticks a millisecond per reading): {at}");
    set_auth_time(Some(now - 5000));
    let o = oidc_login(app, &cid, &[]).await;
    assert_eq!(id_token_claims(app, &cid, &secret, &o).await["auth_time"], now - 5000);
}

struct Saml {
    id: String,
    sp_entity_id: String,
    acs_url: String,
}

async fn saml_tenant(app: &TestApp, extra: Value) -> Saml {
    let (s, t) = app.post("/tenants", json!({"name": "Acme", "slug": "acme", "domains": ["acme.test"]})).await;
    assert_eq!(s, 201, "{t}");
    let idp = FixtureIdp::test(IDP).unwrap();
    let mut body = json!({"type": "saml", "name": "Fixture SAML",
        "metadata_xml": idp.metadata_xml(Some("https://idp.fixture.test/sso"), None)});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, c) = app.post("/tenants/acme/connections", body).await;
    assert_eq!(s, 201, "{c}");
    Saml {
        id: c["id"].as_str().unwrap().into(),
        sp_entity_id: c["sp_entity_id"].as_str().unwrap().into(),
        acs_url: c["acs_url"].as_str().unwrap().into(),
    }
}

fn authn_request_xml(redirect: &str) -> String {
    use base64::Engine;
    use std::io::Read;
    let deflated = base64::engine::general_purpose::STANDARD.decode(&query_of(redirect)["SAMLRequest"]).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice()).read_to_string(&mut xml).unwrap();
    xml
}

/// authorize (SAML connection) -> fixture IdP's answer with `authn_instant` -> ACS -> resume.
async fn saml_login(app: &TestApp, cid: &str, c: &Saml, extra: &[(&str, &str)], authn_instant: i64) -> Outcome {
    let b = browser();
    let mut params = vec![("connection", c.id.as_str())];
    params.extend_from_slice(extra);
    let r = b.get(authorize_url(app, cid, &params)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let upstream = location(&r);
    let login = query_of(&upstream)["RelayState"].clone();
    let mut p =
        ResponseParams::new(IDP, &c.sp_entity_id, &c.acs_url, Some(&login), "u-1", "alice@acme.test", app.clock.now());
    p.authn_instant = authn_instant;
    let form = post_form_fields(&FixtureIdp::test(IDP).unwrap().response(&p).unwrap());
    let r = b
        .post(&c.acs_url)
        .form(&[("SAMLResponse", form.as_str()), ("RelayState", login.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let r = b.get(location(&r)).send().await.unwrap();
    let status = r.status().as_u16();
    let location = location(&r);
    Outcome { status, location, body: r.text().await.unwrap_or_default(), login, upstream }
}

async fn saml_force_authn_and_authn_instant_are_checked(app: &TestApp) {
    let c = saml_tenant(app, json!({"trusted_email_domains": ["acme.test"]})).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let secret = secret.unwrap();
    let now = app.clock.now();
    // prompt=login: ForceAuthn in the AuthnRequest, and a fresh AuthnInstant.
    let o = saml_login(app, &cid, &c, &[("prompt", "login")], now).await;
    assert!(authn_request_xml(&o.upstream).contains("ForceAuthn=\"true\""));
    assert_eq!(id_token_claims(app, &cid, &secret, &o).await["auth_time"], now);
    // The IdP answered from an hour-old session despite ForceAuthn.
    expect_reauth_failure(app, &saml_login(app, &cid, &c, &[("prompt", "login")], now - 3600).await).await;
    // max_age: ForceAuthn too (SAML has no max_age), and the AuthnInstant must be within it.
    let o = saml_login(app, &cid, &c, &[("max_age", "600")], now - 300).await;
    assert!(authn_request_xml(&o.upstream).contains("ForceAuthn=\"true\""));
    assert_eq!(id_token_claims(app, &cid, &secret, &o).await["auth_time"], now - 300);
    expect_reauth_failure(app, &saml_login(app, &cid, &c, &[("max_age", "60")], now - 600).await).await;
    // Nothing asked: no ForceAuthn, and the AuthnInstant is the session's auth_time.
    let o = saml_login(app, &cid, &c, &[], now - 7200).await;
    assert!(!authn_request_xml(&o.upstream).contains("ForceAuthn"));
    assert_eq!(id_token_claims(app, &cid, &secret, &o).await["auth_time"], now - 7200);
}

/// A SAML response signed by a key the connection does not trust: the person's page has our
/// code and a fixed sentence, never xmlsec or OpenSSL text; the detail stays in the trace.
async fn saml_error_pages_show_no_library_text(app: &TestApp) {
    let c = saml_tenant(app, json!({})).await;
    let (cid, _) = app.client("confidential", "ES256").await;
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[("connection", c.id.as_str())])).send().await.unwrap();
    let login = query_of(&location(&r))["RelayState"].clone();
    let p =
        ResponseParams::new(IDP, &c.sp_entity_id, &c.acs_url, Some(&login), "u-1", "alice@acme.test", app.clock.now());
    let forged = post_form_fields(&FixtureIdp::untrusted(IDP).unwrap().response(&p).unwrap());
    let r = b
        .post(&c.acs_url)
        .form(&[("SAMLResponse", forged.as_str()), ("RelayState", login.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error() || r.status().is_server_error());
    let page = r.text().await.unwrap();
    assert_eq!(page_code(&page), "saml_signature_invalid", "{page}");
    assert_no_library_text(&page);
    // The administrator still gets the technical detail, bounded, in the trace.
    let t = trace(app, &login).await;
    let cause = t["error"]["cause"].as_str().unwrap();
    assert!(cause.contains("does not verify"), "{cause}");
    assert!(cause.chars().count() <= 1001, "bounded: {}", cause.len());

    // The same through the detached path (an IdP-initiated response, the connection allows them).
    let path = format!("/tenants/acme/connections/{}", c.id);
    let (s, v) = app
        .admin(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"idp_initiated": {"enabled": true, "client_id": cid, "initiate_login_uri": "http://127.0.0.1:9/start"}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let p = ResponseParams::new(IDP, &c.sp_entity_id, &c.acs_url, None, "u-1", "alice@acme.test", app.clock.now());
    let forged = post_form_fields(&FixtureIdp::untrusted(IDP).unwrap().response(&p).unwrap());
    let r = b.post(&c.acs_url).form(&[("SAMLResponse", forged.as_str())]).send().await.unwrap();
    let page = r.text().await.unwrap();
    assert_eq!(page_code(&page), "saml_signature_invalid", "{page}");
    assert_no_library_text(&page);
    // A malformed document (roxmltree's parser message) is not shown either.
    use base64::Engine;
    let broken = base64::engine::general_purpose::STANDARD
        .encode("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"><unclosed>");
    let r = b.post(&c.acs_url).form(&[("SAMLResponse", broken.as_str())]).send().await.unwrap();
    let page = r.text().await.unwrap();
    assert_eq!(page_code(&page), "saml_response_malformed", "{page}");
    assert!(!page.contains("unclosed") && !page.contains("expected"), "{page}");
}

fn assert_no_library_text(page: &str) {
    for needle in ["func=", "xmlSec", "xmlsec", "error:", "OpenSSL", "openssl", "lib(", "reason(", "does not verify"] {
        assert!(!page.contains(needle), "{needle:?} on the page: {page}");
    }
}

/// A metadata refresh is checked like the first import: an SSO URL that is not https (or has
/// no host, or is too long), or metadata without a signing certificate, changes nothing and is
/// reported like any failed refresh. (The test server runs in dev mode, which allows http as on
/// the first import; `metadata::tests::sso_urls_follow_the_import_rules` covers http without it.)
async fn metadata_refresh_is_checked_like_the_first_import(app: &TestApp) {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let doc = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let d = doc.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/md", listener.local_addr().unwrap().port());
    let server = HttpServer::new(move || {
        let d = d.clone();
        App::new().route(
            "/md",
            web::get().to(move || {
                let body = d.lock().unwrap().clone();
                async move { HttpResponse::Ok().content_type("application/samlmetadata+xml").body(body) }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    let idp = FixtureIdp::test(IDP).unwrap();
    let good = idp.metadata_xml(Some("https://idp.fixture.test/sso"), None);
    *doc.lock().unwrap() = good.clone();
    let (s, _) = app.post("/tenants", json!({"name": "Acme", "slug": "acme", "domains": ["acme.test"]})).await;
    assert_eq!(s, 201);
    let (s, c) =
        app.post("/tenants/acme/connections", json!({"type": "saml", "name": "Md", "metadata_url": url})).await;
    assert_eq!(s, 201, "{c}");
    let path = format!("/tenants/acme/connections/{}", c["id"].as_str().unwrap());
    let long = format!("https://idp.fixture.test/{}", "a".repeat(2100));
    let bad: Vec<(String, &str)> = vec![
        (good.replace("https://idp.fixture.test/sso", "javascript:alert(1)"), "https URL"),
        (good.replace("https://idp.fixture.test/sso", "https://:443/sso"), "not a URL"),
        (good.replace("https://idp.fixture.test/sso", &long), "2048"),
        (good.replace("use=\"signing\"", "use=\"encryption\""), "no signing certificate"),
    ];
    for (xml, why) in bad {
        *doc.lock().unwrap() = xml;
        let (s, e) = app.post(&format!("{path}/refresh-metadata"), json!({})).await;
        assert_eq!(s, 502, "{e}");
        assert_eq!(e["error"], "metadata_refresh_failed");
        assert!(e["message"].as_str().unwrap().contains(why), "{why}: {e}");
        let (_, v) = app.get(&path).await;
        assert_eq!(v["sso_url_redirect"], "https://idp.fixture.test/sso", "the old settings stay: {v}");
        assert_eq!(v["idp_certificates"].as_array().unwrap().len(), 1);
        assert!(v["warnings"].to_string().contains("metadata refresh failed"), "{v}");
    }
    // The scheduled refresh takes the same path.
    *doc.lock().unwrap() = good.replace("https://idp.fixture.test/sso", "javascript:alert(1)");
    app.clock.advance_secs(6 * 3600 + 1);
    app.state.maintenance().await.unwrap();
    let (_, v) = app.get(&path).await;
    assert_eq!(v["sso_url_redirect"], "https://idp.fixture.test/sso", "{v}");
    *doc.lock().unwrap() = good.replace("https://idp.fixture.test/sso", "https://idp.fixture.test/sso2");
    let (s, v) = app.post(&format!("{path}/refresh-metadata"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["sso_url_redirect"], "https://idp.fixture.test/sso2");
    assert_eq!(v["warnings"], json!([]));
    handle.stop(false).await;
}

/// A webhook endpoint created with a tenant slug used to store the slug, which no event carries:
/// it never fired. The slug is now resolved to the tenant id.
async fn webhook_scoped_by_slug_fires(app: &TestApp) {
    let (t, _) = app.tenant("acme", "acme.test", &[]).await;
    app.tenant("globex", "globex.test", &[]).await;
    let (s, w) = app.post("/webhooks", json!({"url": "http://127.0.0.1:9/hook", "tenant_id": "acme"})).await;
    assert_eq!(s, 201, "{w}");
    assert_eq!(w["tenant_id"], t["id"], "stored as the tenant id");
    let (s, w2) = app.post("/webhooks", json!({"url": "http://127.0.0.1:9/hook2", "tenant_id": "ACME"})).await;
    assert_eq!(s, 201, "{w2}");
    assert_eq!(w2["tenant_id"], t["id"]);
    let (s, e) = app.post("/webhooks", json!({"url": "http://127.0.0.1:9/hook", "tenant_id": "nope"})).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unknown_tenant")), "{e}");
    // An acme event is queued for the endpoint; a globex event is not.
    let (cid, _) = app.client("confidential", "ES256").await;
    code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    code_for(app, &browser(), &cid, &[("organization", "globex")]).await;
    use fedgate::store::entities::delivery;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let rows = delivery::Entity::find()
        .filter(delivery::Column::TargetId.eq(w["id"].as_str().unwrap()))
        .all(&app.state.db)
        .await
        .unwrap();
    assert!(!rows.is_empty(), "the slug-scoped endpoint receives its tenant's events");
    assert!(rows.iter().all(|r| r.ordering_key == t["id"].as_str().unwrap()), "and only those");
}

crate::both!(
    oidc_prompt_login_and_max_age_are_forwarded_and_checked,
    saml_force_authn_and_authn_instant_are_checked,
    saml_error_pages_show_no_library_text,
    metadata_refresh_is_checked_like_the_first_import,
    webhook_scoped_by_slug_fires
);
