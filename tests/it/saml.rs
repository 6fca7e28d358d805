//! SAML connections end to end over HTTP, on SQLite and PostgreSQL: admin API (metadata XML,
//! manual fields, refusal without a signing certificate), SP metadata, an SP-initiated login
//! through the fixture IdP to a token, the browser binding at the ACS, replay across instances,
//! tenant isolation, IdP-initiated refusal, metadata refresh with certificate rotation and its
//! events.
use crate::both;
use crate::common::*;
use crate::saml_corpus::saml_idp::{post_form_fields, Encrypt, FixtureIdp, ResponseParams, Sign};
use fedgate::clock::Clock;
use serde_json::{json, Value};

pub(crate) const IDP: &str = "https://idp.fixture.test/saml";

pub(crate) struct Conn {
    pub domain: String,
    pub tenant_id: String,
    pub id: String,
    pub sp_entity_id: String,
    pub acs_url: String,
    pub sp_cert: String,
}

pub(crate) async fn saml_tenant(app: &TestApp, slug: &str, domain: &str, extra: Value) -> Conn {
    let (s, t) = app.post("/tenants", json!({"name": format!("{slug} Inc"), "slug": slug, "domains": [domain]})).await;
    assert_eq!(s, 201, "{t}");
    let idp = FixtureIdp::test(IDP).unwrap();
    let mut body = json!({
        "type": "saml", "name": "Fixture SAML",
        "metadata_xml": idp.metadata_xml(Some("https://idp.fixture.test/sso"), Some("https://idp.fixture.test/sso-post")),
        "trusted_email_domains": [domain],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, c) = app.post(&format!("/tenants/{slug}/connections"), body).await;
    assert_eq!(s, 201, "{c}");
    Conn {
        domain: domain.into(),
        tenant_id: c["tenant_id"].as_str().unwrap().into(),
        id: c["id"].as_str().unwrap().into(),
        sp_entity_id: c["sp_entity_id"].as_str().unwrap().into(),
        acs_url: c["acs_url"].as_str().unwrap().into(),
        sp_cert: c["sp_certificate"].as_str().unwrap().into(),
    }
}

/// authorize?connection= → the IdP redirect; returns the login id (the AuthnRequest ID and
/// RelayState).
pub(crate) async fn start(app: &TestApp, b: &reqwest::Client, client_id: &str, conn: &Conn) -> String {
    let r = b.get(authorize_url(app, client_id, &[("connection", &conn.id)])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    redirect_login_id(&location(&r))
}

/// The login id from the HTTP-Redirect binding URL, checking the request is signed.
fn redirect_login_id(to: &str) -> String {
    assert!(to.starts_with("https://idp.fixture.test/sso?"), "{to}");
    let q = query_of(to);
    assert!(q.contains_key("SAMLRequest") && q.contains_key("Signature"), "signed redirect binding: {to}");
    assert_eq!(q.get("SigAlg").map(String::as_str), Some("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"));
    q["RelayState"].clone()
}

pub(crate) fn response(conn: &Conn, login: Option<&str>, now: i64, tweak: impl FnOnce(&mut ResponseParams)) -> String {
    let idp = FixtureIdp::test(IDP).unwrap();
    let email = format!("alice@{}", conn.domain);
    let mut p = ResponseParams::new(IDP, &conn.sp_entity_id, &conn.acs_url, login, "u-1001", &email, now);
    p.attributes.push(("groups".into(), vec!["eng".into(), "ops".into()]));
    tweak(&mut p);
    post_form_fields(&idp.response(&p).unwrap())
}

pub(crate) async fn post_acs(b: &reqwest::Client, conn: &Conn, saml_response: &str, relay: &str) -> reqwest::Response {
    b.post(&conn.acs_url).form(&[("SAMLResponse", saml_response), ("RelayState", relay)]).send().await.unwrap()
}

pub(crate) fn page_code(body: &str) -> String {
    body.split("Error code <code>").nth(1).and_then(|r| r.split("</code>").next()).unwrap_or_default().to_string()
}

async fn failed_codes(app: &TestApp, slug: &str) -> Vec<String> {
    let (s, v) = app.get(&format!("/tenants/{slug}/logins?status=failed")).await;
    assert_eq!(s, 200, "{v}");
    v["data"].as_array().unwrap().iter().map(|t| t["error"]["code"].as_str().unwrap_or_default().to_string()).collect()
}

async fn sp_initiated_login_to_token(app: &TestApp) {
    let conn = saml_tenant(app, "acme", "acme.test", json!({})).await;
    let (client, secret) = app.client("confidential", "ES256").await;
    // SP metadata: our entity ID, ACS and certificate, for pasting into the IdP.
    let md = app.http.get(&conn.sp_entity_id).send().await.unwrap();
    assert_eq!(md.status().as_u16(), 200);
    assert!(md.headers()["content-type"].to_str().unwrap().starts_with("application/samlmetadata+xml"));
    let md = md.text().await.unwrap();
    assert!(md.contains(&format!("entityID=\"{}\"", conn.sp_entity_id)) && md.contains(&conn.acs_url), "{md}");
    let body: String = conn.sp_cert.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(md.contains(&body));

    let b = browser();
    let login = start(app, &b, &client, &conn).await;
    assert!(login.starts_with("lgn_"));
    let r = post_acs(&b, &conn, &response(&conn, Some(&login), app.clock.now(), |_| {}), &login).await;
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let resume = location(&r);
    assert!(resume.starts_with(&app.url(&format!("/sso/saml/resume?login={login}&h=fgh_"))), "{resume}");
    // The ACS POST is cross-site: the same response in a browser without the binding cookie
    // cannot finish this login (and the replay cache refuses it anyway).
    let stranger = browser();
    let r = stranger.get(&resume).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(page_code(&r.text().await.unwrap()), "login_binding_mismatch");
    let r = b.get(&resume).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let back = location(&r);
    let q = query_of(&back);
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"));
    let (s, tok) = exchange(app, &client, secret.as_deref(), &q["code"]).await;
    assert_eq!(s, 200, "{tok}");
    let claims = verify_jwt(app, tok["id_token"].as_str().unwrap(), &client).await;
    assert_eq!(claims["email"], "alice@acme.test");
    assert_eq!(claims["email_verified"], true, "trusted_email_domains");
    assert_eq!(claims["connection_id"], conn.id.as_str(), "{claims}");
    assert_eq!(claims["groups"], json!(["eng", "ops"]), "{claims}");
    // The trace tells the story.
    let (s, tr) = app.get(&format!("/logins/{login}")).await;
    assert_eq!(s, 200);
    let steps: Vec<&str> = tr["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    for want in ["saml_request_sent", "saml_response_validated", "claims_mapped", "browser_returned", "code_issued"] {
        assert!(steps.contains(&want), "{want} missing in {steps:?}");
    }
    assert_eq!(tr["status"], "completed", "{tr}");
}

/// `trusted_email_domains` on a SAML connection cannot vouch for an address outside the
/// tenant's domains: with allow_email_outside_domains the login works, and the token says
/// `email_verified: false`; an address in the tenant's domain stays verified.
async fn trusted_email_domains_cannot_vouch_outside_the_tenant(app: &TestApp) {
    let conn =
        saml_tenant(app, "acme", "acme.test", json!({"trusted_email_domains": ["acme.test", "victim.example"]})).await;
    let (s, v) = app
        .admin(
            reqwest::Method::PATCH,
            "/tenants/acme",
            Some(json!({"settings": {"allow_email_outside_domains": true}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (client, secret) = app.client("confidential", "ES256").await;
    for (email, verified) in [("ceo@victim.example", false), ("alice@acme.test", true)] {
        let b = browser();
        let login = start(app, &b, &client, &conn).await;
        let resp = response(&conn, Some(&login), app.clock.now(), |p| {
            p.name_id = Some(format!("u-{email}"));
            p.attributes[0] = ("email".into(), vec![email.into()]);
        });
        let r = post_acs(&b, &conn, &resp, &login).await;
        assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
        let r = b.get(location(&r)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
        let (s, tok) = exchange(app, &client, secret.as_deref(), &query_of(&location(&r))["code"]).await;
        assert_eq!(s, 200, "{tok}");
        let c = verify_jwt(app, tok["id_token"].as_str().unwrap(), &client).await;
        assert_eq!((c["email"].as_str(), c["email_verified"].as_bool()), (Some(email), Some(verified)), "{c}");
    }
}

async fn encrypted_assertion_and_required_encryption(app: &TestApp) {
    let conn = saml_tenant(app, "enc", "enc.test", json!({"require_encrypted_assertions": true})).await;
    let (client, _) = app.client("confidential", "ES256").await;
    let b = browser();
    let login = start(app, &b, &client, &conn).await;
    // A plain (signed) assertion is refused when encryption is required.
    let r = post_acs(&b, &conn, &response(&conn, Some(&login), app.clock.now(), |_| {}), &login).await;
    assert_eq!(page_code(&r.text().await.unwrap()), "saml_encryption_required");
    let login = start(app, &b, &client, &conn).await;
    let sp_cert = conn.sp_cert.clone();
    let enc = response(&conn, Some(&login), app.clock.now(), |p| {
        p.sign = Sign::Assertion;
        p.encrypt = Some(Encrypt::to(&sp_cert));
    });
    let r = post_acs(&b, &conn, &enc, &login).await;
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let r = b.get(location(&r)).send().await.unwrap();
    let to = location(&r);
    assert!(to.starts_with(REDIRECT), "{to} {}", r.text().await.unwrap());
}

async fn each_check_has_its_code(app: &TestApp) {
    let conn = saml_tenant(app, "neg", "neg.test", json!({})).await;
    let (client, _) = app.client("confidential", "ES256").await;
    let b = browser();
    let now = app.clock.now();
    type Tweak = Box<dyn FnOnce(&mut ResponseParams)>;
    let cases: Vec<(&str, Tweak)> = vec![
        ("saml_signature_missing", Box::new(|p| p.sign = Sign::None)),
        ("saml_audience_mismatch", Box::new(|p| p.audience = Some("https://other.test/sp".into()))),
        ("saml_recipient_mismatch", Box::new(|p| p.recipient = Some("https://evil.test/acs".into()))),
        ("saml_destination_mismatch", Box::new(|p| p.destination = Some("https://evil.test/acs".into()))),
        ("saml_expired", Box::new(|p| p.shift_times(-3600))),
        ("saml_not_yet_valid", Box::new(|p| p.shift_times(3600))),
        ("saml_issuer_mismatch", Box::new(|p| p.assertion_issuer = "https://evil.test".into())),
    ];
    for (code, tweak) in cases {
        let login = start(app, &b, &client, &conn).await;
        let r = post_acs(&b, &conn, &response(&conn, Some(&login), now, tweak), &login).await;
        // Refused; the sign-in stays open (the InResponseTo that chose it is unsigned).
        assert_eq!(r.status().as_u16(), 400, "{code}");
        let body = r.text().await.unwrap();
        assert_eq!(page_code(&body), code, "{body}");
        assert!(body.contains(&login), "the page shows the trace id");
        let (_, tr) = app.get(&format!("/logins/{login}")).await;
        assert_eq!(tr["error"]["code"], code, "{tr}");
        assert!(tr["error"]["fix"].as_str().is_some_and(|f| !f.is_empty()));
    }
    // A response to another (unknown) request, and an unsolicited one: anyone can post these,
    // so they are counted, not stored (tests/it/limits.rs).
    let r = post_acs(&b, &conn, &response(&conn, Some("lgn_00000000000000000000000000"), now, |_| {}), "").await;
    assert_eq!(page_code(&r.text().await.unwrap()), "saml_in_response_to_mismatch");
    let r = post_acs(&b, &conn, &response(&conn, None, now, |_| {}), "").await;
    assert_eq!(page_code(&r.text().await.unwrap()), "saml_unsolicited_response");
    let codes = failed_codes(app, "neg").await;
    assert!(!codes.contains(&"saml_unsolicited_response".to_string()), "{codes:?}");
    assert!(!codes.contains(&"saml_in_response_to_mismatch".to_string()), "{codes:?}");
}

async fn replay_is_refused_by_every_instance(app: &TestApp) {
    let conn = saml_tenant(app, "rep", "rep.test", json!({})).await;
    let (client, _) = app.client("confidential", "ES256").await;
    let other = app.second_instance().await;
    let b = browser();
    let login = start(app, &b, &client, &conn).await;
    let resp = response(&conn, Some(&login), app.clock.now(), |_| {});
    // The first POST goes to instance 1, the replay to instance 2 (same database).
    let r = post_acs(&b, &conn, &resp, &login).await;
    assert_eq!(r.status().as_u16(), 303);
    let handle = query_of(&location(&r))["h"].clone();
    let acs2 = conn.acs_url.replace(&app.base, &other.base);
    let r =
        b.post(&acs2).form(&[("SAMLResponse", resp.as_str()), ("RelayState", login.as_str())]).send().await.unwrap();
    let body = r.text().await.unwrap();
    assert_eq!(page_code(&body), "saml_replay", "{body}");
    // The replay did not end the login: it finishes on instance 2 with the first answer's
    // handle (state lives in the database).
    let resume = format!("{}/sso/saml/resume?login={login}&h={handle}", other.base);
    let r = b.get(&resume).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    assert!(location(&r).starts_with(REDIRECT));
    other.stop().await;
}

async fn tenant_isolation(app: &TestApp) {
    // Tenant B's connection trusts the same IdP key. A response made for tenant A's connection
    // (its audience and ACS) posted to B's ACS is refused, and A's login cannot be completed
    // through B's ACS either.
    let a = saml_tenant(app, "ta", "ta.test", json!({})).await;
    let bconn = saml_tenant(app, "tb", "tb.test", json!({})).await;
    let (client, _) = app.client("confidential", "ES256").await;
    let b = browser();
    let login = start(app, &b, &client, &a).await;
    let for_a = response(&a, Some(&login), app.clock.now(), |_| {});
    let r = post_acs(&b, &bconn, &for_a, &login).await;
    assert_eq!(page_code(&r.text().await.unwrap()), "saml_in_response_to_mismatch");
    // Even addressed to B (audience, recipient, destination) with A's login id.
    let forged = response(&bconn, Some(&login), app.clock.now(), |_| {});
    let r = post_acs(&b, &bconn, &forged, &login).await;
    assert_eq!(page_code(&r.text().await.unwrap()), "saml_in_response_to_mismatch");
    // And A's connection is not readable through B's admin path.
    let (s, _) = app.get(&format!("/tenants/tb/connections/{}", a.id)).await;
    assert_eq!(s, 404);
}

async fn admin_api_validation(app: &TestApp) {
    let (s, _) = app.post("/tenants", json!({"name": "Adm", "slug": "adm", "domains": ["adm.test"]})).await;
    assert_eq!(s, 201);
    let idp = FixtureIdp::test(IDP).unwrap();
    let md = idp.metadata_xml(Some("https://idp.fixture.test/sso"), None);
    // Metadata without a signing certificate is refused, clearly.
    let start = md.find("<md:KeyDescriptor").unwrap();
    let end = md.find("</md:KeyDescriptor>").unwrap() + "</md:KeyDescriptor>".len();
    let no_cert = format!("{}{}", &md[..start], &md[end..]);
    let (s, e) =
        app.post("/tenants/adm/connections", json!({"type": "saml", "name": "x", "metadata_xml": no_cert})).await;
    assert_eq!(s, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("no signing certificate"), "{e}");
    // Two sources at once, a DTD, unknown fields, an out-of-range skew.
    let (s, _) = app
        .post(
            "/tenants/adm/connections",
            json!({"type": "saml", "name": "x", "metadata_xml": md, "metadata_url": "https://x.test/md"}),
        )
        .await;
    assert_eq!(s, 400);
    let dtd = format!("<!DOCTYPE x [<!ENTITY a \"b\">]>{md}");
    let (s, _) = app.post("/tenants/adm/connections", json!({"type": "saml", "name": "x", "metadata_xml": dtd})).await;
    assert_eq!(s, 400);
    let (s, e) = app
        .post("/tenants/adm/connections", json!({"type": "saml", "name": "x", "metadata_xml": md, "colour": 1}))
        .await;
    assert_eq!(s, 400, "{e}");
    let (s, _) = app
        .post(
            "/tenants/adm/connections",
            json!({"type": "saml", "name": "x", "metadata_xml": md, "clock_skew_secs": 3600}),
        )
        .await;
    assert_eq!(s, 400);
    // Manual fields work; the view shows what to paste into the IdP, never the SP private key.
    let (s, c) = app
        .post(
            "/tenants/adm/connections",
            json!({"type": "saml", "name": "Manual", "idp_entity_id": IDP, "sso_url_post": "https://idp.fixture.test/sso-post",
                   "idp_certificates": [idp.cert_pem()], "preset": "okta"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["request_binding"], "post", "only a POST SSO URL");
    assert_eq!(c["idp_certificates"][0]["fingerprint_sha256"].as_str().unwrap().len(), 64);
    // New connections: the hyphen form (no underscore; see idp_console.rs).
    let hyphen = c["id"].as_str().unwrap().replacen("conn_", "conn-", 1);
    assert!(c["acs_url"].as_str().unwrap().ends_with(&format!("/sso/saml/{hyphen}/acs")));
    assert_eq!(c["has_sp_private_key"], true);
    let text = c.to_string();
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    // PATCH keeps the SP key and certificate.
    let id = c["id"].as_str().unwrap();
    let (s, p) = app
        .admin(reqwest::Method::PATCH, &format!("/tenants/adm/connections/{id}"), Some(json!({"clock_skew_secs": 30})))
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["sp_certificate"], c["sp_certificate"]);
    assert_eq!(p["clock_skew_secs"], 30);
    // POST binding: an auto-submit page with a signed AuthnRequest.
    let (client, _) = app.client("confidential", "ES256").await;
    let r = browser().get(authorize_url(app, &client, &[("connection", id)])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("action=\"https://idp.fixture.test/sso-post\"") && page.contains("name=\"SAMLRequest\""),
        "{page}"
    );
    let req_b64 = page.split("name=\"SAMLRequest\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    use base64::Engine;
    let req = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(req_b64).unwrap()).unwrap();
    assert!(req.contains("<ds:SignatureValue>") && req.contains("ID=\"lgn_"), "{req}");
}

/// A metadata server whose document can be swapped (certificate rotation), or broken.
async fn metadata_server() -> (String, std::sync::Arc<std::sync::Mutex<(u16, String)>>) {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let doc = std::sync::Arc::new(std::sync::Mutex::new((200u16, String::new())));
    let d = doc.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let d = d.clone();
        App::new().route(
            "/md",
            web::get().to(move || {
                let (status, body) = d.lock().unwrap().clone();
                async move {
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                        .content_type("application/samlmetadata+xml")
                        .body(body)
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}/md"), doc)
}

async fn metadata_refresh_rotates_certificates(app: &TestApp) {
    let (s, _) = app.post("/tenants", json!({"name": "Rot", "slug": "rot", "domains": ["rot.test"]})).await;
    assert_eq!(s, 201);
    let old = FixtureIdp::test(IDP).unwrap();
    let new = FixtureIdp::untrusted(IDP).unwrap();
    let (url, doc) = metadata_server().await;
    *doc.lock().unwrap() = (200, old.metadata_xml(Some("https://idp.fixture.test/sso"), None));
    let (s, c) =
        app.post("/tenants/rot/connections", json!({"type": "saml", "name": "Rot", "metadata_url": url})).await;
    assert_eq!(s, 201, "{c}");
    let conn = Conn {
        domain: "rot.test".into(),
        tenant_id: c["tenant_id"].as_str().unwrap().into(),
        id: c["id"].as_str().unwrap().into(),
        sp_entity_id: c["sp_entity_id"].as_str().unwrap().into(),
        acs_url: c["acs_url"].as_str().unwrap().into(),
        sp_cert: String::new(),
    };
    let (client, _) = app.client("confidential", "ES256").await;
    let signed_by = |idp: &FixtureIdp, login: &str, now: i64| {
        let p = ResponseParams::new(IDP, &conn.sp_entity_id, &conn.acs_url, Some(login), "u-1", "bob@rot.test", now);
        post_form_fields(&idp.response(&p).unwrap())
    };
    // The IdP publishes its next certificate beside the current one; the next refresh (6 h)
    // picks it up, so responses signed with either verify during the overlap.
    let both = old.metadata_xml(Some("https://idp.fixture.test/sso"), None).replacen(
        "</md:KeyDescriptor>",
        &format!(
            "</md:KeyDescriptor><md:KeyDescriptor use=\"signing\"><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>",
            new.cert_b64()
        ),
        1,
    );
    *doc.lock().unwrap() = (200, both);
    app.clock.advance_secs(6 * 3600 + 1);
    app.state.maintenance().await.unwrap();
    let (_, v) = app.get(&format!("/tenants/rot/connections/{}", conn.id)).await;
    assert_eq!(v["idp_certificates"].as_array().unwrap().len(), 2, "{v}");
    for idp in [&old, &new] {
        let b = browser();
        let login = start(app, &b, &client, &conn).await;
        let r = b
            .post(&conn.acs_url)
            .form(&[("SAMLResponse", signed_by(idp, &login, app.clock.now()).as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    }
    // A failing refresh: a warning on the connection and one event.
    *doc.lock().unwrap() = (500, String::new());
    app.clock.advance_secs(6 * 3600 + 1);
    app.state.maintenance().await.unwrap();
    let (_, v) = app.get(&format!("/tenants/rot/connections/{}", conn.id)).await;
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("metadata refresh failed"), "{v}");
    // (Read from the outbox table: the events API on PostgreSQL waits for every older
    // transaction in the cluster, and other tests run beside this one.)
    use fedgate::store::entities::event;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let n = event::Entity::find()
        .filter(event::Column::EventType.eq("connection.metadata_refresh_failed"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 1);
    app.clock.advance_secs(16 * 60);
    app.state.maintenance().await.unwrap();
    let n2 = event::Entity::find()
        .filter(event::Column::EventType.eq("connection.metadata_refresh_failed"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n2, 1, "a refresh that keeps failing is announced once");
    // The certificates stay trusted while the refresh fails; editing an option does not need
    // the IdP; a manual refresh reports the failure.
    assert_eq!(v["idp_certificates"].as_array().unwrap().len(), 2);
    let path = format!("/tenants/rot/connections/{}", conn.id);
    let (s, p) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"clock_skew_secs": 60}))).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["idp_certificates"].as_array().unwrap().len(), 2);
    let (s, e) = app.post(&format!("{path}/refresh-metadata"), json!({})).await;
    assert_eq!(s, 502, "{e}");
    assert_eq!(e["error"], "metadata_refresh_failed");
    // The IdP finishes its rotation: only the new certificate is published.
    *doc.lock().unwrap() = (200, new.metadata_xml(Some("https://idp.fixture.test/sso"), None));
    let (s, v) = app.post(&format!("{path}/refresh-metadata"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["idp_certificates"].as_array().unwrap().len(), 1);
    assert_eq!(v["warnings"], json!([]));
    // Every refresh, scheduled or on demand, is counted by its result.
    let text = app.state.metrics.render(&[]);
    let series = |result: &str| {
        format!(
            "fedgate_saml_metadata_refreshes_total{{tenant=\"{}\",connection=\"{}\",result=\"{result}\"}}",
            conn.tenant_id, conn.id
        )
    };
    assert!(text.contains(&format!("{} 3\n", series("failed"))), "{text}");
    assert!(text.contains(&format!("{} 2\n", series("changed"))), "{text}");
}

/// A disabled connection stops at once, whatever fedgate caches (opened connectors are cached
/// per connection version; the resume step reads login, connection and tenant in one query):
/// an answer the ACS accepted cannot be finished once the connection is disabled, the ACS
/// refuses new answers, and re-enabling it lets the still-pending login finish.
async fn disabled_connection_stops_at_once(app: &TestApp) {
    let conn = saml_tenant(app, "dis", "dis.test", json!({})).await;
    let (client, secret) = app.client("confidential", "ES256").await;
    let (b1, b2) = (browser(), browser());
    let first = start(app, &b1, &client, &conn).await;
    let second = start(app, &b2, &client, &conn).await;
    let r = post_acs(&b1, &conn, &response(&conn, Some(&first), app.clock.now(), |_| {}), &first).await;
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let resume = location(&r);
    // Warm every cache on this connection first: a whole login through it.
    let r = post_acs(&b2, &conn, &response(&conn, Some(&second), app.clock.now(), |_| {}), &second).await;
    assert_eq!(r.status().as_u16(), 303);
    let r = b2.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());

    let path = format!("/tenants/dis/connections/{}", conn.id);
    let (s, v) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"enabled": false}))).await;
    assert_eq!(s, 200, "{v}");
    // The answer accepted before: not finished. (On SQLite the resume step and the ACS read
    // inline, on a connection of their own: they see the change all the same.)
    let inline = || fedgate::store::inline::inline_reads(&app.state.db);
    assert_eq!(inline().is_some(), app.backend == crate::common::Backend::Sqlite);
    let before = inline();
    let r = b1.get(&resume).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(page_code(&r.text().await.unwrap()), "connection_not_found");
    assert!(before.is_none() || inline() > before, "the resume step read inline");
    // A new answer (for a login started before): refused by the ACS.
    let b3 = browser();
    let (s, v) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"enabled": true}))).await;
    assert_eq!(s, 200, "{v}");
    let third = start(app, &b3, &client, &conn).await;
    let (s, v) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"enabled": false}))).await;
    assert_eq!(s, 200, "{v}");
    let before = inline();
    let r = post_acs(&b3, &conn, &response(&conn, Some(&third), app.clock.now(), |_| {}), &third).await;
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(page_code(&r.text().await.unwrap()), "connection_not_found");
    assert!(before.is_none() || inline() > before, "the ACS read its connection inline");
    // Enabled again: the first login (still pending) finishes, with its code.
    let (s, v) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"enabled": true}))).await;
    assert_eq!(s, 200, "{v}");
    let r = b1.get(&resume).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let q = query_of(&location(&r));
    let (s, tok) = exchange(app, &client, secret.as_deref(), &q["code"]).await;
    assert_eq!(s, 200, "{tok}");
}

