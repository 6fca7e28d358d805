//! Machine-to-machine: client_credentials, private_key_jwt client authentication (inline JWKS
//! and jwks_uri), per-client token settings, and CORS for browser apps. Real HTTP, both
//! databases.
use crate::both;
use crate::common::*;
use fedgate::clock::Clock;
use fedgate::keys::{Alg, SigningKey};
use reqwest::Method;
use serde_json::{json, Value};

both!(
    client_credentials_tokens,
    client_credentials_rules_and_deprovisioning,
    private_key_jwt_inline_keys,
    private_key_jwt_for_code_and_refresh,
    private_key_jwt_jwks_uri_cache,
    private_key_jwt_ps256,
    machine_client_validation,
    cors_for_browser_apps,
);

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn token_basic(app: &TestApp, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = app.http.post(app.url("/oauth2/token")).basic_auth(id, Some(secret)).form(form).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn token_form(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let r = app.http.post(app.url("/oauth2/token")).form(form).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn assertion(app: &TestApp, key: &SigningKey, client_id: &str, extra: Value) -> String {
    let now = app.clock.now();
    let mut claims = json!({
        "iss": client_id, "sub": client_id, "aud": format!("{}/oauth2/token", app.base),
        "iat": now, "exp": now + 60, "jti": fedgate::ids::random128(&fedgate::clock::SystemRng),
    });
    if let (Some(m), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    key.sign_jwt("JWT", &claims).unwrap()
}

fn jwks_of(keys: &[&SigningKey]) -> Value {
    json!({"keys": keys.iter().map(|k| serde_json::to_value(k.public()).unwrap()).collect::<Vec<_>>()})
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let p = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

async fn machine_client(app: &TestApp, extra: Value) -> Value {
    let mut body = json!({"name": "Reports worker", "type": "confidential", "grant_types": ["client_credentials"],
        "scopes": ["reports:read", "reports:write"]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, c) = app.post("/clients", body).await;
    assert_eq!(s, 201, "{c}");
    c
}

async fn client_credentials_tokens(app: &TestApp) {
    let (t, _) = app.tenant("acme", "acme.test", &[]).await;
    let c = machine_client(
        app,
        json!({"tenant_id": "acme", "access_token_ttl": 120, "audience": ["https://api.example.com"]}),
    )
    .await;
    let (id, secret) = (c["id"].as_str().unwrap(), c["client_secret"].as_str().unwrap());
    assert_eq!(c["tenant_id"], t["id"]);
    assert_eq!(c["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(c["redirect_uris"], json!([]));

    let (s, tok) =
        token_basic(app, id, secret, &[("grant_type", "client_credentials"), ("scope", "reports:read")]).await;
    assert_eq!(s, 200, "{tok}");
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 120);
    assert_eq!(tok["scope"], "reports:read");
    assert!(tok.get("refresh_token").is_none() && tok.get("id_token").is_none(), "{tok}");
    let at = tok["access_token"].as_str().unwrap();
    assert_eq!(jwt_header(at)["typ"], "at+jwt");
    let claims = verify_jwt(app, at, "https://api.example.com").await;
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["client_id"], id);
    assert_eq!(claims["org_id"], t["id"]);
    assert_eq!(claims["scope"], "reports:read");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);
    assert!(claims.get("sid").is_none() && claims.get("auth_time").is_none(), "{claims}");

    // No scope: every registered scope. Body credentials work too.
    let (s, all) =
        token_form(app, &[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)]).await;
    assert_eq!(s, 200, "{all}");
    assert_eq!(all["scope"], "reports:read reports:write");
    // A scope outside the registered ones.
    let (s, e) =
        token_basic(app, id, secret, &[("grant_type", "client_credentials"), ("scope", "reports:read admin")]).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_scope")), "{e}");

    // Introspection: active, scope, client_id, org_id.
    let i = introspect(app, id, secret, at).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["scope"], "reports:read");
    assert_eq!(i["client_id"], id);
    assert_eq!(i["sub"], id);
    assert_eq!(i["org_id"], t["id"]);
    // Userinfo has no user for a machine token.
    let r = app.http.get(app.url("/oauth2/userinfo")).bearer_auth(at).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Revocation: the jti is denied from then on.
    let r = app
        .http
        .post(app.url("/oauth2/revoke"))
        .basic_auth(id, Some(secret))
        .form(&[("token", at), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(introspect(app, id, secret, at).await["active"], false);
    // The other token is untouched; it expires with its lifetime.
    let other = all["access_token"].as_str().unwrap();
    assert_eq!(introspect(app, id, secret, other).await["active"], true);
    app.clock.advance_secs(121);
    assert_eq!(introspect(app, id, secret, other).await["active"], false);

    // Metrics count the grant.
    let text = app.state.metrics.render_with(&[], &[]);
    assert!(text.contains("fedgate_tokens_issued_total{grant=\"client_credentials\"} 2"), "{text}");
}

async fn client_credentials_rules_and_deprovisioning(app: &TestApp) {
    let (acme, _) = app.tenant("acme", "acme.test", &[]).await;
    let (globex, _) = app.tenant("globex", "globex.test", &[]).await;
    let c = machine_client(app, json!({"tenant_id": acme["id"]})).await;
    let (id, secret) = (c["id"].as_str().unwrap(), c["client_secret"].as_str().unwrap());
    let cc = [("grant_type", "client_credentials")];

    // A tenant-bound client cannot get tokens for another tenant.
    for other in [globex["id"].as_str().unwrap(), "globex"] {
        let (s, e) = token_basic(app, id, secret, &[cc[0], ("org_id", other)]).await;
        assert_eq!((s, e["error"].as_str()), (400, Some("unauthorized_client")), "{e}");
    }
    let (s, ok) = token_basic(app, id, secret, &[cc[0], ("org_id", "acme")]).await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(claims_of(ok["access_token"].as_str().unwrap())["org_id"], acme["id"]);

    // An interactive client may not use client_credentials; a public one cannot register it.
    let (cid, csecret) = app.client("confidential", "ES256").await;
    let (s, e) = token_basic(app, &cid, csecret.as_deref().unwrap(), &cc).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unauthorized_client")), "{e}");
    let (s, e) =
        app.post("/clients", json!({"name": "SPA", "type": "public", "grant_types": ["client_credentials"]})).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant_types")), "{e}");
    // An unbound client gets no org_id and may not ask for one.
    let unbound = machine_client(app, json!({})).await;
    let (uid, usecret) = (unbound["id"].as_str().unwrap(), unbound["client_secret"].as_str().unwrap());
    let (s, tok) = token_basic(app, uid, usecret, &cc).await;
    assert_eq!(s, 200, "{tok}");
    let claims = claims_of(tok["access_token"].as_str().unwrap());
    assert!(claims.get("org_id").is_none(), "{claims}");
    assert_eq!(claims["aud"], uid, "default audience: the client id");
    let (s, e) = token_basic(app, uid, usecret, &[cc[0], ("org_id", "acme")]).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unauthorized_client")), "{e}");

    // Disabling the client: no new tokens, and its tokens stop validating while it is disabled.
    let at = ok["access_token"].as_str().unwrap().to_string();
    let (s, v) = app.admin(Method::PATCH, &format!("/clients/{id}"), Some(json!({"enabled": false}))).await;
    assert_eq!((s, &v["enabled"]), (200, &json!(false)), "{v}");
    let (s, e) = token_basic(app, id, secret, &cc).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")), "{e}");
    assert!(e["error_description"].as_str().unwrap().contains("disabled"), "{e}");
    assert!(fedgate::issuer::tokens::verify_access_token(&app.state, &at).await.unwrap().is_none());
    let (s, _) = app.admin(Method::PATCH, &format!("/clients/{id}"), Some(json!({"enabled": true}))).await;
    assert_eq!(s, 200);
    assert_eq!(introspect(app, id, secret, &at).await["active"], true);

    // Deleting the tenant: no new tokens, existing ones are inactive.
    let (s, _) = app.admin(Method::DELETE, "/tenants/acme", None).await;
    assert!(s == 204 || s == 200, "{s}");
    let (s, e) = token_basic(app, id, secret, &cc).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unauthorized_client")), "{e}");
    assert_eq!(introspect(app, id, secret, &at).await["active"], false);
}

async fn private_key_jwt_inline_keys(app: &TestApp) {
    let key = SigningKey::generate(Alg::ES256, "k1".into()).unwrap().0;
    let other = SigningKey::generate(Alg::ES256, "k1".into()).unwrap().0;
    let ed = SigningKey::generate(Alg::EdDSA, "k2".into()).unwrap().0;
    let rsa = SigningKey::generate(Alg::RS256, "k3".into()).unwrap().0;
    let c = machine_client(
        app,
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&[&key, &ed, &rsa])}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    assert!(c.get("client_secret").is_none(), "no secret for a key-authenticated client: {c}");
    assert_eq!(c["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(c["jwks"]["keys"].as_array().unwrap().len(), 3);

    let form = |a: &str| {
        vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_assertion_type".to_string(), ASSERTION_TYPE.to_string()),
            ("client_assertion".to_string(), a.to_string()),
        ]
    };
    let post = |f: Vec<(String, String)>| async move {
        let r = app.http.post(app.url("/oauth2/token")).form(&f).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    // Every allowed key type; aud = the token endpoint or the issuer.
    for (k, aud) in [(&key, format!("{}/oauth2/token", app.base)), (&ed, app.base.clone()), (&rsa, app.base.clone())] {
        let a = assertion(app, k, id, json!({"aud": aud}));
        let (s, tok) = post(form(&a)).await;
        assert_eq!(s, 200, "{} {tok}", k.alg.as_str());
        assert_eq!(claims_of(tok["access_token"].as_str().unwrap())["sub"], id);
        // Single use.
        let (s, e) = post(form(&a)).await;
        assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")), "{e}");
        assert!(e["error_description"].as_str().unwrap().contains("already used"), "{e}");
    }
    let refused = |extra: Value, why: &'static str| {
        let a = assertion(app, &key, id, extra);
        async move {
            let (s, e) = post(form(&a)).await;
            assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")), "{why}: {e}");
            e["error_description"].as_str().unwrap().to_string()
        }
    };
    let now = app.clock.now();
    assert!(refused(json!({"aud": "https://elsewhere.example"}), "aud").await.contains("aud"));
    assert!(refused(json!({"exp": now + 3600}), "exp far").await.contains("exp"));
    assert!(refused(json!({"exp": now - 1}), "expired").await.contains("expired"));
    assert!(refused(json!({"exp": null}), "no exp").await.contains("exp"));
    assert!(refused(json!({"jti": null}), "no jti").await.contains("jti"));
    assert!(refused(json!({"iss": "someone-else"}), "iss").await.contains("iss"));
    // Signed by a key that is not registered (same kid).
    let a = assertion(app, &other, id, json!({}));
    let (s, e) = post(form(&a)).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")), "{e}");
    assert!(e["error_description"].as_str().unwrap().contains("signature"), "{e}");
    // alg none and HS256 (with the public key as the secret) are refused outright.
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = b64(json!({"iss": id, "sub": id, "aud": app.base, "exp": now + 60, "jti": "x1"}));
    for alg in ["none", "HS256"] {
        let forged = format!("{}.{payload}.{}", b64(json!({"alg": alg, "kid": "k1"})), b64(json!("sig")));
        let (s, e) = post(form(&forged)).await;
        assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")), "{alg}: {e}");
        assert!(e["error_description"].as_str().unwrap().contains("not allowed"), "{e}");
    }
    // Wrong assertion type; a secret for a key client; client_id that differs from sub.
    let a = assertion(app, &key, id, json!({}));
    let mut f = form(&a);
    f[1].1 = "urn:example:other".into();
    let (s, _) = post(f).await;
    assert_eq!(s, 401);
    let (s, e) =
        token_form(app, &[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", "fgcs_x")]).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")), "{e}");
    let mut f = form(&a);
    f.push(("client_id".into(), "cli_someone".into()));
    let (s, _) = post(f).await;
    assert_eq!(s, 401);
    // The same assertion still works once (nothing above consumed it).
    let (s, tok) = post(form(&a)).await;
    assert_eq!(s, 200, "{tok}");
    // Introspection and revocation accept private_key_jwt too.
    let at = tok["access_token"].as_str().unwrap();
    let a2 = assertion(app, &key, id, json!({"aud": format!("{}/oauth2/introspect", app.base)}));
    let i: Value = app
        .http
        .post(app.url("/oauth2/introspect"))
        .form(&[("token", at), ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &a2)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(i["active"], true, "{i}");
    // A client registered for secrets cannot use an assertion.
    let (cid, _) = app.client("confidential", "ES256").await;
    let a = assertion(app, &key, &cid, json!({}));
    let (s, e) = post(form(&a)).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")), "{e}");
    assert!(e["error_description"].as_str().unwrap().contains("not private_key_jwt"), "{e}");
}

async fn private_key_jwt_for_code_and_refresh(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let key = SigningKey::generate(Alg::ES256, "k1".into()).unwrap().0;
    let (s, c) = app
        .post(
            "/clients",
            json!({"name": "Server app", "type": "confidential", "redirect_uris": [REDIRECT],
                   "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                   "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&[&key])}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_str().unwrap();
    let code = code_for(app, &browser(), id, &[("organization", "acme")]).await;
    let a = assertion(app, &key, id, json!({}));
    let (s, tok) = token_form(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &a),
        ],
    )
    .await;
    assert_eq!(s, 200, "{tok}");
    assert!(tok["id_token"].is_string());
    let rt = tok["refresh_token"].as_str().unwrap();
    let a = assertion(app, &key, id, json!({}));
    let (s, tok) = token_form(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &a),
        ],
    )
    .await;
    assert_eq!(s, 200, "{tok}");
}

/// A one-route HTTP server for a client's JWKS that counts its fetches.
/// A client assertion signed with RSASSA-PSS (PS256) or PKCS#1 v1.5 (`pkcs1`), whatever the
/// header says. fedgate never signs PS256 itself, so the test signs with aws-lc-rs directly.
fn rsa_assertion(app: &TestApp, pkcs8: &[u8], alg: &str, kid: &str, client_id: &str, pkcs1: bool) -> String {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeyPair;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256};
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let now = app.clock.now();
    let claims = json!({"iss": client_id, "sub": client_id, "aud": format!("{}/oauth2/token", app.base),
        "iat": now, "exp": now + 60, "jti": fedgate::ids::random128(&fedgate::clock::SystemRng)});
    let input = format!(
        "{}.{}",
        b64(json!({"alg": alg, "kid": kid, "typ": "JWT"}).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let k = KeyPair::from_pkcs8(pkcs8).unwrap();
    let mut sig = vec![0u8; k.public_modulus_len()];
    let padding: &'static dyn aws_lc_rs::signature::RsaEncoding =
        if pkcs1 { &RSA_PKCS1_SHA256 } else { &RSA_PSS_SHA256 };
    k.sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
    format!("{input}.{}", b64(&sig))
}

/// RFC 7523 assertions signed with PS256 (what many HSM- and FAPI-minded clients use): a key
/// registered for PS256 takes PS256 only, a key without `alg` takes RS256 and PS256, and a PKCS#1
/// signature under a PS256 header is refused.
async fn private_key_jwt_ps256(app: &TestApp) {
    let (rsa, pkcs8) = SigningKey::generate(Alg::RS256, "ps".into()).unwrap();
    let mut jwk = serde_json::to_value(rsa.public()).unwrap();
    jwk["alg"] = json!("PS256");
    let c =
        machine_client(app, json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]}})).await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["jwks"]["keys"][0]["alg"], "PS256", "{c}");
    let post = |a: String| async move {
        let (s, v) = token_form(
            app,
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &a),
            ],
        )
        .await;
        (s, v)
    };
    let (s, tok) = post(rsa_assertion(app, &pkcs8, "PS256", "ps", id, false)).await;
    assert_eq!(s, 200, "{tok}");
    assert_eq!(claims_of(tok["access_token"].as_str().unwrap())["client_id"], id, "{tok}");
    // The key is registered for PS256: an RS256 assertion by the same key finds no key.
    let (s, e) = post(rsa_assertion(app, &pkcs8, "RS256", "ps", id, true)).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")), "{e}");
    assert!(e["error_description"].as_str().unwrap().contains("RS256"), "{e}");
    // A PKCS#1 v1.5 signature under a PS256 header: the padding is checked, not only the header.
    let (s, e) = post(rsa_assertion(app, &pkcs8, "PS256", "ps", id, true)).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")), "{e}");
    assert!(e["error_description"].as_str().unwrap().contains("signature"), "{e}");
    // A key registered without alg takes both RSA algorithms.
    let mut bare = serde_json::to_value(rsa.public()).unwrap();
    bare.as_object_mut().unwrap().remove("alg");
    let c =
        machine_client(app, json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [bare]}})).await;
    let id = c["id"].as_str().unwrap();
    for (alg, pkcs1) in [("PS256", false), ("RS256", true)] {
        let (s, tok) = post(rsa_assertion(app, &pkcs8, alg, "ps", id, pkcs1)).await;
        assert_eq!(s, 200, "{alg}: {tok}");
    }
}

