//! fedgate-verify (crates/verify), the app-side verifier, against the real issuer: access and ID
//! tokens from a real login verify; a wrong audience, another tenant, an expired token and the
//! wrong kind of token are refused with the check that failed; a key rotation is picked up with
//! one JWKS refresh, at most once a minute; the actix-web extractor answers RFC 6750.
use crate::both;
use crate::common::*;
use fedgate::clock::Clock as _;
use fedgate_verify::{Alg, TokenKind, VerifiedToken, Verifier, VerifyError};

/// The verifier reads the app's manual clock, so expiry and the refresh limit move with it.
#[derive(Clone)]
struct AppClock(fedgate::clock::ManualClock);

impl fedgate_verify::Clock for AppClock {
    fn now(&self) -> i64 {
        self.0.now()
    }
}

fn verifier(app: &TestApp, aud: &str, kind: TokenKind) -> fedgate_verify::VerifierBuilder {
    Verifier::builder(&app.base).audience(aud).kind(kind).clock(AppClock(app.clock.clone()))
}

/// Logs in to `org` through `cid` and returns (access token, ID token).
async fn tokens(app: &TestApp, cid: &str, secret: &str, org: &str) -> (String, String) {
    let code = code_for(app, &browser(), cid, &[("organization", org)]).await;
    let (s, t) = exchange(app, cid, Some(secret), &code).await;
    assert_eq!(s, 200, "{t}");
    (t["access_token"].as_str().unwrap().to_string(), t["id_token"].as_str().unwrap().to_string())
}

