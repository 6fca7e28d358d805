//! Social sign-in (docs/connections/social.md): Microsoft (personal and work accounts through
//! the multi-tenant issuer), Google (any account), GitHub (OAuth 2.0 and its REST API) and Apple
//! (form_post, a signed client secret, the name on the first login only), each against a fixture
//! that speaks the provider's dialect on 127.0.0.1 — never the internet.
use crate::common::*;
use crate::oidc_idp::{FixtureIdp, Knobs, MSA_TID};
use serde_json::{json, Value};

/// Runs each test on SQLite and PostgreSQL with `allow_private_network = true` (the fixtures
/// listen on 127.0.0.1).
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

/// What the browser ends with.
#[allow(dead_code)]
pub struct End {
    pub status: u16,
    pub location: String,
    pub body: String,
    /// The callback URL (or form) the provider sent the browser to.
    pub callback: String,
}

impl End {
    pub fn code(&self) -> String {
        self.body
            .split("Error code <code>")
            .nth(1)
            .and_then(|r| r.split("</code>").next())
            .unwrap_or_default()
            .to_string()
    }
}

/// A self-serve tenant for social sign-in: people come with any address.
async fn social_tenant(app: &TestApp, slug: &str) -> Value {
    let (s, t) = app
        .post(
            "/tenants",
            json!({"name": format!("{slug} space"), "slug": slug, "settings": {"allow_email_outside_domains": true}}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    t
}

/// authorize -> provider (auto-approving fixture) -> GET callback.
async fn run(app: &TestApp, b: &reqwest::Client, cid: &str, extra: &[(&str, &str)]) -> End {
    let r = b.get(authorize_url(app, cid, extra)).send().await.unwrap();
    let status = r.status().as_u16();
    let to_idp = location(&r);
    if status != 302 || to_idp.starts_with(REDIRECT) {
        return End { status, location: to_idp, body: r.text().await.unwrap_or_default(), callback: String::new() };
    }
    let r = b.get(&to_idp).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "fixture authorize: {}", r.text().await.unwrap_or_default());
    let callback = location(&r);
    let r = b.get(&callback).send().await.unwrap();
    let status = r.status().as_u16();
    let location = location(&r);
    End { status, location, body: r.text().await.unwrap_or_default(), callback }
}

/// The app's ID token claims after a successful login.
async fn claims_of(app: &TestApp, cid: &str, secret: Option<&str>, end: &End) -> Value {
    assert_eq!(end.status, 303, "{} {}", end.location, end.body);
    let (s, tok) = exchange(app, cid, secret, &query_of(&end.location)["code"]).await;
    assert_eq!(s, 200, "{tok}");
    verify_jwt(app, tok["id_token"].as_str().unwrap(), cid).await
}

async fn microsoft_personal_and_work_accounts(app: &TestApp) {
    let knobs = Knobs {
        email: "bob@outlook.test".into(),
        send_iss: false,
        entra_tid: Some(MSA_TID.into()),
        drop_claims: vec!["email_verified"],
        extra_claims: json!({"email": "bob@outlook.test"}),
        ..Knobs::default()
    };
    let idp = FixtureIdp::start(knobs, 1).await.unwrap();
    social_tenant(app, "space").await;
    // The preset alone names Microsoft's common endpoint.
    let (s, c) = app
        .post(
            "/tenants/space/connections",
            json!({"type": "oidc", "preset": "microsoft", "name": "Microsoft", "client_id": "x", "client_secret": "y"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["issuer"], "https://login.microsoftonline.com/common/v2.0");
    assert_eq!(
        app.admin(reqwest::Method::DELETE, &format!("/tenants/space/connections/{}", c["id"].as_str().unwrap()), None)
            .await
            .0,
        204
    );
    let mut body = idp.connection_body("Microsoft");
    body["issuer"] = json!(format!("{}/common/v2.0", idp.issuer));
    body["preset"] = json!("microsoft");
    let (s, c) = app.post("/tenants/space/connections", body).await;
    assert_eq!(s, 201, "{c}");
    let (cid, secret) = app.client("confidential", "ES256").await;
    // A personal account (the MSA directory).
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    let personal = claims_of(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(personal["email"], "bob@outlook.test");
    assert_eq!(personal["email_verified"], false, "Microsoft does not verify email");
    // A work account of any directory (no allow-list): another person.
    idp.set(|k| {
        k.entra_tid = Some("0a1b2c3d-0000-4000-8000-000000000001".into());
        k.extra_claims = json!({"email": "carol@contoso.test", "xms_edov": true});
    });
    let end = run(app, &browser(), &cid, &[("organization", "space"), ("login_hint", "carol@contoso.test")]).await;
    let work = claims_of(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(work["email"], "carol@contoso.test");
    assert_ne!(work["sub"], personal["sub"]);
    // The tid in the token and the directory in iss disagree: a forged issuer, refused.
    idp.set(|k| k.entra_iss_tid = Some("0a1b2c3d-0000-4000-8000-000000000002".into()));
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    assert_eq!((end.status, end.code().as_str()), (502, "id_token_issuer_mismatch"), "{}", end.body);
    idp.set(|k| k.entra_iss_tid = None);
    // An allow-list of directories.
    let conn_id = c["id"].as_str().unwrap();
    let (s, _) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/tenants/space/connections/{conn_id}"),
            Some(json!({"allowed_tenant_ids": [MSA_TID]})),
        )
        .await;
    assert_eq!(s, 200);
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    assert_eq!(end.code(), "entra_tenant_not_allowed", "{}", end.body);
    // The organizations endpoint refuses personal accounts; consumers refuses work accounts.
    let (s, _) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/tenants/space/connections/{conn_id}"),
            Some(json!({"allowed_tenant_ids": [], "issuer": format!("{}/organizations/v2.0", idp.issuer)})),
        )
        .await;
    assert_eq!(s, 200);
    idp.set(|k| k.entra_tid = Some(MSA_TID.into()));
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    assert_eq!(end.code(), "entra_tenant_not_allowed", "{}", end.body);
    let (s, _) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/tenants/space/connections/{conn_id}"),
            Some(json!({"issuer": format!("{}/consumers/v2.0", idp.issuer)})),
        )
        .await;
    assert_eq!(s, 200);
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    assert_eq!(claims_of(app, &cid, secret.as_deref(), &end).await["sub"], personal["sub"]);
    idp.set(|k| k.entra_tid = Some("0a1b2c3d-0000-4000-8000-000000000001".into()));
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    assert_eq!(end.code(), "entra_tenant_not_allowed", "{}", end.body);
}

async fn google_any_account(app: &TestApp) {
    // Google's dialect: no RFC 9207 iss parameter, email_verified, hd only for Workspace accounts.
    let knobs = Knobs { email: "dana@gmail.test".into(), send_iss: false, ..Knobs::default() };
    let idp = FixtureIdp::start(knobs, 1).await.unwrap();
    social_tenant(app, "space").await;
    let (s, c) = app
        .post(
            "/tenants/space/connections",
            json!({"type": "oidc", "preset": "google_any", "name": "Google", "client_id": "x", "client_secret": "y"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["issuer"], "https://accounts.google.com");
    app.admin(reqwest::Method::DELETE, &format!("/tenants/space/connections/{}", c["id"].as_str().unwrap()), None)
        .await;
    let mut body = idp.connection_body("Google");
    body["preset"] = json!("google_any");
    let (s, c) = app.post("/tenants/space/connections", body).await;
    assert_eq!(s, 201, "{c}");
    let (cid, secret) = app.client("confidential", "ES256").await;
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    let gmail = claims_of(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(gmail["email"], "dana@gmail.test");
    assert_eq!(gmail["email_verified"], false, "gmail.test is not a domain of the tenant");
    // A Workspace account (hd) is welcome too.
    idp.set(|k| k.extra_claims = json!({"hd": "acme.test"}));
    let end = run(app, &browser(), &cid, &[("organization", "space"), ("login_hint", "erin@acme.test")]).await;
    assert_eq!(claims_of(app, &cid, secret.as_deref(), &end).await["email"], "erin@acme.test");
    // Another issuer: refused.
    idp.set(|k| k.misbehave = crate::oidc_idp::Misbehave::WrongIssuer);
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    assert_eq!(end.code(), "id_token_issuer_mismatch", "{}", end.body);
    // Google documents `iss` as `https://accounts.google.com` or `accounts.google.com`. The
    // scheme-less form is not a URL, so the OpenID Connect library refuses the token response
    // before any issuer check (docs/connections/social.md, "Not done yet"): refused, never
    // taken for another issuer.
    let bare = idp.issuer.trim_start_matches("http://").to_string();
    idp.set(|k| {
        k.misbehave = crate::oidc_idp::Misbehave::Nothing;
        k.extra_claims = json!({"iss": bare});
    });
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    assert_eq!((end.status, end.code().as_str()), (502, "token_exchange_failed"), "{}", end.body);
    let _ = (c, gmail);
}

both_private!(microsoft_personal_and_work_accounts, google_any_account, self_serve_default_tenant);

/// The login id of an email-page URL (`{issuer}/login/{id}`).
fn login_page_of(app: &TestApp, url: &str) -> String {
    assert!(url.starts_with(&app.url("/login/")), "expected the email page, got {url}");
    url.to_string()
}

/// Follows the provider (auto-approving fixture) and the callback; returns the app's claims.
async fn through_provider(app: &TestApp, b: &reqwest::Client, to_idp: &str, cid: &str, secret: Option<&str>) -> Value {
    let r = b.get(to_idp).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "provider: {}", r.text().await.unwrap_or_default());
    let r = b.get(location(&r)).send().await.unwrap();
    let status = r.status().as_u16();
    let location = location(&r);
    let end = End { status, location, body: r.text().await.unwrap_or_default(), callback: String::new() };
    claims_of(app, cid, secret, &end).await
}

/// A per-app default tenant for self-serve sign-ups: an address at a domain no tenant has, or a
/// "Continue with ..." button of the email page, goes to that tenant's social connections and
/// the tokens carry its org_id; a tenant's verified domain still goes to that tenant.
async fn self_serve_default_tenant(app: &TestApp) {
    let knobs = Knobs { email: "dana@gmail.test".into(), send_iss: false, ..Knobs::default() };
    let idp = FixtureIdp::start(knobs, 1).await.unwrap();
    let space = social_tenant(app, "space").await;
    let mut body = idp.connection_body("Google");
    body["preset"] = json!("google_any");
    let (s, google) = app.post("/tenants/space/connections", body).await;
    assert_eq!(s, 201, "{google}");
    let gid = google["id"].as_str().unwrap();
    let (acme, acme_dev) = app.tenant("acme", "acme.test", &[]).await;

    // The admin API: default_tenant is a tenant (id or slug) that exists.
    let client_body =
        |t: Value| json!({"name": "Shop", "type": "confidential", "redirect_uris": [REDIRECT], "default_tenant": t});
    let (s, e) = app.post("/clients", client_body(json!("nope"))).await;
    assert_eq!(
        (s, e["error"].as_str(), e["field"].as_str()),
        (400, Some("unknown_tenant"), Some("default_tenant")),
        "{e}"
    );
    let (s, c) = app.post("/clients", client_body(json!("space"))).await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["default_tenant"], space["id"]);
    let cid = c["id"].as_str().unwrap().to_string();
    let secret = c["client_secret"].as_str().map(str::to_string);
    let secret = secret.as_deref();

    // The email page offers the self-serve tenant's social connections.
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let page_url = login_page_of(app, &location(&r));
    let page = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("action=\"{}/connection\"", page_url.trim_start_matches(&app.base))), "{page}");
    assert!(page.contains(&format!("name=\"connection\" value=\"{gid}\">Continue with Google</button>")), "{page}");
    assert!(!page.contains("Dev</button>"), "enterprise connections are never offered: {page}");
    // The button: straight to Google, and the tokens speak for the self-serve tenant.
    let r = b.post(format!("{page_url}/connection")).form(&[("connection", gid)]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    let to_idp = location(&r);
    assert!(to_idp.starts_with(&idp.issuer), "{to_idp}");
    let claims = through_provider(app, &b, &to_idp, &cid, secret).await;
    assert_eq!((claims["org_id"].as_str(), claims["email"].as_str()), (space["id"].as_str(), Some("dana@gmail.test")));

    // A connection of another tenant is not a button of this page.
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[])).send().await.unwrap();
    let page_url = location(&r);
    let r = b
        .post(format!("{page_url}/connection"))
        .form(&[("connection", acme_dev["id"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("connection_not_allowed"));

    // An address at a domain no tenant has: the self-serve tenant's only social connection.
    let r = b.post(&page_url).form(&[("email", "dana@gmail.test")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    let to_idp = location(&r);
    assert!(to_idp.starts_with(&idp.issuer), "{to_idp}");
    assert_eq!(query_of(&to_idp).get("login_hint").map(String::as_str), Some("dana@gmail.test"), "{to_idp}");
    let claims = through_provider(app, &b, &to_idp, &cid, secret).await;
    assert_eq!(claims["org_id"], space["id"]);

    // A tenant's verified domain is never captured by self-serve: the email page and login_hint
    // both go to the enterprise tenant's IdP.
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[])).send().await.unwrap();
    let page_url = location(&r);
    let r = b.post(&page_url).form(&[("email", "alice@acme.test")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let dev = location(&r);
    assert!(dev.contains("/sso/dev/"), "the enterprise IdP, not self-serve: {dev}");
    let r = b.post(&dev).form(&[("action", "approve")]).send().await.unwrap();
    let end = End { status: r.status().as_u16(), location: location(&r), body: String::new(), callback: String::new() };
    assert_eq!(claims_of(app, &cid, secret, &end).await["org_id"], acme["id"]);
    let code = code_for(app, &browser(), &cid, &[("login_hint", "bob@acme.test")]).await;
    let (s, tok) = exchange(app, &cid, secret, &code).await;
    assert_eq!(s, 200, "{tok}");
    assert_eq!(verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await["org_id"], acme["id"]);
    // A social button that comes back with an address at acme.test (a Google account under
    // Acme's domain): refused, the person must use Acme's sign-in.
    idp.set(|k| k.email = "erin@acme.test".into());
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[])).send().await.unwrap();
    let page_url = location(&r);
    let r = b.post(format!("{page_url}/connection")).form(&[("connection", gid)]).send().await.unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    let status = r.status().as_u16();
    let end = End { status, location: String::new(), body: r.text().await.unwrap(), callback: String::new() };
    assert_eq!((end.status, end.code().as_str()), (403, "enterprise_domain_sso_required"), "{}", end.body);
    // The same address through the acme organization's own route is not affected; through
    // organization=space with another app (no default tenant), it is not self-serve either.
    let (other, other_secret) = app.client("confidential", "ES256").await;
    let end = run(app, &browser(), &other, &[("organization", "space")]).await;
    let claims = claims_of(app, &other, other_secret.as_deref(), &end).await;
    assert_eq!((claims["org_id"].as_str(), claims["email_verified"].as_bool()), (space["id"].as_str(), Some(false)));
    idp.set(|k| k.email = "dana@gmail.test".into());
    // A login_hint at an unknown domain goes straight to self-serve.
    let r = browser().get(authorize_url(app, &cid, &[("login_hint", "zoe@gmail.test")])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert!(location(&r).starts_with(&idp.issuer), "{}", location(&r));

    // Several social connections: the chooser lists them, "Continue with ...".
    let gh = crate::github_fixture::FixtureGithub::start().await.unwrap();
    let (s, github) = app.post("/tenants/space/connections", gh.connection_body("GitHub")).await;
    assert_eq!(s, 201, "{github}");
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[])).send().await.unwrap();
    let page_url = location(&r);
    let page = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Continue with Google") && page.contains("Continue with GitHub"), "{page}");
    let r = b.post(&page_url).form(&[("email", "dana@gmail.test")]).send().await.unwrap();
    assert_eq!((r.status().as_u16(), location(&r)), (303, page_url.clone()));
    let chooser = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    assert!(
        chooser.contains(&format!("value=\"{}\">Continue with GitHub</button>", github["id"].as_str().unwrap())),
        "{chooser}"
    );
    assert!(chooser.contains("Continue with Google"), "{chooser}");
    let r = b
        .post(format!("{page_url}/connection"))
        .form(&[("connection", github["id"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(location(&r).starts_with(&gh.base), "{}", location(&r));

    // Without a default tenant: no buttons, and an unknown domain is told so (unchanged).
    let (s, c) =
        app.admin(reqwest::Method::PATCH, &format!("/clients/{cid}"), Some(json!({"default_tenant": null}))).await;
    assert_eq!((s, &c["default_tenant"]), (200, &Value::Null), "{c}");
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[])).send().await.unwrap();
    let page_url = location(&r);
    let page = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("Continue with"), "{page}");
    let page = b.post(&page_url).form(&[("email", "dana@gmail.test")]).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("couldn&#x27;t find single sign-on"), "{page}");
    let r = b.post(format!("{page_url}/connection")).form(&[("connection", gid)]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // PATCH takes a slug too.
    let (s, c) =
        app.admin(reqwest::Method::PATCH, &format!("/clients/{cid}"), Some(json!({"default_tenant": "space"}))).await;
    assert_eq!((s, &c["default_tenant"]), (200, &space["id"]), "{c}");
}

async fn github_login(app: &TestApp) {
    let gh = crate::github_fixture::FixtureGithub::start().await.unwrap();
    social_tenant(app, "space").await;
    let (s, c) = app.post("/tenants/space/connections", gh.connection_body("GitHub")).await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["type"], "github");
    assert_eq!(c["has_client_secret"], true);
    assert!(c.get("client_secret").is_none());
    assert_eq!(c["redirect_uri"], app.url("/sso/github/callback"));
    let (cid, secret) = app.client("confidential", "ES256").await;
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[("organization", "space")])).send().await.unwrap();
    let to_gh = location(&r);
    let q = query_of(&to_gh);
    assert!(to_gh.starts_with(&format!("{}/login/oauth/authorize", gh.base)), "{to_gh}");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], app.url("/sso/github/callback"));
    assert_eq!(q["scope"], "read:user user:email");
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    let first = claims_of(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(first["email"], "octocat@github.test", "the primary verified address, not the profile's");
    assert_eq!(first["name"], "The Octocat");
    assert_eq!(first["connection_type"], "github");
    assert!(gh.refused().is_empty(), "fedgate sends the headers GitHub requires: {:?}", gh.refused());
    // The login name changes (and the address): the numeric id is the same person.
    gh.set_user(|u| {
        u.login = "octocat-renamed".into();
        u.emails = vec![("new@github.test".into(), true, true)];
    });
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    let again = claims_of(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(again["sub"], first["sub"]);
    // Someone else takes the old login name: another person.
    gh.set_user(|u| {
        u.id = 999;
        u.login = "octocat".into();
        u.emails = vec![("squatter@github.test".into(), true, true)];
    });
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    assert_ne!(claims_of(app, &cid, secret.as_deref(), &end).await["sub"], first["sub"]);
    // A primary address GitHub has not verified: refused (a verified secondary does not count).
    gh.set_user(|u| {
        u.emails = vec![("unverified@github.test".into(), true, false), ("other@github.test".into(), false, true)];
    });
    let end = run(app, &browser(), &cid, &[("organization", "space")]).await;
    assert_eq!((end.status, end.code().as_str()), (502, "github_email_unverified"), "{}", end.body);
    // A callback with another state: not this browser's sign-in.
    let r = b.get(authorize_url(app, &cid, &[("organization", "space")])).send().await.unwrap();
    let to_gh = location(&r);
    let r = b.get(&to_gh).send().await.unwrap();
    let cb = location(&r);
    let forged = cb.replace(&query_of(&cb)["state"], "lgn_00000000000000000000000000");
    let r = b.get(&forged).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("unknown_state"));
    // A code GitHub refuses (replayed): GitHub's 200 + error dialect is a token exchange failure.
    let r = b.get(&cb).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 502);
    let r2 = browser();
    let r = r2.get(authorize_url(app, &cid, &[("organization", "space")])).send().await.unwrap();
    let r = r2.get(location(&r)).send().await.unwrap();
    let cb2 = location(&r);
    let replay = cb2.replace(&query_of(&cb2)["code"], "not-a-code");
    let r = r2.get(&replay).send().await.unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("token_exchange_failed"), "{body}");
}

