//! The OpenID provider end to end: discovery, authorize, token, userinfo, refresh rotation,
//! revocation, introspection, logout, sessions, and every error path we promise.
use crate::both;
use crate::common::*;
use serde_json::{json, Value};

async fn discovery_document(app: &TestApp) {
    let r = app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap().replace(&app.base, "https://issuer.example");
    let doc: Value = serde_json::from_str(&text).unwrap();
    insta::assert_json_snapshot!("discovery", doc);
    let jwks = app.jwks().await;
    let algs: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
    for a in ["ES256", "EdDSA", "RS256"] {
        assert!(algs.contains(&a), "{a} missing from JWKS");
    }
    for k in jwks["keys"].as_array().unwrap() {
        assert!(k.get("d").is_none() && k.get("p").is_none(), "private material in JWKS");
        assert_eq!(k["use"], "sig");
    }
}

async fn code_flow_tokens_and_claims(app: &TestApp) {
    let (t, conn) = app.tenant("acme", "acme.test", &["engineering", "admins"]).await;
    for alg in ["ES256", "EdDSA", "RS256"] {
        let (cid, secret) = app.client("confidential", alg).await;
        let b = browser();
        let code = code_for(app, &b, &cid, &[("organization", "acme"), ("login_hint", "bob.builder@acme.test")]).await;
        let (s, tok) = exchange(app, &cid, secret.as_deref(), &code).await;
        assert_eq!(s, 200, "{tok}");
        assert_eq!(tok["token_type"], "Bearer");
        assert!(tok["refresh_token"].as_str().unwrap().starts_with("fgrt_"));
        let id = tok["id_token"].as_str().unwrap();
        assert_eq!(jwt_header(id)["alg"], alg);
        let claims = verify_jwt(app, id, &cid).await;
        assert_eq!(claims["org_id"], t["id"]);
        assert_eq!(claims["org_slug"], "acme");
        assert_eq!(claims["connection_id"], conn["id"]);
        assert_eq!(claims["connection_type"], "dev");
        assert_eq!(claims["email"], "bob.builder@acme.test");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["name"], "Bob Builder");
        assert_eq!(claims["given_name"], "Bob");
        assert_eq!(claims["family_name"], "Builder");
        assert_eq!(claims["groups"], json!(["engineering", "admins"]));
        assert_eq!(claims["nonce"], "n-456");
        assert_eq!(claims["amr"], json!(["user"]));
        assert!(claims["sub"].as_str().unwrap().starts_with("usr_"));
        assert!(claims["sid"].as_str().unwrap().starts_with("ses_"));
        let at = tok["access_token"].as_str().unwrap();
        assert_eq!(jwt_header(at)["typ"], "at+jwt");
        let atc = verify_jwt(app, at, &cid).await;
        assert_eq!(atc["client_id"], cid.as_str());
        assert_eq!(atc["sub"], claims["sub"]);
        assert!(atc["jti"].is_string());
        assert_eq!(atc["scope"], "openid profile email offline_access");
        if alg == "ES256" {
            let mut shape = claims.clone();
            for k in ["sub", "sid", "org_id", "connection_id", "aud", "azp", "exp", "iat", "auth_time", "iss"] {
                shape[k] = json!(format!("[{k}]"));
            }
            insta::assert_json_snapshot!("id_token_claims", shape);
            let r = app.http.get(app.url("/oauth2/userinfo")).bearer_auth(at).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let ui: Value = r.json().await.unwrap();
            assert_eq!(ui["sub"], claims["sub"]);
            assert_eq!(ui["email"], "bob.builder@acme.test");
            assert_eq!(ui["org_id"], t["id"]);
            assert_eq!(ui["groups"], json!(["engineering", "admins"]));
        }
    }
    // The same person through the same connection is the same sub.
    let (cid, secret) = app.client("confidential", "ES256").await;
    let mut subs = Vec::new();
    for _ in 0..2 {
        let code =
            code_for(app, &browser(), &cid, &[("organization", "acme"), ("login_hint", "carol@acme.test")]).await;
        let (_, tok) = exchange(app, &cid, secret.as_deref(), &code).await;
        subs.push(verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await["sub"].clone());
    }
    assert_eq!(subs[0], subs[1]);
}