async fn jwks_server(
    body: std::sync::Arc<std::sync::Mutex<String>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let body = body.lock().unwrap().clone();
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/jwks.json")
}

async fn private_key_jwt_jwks_uri_cache(app: &TestApp) {
    use std::sync::atomic::Ordering;
    let k1 = SigningKey::generate(Alg::ES256, "k1".into()).unwrap().0;
    let k2 = SigningKey::generate(Alg::ES256, "k2".into()).unwrap().0;
    let body = std::sync::Arc::new(std::sync::Mutex::new(jwks_of(&[&k1]).to_string()));
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let uri = jwks_server(body.clone(), hits.clone()).await;
    let c = machine_client(app, json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri})).await;
    let id = c["id"].as_str().unwrap();
    let go = |k: &SigningKey| {
        let a = assertion(app, k, id, json!({}));
        async move {
            token_form(
                app,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &a),
                ],
            )
            .await
        }
    };
    assert_eq!(go(&k1).await.0, 200);
    assert_eq!(go(&k1).await.0, 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "cached");
    // The client rotates to k2. An unknown kid refetches, but not within a minute of the last
    // fetch.
    *body.lock().unwrap() = jwks_of(&[&k1, &k2]).to_string();
    let (s, e) = go(&k2).await;
    assert_eq!(s, 401, "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "no refetch within a minute");
    app.clock.advance_secs(61);
    let (s, e) = go(&k2).await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // A known kid inside the cache lifetime: no fetch; after it, one.
    assert_eq!(go(&k1).await.0, 200);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    app.clock.advance_secs(301);
    assert_eq!(go(&k1).await.0, 200);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

async fn machine_client_validation(app: &TestApp) {
    let key = SigningKey::generate(Alg::ES256, "k1".into()).unwrap().0;
    let mut private = jwks_of(&[&key]);
    private["keys"][0]["d"] = json!("AAAA");
    let base = json!({"name": "M", "type": "confidential", "grant_types": ["client_credentials"]});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (extra, code) in [
        (json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": private}), "invalid_jwks"),
        (
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
            "invalid_jwks",
        ),
        (json!({"token_endpoint_auth_method": "private_key_jwt"}), "invalid_auth_method"),
        (
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "ftp://keys.example/jwks"}),
            "invalid_jwks",
        ),
        (json!({"jwks": jwks_of(&[&key])}), "invalid_jwks"),
        (json!({"token_endpoint_auth_method": "none"}), "invalid_auth_method"),
        (json!({"scopes": ["openid"]}), "invalid_scopes"),
        (json!({"scopes": ["bad scope"]}), "invalid_scopes"),
        (json!({"tenant_id": "nope"}), "unknown_tenant"),
        (json!({"access_token_ttl": 10}), "out_of_range"),
        (json!({"access_token_ttl": 86400}), "out_of_range"),
        (json!({"audience": []}), "invalid_audience"),
        (json!({"web_origins": ["https://app.example"]}), "invalid_web_origin"),
    ] {
        let b = with(extra.clone());
        let (s, e) = app.post("/clients", b).await;
        assert_eq!((s, e["error"].as_str()), (400, Some(code)), "{extra} -> {e}");
    }
    for origin in ["https://app.example/path", "http://app.example", "app.example", "https://u:p@app.example"] {
        let (s, e) = app
            .post(
                "/clients",
                json!({"name": "SPA", "type": "public", "redirect_uris": [REDIRECT], "web_origins": [origin]}),
            )
            .await;
        assert_eq!((s, e["error"].as_str()), (400, Some("invalid_web_origin")), "{origin} -> {e}");
    }
    // Update: switch a secret client to private_key_jwt (the secret goes) and back.
    let c = machine_client(app, json!({})).await;
    let (id, secret) = (c["id"].as_str().unwrap(), c["client_secret"].as_str().unwrap());
    let path = format!("/clients/{id}");
    let (s, v) = app
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&[&key]), "access_token_ttl": 900, "scopes": ["a"]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["access_token_ttl"].as_i64(), &v["scopes"]), (Some(900), &json!(["a"])));
    let (s, _) = token_basic(app, id, secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!(s, 401, "the old secret is gone");
    let (s, e) = app.post(&format!("{path}/secret"), json!({})).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_auth_method")), "{e}");
    let (s, v) = app
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"token_endpoint_auth_method": "client_secret_post", "jwks": null, "access_token_ttl": null})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["access_token_ttl"].is_null() && v["jwks"].is_null(), "{v}");
    let (s, r) = app.post(&format!("{path}/secret"), json!({})).await;
    assert_eq!(s, 200, "{r}");
    let (s, tok) =
        token_basic(app, id, r["client_secret"].as_str().unwrap(), &[("grant_type", "client_credentials")]).await;
    assert_eq!(s, 200, "{tok}");
    assert_eq!(tok["expires_in"], 600, "back to the default lifetime");
}