/// A trace stays bounded however many answers are posted for one login (the steps are appended
/// in one statement while there is room, then the trace is read, trimmed and written), keeps
/// its first step and the latest ones, and the login still finishes with its whole story.
async fn trace_stays_bounded_under_many_answers(app: &TestApp) {
    let conn = saml_tenant(app, "bnd", "bnd.test", json!({})).await;
    let (client, _) = app.client("confidential", "ES256").await;
    let b = browser();
    let login = start(app, &b, &client, &conn).await;
    for _ in 0..110 {
        let wrong =
            response(&conn, Some(&login), app.clock.now(), |p| p.audience = Some("https://other.test/sp".into()));
        let r = post_acs(&b, &conn, &wrong, &login).await;
        assert_eq!(page_code(&r.text().await.unwrap()), "saml_audience_mismatch");
    }
    let (s, tr) = app.get(&format!("/logins/{login}")).await;
    assert_eq!(s, 200, "{tr}");
    assert_eq!(tr["status"], "failed", "{tr}");
    assert_eq!(tr["error"]["code"], "saml_audience_mismatch", "{tr}");
    let steps = tr["steps"].as_array().unwrap();
    assert!(steps.len() <= 100 && steps.len() > 90, "{}", steps.len());
    assert_eq!(steps[0]["step"], "authorize_received");
    assert_eq!(steps.last().unwrap()["step"], "saml_response_received", "{tr}");
    // A good answer still ends the login; the trace says so, its error cleared.
    let r = post_acs(&b, &conn, &response(&conn, Some(&login), app.clock.now(), |_| {}), &login).await;
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let (_, tr) = app.get(&format!("/logins/{login}")).await;
    assert_eq!(tr["status"], "completed", "{tr}");
    assert!(tr["error"].is_null(), "{tr}");
    let steps: Vec<&str> = tr["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert!(steps.len() <= 100, "{}", steps.len());
    assert_eq!(steps[0], "authorize_received");
    for want in ["saml_response_validated", "claims_mapped", "browser_returned", "user_linked", "code_issued"] {
        assert!(steps.contains(&want), "{want} missing in {steps:?}");
    }
}

both!(
    trusted_email_domains_cannot_vouch_outside_the_tenant,
    sp_initiated_login_to_token,
    encrypted_assertion_and_required_encryption,
    each_check_has_its_code,
    tenant_isolation,
    admin_api_validation,
    metadata_refresh_rotates_certificates,
    disabled_connection_stops_at_once,
    trace_stays_bounded_under_many_answers
);

mod replay {
    // A second instance shares the database: PostgreSQL (SQLite's file is per instance here too,
    // but the instances of a test share it only through the URL, which works for both).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let app = crate::common::TestApp::spawn(crate::common::Backend::Postgres).await;
        super::replay_is_refused_by_every_instance(&app).await;
        app.stop().await;
    }
}

