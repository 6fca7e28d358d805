//! The setup portal over real HTTP with cookie jars, on SQLite and PostgreSQL: setup links
//! through the admin API (create, list, revoke, audit), the landing page that never redeems,
//! expired, revoked and unknown links, a revoked link ending its sessions, CSRF, intents,
//! tenant isolation, drafts never used for real logins, metadata errors in plain words, and a
//! test sign-in through the fixture SAML IdP that passes, activates, and is re-locked by an edit.
use crate::both;
use crate::common::*;
use crate::saml::IDP;
use crate::saml_corpus::saml_idp::{post_form_fields, FixtureIdp, ResponseParams};
use fedgate::clock::Clock;
use serde_json::{json, Value};

/// A tenant with a domain; returns its id.
async fn tenant(app: &TestApp, slug: &str, domain: &str) -> String {
    let (s, t) = app.post("/tenants", json!({"name": format!("{slug} Inc"), "slug": slug, "domains": [domain]})).await;
    assert_eq!(s, 201, "{t}");
    t["id"].as_str().unwrap().to_string()
}

/// A setup link; returns (id, url).
async fn link(app: &TestApp, slug: &str, intents: Value, expires_in: Option<i64>) -> (String, String) {
    let mut body = json!({"intents": intents});
    if let Some(e) = expires_in {
        body["expires_in"] = e.into();
    }
    let (s, l) = app.post(&format!("/tenants/{slug}/setup-links"), body).await;
    assert_eq!(s, 201, "{l}");
    (l["id"].as_str().unwrap().to_string(), l["url"].as_str().unwrap().to_string())
}

/// Opens a link in a new browser: landing page, "Start setup". Returns the browser.
async fn redeem(url: &str) -> reqwest::Client {
    let b = browser();
    let r = b.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = b.post(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    assert!(location(&r).ends_with("/setup"), "{}", location(&r));
    b
}

async fn page(app: &TestApp, b: &reqwest::Client, path: &str) -> (u16, String) {
    let r = b.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("a csrf field").to_string()
}

/// POSTs a portal form with the page's CSRF token.
async fn submit(
    app: &TestApp,
    b: &reqwest::Client,
    from: &str,
    to: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (s, html) = page(app, b, from).await;
    assert_eq!(s, 200, "{html}");
    let csrf = csrf_of(&html);
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    b.post(app.url(to)).form(&form).send().await.unwrap()
}

fn code_in(html: &str) -> String {
    crate::saml::page_code(html)
}

async fn audit(app: &TestApp) -> Vec<Value> {
    let (s, v) = app.get("/audit-log?limit=1000").await;
    assert_eq!(s, 200);
    v["data"].as_array().unwrap().clone()
}

async fn setup_links_through_the_admin_api(app: &TestApp) {
    tenant(app, "acme", "acme.test").await;
    let (s, l) = app.post("/tenants/acme/setup-links", json!({"intents": ["sso", "scim"]})).await;
    assert_eq!(s, 201, "{l}");
    let url = l["url"].as_str().unwrap();
    assert!(url.starts_with(&app.url("/setup/fgs_")) && url.len() > app.url("/setup/fgs_").len() + 40, "{url}");
    assert_eq!(l["intents"], json!(["sso", "scim"]));
    assert_eq!(l["status"], "active");
    let created = chrono_like(l["created_at"].as_str().unwrap());
    let expires = chrono_like(l["expires_at"].as_str().unwrap());
    assert_eq!(expires - created, 7 * 86_400, "default lifetime: 7 days");
    // Refused: unknown intents, none, lifetimes over 30 days.
    for body in [json!({"intents": ["sso", "admin"]}), json!({"intents": []})] {
        let (s, e) = app.post("/tenants/acme/setup-links", body).await;
        assert_eq!((s, e["error"].as_str().unwrap()), (400, "invalid_intents"), "{e}");
    }
    let (s, e) = app.post("/tenants/acme/setup-links", json!({"intents": ["sso"], "expires_in": 31 * 86_400})).await;
    assert_eq!((s, e["error"].as_str().unwrap()), (400, "out_of_range"), "{e}");
    let (s, e) = app.post("/tenants/nope/setup-links", json!({"intents": ["sso"]})).await;
    assert_eq!(s, 404, "{e}");
    // The list never shows the token.
    let (s, list) = app.get("/tenants/acme/setup-links").await;
    assert_eq!(s, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("url").is_none() && !list.to_string().contains("fgs_"), "{list}");
    // Revoke (twice is fine), and it shows.
    let id = l["id"].as_str().unwrap();
    let (s, _) = app.admin(reqwest::Method::DELETE, &format!("/tenants/acme/setup-links/{id}"), None).await;
    assert_eq!(s, 204);
    let (s, _) = app.admin(reqwest::Method::DELETE, &format!("/tenants/acme/setup-links/{id}"), None).await;
    assert_eq!(s, 204);
    let (_, list) = app.get("/tenants/acme/setup-links").await;
    assert_eq!(list["data"][0]["status"], "revoked");
    let log = audit(app).await;
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "setup_link.create").count(), 1, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "setup_link.revoke").count(), 1, "revoking twice records once");
    assert!(!serde_json::to_string(&log).unwrap().contains(url), "the link never reaches the audit log");
}