async fn cors_for_browser_apps(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let spa_origin = "http://localhost:5173";
    let other_origin = "https://other.example";
    let (s, spa) = app
        .post(
            "/clients",
            json!({"name": "SPA", "type": "public", "redirect_uris": [REDIRECT], "web_origins": [spa_origin, "http://localhost:5173/"]}),
        )
        .await;
    assert_eq!(s, 201, "{spa}");
    assert_eq!(spa["web_origins"], json!([spa_origin]));
    let (s, other) = app
        .post(
            "/clients",
            json!({"name": "Other SPA", "type": "public", "redirect_uris": [REDIRECT], "web_origins": [other_origin]}),
        )
        .await;
    assert_eq!(s, 201, "{other}");
    let spa_id = spa["id"].as_str().unwrap();
    let acao =
        |r: &reqwest::Response| r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string());
    // Public documents: any origin.
    for path in ["/.well-known/openid-configuration", "/oauth2/jwks"] {
        let r = app.http.get(app.url(path)).header("origin", "https://anyone.example").send().await.unwrap();
        assert_eq!(acao(&r).as_deref(), Some("*"), "{path}");
    }
    // Preflight: registered origins only, no credentials.
    for (origin, allowed) in [(spa_origin, true), (other_origin, true), ("https://evil.example", false)] {
        let r = app
            .http
            .request(Method::OPTIONS, app.url("/oauth2/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        assert_eq!(acao(&r).as_deref(), allowed.then_some(origin), "{origin}");
        assert!(r.headers().get("access-control-allow-credentials").is_none());
        assert!(r.headers().get_all("vary").iter().any(|v| v.to_str().unwrap().contains("Origin")));
    }
    // The token endpoint answers the client's own origin, not another client's.
    let code = code_for(app, &browser(), spa_id, &[("organization", "acme")]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", spa_id),
    ];
    let r = app.http.post(app.url("/oauth2/token")).header("origin", other_origin).form(&form).send().await.unwrap();
    assert_eq!(acao(&r), None, "another client's origin");
    let code = code_for(app, &browser(), spa_id, &[("organization", "acme")]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", spa_id),
    ];
    let r = app.http.post(app.url("/oauth2/token")).header("origin", spa_origin).form(&form).send().await.unwrap();
    assert_eq!(acao(&r).as_deref(), Some(spa_origin));
    let tok: Value = r.json().await.unwrap();
    let at = tok["access_token"].as_str().unwrap();
    // Userinfo: a registered origin; an unknown one gets no CORS headers.
    let r =
        app.http.get(app.url("/oauth2/userinfo")).bearer_auth(at).header("origin", spa_origin).send().await.unwrap();
    assert_eq!((r.status().as_u16(), acao(&r).as_deref()), (200, Some(spa_origin)));
    let r = app
        .http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(at)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(acao(&r), None);
    // A disabled client's origins stop counting.
    let oid = other["id"].as_str().unwrap();
    app.admin(Method::PATCH, &format!("/clients/{oid}"), Some(json!({"enabled": false}))).await;
    let r = app
        .http
        .request(Method::OPTIONS, app.url("/oauth2/userinfo"))
        .header("origin", other_origin)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(acao(&r), None);
    // Discovery advertises what is supported.
    let d: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(d["grant_types_supported"].as_array().unwrap().contains(&json!("client_credentials")));
    assert!(d["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("private_key_jwt")));
    assert_eq!(
        d["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256", "EdDSA", "Ed25519"])
    );
}