/// Altered ciphertext of an unsigned EncryptedAssertion (AES-CBC, where padding oracles live;
/// and GCM) always fails with one code and one message, whatever broke inside.
#[test]
fn decryption_failures_are_uniform() {
    use crate::saml_corpus::saml_idp::{DataAlg, SP_CERT_PEM, SP_KEY_PEM};
    use base64::Engine;
    use fedgate::upstream::saml::validate::{validate_response, Expectations, ExpectedRequest};
    let idp = FixtureIdp::test(IDP).unwrap();
    let (sp, acs) = ("https://fedgate.test/sso/saml/c/metadata", "https://fedgate.test/sso/saml/c/acs");
    let now = 1_767_225_600;
    let certs = vec![idp.cert_der().to_vec()];
    let e = Expectations {
        idp_entity_id: IDP,
        idp_certs_der: &certs,
        sp_entity_id: sp,
        acs_url: acs,
        allow_sha1: false,
        skew_secs: 120,
        now,
        request: ExpectedRequest::Id("lgn_x"),
        decryption_key_pem: Some(SP_KEY_PEM),
        require_encrypted: false,
        allow_cbc: true,
    };
    for alg in [DataAlg::Aes256Cbc, DataAlg::Aes128Gcm] {
        let mut p = ResponseParams::new(IDP, sp, acs, Some("lgn_x"), "u-1", "a@b.test", now);
        p.sign = Sign::Assertion;
        p.encrypt = Some(Encrypt { data_alg: alg, ..Encrypt::to(SP_CERT_PEM) });
        let xml = idp.response(&p).unwrap();
        assert!(validate_response(&post_form_fields(&xml), &e).is_ok(), "the untouched response is valid");
        // The second CipherValue is the content (the first is the wrapped key).
        let at = xml.match_indices("<xenc:CipherValue>").nth(1).unwrap().0 + "<xenc:CipherValue>".len();
        let end = at + xml[at..].find('<').unwrap();
        let ct = base64::engine::general_purpose::STANDARD.decode(&xml[at..end]).unwrap();
        let mut messages = std::collections::BTreeSet::new();
        for i in [0, 5, 16, 31, ct.len() - 17, ct.len() - 2, ct.len() - 1] {
            let mut bad = ct.clone();
            bad[i] ^= 0x41;
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bad);
            let tampered = format!("{}{}{}", &xml[..at], b64, &xml[end..]);
            let err = validate_response(&post_form_fields(&tampered), &e).unwrap_err();
            assert_eq!(err.code(), "saml_decryption_failed", "{err}");
            messages.insert(err.to_string());
        }
        assert_eq!(messages.len(), 1, "{messages:?}");
    }
}