/// `2026-12-06T00:00:00Z` -> unix seconds (enough for differences).
fn chrono_like(s: &str) -> i64 {
    let t = time_parse(s);
    t.unwrap()
}

fn time_parse(s: &str) -> Option<i64> {
    // YYYY-MM-DDTHH:MM:SSZ
    let (d, t) = s.trim_end_matches('Z').split_once('T')?;
    let mut dp = d.split('-').map(|x| x.parse::<i64>().unwrap());
    let (y, m, dd) = (dp.next()?, dp.next()?, dp.next()?);
    let mut tp = t.split(':').map(|x| x.parse::<i64>().unwrap());
    let (h, mi, se) = (tp.next()?, tp.next()?, tp.next()?);
    // days from civil (Howard Hinnant)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + h * 3600 + mi * 60 + se)
}

async fn get_never_redeems_post_does(app: &TestApp) {
    tenant(app, "acme", "acme.test").await;
    let (s, t) = app
        .admin(
            reqwest::Method::PATCH,
            "/tenants/acme",
            Some(json!({"settings": {"branding": {"display_name": "Acme Corp", "accent": "#0a7f3c", "logo_url": "https://cdn.acme.test/logo.png"}}})),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let (id, url) = link(app, "acme", json!(["sso"]), None).await;
    let b = browser();
    let r = b.get(&url).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("img-src 'self' https://cdn.acme.test;"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("<strong>Acme Corp</strong>") && html.contains("src=\"https://cdn.acme.test/logo.png\""), "{html}");
    assert!(html.contains("href=\"/setup/assets/accent.css?c=0a7f3c\""), "{html}");
    let css = app.http.get(app.url("/setup/assets/accent.css?c=0a7f3c")).send().await.unwrap().text().await.unwrap();
    assert!(css.contains("background:#0a7f3c"), "{css}");
    let css = app.http.get(app.url("/setup/assets/accent.css?c=red;}x")).send().await.unwrap().text().await.unwrap();
    assert!(css.is_empty(), "{css}");
    for _ in 0..3 {
        let r = b.get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers().get("set-cookie").is_none(), "GET sets no cookie");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        let html = r.text().await.unwrap();
        assert!(html.contains("data-testid=\"start-setup\"") && html.contains("acme Inc"), "{html}");
        assert!(html.contains("Acme Corp"), "branded: {html}");
    }
    let (_, list) = app.get("/tenants/acme/setup-links").await;
    assert_eq!(list["data"][0]["uses"], 0, "a GET never redeems (mail scanners)");
    let (s, html) = page(app, &b, "/setup").await;
    assert_eq!((s, code_in(&html).as_str()), (401, "portal_session_required"));
    // POST redeems: a session cookie, and the token leaves the URL.
    let r = b.post(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(location(&r), app.url("/setup"));
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("fedgate_portal=fgu_") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let (s, html) = page(app, &b, "/setup").await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("data-testid=\"task-sso\"") && !html.contains("task-scim"), "{html}");
    assert!(html.contains("id=\"nav-sso\"") && !html.contains("id=\"nav-scim\""), "{html}");
    let (_, list) = app.get("/tenants/acme/setup-links").await;
    assert_eq!(list["data"][0]["uses"], 1);
    assert!(list["data"][0]["last_used_at"].is_string());
    let log = audit(app).await;
    let redeemed = log.iter().find(|e| e["action"] == "setup_link.redeem").expect("audited redemption");
    assert_eq!(redeemed["actor"], format!("setup_link:{id}"));
    assert_eq!(redeemed["target_id"], id.as_str());
    // Static files of the portal.
    let js = app.http.get(app.url("/setup/assets/portal.js")).send().await.unwrap();
    assert_eq!(js.status().as_u16(), 200);
    assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    // Ending the session.
    let r = submit(app, &b, "/setup", "/setup/logout", &[]).await;
    assert_eq!(r.status().as_u16(), 200);
    let (s, _) = page(app, &b, "/setup").await;
    assert_eq!(s, 401);
}

