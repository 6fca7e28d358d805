//! The setup portal's SCIM page: a token minted by a POST and shown once, two-token rotation,
//! and the live provisioning check narrating an Entra-style sequence from the request log.
use crate::both;
use crate::common::{browser, TestApp};
use serde_json::{json, Value};

/// A setup link for `slug` with `intents`, opened and redeemed in a fresh browser: the browser
/// (with the portal cookie) and the CSRF token of its pages.
pub async fn open_portal(app: &TestApp, slug: &str, intents: &[&str]) -> (reqwest::Client, String) {
    let (st, link) = app.post(&format!("/tenants/{slug}/setup-links"), json!({"intents": intents})).await;
    assert_eq!(st, 201, "{link}");
    let url = link["url"].as_str().unwrap().to_string();
    let b = browser();
    let r = b.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 303, "redeem");
    let home = b.get(app.url("/setup")).send().await.unwrap().text().await.unwrap();
    let csrf = attr_after(&home, "name=\"csrf\" value=\"").expect("csrf in the portal page");
    (b, csrf)
}

/// The text after `marker` up to the next `"`.
pub fn attr_after(html: &str, marker: &str) -> Option<String> {
    let i = html.find(marker)? + marker.len();
    Some(html[i..].split('"').next()?.to_string())
}

async fn scim(app: &TestApp, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = app.http.request(method, app.url(&format!("/scim/v2/contoso{path}"))).bearer_auth(token);
    if let Some(b) = body {
        r = r.header("content-type", "application/scim+json").body(b.to_string());
    }
    let res = r.send().await.unwrap();
    let st = res.status().as_u16();
    (st, res.json().await.unwrap_or(Value::Null))
}

