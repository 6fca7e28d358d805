//! Every value fedgate hands an IdP administrator (ACS URL, SP entity ID, SP metadata URL, OIDC
//! redirect URI, SCIM base URL) and every protocol value it sends (RelayState, AuthnRequest ID,
//! NameIDPolicy, Issuer) passes the IdP console rules (`fedgate::upstream::console_rules`, the
//! table with its sources). New SAML connections use `/sso/saml/conn-…` (Okta refuses an
//! underscore in the Single sign-on URL); connections set up before keep `/sso/saml/conn_…`,
//! which the IdP has, and each is checked against its own form.
use crate::common::*;
use crate::oidc_idp::{FixtureIdp as OidcIdp, Knobs};
use crate::saml_corpus::saml_idp::{post_form_fields, FixtureIdp, ResponseParams};
use fedgate::clock::Clock;
use fedgate::upstream::console_rules::{authn_request_problems, entity_ids_distinct, violations, Value as Kind};
use serde_json::{json, Value};

const IDP: &str = "https://idp.fixture.test/saml";
const ISSUER: &str = "https://sso.example.com";

fn assert_passes(kind: Kind, v: &str) {
    let broken: Vec<(&str, &str)> = violations(kind, v).iter().map(|r| (r.id, r.source)).collect();
    assert!(broken.is_empty(), "{} {v} breaks {broken:#?}", kind.field());
}

fn saml_body(name: &str, binding: &str) -> Value {
    let idp = FixtureIdp::test(IDP).unwrap();
    json!({"type": "saml", "name": name, "request_binding": binding,
           "metadata_xml": idp.metadata_xml(Some("https://idp.fixture.test/sso"), Some("https://idp.fixture.test/sso-post"))})
}

fn inflate(b64: &str) -> String {
    use base64::Engine;
    use std::io::Read;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(raw.as_slice()).read_to_string(&mut xml).unwrap();
    xml
}

fn input_value(page: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = page.find(&key).unwrap_or_else(|| panic!("no {name} in {page}")) + key.len();
    page[at..at + page[at..].find('"').unwrap()].replace("&quot;", "\"").replace("&amp;", "&")
}

async fn values_for_idp_admins_pass_the_console_rules(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.issuer = ISSUER.into();
        c.allow_private_network = true;
    })
    .await;
    let (s, t) = app.post("/tenants", json!({"name": "Acme", "slug": "acme", "domains": ["acme.test"]})).await;
    assert_eq!(s, 201, "{t}");
    // Two SAML connections in one tenant (one per binding): each value passes, entity IDs differ.
    let mut conns = Vec::new();
    for (name, binding) in [("Okta", "redirect"), ("Entra", "post")] {
        let (s, c) = app.post("/tenants/acme/connections", saml_body(name, binding)).await;
        assert_eq!(s, 201, "{c}");
        assert_eq!(c["sp_url_form"], "hyphen");
        assert_passes(Kind::AcsUrl, c["acs_url"].as_str().unwrap());
        assert_passes(Kind::SpEntityId, c["sp_entity_id"].as_str().unwrap());
        assert_passes(Kind::SpMetadataUrl, c["sp_metadata_url"].as_str().unwrap());
        assert!(c["acs_url"].as_str().unwrap().starts_with(&format!("{ISSUER}/sso/saml/conn-")), "{c}");
        assert_eq!(c["warnings"], json!([]), "{c}");
        conns.push(c);
    }
    let ids: Vec<&str> = conns.iter().map(|c| c["sp_entity_id"].as_str().unwrap()).collect();
    assert!(entity_ids_distinct(&ids), "{ids:?}");
    // The SP metadata is served at the URL handed out (and names the same values).
    for c in &conns {
        let path = c["sp_metadata_url"].as_str().unwrap().replacen(ISSUER, &app.base, 1);
        let md = app.http.get(path).send().await.unwrap().text().await.unwrap();
        assert!(md.contains(&format!("entityID=\"{}\"", c["sp_entity_id"].as_str().unwrap())), "{md}");
        assert!(md.contains(&format!("Location=\"{}\"", c["acs_url"].as_str().unwrap())), "{md}");
    }
    // OIDC: the redirect URI to register.
    let idp = OidcIdp::start(Knobs::default(), 1).await.unwrap();
    let (s, o) = app.post("/tenants/acme/connections", idp.connection_body("OIDC")).await;
    assert_eq!(s, 201, "{o}");
    assert_eq!(o["redirect_uri"], format!("{ISSUER}/sso/oidc/callback"));
    assert_passes(Kind::OidcRedirectUri, o["redirect_uri"].as_str().unwrap());
    // SCIM base URL.
    let (s, tok) = app.post("/tenants/acme/scim-tokens", json!({"name": "okta"})).await;
    assert_eq!(s, 201, "{tok}");
    assert_passes(Kind::ScimBaseUrl, tok["scim_base_url"].as_str().unwrap());

    // What the IdP receives: the AuthnRequest (HTTP-Redirect and HTTP-POST) and the RelayState.
    let (cid, _) = app.client("confidential", "ES256").await;
    let b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = b.get(authorize_url(&app, &cid, &[("connection", conns[0]["id"].as_str().unwrap())])).send().await.unwrap();
    let to = location(&r);
    let q = query_of(&to);
    assert_passes(Kind::RelayState, &q["RelayState"]);
    let xml = inflate(&q["SAMLRequest"]);
    let (sp, acs) = (conns[0]["sp_entity_id"].as_str().unwrap(), conns[0]["acs_url"].as_str().unwrap());
    assert_eq!(authn_request_problems(&xml, sp, acs), Vec::<String>::new(), "{xml}");
    assert!(!xml.contains("Format="), "no NameIDPolicy Format: {xml}");
    let r = b.get(authorize_url(&app, &cid, &[("connection", conns[1]["id"].as_str().unwrap())])).send().await.unwrap();
    let page = r.text().await.unwrap();
    let relay = input_value(&page, "RelayState");
    assert_passes(Kind::RelayState, &relay);
    use base64::Engine;
    let xml =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(input_value(&page, "SAMLRequest")).unwrap())
            .unwrap();
    let (sp, acs) = (conns[1]["sp_entity_id"].as_str().unwrap(), conns[1]["acs_url"].as_str().unwrap());
    assert_eq!(authn_request_problems(&xml, sp, acs), Vec::<String>::new(), "{xml}");
    app.stop().await;
}