async fn expired_unknown_and_revoked_links(app: &TestApp) {
    tenant(app, "acme", "acme.test").await;
    // Expired.
    let (_, url) = link(app, "acme", json!(["sso"]), Some(60)).await;
    app.clock.advance_secs(61);
    let b = browser();
    let r = b.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 410);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("This setup link no longer works") && html.contains("Ask the person who sent you the link"),
        "{html}"
    );
    assert_eq!(code_in(&html), "setup_link_expired");
    let r = b.post(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 410, "an expired link cannot be redeemed");
    // Unknown (well-formed, never issued).
    let r = b.get(app.url(&format!("/setup/fgs_{}", "A".repeat(43)))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(code_in(&r.text().await.unwrap()), "setup_link_unknown");
    // Revoked: the page says so, and the session opened from it ends.
    let (id, url) = link(app, "acme", json!(["sso"]), None).await;
    let b = redeem(&url).await;
    let (s, _) = page(app, &b, "/setup/sso").await;
    assert_eq!(s, 200);
    let (s, _) = app.admin(reqwest::Method::DELETE, &format!("/tenants/acme/setup-links/{id}"), None).await;
    assert_eq!(s, 204);
    let (s, html) = page(app, &b, "/setup/sso").await;
    assert_eq!((s, code_in(&html).as_str()), (401, "portal_session_required"), "the revoked link's session ended");
    let r = b.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 410);
    assert_eq!(code_in(&r.text().await.unwrap()), "setup_link_revoked");
    let r = b.post(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 410);
    let log = audit(app).await;
    let rev = log.iter().find(|e| e["action"] == "setup_link.revoke").unwrap();
    assert_eq!(rev["details"]["sessions_ended"], 1, "{rev}");
}

async fn forms_need_their_csrf_token_and_intents_are_enforced(app: &TestApp) {
    tenant(app, "acme", "acme.test").await;
    let (_, url) = link(app, "acme", json!(["sso"]), None).await;
    let b = redeem(&url).await;
    for form in [vec![("vendor", "okta")], vec![("vendor", "okta"), ("csrf", "forged")]] {
        let r = b.post(app.url("/setup/sso")).form(&form).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert_eq!(code_in(&r.text().await.unwrap()), "csrf_token_invalid");
    }
    // Another browser's token does not work with this cookie.
    let other = redeem(&url).await;
    let (_, html) = page(app, &other, "/setup/sso").await;
    let theirs = csrf_of(&html);
    let r = b.post(app.url("/setup/sso")).form(&[("vendor", "okta"), ("csrf", theirs.as_str())]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (_, list) = app.get("/tenants/acme/connections").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "nothing was created");
    // A link for SCIM only cannot open the SSO pages.
    let (_, scim_url) = link(app, "acme", json!(["scim"]), None).await;
    let s = redeem(&scim_url).await;
    let (st, html) = page(app, &s, "/setup/sso").await;
    assert_eq!((st, code_in(&html).as_str()), (403, "portal_intent_not_granted"));
}

/// Picks a vendor in the portal; returns the new connection's id.
async fn pick(app: &TestApp, b: &reqwest::Client, vendor: &str) -> String {
    let r = submit(app, b, "/setup/sso", "/setup/sso", &[("vendor", vendor)]).await;
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    location(&r).rsplit('/').next().unwrap().to_string()
}