async fn scopes_limit_claims(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let mut url = authorize_url(app, &cid, &[("organization", "acme")]);
    url = url.replace("scope=openid+email+profile+offline_access", "scope=openid+unknownscope");
    let code = query_of(&login_via(app, &browser(), &url).await)["code"].clone();
    let (s, tok) = exchange(app, &cid, secret.as_deref(), &code).await;
    assert_eq!(s, 200);
    assert_eq!(tok["scope"], "openid");
    let c = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert!(c.get("email").is_none() && c.get("name").is_none());
    assert!(c.get("org_id").is_some());
}

async fn refresh_rotation_and_reuse_detection(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let s = secret.as_deref();
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (_, t1) = exchange(app, &cid, s, &code).await;
    let rt1 = t1["refresh_token"].as_str().unwrap().to_string();
    let (st, t2) = refresh(app, &cid, s, &rt1).await;
    assert_eq!(st, 200, "{t2}");
    let rt2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    let idc = verify_jwt(app, t2["id_token"].as_str().unwrap(), &cid).await;
    assert!(idc.get("nonce").is_none(), "refreshed ID tokens carry no nonce");
    // Narrower scope is allowed, wider is not.
    let (st, t3) = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&cid, s)
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt2.as_str()), ("scope", "openid email")])
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(st, 200);
    let t3: Value = t3.json().await.unwrap();
    assert_eq!(t3["scope"], "openid email");
    let rt3 = t3["refresh_token"].as_str().unwrap().to_string();
    let at3 = t3["access_token"].as_str().unwrap().to_string();
    assert_eq!(introspect(app, &cid, s.unwrap(), &at3).await["active"], true);
    // Reuse of an old token: refused, and the whole family dies.
    let (st, e) = refresh(app, &cid, s, &rt1).await;
    assert_eq!(st, 400);
    assert_eq!(e["error"], "invalid_grant");
    let (st, e) = refresh(app, &cid, s, &rt3).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(introspect(app, &cid, s.unwrap(), &at3).await["active"], false);
    // Another client cannot use this client's refresh tokens.
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (_, t) = exchange(app, &cid, s, &code).await;
    let (other, osecret) = app.client("confidential", "ES256").await;
    let (st, e) = refresh(app, &other, osecret.as_deref(), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")));
}

async fn code_is_single_use_and_replay_revokes(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let s = secret.as_deref();
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (st, t) = exchange(app, &cid, s, &code).await;
    assert_eq!(st, 200);
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(introspect(app, &cid, s.unwrap(), at).await["active"], true);
    let (st, e) = exchange(app, &cid, s, &code).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(introspect(app, &cid, s.unwrap(), at).await["active"], false, "replay must revoke the first exchange");
    let (st, _) = refresh(app, &cid, s, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 400);
}

/// A code whose session is gone (cleaned up between the login and the exchange) is refused, and
/// the refusal rolls the claim back: the claim and the subject are one statement on PostgreSQL,
/// so the claimed row must come back with no subject, not with an error or a half-read subject.
async fn code_of_a_gone_session_is_refused(app: &TestApp) {
    use sea_orm::EntityTrait;
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let s = secret.as_deref();
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    fedgate::store::entities::session::Entity::delete_many().exec(&app.state.db).await.unwrap();
    for _ in 0..2 {
        let (st, e) = exchange(app, &cid, s, &code).await;
        assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")), "{e}");
        // Not "already used": the failed exchange claimed nothing.
        assert!(e["error_description"].as_str().unwrap().contains("no longer exists"), "{e}");
    }
    // Another login's code still works.
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (st, t) = exchange(app, &cid, s, &code).await;
    assert_eq!(st, 200, "{t}");
}