mod values_for_idp_admins_pass_the_console_rules {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::values_for_idp_admins_pass_the_console_rules(crate::common::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::values_for_idp_admins_pass_the_console_rules(crate::common::Backend::Postgres).await;
    }
}

/// Posts a response built for (`audience`, `recipient`) to `post_to`; returns the status and
/// the page's error code, if any.
async fn answer(
    app: &TestApp,
    cid: &str,
    conn: &Value,
    audience: &str,
    recipient: &str,
    post_to: &str,
) -> (u16, String) {
    let b = browser();
    let r = b.get(authorize_url(app, cid, &[("connection", conn["id"].as_str().unwrap())])).send().await.unwrap();
    let to = location(&r);
    let q = query_of(&to);
    let login = q["RelayState"].clone();
    let xml = inflate(&q["SAMLRequest"]);
    assert!(xml.contains(&format!("AssertionConsumerServiceURL=\"{}\"", conn["acs_url"].as_str().unwrap())), "{xml}");
    assert!(xml.contains(&format!("<saml:Issuer>{}</saml:Issuer>", conn["sp_entity_id"].as_str().unwrap())), "{xml}");
    let p = ResponseParams::new(IDP, audience, recipient, Some(&login), "u-1", "alice@acme.test", app.clock.now());
    let form = post_form_fields(&FixtureIdp::test(IDP).unwrap().response(&p).unwrap());
    let r =
        b.post(post_to).form(&[("SAMLResponse", form.as_str()), ("RelayState", login.as_str())]).send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    let code = body.split("Error code <code>").nth(1).and_then(|r| r.split("</code>").next()).unwrap_or_default();
    (status, code.to_string())
}