async fn a_link_cannot_touch_another_tenants_connection(app: &TestApp) {
    tenant(app, "acme", "acme.test").await;
    tenant(app, "globex", "globex.test").await;
    let (_, url_b) = link(app, "globex", json!(["sso"]), None).await;
    let gb = redeem(&url_b).await;
    let theirs = pick(app, &gb, "okta").await;
    let (s, dev) = app
        .post("/tenants/globex/connections", json!({"type": "dev", "name": "Dev", "default_email": "a@globex.test"}))
        .await;
    assert_eq!(s, 201, "{dev}");
    let dev = dev["id"].as_str().unwrap().to_string();
    let (_, url_a) = link(app, "acme", json!(["sso"]), None).await;
    let a = redeem(&url_a).await;
    let (_, html) = page(app, &a, "/setup/sso").await;
    assert!(!html.contains(&theirs) && !html.contains(&dev), "another tenant's connections are not listed");
    let csrf = csrf_of(&html);
    for id in [&theirs, &dev] {
        let (s, html) = page(app, &a, &format!("/setup/sso/{id}")).await;
        assert_eq!((s, code_in(&html).as_str()), (404, "connection_not_found"));
        let (s, _) = page(app, &a, &format!("/setup/sso/{id}/test")).await;
        assert_eq!(s, 404);
        for (to, form) in [
            (format!("/setup/sso/{id}/idp"), vec![("source", "url"), ("metadata_url", "https://idp.example/md")]),
            (format!("/setup/sso/{id}/activate"), vec![]),
            (format!("/setup/sso/{id}/certificates"), vec![("certificate", "x")]),
            (format!("/setup/sso/{id}/oidc"), vec![("issuer", "https://idp.example"), ("client_id", "x")]),
        ] {
            let mut f = vec![("csrf", csrf.as_str())];
            f.extend(form);
            let r = a.post(app.url(&to)).form(&f).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 404, "{to}");
        }
    }
    // Untouched.
    let (_, c) = app.get(&format!("/tenants/globex/connections/{theirs}")).await;
    assert_eq!((c["version"].as_i64(), c["state"].as_str()), (Some(1), Some("draft")), "{c}");
}

/// The fixture IdP's metadata.
fn idp_metadata() -> String {
    FixtureIdp::test(IDP)
        .unwrap()
        .metadata_xml(Some("https://idp.fixture.test/sso"), Some("https://idp.fixture.test/sso-post"))
}

async fn metadata_mistakes_are_explained_next_to_the_field(app: &TestApp) {
    tenant(app, "acme", "acme.test").await;
    let (_, url) = link(app, "acme", json!(["sso"]), None).await;
    let b = redeem(&url).await;
    let id = pick(app, &b, "entra").await;
    let here = format!("/setup/sso/{id}");
    let (s, html) = page(app, &b, &here).await;
    assert_eq!(s, 200, "{html}");
    // The SP values exist before the IdP does, with Entra's own field names.
    assert!(
        html.contains("Reply URL (Assertion Consumer Service URL)") && html.contains("Identifier (Entity ID)"),
        "{html}"
    );
    let seg = id.replacen("conn_", "conn-", 1);
    assert!(html.contains(&format!("value=\"{}/sso/saml/{seg}/acs\"", app.base)), "{html}");
    assert!(
        html.contains("data-testid=\"vendor-steps\"") && html.contains("Enterprise applications"),
        "steps from docs"
    );
    let sp_md = app.http.get(app.url(&format!("/sso/saml/{seg}/metadata"))).send().await.unwrap();
    assert_eq!(sp_md.status().as_u16(), 200, "the draft's SP metadata exists");
    let sp_md = sp_md.text().await.unwrap();
    let to = format!("{here}/idp");
    let no_sig = idp_metadata().split("<md:KeyDescriptor").next().unwrap().to_string()
        + &idp_metadata().split("</md:KeyDescriptor>").nth(1).unwrap().to_string();
    let expired = {
        let (key, cert) =
            fedgate::upstream::saml::metadata::generate_sp_key("old idp", app.clock.now() - 11 * 365 * 86_400).unwrap();
        FixtureIdp::from_pem(IDP, &key, &cert).unwrap().metadata_xml(Some("https://idp.fixture.test/sso"), None)
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("source", "xml"), ("metadata_xml", sp_md.as_str())], "This is fedgate's own metadata"),
        (vec![("source", "xml"), ("metadata_xml", "hello")], "This is not SAML metadata"),
        (vec![("source", "xml"), ("metadata_xml", no_sig.as_str())], "contains no signing certificate"),
        (vec![("source", "xml"), ("metadata_xml", expired.as_str())], "The signing certificate expired on"),
        (vec![("source", "xml"), ("metadata_xml", "")], "This field is required"),
        (
            vec![
                ("source", "manual"),
                ("idp_entity_id", "x"),
                ("sso_url", "https://idp.example/sso"),
                ("certificate", "nope"),
            ],
            "This is not a certificate",
        ),
        (
            vec![("source", "url"), ("metadata_url", "https://acme.okta.com/home/acme_app/0oa1/aln1")],
            "Okta's link to open the app",
        ),
    ];
    for (form, want) in cases {
        let r = submit(app, &b, &here, &to, &form).await;
        assert_eq!(r.status().as_u16(), 400, "{form:?}");
        let html = r.text().await.unwrap();
        assert!(html.contains("class=\"field-error\"") && html.contains(want), "{want}: {html}");
    }
    let sp_like = sp_md.replace(&format!("{}/sso/saml/", app.base), "https://other.example/sso/saml/");
    let r = submit(app, &b, &here, &to, &[("source", "xml"), ("metadata_xml", sp_like.as_str())]).await;
    assert!(r.text().await.unwrap().contains("This is service provider metadata"));
    let (_, c) = app.get(&format!("/tenants/acme/connections/{id}")).await;
    assert_eq!(c["version"], 1, "nothing refused was stored: {c}");
}

