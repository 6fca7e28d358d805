//! The README's demo, SAML edition: `serve --demo` seeds a `saml` connection to the demo SAML
//! IdP that fedgate serves itself (`/demo/saml-idp/`), and the demo app's "Sign in with SAML"
//! walks through a real SAML login over HTTP: demo app -> authorize -> AuthnRequest
//! (HTTP-Redirect) -> the demo IdP's page -> signed Response POSTed to the ACS -> resume (binding
//! cookie) -> the demo app's callback, which exchanges the code and shows the ID token.
use crate::common::{browser, location, TestApp};

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#x27;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The value of the first `name="…" value="…"` input, or of attribute `attr` after `after`.
fn attr_after(html: &str, after: &str, attr: &str) -> String {
    let from = html.find(after).unwrap_or_else(|| panic!("{after:?} not in page: {html}"));
    let rest = &html[from..];
    let key = format!("{attr}=\"");
    let at = rest.find(&key).unwrap_or_else(|| panic!("no {attr} after {after:?}")) + key.len();
    let end = rest[at..].find('"').unwrap();
    html_unescape(&rest[at..at + end])
}

async fn demo_saml_login(app: &TestApp) {
    let info = fedgate::demo::setup(&app.state).await.expect("demo setup");
    assert!(info.contains("/demo/saml-idp/metadata"), "{info}");
    // Seeding twice (a restart) keeps one SAML connection.
    fedgate::demo::setup(&app.state).await.expect("demo setup again");
    let (s, conns) = app.get("/tenants/acme/connections").await;
    assert_eq!(s, 200, "{conns}");
    let saml: Vec<_> = conns["data"].as_array().unwrap().iter().filter(|c| c["type"] == "saml").collect();
    assert_eq!(saml.len(), 1, "{conns}");
    assert_eq!(saml[0]["idp_entity_id"], app.url("/demo/saml-idp/metadata"));

    let b = browser();
    let md = b.get(app.url("/demo/saml-idp/metadata")).send().await.unwrap();
    assert_eq!(md.status().as_u16(), 200);
    assert!(md.text().await.unwrap().contains("IDPSSODescriptor"));

    let home = b.get(app.url("/demo")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Sign in with SAML"), "{home}");

    // The demo app starts its sign-in, pinned to the SAML connection.
    let r = b.get(app.url("/demo/start?via=saml")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let authorize = location(&r);
    assert!(authorize.contains("connection="), "{authorize}");
    // fedgate sends the browser to the IdP with an AuthnRequest.
    let r = b.get(&authorize).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "authorize: {}", r.text().await.unwrap_or_default());
    let sso = location(&r);
    assert!(sso.starts_with(&app.url("/demo/saml-idp/sso?SAMLRequest=")), "{sso}");
    // The demo IdP's page: one button that POSTs the signed Response to the ACS.
    let r = b.get(&sso).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("Sign in as alice@demo.example"), "{page}");
    assert!(!page.contains("<script"), "no JavaScript");
    let action = attr_after(&page, "<form", "action");
    assert_eq!(action, format!("{}/acs", saml[0]["sp_entity_id"].as_str().unwrap().trim_end_matches("/metadata")));
    let response = attr_after(&page, "name=\"SAMLResponse\"", "value");
    let relay = attr_after(&page, "name=\"RelayState\"", "value");
    let form = [("SAMLResponse", response.as_str()), ("RelayState", relay.as_str())];
    let r = b.post(&action).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "ACS: {}", r.text().await.unwrap_or_default());
    let resume = location(&r);
    assert!(resume.contains("/sso/saml/resume?login="), "{resume}");
    // The browser comes back with its binding cookie; fedgate answers the demo app.
    let r = b.get(&resume).send().await.unwrap();
    let status = r.status();
    let callback = location(&r);
    assert!(status.is_redirection(), "resume: {status} {}", r.text().await.unwrap_or_default());
    assert!(callback.starts_with(&app.url("/demo/callback?")), "{callback}");
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let shown = r.text().await.unwrap();
    assert!(shown.contains("Signed in"), "{shown}");
    assert!(shown.contains("alice@demo.example"), "{shown}");

    // The same Response posted again is a replay.
    let r = b.post(&action).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // The dev button still goes straight to the dev connection.
    let r = b.get(app.url("/demo/start")).send().await.unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    assert!(location(&r).contains("/sso/dev/") || location(&r).contains("/demo/callback"), "{}", location(&r));
}

/// The demo IdP never signs for an AuthnRequest it cannot read.
async fn demo_saml_idp_rejects_garbage(app: &TestApp) {
    fedgate::demo::setup(&app.state).await.expect("demo setup");
    let b = browser();
    let r = b.get(app.url("/demo/saml-idp/sso?SAMLRequest=bm90LWRlZmxhdGVk&RelayState=x")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(!r.text().await.unwrap().contains("SAMLResponse"));
}

crate::both!(demo_saml_login, demo_saml_idp_rejects_garbage);