/// A connection set up before the hyphen form (its stored config has no `sp_url_form`) keeps the
/// underscore URLs the IdP has: its Audience, Recipient and Destination are checked against
/// them, at either ACS path. A new connection is checked against the hyphen form only.
async fn existing_connections_keep_their_underscore_urls(app: &TestApp) {
    let (s, _) = app.post("/tenants", json!({"name": "Acme", "slug": "acme", "domains": ["acme.test"]})).await;
    assert_eq!(s, 201);
    let (cid, _) = app.client("confidential", "ES256").await;
    let (s, new) = app.post("/tenants/acme/connections", saml_body("New", "redirect")).await;
    assert_eq!(s, 201, "{new}");
    let (s, old) = app.post("/tenants/acme/connections", saml_body("Old", "redirect")).await;
    assert_eq!(s, 201, "{old}");
    // Make `old` what a connection stored by an earlier version looks like.
    {
        use fedgate::store::entities::connection;
        use sea_orm::{ActiveModelTrait, EntityTrait, Set};
        let row = connection::Entity::find_by_id(old["id"].as_str().unwrap().to_string())
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap();
        let mut cfg: Value = serde_json::from_str(&row.config).unwrap();
        assert_eq!(cfg["sp_url_form"], "hyphen");
        cfg.as_object_mut().unwrap().remove("sp_url_form");
        let mut m: connection::ActiveModel = row.into();
        m.config = Set(cfg.to_string());
        m.update(&app.state.db).await.unwrap();
    }
    let path = format!("/tenants/acme/connections/{}", old["id"].as_str().unwrap());
    let (_, old) = app.get(&path).await;
    let id = old["id"].as_str().unwrap();
    assert_eq!(old["sp_url_form"], "underscore");
    assert_eq!(old["acs_url"], app.url(&format!("/sso/saml/{id}/acs")));
    assert_eq!(old["sp_entity_id"], app.url(&format!("/sso/saml/{id}/metadata")));
    let (old_sp, old_acs) = (old["sp_entity_id"].as_str().unwrap(), old["acs_url"].as_str().unwrap());
    let hyphen_acs = old_acs.replacen("/conn_", "/conn-", 1);
    let hyphen_sp = old_sp.replacen("/conn_", "/conn-", 1);
    // The old URLs keep working; the hyphen path reaches the same connection, still checked
    // against the old values.
    assert_eq!(answer(app, &cid, &old, old_sp, old_acs, old_acs).await.0, 303);
    assert_eq!(answer(app, &cid, &old, old_sp, old_acs, &hyphen_acs).await.0, 303);
    assert_eq!(answer(app, &cid, &old, &hyphen_sp, old_acs, old_acs).await.1, "saml_audience_mismatch");
    let (_, code) = answer(app, &cid, &old, old_sp, &hyphen_acs, old_acs).await;
    assert!(code == "saml_recipient_mismatch" || code == "saml_destination_mismatch", "{code}");
    let md = app.http.get(hyphen_sp.as_str()).send().await.unwrap().text().await.unwrap();
    assert!(md.contains(&format!("entityID=\"{old_sp}\"")), "metadata names the connection's own form: {md}");
    // A new connection: the hyphen values only.
    let (new_sp, new_acs) = (new["sp_entity_id"].as_str().unwrap(), new["acs_url"].as_str().unwrap());
    assert!(new_acs.contains("/sso/saml/conn-"), "{new}");
    assert_eq!(answer(app, &cid, &new, new_sp, new_acs, new_acs).await.0, 303);
    let under_sp = new_sp.replacen("/conn-", "/conn_", 1);
    let under_acs = new_acs.replacen("/conn-", "/conn_", 1);
    assert_eq!(answer(app, &cid, &new, &under_sp, new_acs, new_acs).await.1, "saml_audience_mismatch");
    let (_, code) = answer(app, &cid, &new, new_sp, &under_acs, &under_acs).await;
    assert!(code == "saml_recipient_mismatch" || code == "saml_destination_mismatch", "{code}");
    // An administrator moves the old connection to the hyphen form (after updating the IdP).
    let (s, moved) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"sp_url_form": "hyphen"}))).await;
    assert_eq!(s, 200, "{moved}");
    assert_eq!(moved["acs_url"], hyphen_acs);
    assert_eq!(answer(app, &cid, &moved, &hyphen_sp, &hyphen_acs, &hyphen_acs).await.0, 303);
    // Editing another option keeps the form.
    let (s, kept) = app.admin(reqwest::Method::PATCH, &path, Some(json!({"clock_skew_secs": 60}))).await;
    assert_eq!(s, 200, "{kept}");
    assert_eq!(kept["sp_url_form"], "hyphen");
}

/// With an https issuer, a connection still on the underscore form carries a warning naming the
/// broken console rule.
async fn underscore_form_is_flagged_for_admins(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.issuer = ISSUER.into()).await;
    let (s, _) = app.post("/tenants", json!({"name": "Acme", "slug": "acme", "domains": ["acme.test"]})).await;
    assert_eq!(s, 201);
    let mut body = saml_body("Old", "redirect");
    body["sp_url_form"] = "underscore".into();
    let (s, c) = app.post("/tenants/acme/connections", body).await;
    assert_eq!(s, 201, "{c}");
    let w = c["warnings"].to_string();
    assert!(w.contains("acs_url") && w.contains("no underscore"), "{c}");
    app.stop().await;
}

mod underscore_form_is_flagged_for_admins {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::underscore_form_is_flagged_for_admins(crate::common::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::underscore_form_is_flagged_for_admins(crate::common::Backend::Postgres).await;
    }
}

crate::both!(existing_connections_keep_their_underscore_urls);