/// Follows a test sign-in through the fixture IdP; returns the result page's HTML.
async fn run_test(app: &TestApp, b: &reqwest::Client, id: &str, email: &str) -> String {
    let r = b.get(app.url(&format!("/setup/sso/{id}/test"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "{}", r.text().await.unwrap_or_default());
    let to = location(&r);
    assert!(to.starts_with("https://idp.fixture.test/sso?"), "{to}");
    let login = query_of(&to)["RelayState"].clone();
    let (_, c) = app.get(&format!("/tenants/acme/connections/{id}")).await;
    let idp = FixtureIdp::test(IDP).unwrap();
    let mut p = ResponseParams::new(
        IDP,
        c["sp_entity_id"].as_str().unwrap(),
        c["acs_url"].as_str().unwrap(),
        Some(&login),
        "u-1001",
        email,
        app.clock.now(),
    );
    p.attributes.push(("groups".into(), vec!["eng".into()]));
    let resp = post_form_fields(&idp.response(&p).unwrap());
    let r = b
        .post(c["acs_url"].as_str().unwrap())
        .form(&[("SAMLResponse", resp.as_str()), ("RelayState", login.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    let result = location(&r);
    assert_eq!(result, app.url(&format!("/setup/sso/tests/{login}")));
    // Only this browser sees the result.
    let r = browser().get(&result).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = b.get(&result).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.unwrap()
}

async fn test_sign_in_passes_activates_and_an_edit_relocks(app: &TestApp) {
    tenant(app, "acme", "acme.test").await;
    let (client, _) = app.client("confidential", "ES256").await;
    let (link_id, url) = link(app, "acme", json!(["sso"]), None).await;
    let b = redeem(&url).await;
    let id = pick(app, &b, "okta").await;
    let here = format!("/setup/sso/{id}");
    let (_, html) = page(app, &b, &here).await;
    assert!(html.contains("Single sign-on URL") && html.contains("Audience URI (SP Entity ID)"), "Okta's field names");
    assert!(html.contains("data-testid=\"activate-locked\""), "{html}");
    let md = idp_metadata();
    let r = submit(app, &b, &here, &format!("{here}/idp"), &[("source", "xml"), ("metadata_xml", md.as_str())]).await;
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    let (_, html) = page(app, &b, &here).await;
    assert!(
        html.contains("data-testid=\"idp-summary\"")
            && html.contains(IDP)
            && html.contains("https://idp.fixture.test/sso"),
        "{html}"
    );
    assert!(html.contains("valid for "), "certificate expiry shown: {html}");

    // A draft is never used for real logins or home-realm discovery.
    let (_, c) = app.get(&format!("/tenants/acme/connections/{id}")).await;
    assert_eq!((c["state"].as_str(), c["enabled"].as_bool()), (Some("draft"), Some(false)), "{c}");
    let real = browser();
    let r = real.get(authorize_url(app, &client, &[("connection", &id)])).send().await.unwrap();
    assert!(location(&r).contains("error=invalid_request"), "{}", location(&r));
    let r = real.get(authorize_url(app, &client, &[("login_hint", "alice@acme.test")])).send().await.unwrap();
    assert!(!location(&r).contains("idp.fixture.test"), "HRD never picks a draft: {}", location(&r));
    let (s, e) = app
        .admin(reqwest::Method::PATCH, &format!("/tenants/acme/connections/{id}"), Some(json!({"enabled": true})))
        .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("connection_not_tested")), "{e}");
    // Activation before a passing test is refused.
    let r = submit(app, &b, &here, &format!("{here}/activate"), &[]).await;
    assert_eq!(r.status().as_u16(), 409);

    // A failing test: an address outside the tenant's domains.
    let html = run_test(app, &b, &id, "mallory@elsewhere.test").await;
    assert!(html.contains("data-result=\"failed\"") && html.contains("elsewhere.test is not one of"), "{html}");
    let (_, c) = app.get(&format!("/tenants/acme/connections/{id}")).await;
    assert!(c["tested_version"].is_null(), "{c}");

    // A passing test: checks, the claims the app would receive, nothing else.
    let (_, events_before) = app.get("/events").await;
    let html = run_test(app, &b, &id, "alice@acme.test").await;
    assert!(html.contains("data-result=\"passed\""), "{html}");
    assert!(html.contains("data-check=\"email_domain\" data-passed=\"true\""), "{html}");
    assert!(
        html.contains("&quot;email&quot;: &quot;alice@acme.test&quot;") && html.contains("&quot;eng&quot;"),
        "{html}"
    );
    let (_, events_after) = app.get("/events").await;
    let kinds: Vec<String> =
        events_after["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap_or("").to_string()).collect();
    assert!(!kinds.iter().any(|k| k == "user.created" || k == "login.succeeded"), "no user, no login: {kinds:?}");
    assert_eq!(
        events_before["data"].as_array().unwrap().len(),
        events_after["data"].as_array().unwrap().len(),
        "{kinds:?}"
    );
    let log = audit(app).await;
    let tests: Vec<&Value> = log.iter().filter(|e| e["action"] == "connection.test").collect();
    assert_eq!(tests.len(), 2, "both attempts audited");
    assert_eq!(tests[1]["actor"], format!("setup_link:{link_id}"));
    assert_eq!(tests[1]["details"]["passed"], true);
    assert_eq!(log.iter().filter(|e| e["action"] == "connection.test_started").count(), 2);

    // Live.
    let r = submit(app, &b, &here, &format!("{here}/activate"), &[]).await;
    assert_eq!(r.status().as_u16(), 303);
    let (_, c) = app.get(&format!("/tenants/acme/connections/{id}")).await;
    assert_eq!((c["state"].as_str(), c["enabled"].as_bool()), (Some("active"), Some(true)), "{c}");
    let r = real.get(authorize_url(app, &client, &[("connection", &id)])).send().await.unwrap();
    assert!(location(&r).starts_with("https://idp.fixture.test/sso?"), "live for real logins: {}", location(&r));

    // Rotation: a new certificate beside the old one keeps it live.
    let (_, new_cert) = fedgate::upstream::saml::metadata::generate_sp_key("idp 2027", app.clock.now()).unwrap();
    let r = submit(app, &b, &here, &format!("{here}/certificates"), &[("certificate", new_cert.as_str())]).await;
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    let (_, c) = app.get(&format!("/tenants/acme/connections/{id}")).await;
    assert_eq!(c["idp_certificates"].as_array().unwrap().len(), 2, "{c}");
    assert_eq!(c["state"], "active");

    // An edit of the IdP settings re-locks it until a new test passes.
    let r = submit(app, &b, &here, &format!("{here}/idp"), &[("source", "xml"), ("metadata_xml", md.as_str())]).await;
    assert_eq!(r.status().as_u16(), 303);
    let (_, c) = app.get(&format!("/tenants/acme/connections/{id}")).await;
    assert_eq!((c["state"].as_str(), c["enabled"].as_bool()), (Some("draft"), Some(false)), "{c}");
    assert_ne!(c["tested_version"], c["version"]);
    let (_, html) = page(app, &b, &here).await;
    assert!(html.contains("data-testid=\"activate-locked\""), "{html}");
    // The operator can force it live.
    let (s, e) = app.post(&format!("/tenants/acme/connections/{id}/activate"), json!({})).await;
    assert_eq!((s, e["error"].as_str()), (409, Some("connection_not_tested")), "{e}");
    let (s, c) = app.post(&format!("/tenants/acme/connections/{id}/activate"), json!({"force": true})).await;
    assert_eq!((s, c["state"].as_str(), c["enabled"].as_bool()), (200, Some("active"), Some(true)), "{c}");
    let log = audit(app).await;
    let forced = log.iter().rev().find(|e| e["action"] == "connection.activate").unwrap();
    assert_eq!(forced["details"]["forced"], true);
}

both!(
    setup_links_through_the_admin_api,
    get_never_redeems_post_does,
    expired_unknown_and_revoked_links,
    forms_need_their_csrf_token_and_intents_are_enforced,
    a_link_cannot_touch_another_tenants_connection,
    metadata_mistakes_are_explained_next_to_the_field,
    test_sign_in_passes_activates_and_an_edit_relocks,
);