async fn verifies_real_tokens_and_names_the_failed_check(app: &TestApp) {
    let (acme, _) = app.tenant("acme", "acme.test", &["engineering"]).await;
    let (globex, _) = app.tenant("globex", "globex.test", &[]).await;
    let acme_id = acme["id"].as_str().unwrap();
    for alg in ["ES256", "EdDSA", "RS256"] {
        let (cid, secret) = app.client("confidential", alg).await;
        let (at, id) = tokens(app, &cid, secret.as_deref().unwrap(), "acme").await;
        let access = verifier(app, &cid, TokenKind::Access).build().unwrap();
        let c = access.verify(&at).await.unwrap();
        assert_eq!(c.org_id.as_deref(), Some(acme_id), "{alg}");
        assert_eq!(c.client_id.as_deref(), Some(cid.as_str()));
        assert!(c.sub.starts_with("usr_") && c.has_scope("openid") && c.has_scope("email"), "{c:?}");
        assert!(c.jti.is_some() && c.sid.is_some());
        let ids = verifier(app, &cid, TokenKind::Id).build().unwrap();
        let c = ids.verify(&id).await.unwrap();
        assert_eq!(c.email.as_deref(), Some("alice@acme.test"));
        assert_eq!((c.org_slug.as_deref(), c.groups.clone()), (Some("acme"), vec!["engineering".to_string()]));
        assert_eq!(c.nonce.as_deref(), Some("n-456"));
        // The wrong kind of token.
        assert!(matches!(access.verify(&id).await.unwrap_err(), VerifyError::Type { .. }), "{alg}");
        assert!(matches!(ids.verify(&at).await.unwrap_err(), VerifyError::Type { .. }), "{alg}");
        // An allow-list without the client's algorithm.
        let other: Vec<Alg> = Alg::ALL.into_iter().filter(|a| a.as_str() != alg).collect();
        let narrow = verifier(app, &cid, TokenKind::Access).algorithms(&other).build().unwrap();
        assert_eq!(narrow.verify(&at).await.unwrap_err().check(), "alg");
        // Another app's verifier.
        let e = verifier(app, "cli_someone_else", TokenKind::Access).build().unwrap().verify(&at).await.unwrap_err();
        assert_eq!(e, VerifyError::Audience { expected: vec!["cli_someone_else".into()], found: vec![cid.clone()] });
    }
    // Tenants: an app bound to acme refuses globex's users.
    let (cid, secret) = app.client("confidential", "ES256").await;
    let secret = secret.unwrap();
    let (acme_at, _) = tokens(app, &cid, &secret, "acme").await;
    let (globex_at, _) = tokens(app, &cid, &secret, "globex").await;
    let acme_only = verifier(app, &cid, TokenKind::Access).tenant(acme_id).build().unwrap();
    acme_only.verify(&acme_at).await.unwrap();
    let e = acme_only.verify(&globex_at).await.unwrap_err();
    assert_eq!(
        e,
        VerifyError::Tenant { expected: vec![acme_id.to_string()], found: globex["id"].as_str().map(str::to_string) }
    );
    assert!(e.to_string().starts_with("tenant check failed"), "{e}");
    let any = verifier(app, &cid, TokenKind::Access).build().unwrap();
    any.verify_for_tenant(&globex_at, globex["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(any.verify_for_tenant(&globex_at, acme_id).await.unwrap_err().check(), "tenant");
    // A tampered token.
    let mut parts: Vec<String> = acme_at.split('.').map(str::to_string).collect();
    let flip = if parts[2].as_bytes()[10] == b'A' { "B" } else { "A" };
    parts[2].replace_range(10..11, flip);
    assert_eq!(any.verify(&parts.join(".")).await.unwrap_err(), VerifyError::Signature);
    // Expiry: access tokens live 600 s; the leeway is 60 s. Measured from the token's own `exp`
    // (the clock may have moved while the other tokens were issued).
    let payload = acme_at.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(exp - claims["iat"].as_i64().unwrap(), 600);
    app.clock.set_ms((exp + 59) * 1000);
    any.verify(&acme_at).await.unwrap();
    app.clock.set_ms((exp + 60) * 1000);
    let e = any.verify(&acme_at).await.unwrap_err();
    assert!(matches!(e, VerifyError::Expired { leeway: 60, .. }), "{e}");
}

async fn picks_up_a_key_rotation_with_one_refresh_a_minute(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let secret = secret.unwrap();
    let v = verifier(app, &cid, TokenKind::Access).build().unwrap();
    let (before, _) = tokens(app, &cid, &secret, "acme").await;
    v.verify(&before).await.unwrap(); // JWKS fetched: the active and the next key
                                      // A forced rotation activates the key that was published ahead: already in the cache.
    app.state.keys.rotate(true).await.unwrap();
    let (after_one, _) = tokens(app, &cid, &secret, "acme").await;
    assert_ne!(jwt_header(&after_one)["kid"], jwt_header(&before)["kid"]);
    v.verify(&after_one).await.unwrap();
    // A second one activates a key created after our fetch: unknown kid. Within the minute of
    // the last fetch, the verifier does not ask again...
    app.state.keys.rotate(true).await.unwrap();
    let (after_two, _) = tokens(app, &cid, &secret, "acme").await;
    let kid = jwt_header(&after_two)["kid"].as_str().unwrap().to_string();
    let e = v.verify(&after_two).await.unwrap_err();
    assert_eq!(e, VerifyError::UnknownKey { kid: Some(kid.clone()) });
    assert!(e.to_string().starts_with("key check failed"), "{e}");
    // ... after it, one refresh finds the new key; tokens of the retired keys still verify.
    app.clock.advance_secs(61);
    v.verify(&after_two).await.unwrap();
    v.verify(&after_one).await.unwrap();
    v.verify(&before).await.unwrap();
}

async fn actix_extractor_answers_rfc6750(app: &TestApp) {
    use actix_web::{test, web, App, HttpResponse};
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "EdDSA").await;
    let (at, id) = tokens(app, &cid, secret.as_deref().unwrap(), "acme").await;
    let v = verifier(app, &cid, TokenKind::Access).build().unwrap();
    let svc = test::init_service(App::new().app_data(web::Data::new(v)).route(
        "/api/me",
        web::get().to(|t: VerifiedToken| async move { HttpResponse::Ok().body(t.0.org_id.unwrap_or_default()) }),
    ))
    .await;
    let call = |token: Option<String>| {
        let mut r = test::TestRequest::get().uri("/api/me");
        if let Some(t) = token {
            r = r.insert_header(("Authorization", format!("Bearer {t}")));
        }
        r.to_request()
    };
    let r = test::call_service(&svc, call(Some(at))).await;
    assert_eq!(r.status(), 200);
    assert!(String::from_utf8(test::read_body(r).await.to_vec()).unwrap().starts_with("org_"));
    let r = test::call_service(&svc, call(Some(id))).await;
    assert_eq!(r.status(), 401);
    let h = r.headers().get("www-authenticate").unwrap().to_str().unwrap();
    assert!(
        h.starts_with(r#"Bearer error="invalid_token", error_description="type check failed: expected `at+jwt`"#),
        "{h}"
    );
    let r = test::call_service(&svc, call(None)).await;
    assert_eq!((r.status().as_u16(), r.headers().get("www-authenticate").unwrap().to_str().unwrap()), (401, "Bearer"));
}

both!(
    verifies_real_tokens_and_names_the_failed_check,
    picks_up_a_key_rotation_with_one_refresh_a_minute,
    actix_extractor_answers_rfc6750
);