/// A refused exchange claims nothing, whichever path refused it (on PostgreSQL the one-statement
/// redemption first, then the transactional path that says why): after a wrong verifier, a
/// wrong redirect_uri and a deactivated user, the same code still works once all is right.
/// Two exchanges of one code at once: one gets tokens, the other is a replay, which revokes them.
async fn a_refused_exchange_leaves_the_code_usable(app: &TestApp) {
    use fedgate::store::entities::user;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let s = secret.as_deref();
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let post = |redirect: &'static str, verifier: &'static str| {
        let code = code.clone();
        let (cid, s) = (cid.clone(), s.map(str::to_string));
        async move {
            let r = app
                .http
                .post(app.url("/oauth2/token"))
                .basic_auth(&cid, s.as_deref())
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect),
                    ("code_verifier", verifier),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (st, e) = post(REDIRECT, "b-wrong-verifier-b-wrong-verifier-b-wrong-verifier").await;
    assert_eq!((st, e["error_description"].as_str()), (400, Some("PKCE verification failed")), "{e}");
    let (st, e) = post("http://127.0.0.1:9/other", VERIFIER).await;
    assert_eq!(st, 400, "{e}");
    assert!(e["error_description"].as_str().unwrap().contains("redirect_uri"), "{e}");
    let active = |on: bool| async move {
        user::Entity::update_many()
            .col_expr(user::Column::Active, on.into())
            .filter(user::Column::Active.eq(!on))
            .exec(&app.state.db)
            .await
            .unwrap();
    };
    active(false).await;
    let (st, e) = post(REDIRECT, VERIFIER).await;
    assert_eq!((st, e["error_description"].as_str()), (400, Some("the user is deactivated")), "{e}");
    active(true).await;
    let (st, t) = post(REDIRECT, VERIFIER).await;
    assert_eq!(st, 200, "{t}");
    assert!(t["refresh_token"].is_string() && t["id_token"].is_string(), "{t}");
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(introspect(app, &cid, s.unwrap(), at).await["active"], true);
    // Two at once.
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (a, b) = tokio::join!(exchange(app, &cid, s, &code), exchange(app, &cid, s, &code));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{} / {}", a.1, b.1);
    let won = if a.0 == 200 { &a.1 } else { &b.1 };
    let lost = if a.0 == 200 { &b.1 } else { &a.1 };
    assert_eq!(lost["error"], "invalid_grant", "{lost}");
    let at = won["access_token"].as_str().unwrap();
    assert_eq!(introspect(app, &cid, s.unwrap(), at).await["active"], false, "the replay revokes the winner's grant");
    // Refreshes at once: one rotation, the other is reuse, which revokes the family.
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (_, t) = exchange(app, &cid, s, &code).await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let (a, b) = tokio::join!(refresh(app, &cid, s, &rt), refresh(app, &cid, s, &rt));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{} / {}", a.1, b.1);
    let won = if a.0 == 200 { &a.1 } else { &b.1 };
    let (st, _) = refresh(app, &cid, s, won["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 400, "the reuse revoked the successor too");
}

async fn code_expires_after_60_seconds(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    app.clock.advance_secs(61);
    let (st, e) = exchange(app, &cid, secret.as_deref(), &code).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")));
    assert!(e["error_description"].as_str().unwrap().contains("expired"));
}

async fn pkce_rules(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let s = secret.as_deref();
    // Wrong verifier.
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&cid, s)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &"a".repeat(43)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // Missing verifier.
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&cid, s)
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // Public client: PKCE is mandatory, and plain is refused.
    let (pub_id, none) = app.client("public", "ES256").await;
    assert!(none.is_none());
    let url = authorize_url(app, &pub_id, &[("organization", "acme")])
        .replace(&format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"), "");
    let r = browser().get(&url).send().await.unwrap();
    let q = query_of(&location(&r));
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], app.base);
    let url = authorize_url(app, &pub_id, &[("organization", "acme")])
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let q = query_of(&location(&browser().get(&url).send().await.unwrap()));
    assert_eq!(q["error"], "invalid_request");
    // And with PKCE a public client completes the flow without a secret.
    let code = code_for(app, &browser(), &pub_id, &[("organization", "acme")]).await;
    let (st, t) = exchange(app, &pub_id, None, &code).await;
    assert_eq!(st, 200, "{t}");
    // A public client sending a secret is refused.
    let (st, e) = refresh(app, &pub_id, Some("nope"), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((st, e["error"].as_str()), (401, Some("invalid_client")));
}

async fn authorize_errors(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, _) = app.client("confidential", "ES256").await;
    let b = browser();
    // Unknown client and unregistered redirect_uri: an HTML page, never a redirect.
    for url in [
        authorize_url(app, "cli_unknown", &[]),
        authorize_url(app, &cid, &[]).replace("127.0.0.1%3A9%2Fcb", "evil.example%2Fcb"),
        authorize_url(app, &cid, &[]).replace("%2Fcb", "%2Fcb%2Fextra"),
    ] {
        let r = b.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{url}");
        assert!(r.headers().get("location").is_none());
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let body = r.text().await.unwrap();
        assert!(body.contains("Error code") && body.contains("Request"), "{body}");
    }
    // Everything else goes back to the app with state and iss.
    let cases: Vec<(String, &str)> = vec![
        (
            authorize_url(app, &cid, &[]).replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (authorize_url(app, &cid, &[]).replace("scope=openid+", "scope="), "invalid_scope"),
        (authorize_url(app, &cid, &[("prompt", "none login")]), "invalid_request"),
        (authorize_url(app, &cid, &[("prompt", "bogus")]), "invalid_request"),
        (authorize_url(app, &cid, &[("max_age", "-1")]), "invalid_request"),
        (authorize_url(app, &cid, &[("request", "eyJ")]), "request_not_supported"),
        (authorize_url(app, &cid, &[("organization", "nope")]), "invalid_request"),
        (authorize_url(app, &cid, &[("prompt", "none"), ("organization", "acme")]), "login_required"),
        (authorize_url(app, &cid, &[("response_mode", "fragment")]), "invalid_request"),
    ];
    for (url, err) in cases {
        let r = b.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 302, "{url}");
        let q = query_of(&location(&r));
        assert_eq!(q.get("error").map(String::as_str), Some(err), "{url}");
        assert_eq!(q["state"], "st-123");
        assert_eq!(q["iss"], app.base);
        assert!(location(&r).starts_with(REDIRECT));
    }
    // Repeated parameters are refused (RFC 6749 §3.1) before anything else.
    let r = b.get(format!("{}&client_id=x", authorize_url(app, &cid, &[]))).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

async fn token_endpoint_errors(app: &TestApp) {
    let (cid, secret) = app.client("confidential", "ES256").await;
    let secret = secret.unwrap();
    let post = |auth: Option<(&str, &str)>, ct: &str, body: String| {
        let mut r = app.http.post(app.url("/oauth2/token")).header("content-type", ct.to_string()).body(body);
        if let Some((u, p)) = auth {
            r = r.basic_auth(u, Some(p));
        }
        r.send()
    };
    let r =
        post(Some((&cid, "wrong")), "application/x-www-form-urlencoded", "grant_type=authorization_code&code=x".into())
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = post(
        None,
        "application/x-www-form-urlencoded",
        "grant_type=authorization_code&code=x&client_id=cli_nope&client_secret=x".into(),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.json::<Value>().await.unwrap()["error"].clone()),
        (401, json!("invalid_client"))
    );
    let r = post(
        Some((&cid, &secret)),
        "application/x-www-form-urlencoded",
        format!("grant_type=authorization_code&code=x&client_secret={secret}"),
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request", "two auth methods");
    let r = post(Some((&cid, &secret)), "application/json", "{}".into()).await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.json::<Value>().await.unwrap()["error"].clone()),
        (400, json!("invalid_request"))
    );
    let r =
        post(Some((&cid, &secret)), "application/x-www-form-urlencoded", "grant_type=password".into()).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    let r = post(
        Some((&cid, &secret)),
        "application/x-www-form-urlencoded",
        "grant_type=authorization_code&grant_type=refresh_token".into(),
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let r = post(
        Some((&cid, &secret)),
        "application/x-www-form-urlencoded",
        format!("grant_type=authorization_code&code=nope&redirect_uri={}", urlencode(REDIRECT)),
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant", "unknown code");
    let r = post(
        Some((&cid, &secret)),
        "application/x-www-form-urlencoded",
        "grant_type=authorization_code&code=nope".into(),
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request", "redirect_uri is required");
    let r = post(Some((&cid, &secret)), "application/x-www-form-urlencoded", "x".repeat(100_000)).await.unwrap();
    assert_eq!(r.status(), 413);
    // client_secret_post works.
    let r = post(
        None,
        "application/x-www-form-urlencoded",
        format!("grant_type=refresh_token&refresh_token=zzz&client_id={cid}&client_secret={secret}"),
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

async fn revocation_and_introspection(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let s = secret.clone().unwrap();
    let (other, osecret) = app.client("confidential", "ES256").await;
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (_, t) = exchange(app, &cid, Some(&s), &code).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let i = introspect(app, &cid, &s, at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], cid.as_str());
    assert_eq!(introspect(app, &cid, &s, rt).await["active"], true);
    // Another client learns nothing about these tokens, and cannot revoke them.
    assert_eq!(introspect(app, &other, osecret.as_deref().unwrap(), at).await, json!({"active": false}));
    let r = app
        .http
        .post(app.url("/oauth2/revoke"))
        .basic_auth(&other, osecret.as_deref())
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(app, &cid, &s, rt).await["active"], true);
    // Revoking the access token: inactive at once, userinfo refuses it.
    let r = app
        .http
        .post(app.url("/oauth2/revoke"))
        .basic_auth(&cid, Some(&s))
        .form(&[("token", at), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(app, &cid, &s, at).await["active"], false);
    let r = app.http.get(app.url("/oauth2/userinfo")).bearer_auth(at).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    // Revoking the refresh token kills the grant.
    let r = app
        .http
        .post(app.url("/oauth2/revoke"))
        .basic_auth(&cid, Some(&s))
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (st, _) = refresh(app, &cid, Some(&s), rt).await;
    assert_eq!(st, 400);
    // Unknown tokens: still 200.
    let r = app
        .http
        .post(app.url("/oauth2/revoke"))
        .basic_auth(&cid, Some(&s))
        .form(&[("token", "garbage")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Access tokens expire.
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (_, t) = exchange(app, &cid, Some(&s), &code).await;
    app.clock.advance_secs(601);
    assert_eq!(introspect(app, &cid, &s, t["access_token"].as_str().unwrap()).await["active"], false);
}

async fn sessions_prompt_and_max_age(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let b = browser();
    let code = code_for(app, &b, &cid, &[("organization", "acme")]).await;
    let (_, t) = exchange(app, &cid, secret.as_deref(), &code).await;
    let first = verify_jwt(app, t["id_token"].as_str().unwrap(), &cid).await;
    // Same browser: answered from the session, no upstream round trip, same sid and auth_time.
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme"), ("prompt", "none")])).send().await.unwrap();
    let back = location(&r);
    assert!(back.starts_with(REDIRECT) && back.contains("code="), "{back}");
    let (_, t2) = exchange(app, &cid, secret.as_deref(), &query_of(&back)["code"]).await;
    let second = verify_jwt(app, t2["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(first["sid"], second["sid"]);
    assert_eq!(first["auth_time"], second["auth_time"]);
    // prompt=login forces a new sign-in.
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme"), ("prompt", "login")])).send().await.unwrap();
    assert!(location(&r).contains("/sso/dev/"));
    // max_age older than the session forces a new sign-in; with prompt=none that is login_required.
    app.clock.advance_secs(120);
    let r = b
        .get(authorize_url(app, &cid, &[("organization", "acme"), ("max_age", "60"), ("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert_eq!(query_of(&location(&r))["error"], "login_required");
    // A session of another tenant does not answer for this one.
    app.tenant("globex", "globex.test", &[]).await;
    let r = b.get(authorize_url(app, &cid, &[("organization", "globex"), ("prompt", "none")])).send().await.unwrap();
    assert_eq!(query_of(&location(&r))["error"], "login_required");
}

async fn logout_ends_session_and_tokens(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let s = secret.unwrap();
    let b = browser();
    let code = code_for(app, &b, &cid, &[("organization", "acme")]).await;
    let (_, t) = exchange(app, &cid, Some(&s), &code).await;
    let id = t["id_token"].as_str().unwrap();
    // Unregistered post-logout URI: refused.
    let r = b
        .get(app.url("/oauth2/logout"))
        .query(&[("id_token_hint", id), ("post_logout_redirect_uri", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = b
        .get(app.url("/oauth2/logout"))
        .query(&[("id_token_hint", id), ("post_logout_redirect_uri", "http://127.0.0.1:9/bye"), ("state", "xyz")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "http://127.0.0.1:9/bye?state=xyz");
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme"), ("prompt", "none")])).send().await.unwrap();
    assert_eq!(query_of(&location(&r))["error"], "login_required");
    let (st, _) = refresh(app, &cid, Some(&s), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 400, "logout revokes the session's grants");
    assert_eq!(introspect(app, &cid, &s, t["access_token"].as_str().unwrap()).await["active"], false);
    // Without a hint, a bare GET only asks for confirmation.
    let b2 = browser();
    code_for(app, &b2, &cid, &[("organization", "acme")]).await;
    let r = b2.get(app.url("/oauth2/logout")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Sign out?"));
    let r = b2.get(authorize_url(app, &cid, &[("organization", "acme"), ("prompt", "none")])).send().await.unwrap();
    assert!(location(&r).contains("code="), "session must survive an unconfirmed logout link");
    // The confirmation carries the page's token (a forged POST without it ends nothing: see
    // browser_security.rs).
    let page = b2.get(app.url("/oauth2/logout")).send().await.unwrap().text().await.unwrap();
    let at = page.find("name=\"logout_token\" value=\"").unwrap() + 27;
    let token = page[at..at + page[at..].find('"').unwrap()].to_string();
    let r =
        b2.post(app.url("/oauth2/logout")).form(&[("confirm", "yes"), ("logout_token", &token)]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = b2.get(authorize_url(app, &cid, &[("organization", "acme"), ("prompt", "none")])).send().await.unwrap();
    assert_eq!(query_of(&location(&r))["error"], "login_required");
}

async fn login_is_bound_to_its_browser(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, _) = app.client("confidential", "ES256").await;
    let victim = browser();
    let r = victim.get(authorize_url(app, &cid, &[("organization", "acme")])).send().await.unwrap();
    let dev = location(&r);
    // An attacker holding the link cannot finish the login in another browser.
    let attacker = browser();
    let r = attacker.post(&dev).form(&[("action", "approve")]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("login_binding_mismatch"));
    // Deny goes back to the app as access_denied; the login cannot be replayed afterwards.
    let r = victim.post(&dev).form(&[("action", "deny")]).send().await.unwrap();
    let q = query_of(&location(&r));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    let r = victim.post(&dev).form(&[("action", "approve")]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("login_already_used"));
    // Logins expire.
    let r = victim.get(authorize_url(app, &cid, &[("organization", "acme")])).send().await.unwrap();
    let dev = location(&r);
    app.clock.advance_secs(601);
    let r = victim.post(&dev).form(&[("action", "approve")]).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("login_expired"));
}

async fn home_realm_discovery_and_isolation(app: &TestApp) {
    let (acme, _) = app.tenant("acme", "acme.test", &[]).await;
    let (_, globex_conn) = app.tenant("globex", "globex.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    // Routed by login_hint's domain.
    let code = code_for(app, &browser(), &cid, &[("login_hint", "dana@globex.test")]).await;
    let (_, t) = exchange(app, &cid, secret.as_deref(), &code).await;
    let c = verify_jwt(app, t["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(c["org_slug"], "globex");
    // Another tenant's connection with this tenant's organization: refused.
    let r = browser()
        .get(authorize_url(
            app,
            &cid,
            &[("organization", acme["id"].as_str().unwrap()), ("connection", globex_conn["id"].as_str().unwrap())],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(query_of(&location(&r))["error"], "invalid_request");
    // No hint: the email page; unknown domains get the same message for every domain.
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[])).send().await.unwrap();
    let page = location(&r);
    assert!(page.contains("/login/lgn_"));
    let html = b.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("type=\"email\""));
    let r = b.post(&page).form(&[("email", "x@unknown.test")]).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("couldn&#x27;t find single sign-on"));
    let r = b.post(&page).form(&[("email", "erin@acme.test")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let dev = location(&r);
    assert!(dev.contains("/sso/dev/"));
    let r = b.post(&dev).form(&[("action", "approve")]).send().await.unwrap();
    let (_, t) = exchange(app, &cid, secret.as_deref(), &query_of(&location(&r))["code"]).await;
    let c = verify_jwt(app, t["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(c["org_slug"], "acme");
    assert_eq!(c["email"], "erin@acme.test");
    // An identity asserting an email outside the tenant's domains is refused.
    let r = browser()
        .get(authorize_url(app, &cid, &[("organization", "acme"), ("login_hint", "mallory@globex.test")]))
        .send()
        .await
        .unwrap();
    let dev = location(&r);
    assert!(dev.contains("/sso/dev/"));
    let b = browser();
    let r = b
        .get(authorize_url(app, &cid, &[("organization", "acme"), ("login_hint", "mallory@globex.test")]))
        .send()
        .await
        .unwrap();
    let r = b.post(location(&r)).form(&[("action", "approve")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("email_domain_not_allowed"));
    // Several connections: a chooser (names are printed escaped).
    let (s, second) = app
        .post(
            "/tenants/acme/connections",
            json!({"type": "dev", "name": "Second <script>alert(1)</script>", "default_email": "x@acme.test"}),
        )
        .await;
    assert_eq!(s, 201);
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme")])).send().await.unwrap();
    let page = location(&r);
    let html = b.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Choose how to sign in") && html.contains("Second &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script"), "{html}");
    let r = b
        .post(format!("{page}/connection"))
        .form(&[("connection", globex_conn["id"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "another tenant's connection cannot be chosen");
    let r = b
        .post(format!("{page}/connection"))
        .form(&[("connection", second["id"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert!(location(&r).contains("/sso/dev/"));
}

/// An organization is read with its enabled connections in one query: a disabled connection is
/// not offered (the other one is used directly), a login under way on a connection disabled
/// since finishes nothing, and an organization whose connections are all disabled is still
/// found (a page saying sign-in is not set up, not "unknown organization").
async fn organization_routes_to_its_enabled_connections(app: &TestApp) {
    let (t, first) = app.tenant("acme", "acme.test", &[]).await;
    let (cid, _) = app.client("confidential", "ES256").await;
    let (s, second) = app.post("/tenants/acme/connections", json!({"type": "dev", "name": "Second"})).await;
    assert_eq!(s, 201, "{second}");
    for org in ["acme", t["id"].as_str().unwrap()] {
        let r = browser().get(authorize_url(app, &cid, &[("organization", org)])).send().await.unwrap();
        assert!(location(&r).contains("/login/lgn_"), "two connections: the chooser ({org})");
    }
    let path = |c: &Value| format!("/tenants/acme/connections/{}", c["id"].as_str().unwrap());
    let (s, v) = app.admin(reqwest::Method::PATCH, &path(&second), Some(json!({"enabled": false}))).await;
    assert_eq!(s, 200, "{v}");
    let b = browser();
    let r = b.get(authorize_url(app, &cid, &[("organization", "acme")])).send().await.unwrap();
    let to = location(&r);
    assert!(to.contains("/sso/dev/"), "one enabled connection: straight to it ({to})");
    let (s, v) = app.admin(reqwest::Method::PATCH, &path(&first), Some(json!({"enabled": false}))).await;
    assert_eq!(s, 200, "{v}");
    // The login under way on it finishes nothing now.
    let r = b.post(&to).form(&[("action", "approve")]).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("connection_not_found"));
    let r = browser().get(authorize_url(app, &cid, &[("organization", "acme")])).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("no_connection") && html.contains("acme Inc"), "{html}");
}

/// The work-email page's answer (the email typed and its tenant) is written with the login's
/// routing when it goes straight to a connection, and on its own before the chooser: both then
/// carry the email to the connection (the dev connector signs in as the login_hint).
async fn email_page_answer_is_kept_on_either_path(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let secret = secret.as_deref();
    // One connection: straight to it.
    let b = browser();
    let page = location(&b.get(authorize_url(app, &cid, &[])).send().await.unwrap());
    let r = b.post(&page).form(&[("email", "erin@acme.test")]).send().await.unwrap();
    let dev = location(&r);
    assert!(dev.contains("/sso/dev/"), "{dev}");
    // Written with the routing: the row has the email and the tenant.
    let id = fedgate::ids::LoginId::parse(page.rsplit('/').next().unwrap()).unwrap();
    let row = fedgate::store::logins::get(&app.state.db, &id).await.unwrap().unwrap();
    assert_eq!(row.login_hint.as_deref(), Some("erin@acme.test"));
    assert!(row.tenant_id.is_some() && row.connection_id.is_some());
    assert_eq!(approved_email(app, &b, &dev, &cid, secret).await, "erin@acme.test");
    // Two connections: the chooser, which knows the tenant; the email goes on to the connection.
    let (s, second) = app.post("/tenants/acme/connections", json!({"type": "dev", "name": "Second"})).await;
    assert_eq!(s, 201, "{second}");
    let b = browser();
    let page = location(&b.get(authorize_url(app, &cid, &[])).send().await.unwrap());
    let r = b.post(&page).form(&[("email", "frank@acme.test")]).send().await.unwrap();
    assert_eq!(location(&r), page, "back to the login's page, now the chooser");
    let html = b.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Choose how to sign in"), "{html}");
    let form = [("connection", second["id"].as_str().unwrap())];
    let r = b.post(format!("{page}/connection")).form(&form).send().await.unwrap();
    assert_eq!(approved_email(app, &b, &location(&r), &cid, secret).await, "frank@acme.test");
}

/// Approves a dev login and returns the `email` of the ID token its code gets.
async fn approved_email(app: &TestApp, b: &reqwest::Client, dev: &str, cid: &str, secret: Option<&str>) -> Value {
    let r = b.post(dev).form(&[("action", "approve")]).send().await.unwrap();
    let (s, t) = exchange(app, cid, secret, &query_of(&location(&r))["code"]).await;
    assert_eq!(s, 200, "{t}");
    verify_jwt(app, t["id_token"].as_str().unwrap(), cid).await["email"].clone()
}

async fn dev_mode_off_refuses_dev_logins(_app: &TestApp) {
    let app = TestApp::spawn_with(_app.backend, |c| c.dev_mode = false).await;
    let (s, _) = app.post("/tenants", json!({"name": "Acme", "slug": "acme", "domains": ["acme.test"]})).await;
    assert_eq!(s, 201);
    let (s, e) = app.post("/tenants/acme/connections", json!({"type": "dev", "name": "Dev"})).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("dev_mode_disabled")));
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Two instances on one PostgreSQL database act as one: a login begun on one finishes on the
/// other, tokens issued by one are understood by the other, logout on one ends the session on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_a_load_balancer() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = a.second_instance().await;
    let on_b = |url: &str| url.replacen(&a.base, &b.base, 1);
    a.tenant("acme", "acme.test", &["g"]).await;
    let (cid, secret) = a.client("confidential", "ES256").await;
    let s = secret.unwrap();
    let br = browser();
    // authorize on A, the dev page and approval on B, the code exchanged on B.
    let r = br.get(authorize_url(&a, &cid, &[("organization", "acme")])).send().await.unwrap();
    let dev = on_b(&location(&r));
    assert!(dev.starts_with(&b.base));
    let r = br.post(&dev).form(&[("action", "approve")]).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let code = query_of(&location(&r))["code"].clone();
    let (st, t) = exchange(&b, &cid, Some(&s), &code).await;
    assert_eq!(st, 200, "{t}");
    // A verifies and introspects what B issued; a refresh on A rotates B's token.
    verify_jwt(&a, t["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(introspect(&a, &cid, &s, t["access_token"].as_str().unwrap()).await["active"], true);
    let (st, t2) = refresh(&a, &cid, Some(&s), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 200);
    let (st, _) = refresh(&b, &cid, Some(&s), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 400, "reuse is detected on the other instance too");
    let (st, _) = refresh(&b, &cid, Some(&s), t2["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 400, "and the family is revoked everywhere");
    // Keys rotated by B are used and served by A after its reload.
    b.state.keys.rotate(true).await.unwrap();
    a.state.keys.reload().await.unwrap();
    assert_eq!(
        a.state.keys.signer(fedgate::keys::Alg::ES256).unwrap().kid,
        b.state.keys.signer(fedgate::keys::Alg::ES256).unwrap().kid
    );
    b.stop().await;
    a.stop().await;
}

both!(
    discovery_document,
    code_flow_tokens_and_claims,
    scopes_limit_claims,
    refresh_rotation_and_reuse_detection,
    code_is_single_use_and_replay_revokes,
    code_of_a_gone_session_is_refused,
    a_refused_exchange_leaves_the_code_usable,
    organization_routes_to_its_enabled_connections,
    email_page_answer_is_kept_on_either_path,
    code_expires_after_60_seconds,
    pkce_rules,
    authorize_errors,
    token_endpoint_errors,
    revocation_and_introspection,
    sessions_prompt_and_max_age,
    logout_ends_session_and_tokens,
    login_is_bound_to_its_browser,
    home_realm_discovery_and_isolation,
    dev_mode_off_refuses_dev_logins,
);