both_private!(github_login);

/// The hidden inputs and action of the fixture's form_post page.
fn form_of(html: &str) -> (String, Vec<(String, String)>) {
    let unesc = |s: &str| s.replace("&quot;", "\"").replace("&lt;", "<").replace("&amp;", "&");
    let action = html.split("action=\"").nth(1).unwrap().split('"').next().unwrap();
    let fields = html
        .split("<input ")
        .skip(1)
        .map(|i| {
            let n = i.split("name=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
            let v = i.split("value=\"").nth(1).unwrap().split('"').next().unwrap();
            (n, unesc(v))
        })
        .collect();
    (unesc(action), fields)
}

/// authorize -> Apple (a form) -> the cross-site POST, which carries no cookie -> GET hand-over.
async fn apple_run(app: &TestApp, b: &reqwest::Client, cid: &str, tamper: impl Fn(&mut Vec<(String, String)>)) -> End {
    let r = b.get(authorize_url(app, cid, &[("organization", "space")])).send().await.unwrap();
    let to_apple = location(&r);
    let q = query_of(&to_apple);
    assert_eq!(q["response_mode"], "form_post", "{to_apple}");
    assert_eq!(q["scope"], "openid name email");
    let r = b.get(&to_apple).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (action, mut fields) = form_of(&r.text().await.unwrap());
    assert_eq!(action, app.url("/sso/oidc/callback"));
    tamper(&mut fields);
    // A cross-site POST: SameSite=Lax cookies are not sent with it.
    let cross_site = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = cross_site.post(&action).form(&fields).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    let callback = location(&r);
    assert!(callback.starts_with(&app.url("/sso/oidc/callback?")), "{callback}");
    let r = b.get(&callback).send().await.unwrap();
    let status = r.status().as_u16();
    let location = location(&r);
    End { status, location, body: r.text().await.unwrap_or_default(), callback }
}

async fn apple_form_post_signed_secret_and_first_login_name(app: &TestApp) {
    use base64::Engine;
    let (key, der) = fedgate::keys::SigningKey::generate(fedgate::keys::Alg::ES256, "KEY123ABCD".into()).unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    let knobs = Knobs {
        email: "ada@privaterelay.appleid.test".into(),
        send_iss: false,
        apple: Some(("TEAM123456".into(), "KEY123ABCD".into(), key.public().clone())),
        ..Knobs::default()
    };
    let idp = FixtureIdp::start(knobs, 1).await.unwrap();
    social_tenant(app, "space").await;
    // The preset needs the team and key ids.
    let (s, e) = app
        .post(
            "/tenants/space/connections",
            json!({"type": "oidc", "preset": "apple", "name": "Apple", "client_id": "x", "client_secret": pem}),
        )
        .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("apple_team_id")), "{e}");
    let (s, c) = app
        .post(
            "/tenants/space/connections",
            json!({"type": "oidc", "preset": "apple", "name": "Apple", "issuer": idp.issuer, "client_id": "fedgate-client",
                   "client_secret": pem, "apple_team_id": "TEAM123456", "apple_key_id": "KEY123ABCD"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert!(c.get("client_secret").is_none() && !c.to_string().contains("PRIVATE KEY"), "{c}");
    let (cid, secret) = app.client("confidential", "ES256").await;
    // First login: Apple sends the name in the `user` form field, once.
    let end = apple_run(app, &browser(), &cid, |_| {}).await;
    assert!(end.callback.contains("user="), "{}", end.callback);
    let first = claims_of(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(first["email"], "ada@privaterelay.appleid.test");
    assert_eq!(first["name"], "Ada Lovelace");
    // Second login: no name from Apple; the stored one stays.
    let end = apple_run(app, &browser(), &cid, |_| {}).await;
    assert!(!end.callback.contains("user="), "{}", end.callback);
    let second = claims_of(app, &cid, secret.as_deref(), &end).await;
    assert_eq!(second["sub"], first["sub"]);
    assert_eq!(second["name"], "Ada Lovelace");
    assert_eq!(second["given_name"], "Ada");
    // A forged state: not this browser's sign-in.
    let end = apple_run(app, &browser(), &cid, |f| {
        for (n, v) in f.iter_mut() {
            if n == "state" {
                *v = "lgn_00000000000000000000000000".into();
            }
        }
    })
    .await;
    assert_eq!(end.status, 400, "{}", end.body);
    assert!(end.body.contains("unknown_state"), "{}", end.body);
    // A client secret signed with another key: Apple refuses the token request.
    let (other, der2) = fedgate::keys::SigningKey::generate(fedgate::keys::Alg::ES256, "KEY123ABCD".into()).unwrap();
    let _ = other;
    let pem2 = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der2)
    );
    let (s, _) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/tenants/space/connections/{}", c["id"].as_str().unwrap()),
            Some(json!({"client_secret": pem2})),
        )
        .await;
    assert_eq!(s, 200);
    let end = apple_run(app, &browser(), &cid, |_| {}).await;
    assert_eq!((end.status, end.code().as_str()), (502, "token_exchange_failed"), "{}", end.body);
}

both_private!(apple_form_post_signed_secret_and_first_login_name);