async fn mint(app: &TestApp, b: &reqwest::Client, csrf: &str, vendor: &str) -> String {
    let r = b.post(app.url("/setup/scim/token")).form(&[("csrf", csrf), ("vendor", vendor)]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    attr_after(&html, "data-testid=\"scim-token\" readonly value=\"").expect("the new token is shown")
}

async fn activity(app: &TestApp, b: &reqwest::Client, after: &str) -> Value {
    let r = b.get(app.url(&format!("/setup/scim/activity?vendor=entra&after={after}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn live_check_narrates_provisioning(app: &TestApp) {
    app.tenant("contoso", "contoso.test", &[]).await;
    let (b, csrf) = open_portal(app, "contoso", &["scim"]).await;
    let page = b.get(app.url("/setup/scim?vendor=entra")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("{}/scim/v2/contoso?aadOptscim062020", app.base)), "Entra's tenant URL");
    assert!(page.contains("Test Connection"), "Entra's steps");
    assert!(page.contains("No request has arrived yet"));
    assert!(page.contains("/setup/assets/scim-live.js"));
    let js = app.http.get(app.url("/setup/assets/scim-live.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);

    // Minting needs the form token, and shows the token once.
    let r = b.post(app.url("/setup/scim/token")).form(&[("vendor", "entra")]).send().await.unwrap();
    assert_eq!(r.status(), 403, "no CSRF token");
    let token = mint(app, &b, &csrf, "entra").await;
    assert!(token.starts_with("fgscim_"));
    let again = b.get(app.url("/setup/scim?vendor=entra")).send().await.unwrap().text().await.unwrap();
    assert!(!again.contains(&token), "shown once");
    assert!(again.contains("Setup portal (Entra ID)"));

    // Entra: Test Connection, create a user and a group, a group push with an unknown member.
    let (st, _) = scim(
        app,
        &token,
        reqwest::Method::GET,
        "/Users?aadOptscim062020&filter=userName%20eq%20%2254b1c2a9-4ef2-4c4d-9d07-6b4c0f1b2f0e%22",
        None,
    )
    .await;
    assert_eq!(st, 200);
    let (st, u) = scim(
        app,
        &token,
        reqwest::Method::POST,
        "/Users?aadOptscim062020",
        Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann@contoso.test", "active": true,
        "externalId": "0a21f0f2"})),
    )
    .await;
    assert_eq!(st, 201, "{u}");
    let (st, g) = scim(
        app,
        &token,
        reqwest::Method::POST,
        "/Groups?aadOptscim062020",
        Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng", "members": []})),
    )
    .await;
    assert_eq!(st, 201, "{g}");
    let gid = g["id"].as_str().unwrap();
    let (st, _) = scim(
        app,
        &token,
        reqwest::Method::PATCH,
        &format!("/Groups/{gid}?aadOptscim062020"),
        Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": "usr_nobody"}]}]})),
    )
    .await;
    assert_eq!(st, 400);

    let a = activity(app, &b, "").await;
    let html = a["html"].as_str().unwrap();
    assert_eq!(a["count"], 4, "{a}");
    assert!(html.contains("Entra ID's connection test succeeded."), "{html}");
    assert!(html.contains("Entra ID created a user."), "{html}");
    assert!(html.contains("Entra ID created a group."), "{html}");
    assert!(html.contains("A group push from Entra ID failed."), "{html}");
    assert!(html.contains("names a member who was never provisioned here"), "the fix: {html}");
    let ms = a["milestones_html"].as_str().unwrap();
    for m in ["first_request", "test_passed", "first_user", "first_group"] {
        assert!(ms.contains(&format!("data-testid=\"milestone-{m}\" class=\"done\"")), "{m}: {ms}");
    }
    // Nothing new after the cursor; the next request appears alone.
    let cursor = a["cursor"].as_str().unwrap().to_string();
    let a2 = activity(app, &b, &cursor).await;
    assert_eq!((a2["count"].as_u64(), a2["cursor"].as_str()), (Some(0), Some(cursor.as_str())));
    let (st, _) =
        scim(app, &token, reqwest::Method::DELETE, &format!("/Users/{}", u["id"].as_str().unwrap()), None).await;
    assert_eq!(st, 204);
    let a3 = activity(app, &b, &cursor).await;
    assert_eq!(a3["count"], 1);
    assert!(a3["html"].as_str().unwrap().contains("deleted a user"));

    // The page's first view carries the same narration (works without JavaScript).
    let page = b.get(app.url("/setup/scim?vendor=entra")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Entra ID created a user."));

    // Another tenant's portal sees none of it; a link without the scim intent gets no page.
    app.tenant("fabrikam", "fabrikam.test", &[]).await;
    let (b2, _) = open_portal(app, "fabrikam", &["scim", "domains"]).await;
    let other =
        b2.get(app.url("/setup/scim/activity?vendor=entra")).send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(other["count"], 0);
    let (b3, _) = open_portal(app, "contoso", &["domains"]).await;
    assert_eq!(b3.get(app.url("/setup/scim")).send().await.unwrap().status(), 403);
    assert_eq!(b3.get(app.url("/setup/scim/activity")).send().await.unwrap().status(), 403);
    assert_eq!(browser().get(app.url("/setup/scim/activity")).send().await.unwrap().status(), 401, "no session");
}

async fn rotation_keeps_two_portal_tokens(app: &TestApp) {
    app.tenant("contoso", "contoso.test", &[]).await;
    let (_, op) = app.post("/tenants/contoso/scim-tokens", json!({"name": "operator"})).await;
    let operator = op["token"].as_str().unwrap().to_string();
    let (b, csrf) = open_portal(app, "contoso", &["scim"]).await;
    let t1 = mint(app, &b, &csrf, "okta").await;
    app.clock.advance_secs(1);
    let t2 = mint(app, &b, &csrf, "okta").await;
    assert_eq!(scim(app, &t1, reqwest::Method::GET, "/Users?count=1", None).await.0, 200, "the old token still works");
    app.clock.advance_secs(1);
    let t3 = mint(app, &b, &csrf, "okta").await;
    assert_eq!(
        scim(app, &t1, reqwest::Method::GET, "/Users?count=1", None).await.0,
        401,
        "the oldest portal token is revoked"
    );
    for t in [&t2, &t3, &operator] {
        assert_eq!(scim(app, t, reqwest::Method::GET, "/Users?count=1", None).await.0, 200);
    }
    // Each mint is in the audit log, by the setup link, without the token.
    let (_, log) = app.get("/audit-log").await;
    let text = log.to_string();
    assert!(text.contains("setup_link:"), "{text}");
    assert!(!text.contains(&t3));
}

/// A real browser posts the "Start setup" form with `Origin: null` (the pages' referrer policy
/// is no-referrer) and `Sec-Fetch-Site: same-origin`: it redeems; a cross-site post does not.
async fn redemption_from_a_real_browser(app: &TestApp) {
    app.tenant("contoso", "contoso.test", &[]).await;
    let (_, link) = app.post("/tenants/contoso/setup-links", json!({"intents": ["scim"]})).await;
    let url = link["url"].as_str().unwrap();
    let post = |site: &'static str| browser().post(url).header("origin", "null").header("sec-fetch-site", site).send();
    assert_eq!(post("cross-site").await.unwrap().status(), 403);
    assert_eq!(post("same-origin").await.unwrap().status(), 303);
}

both!(live_check_narrates_provisioning, rotation_keeps_two_portal_tokens, redemption_from_a_real_browser);
