//! Unit tests: keys generated here (aws-lc-rs signs, jsonwebtoken verifies), a local mock of the
//! issuer's discovery and JWKS endpoints, and a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) const NOW: i64 = 1_800_000_000;
const AUD: &str = "cli_app";
const ORG: &str = "org_acme";

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

enum Inner {
    Es(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rs(RsaKeyPair),
}

pub(crate) struct TestKey {
    pub kid: String,
    pub alg: Alg,
    inner: Inner,
}

impl TestKey {
    pub fn new(alg: Alg, kid: &str) -> Self {
        let inner = match alg {
            Alg::ES256 => Inner::Es(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()),
            Alg::EdDSA => Inner::Ed(Ed25519KeyPair::generate().unwrap()),
            Alg::RS256 => Inner::Rs(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()),
        };
        Self { kid: kid.into(), alg, inner }
    }

    pub fn jwk(&self) -> Value {
        let mut j = match &self.inner {
            Inner::Es(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
            Inner::Ed(k) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())}),
            Inner::Rs(k) => {
                let pk = k.public_key();
                json!({"kty": "RSA", "n": b64(pk.modulus().big_endian_without_leading_zero()),
                       "e": b64(pk.exponent().big_endian_without_leading_zero())})
            }
        };
        j["kid"] = json!(self.kid);
        j["alg"] = json!(self.alg.as_str());
        j["use"] = json!("sig");
        j
    }

    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let input =
            format!("{}.{}", b64(&serde_json::to_vec(header).unwrap()), b64(&serde_json::to_vec(claims).unwrap()));
        let rng = SystemRandom::new();
        let s = match &self.inner {
            Inner::Es(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Inner::Ed(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
            Inner::Rs(k) => {
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(&sig::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut out).unwrap();
                out
            }
        };
        format!("{input}.{}", b64(&s))
    }

    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        self.sign_raw(&json!({"alg": self.alg.as_str(), "kid": self.kid, "typ": typ}), claims)
    }
}

/// The claims of a fedgate access token, valid at NOW.
pub(crate) fn access_claims(iss: &str) -> Value {
    json!({"iss": iss, "sub": "usr_1", "aud": AUD, "exp": NOW + 600, "iat": NOW, "jti": "at_1",
           "client_id": AUD, "scope": "openid email", "auth_time": NOW, "sid": "ses_1", "org_id": ORG})
}

fn id_claims(iss: &str) -> Value {
    json!({"iss": iss, "sub": "usr_1", "aud": AUD, "azp": AUD, "exp": NOW + 3600, "iat": NOW, "auth_time": NOW,
           "sid": "ses_1", "org_id": ORG, "org_slug": "acme", "connection_id": "conn_1", "connection_type": "dev",
           "email": "alice@acme.test", "email_verified": true, "name": "Alice", "groups": ["eng"], "amr": ["pwd"],
           "department": "R&D"})
}

// ---------------------------------------------------------------- the mock issuer

#[derive(Default)]
pub(crate) struct MockState {
    pub jwks: Mutex<Value>,
    pub cache_control: Mutex<String>,
    pub status: Mutex<u16>,
    /// Overrides the discovery document's issuer.
    pub issuer: Mutex<Option<String>>,
    /// Serves this many bytes of padding in the JWKS (size limit test).
    pub pad: Mutex<usize>,
    /// While set, JWKS requests wait for it.
    pub gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    pub jwks_hits: AtomicUsize,
    pub discovery_hits: AtomicUsize,
    pub received: tokio::sync::Notify,
}

pub(crate) struct Mock {
    pub base: String,
    pub state: Arc<MockState>,
}

impl Mock {
    pub async fn start(keys: &[&TestKey]) -> Mock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(MockState::default());
        *state.cache_control.lock().unwrap() = "public, max-age=300".into();
        *state.status.lock().unwrap() = 200;
        let m = Mock { base: base.clone(), state: state.clone() };
        m.set_keys(keys);
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let (state, base) = (state.clone(), base.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let req = String::from_utf8_lossy(&buf);
                    let path = req.split(' ').nth(1).unwrap_or("").to_string();
                    let (status, cc, body) = if path == "/.well-known/openid-configuration" {
                        state.discovery_hits.fetch_add(1, Ordering::SeqCst);
                        let iss = state.issuer.lock().unwrap().clone().unwrap_or(base.clone());
                        (
                            200,
                            "max-age=3600".to_string(),
                            json!({"issuer": iss, "jwks_uri": format!("{base}/jwks")}).to_string(),
                        )
                    } else if path == "/jwks" {
                        state.jwks_hits.fetch_add(1, Ordering::SeqCst);
                        state.received.notify_one();
                        let gate = state.gate.lock().unwrap().clone();
                        if let Some(g) = gate {
                            let _permit = g.acquire().await;
                        }
                        let mut doc = state.jwks.lock().unwrap().clone();
                        let pad = *state.pad.lock().unwrap();
                        if pad > 0 {
                            doc["padding"] = json!("x".repeat(pad));
                        }
                        (*state.status.lock().unwrap(), state.cache_control.lock().unwrap().clone(), doc.to_string())
                    } else {
                        (404, String::new(), "{}".to_string())
                    };
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncache-control: {cc}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        m
    }

    pub fn set_keys(&self, keys: &[&TestKey]) {
        *self.state.jwks.lock().unwrap() = json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn builder(&self, clock: &ManualClock) -> VerifierBuilder {
        Verifier::builder(&self.base).audience(AUD).clock(clock.clone())
    }
}

async fn setup(alg: Alg) -> (Mock, TestKey, ManualClock, Verifier) {
    let key = TestKey::new(alg, "k1");
    let mock = Mock::start(&[&key]).await;
    let clock = ManualClock::new(NOW);
    let v = mock.builder(&clock).build().unwrap();
    (mock, key, clock, v)
}

// ---------------------------------------------------------------- every check

#[tokio::test]
async fn valid_access_tokens_of_every_algorithm_verify_with_typed_claims() {
    for alg in Alg::ALL {
        let (mock, key, _clock, v) = setup(alg).await;
        let c = v.verify(&key.sign("at+jwt", &access_claims(&mock.base))).await.unwrap();
        assert_eq!((c.sub.as_str(), c.org_id.as_deref(), c.aud.clone()), ("usr_1", Some(ORG), vec![AUD.to_string()]));
        assert!(c.has_scope("email") && !c.has_scope("profile"));
        assert_eq!(c.client_id.as_deref(), Some(AUD));
        // RFC 9068 §2.1: "application/at+jwt" is the same type.
        v.verify(&key.sign("application/AT+JWT", &access_claims(&mock.base))).await.unwrap();
    }
}

#[tokio::test]
async fn id_tokens_verify_with_an_id_token_verifier_and_keep_unknown_claims() {
    let (mock, key, clock, _) = setup(Alg::ES256).await;
    let v = mock.builder(&clock).id_tokens().build().unwrap();
    let c = v.verify(&key.sign("JWT", &id_claims(&mock.base))).await.unwrap();
    assert_eq!(c.email.as_deref(), Some("alice@acme.test"));
    assert_eq!(c.email_verified, Some(true));
    assert_eq!(c.groups, ["eng"]);
    assert_eq!(c.extra["department"], "R&D");
    // No typ is an ID token too.
    let t = key.sign_raw(&json!({"alg": "ES256", "kid": "k1"}), &id_claims(&mock.base));
    v.verify(&t).await.unwrap();
}

#[tokio::test]
async fn typ_check_tells_access_id_and_logout_tokens_apart() {
    let (mock, key, clock, access) = setup(Alg::ES256).await;
    let id = mock.builder(&clock).id_tokens().build().unwrap();
    let e = access.verify(&key.sign("JWT", &access_claims(&mock.base))).await.unwrap_err();
    assert!(matches!(&e, VerifyError::Type { found: Some(t), .. } if t == "JWT"), "{e}");
    assert!(e.to_string().starts_with("type check failed"), "{e}");
    let e = id.verify(&key.sign("at+jwt", &id_claims(&mock.base))).await.unwrap_err();
    assert_eq!(e.check(), "typ");
    let e = id.verify(&key.sign("logout+jwt", &id_claims(&mock.base))).await.unwrap_err();
    assert_eq!(e.check(), "typ");
    let no_typ = key.sign_raw(&json!({"alg": "ES256", "kid": "k1"}), &access_claims(&mock.base));
    assert!(matches!(access.verify(&no_typ).await.unwrap_err(), VerifyError::Type { found: None, .. }));
}

#[tokio::test]
async fn expiry_and_not_before_honour_the_leeway() {
    let (mock, key, clock, v) = setup(Alg::EdDSA).await;
    let t = key.sign("at+jwt", &access_claims(&mock.base));
    clock.set(NOW + 600 + 59);
    v.verify(&t).await.unwrap();
    clock.set(NOW + 600 + 60);
    let e = v.verify(&t).await.unwrap_err();
    assert_eq!(e, VerifyError::Expired { exp: NOW + 600, now: NOW + 660, leeway: 60 });
    assert!(e.to_string().starts_with("expiry check failed"), "{e}");
    // A tighter leeway.
    let strict = mock.builder(&clock).leeway(Duration::from_secs(0)).build().unwrap();
    clock.set(NOW + 600);
    assert_eq!(strict.verify(&t).await.unwrap_err().check(), "exp");
    // nbf and iat in the future.
    clock.set(NOW);
    let mut c = access_claims(&mock.base);
    c["nbf"] = json!(NOW + 61);
    let e = v.verify(&key.sign("at+jwt", &c)).await.unwrap_err();
    assert!(matches!(e, VerifyError::NotYetValid { claim: "nbf", .. }), "{e}");
    c["nbf"] = json!(NOW + 60);
    v.verify(&key.sign("at+jwt", &c)).await.unwrap();
    let mut c = access_claims(&mock.base);
    c["iat"] = json!(NOW + 120);
    assert!(matches!(
        v.verify(&key.sign("at+jwt", &c)).await.unwrap_err(),
        VerifyError::NotYetValid { claim: "iat", .. }
    ));
}

#[tokio::test]
async fn issuer_and_audience_must_match() {
    let (mock, key, clock, v) = setup(Alg::ES256).await;
    let mut c = access_claims(&mock.base);
    c["iss"] = json!("https://evil.example");
    let e = v.verify(&key.sign("at+jwt", &c)).await.unwrap_err();
    assert_eq!(e, VerifyError::Issuer { expected: mock.base.clone(), found: Some("https://evil.example".into()) });
    assert!(e.to_string().starts_with("issuer check failed"));
    let mut c = access_claims(&mock.base);
    c["aud"] = json!("cli_other");
    let e = v.verify(&key.sign("at+jwt", &c)).await.unwrap_err();
    assert_eq!(e, VerifyError::Audience { expected: vec![AUD.into()], found: vec!["cli_other".into()] });
    assert!(e.to_string().starts_with("audience check failed"));
    // An array naming us is fine; so is a verifier accepting several audiences.
    c["aud"] = json!(["cli_other", AUD]);
    v.verify(&key.sign("at+jwt", &c)).await.unwrap();
    c["aud"] = json!("cli_other");
    let both = mock.builder(&clock).audience("cli_other").build().unwrap();
    both.verify(&key.sign("at+jwt", &c)).await.unwrap();
}

#[tokio::test]
async fn algorithms_outside_the_allow_list_none_and_hmac_are_refused() {
    let (mock, key, clock, v) = setup(Alg::RS256).await;
    let only_es = mock.builder(&clock).algorithms(&[Alg::ES256]).build().unwrap();
    let t = key.sign("at+jwt", &access_claims(&mock.base));
    let e = only_es.verify(&t).await.unwrap_err();
    assert_eq!(e, VerifyError::Algorithm { found: "RS256".into(), allowed: "ES256".into() });
    assert!(e.to_string().starts_with("algorithm check failed"));
    let payload = b64(&serde_json::to_vec(&access_claims(&mock.base)).unwrap());
    for alg in ["none", "HS256", "HS512", "PS256", "ES384"] {
        let h = b64(format!(r#"{{"alg":"{alg}","kid":"k1","typ":"at+jwt"}}"#).as_bytes());
        for s in ["", "c2ln"] {
            let e = v.verify(&format!("{h}.{payload}.{s}")).await.unwrap_err();
            assert!(matches!(e, VerifyError::Algorithm { .. }), "{alg}: {e}");
        }
    }
    // The RSA public key used as an HMAC secret (the classic confusion) never gets that far.
    let forged = {
        use aws_lc_rs::hmac;
        let h = b64(br#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#);
        let input = format!("{h}.{payload}");
        let k = hmac::Key::new(hmac::HMAC_SHA256, key.jwk()["n"].as_str().unwrap().as_bytes());
        format!("{input}.{}", b64(hmac::sign(&k, input.as_bytes()).as_ref()))
    };
    assert_eq!(v.verify(&forged).await.unwrap_err().check(), "alg");
    // A key of another family under the token's kid is not used.
    let ed = TestKey::new(Alg::EdDSA, "k1");
    assert_eq!(v.verify(&ed.sign("at+jwt", &access_claims(&mock.base))).await.unwrap_err().check(), "kid");
}

#[tokio::test]
async fn tampered_and_foreign_signatures_are_refused() {
    let (mock, key, _clock, v) = setup(Alg::ES256).await;
    let t = key.sign("at+jwt", &access_claims(&mock.base));
    let mut c = access_claims(&mock.base);
    c["sub"] = json!("usr_admin");
    let parts: Vec<&str> = t.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&serde_json::to_vec(&c).unwrap()), parts[2]);
    let e = v.verify(&tampered).await.unwrap_err();
    assert_eq!(e, VerifyError::Signature);
    assert!(e.to_string().starts_with("signature check failed"));
    // Same kid, another key.
    let other = TestKey::new(Alg::ES256, "k1");
    assert_eq!(v.verify(&other.sign("at+jwt", &access_claims(&mock.base))).await.unwrap_err(), VerifyError::Signature);
    // Signature part garbage or empty.
    assert_eq!(v.verify(&format!("{}.{}.!!", parts[0], parts[1])).await.unwrap_err(), VerifyError::Signature);
    assert_eq!(v.verify(&format!("{}.{}.", parts[0], parts[1])).await.unwrap_err(), VerifyError::Signature);
}

#[tokio::test]
async fn malformed_tokens_and_missing_claims() {
    let (mock, key, clock, v) = setup(Alg::ES256).await;
    let long = "a".repeat(MAX_TOKEN_BYTES + 1);
    for t in ["", "a.b", "a.b.c.d", "!!!.e30.c2ln", "e30.e30.c2ln", long.as_str()] {
        assert_eq!(v.verify(t).await.unwrap_err().check(), "malformed", "{t:.20}");
    }
    let crit = key.sign_raw(
        &json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt", "crit": ["b64"], "b64": false}),
        &access_claims(&mock.base),
    );
    assert!(v.verify(&crit).await.unwrap_err().to_string().contains("crit"));
    let not_object = key.sign("at+jwt", &json!(["x"]));
    assert_eq!(v.verify(&not_object).await.unwrap_err().check(), "malformed");
    for claim in ["exp", "iat", "sub", "client_id"] {
        let mut c = access_claims(&mock.base);
        c.as_object_mut().unwrap().remove(claim);
        assert_eq!(v.verify(&key.sign("at+jwt", &c)).await.unwrap_err(), VerifyError::MissingClaim(claim));
    }
    // ID tokens need no client_id.
    let mut c = id_claims(&mock.base);
    c.as_object_mut().unwrap().remove("client_id");
    mock.builder(&clock).id_tokens().build().unwrap().verify(&key.sign("JWT", &c)).await.unwrap();
    // A claims type the token does not fit.
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Needs {
        department: String,
    }
    let e = v.verify_as::<Needs>(&key.sign("at+jwt", &access_claims(&mock.base))).await.unwrap_err();
    assert_eq!(e.check(), "claims");
}

#[tokio::test]
async fn tenant_check() {
    let (mock, key, clock, v) = setup(Alg::ES256).await;
    let t = key.sign("at+jwt", &access_claims(&mock.base));
    mock.builder(&clock).tenant(ORG).build().unwrap().verify(&t).await.unwrap();
    mock.builder(&clock).tenant("org_x").tenant(ORG).build().unwrap().verify(&t).await.unwrap();
    let e = mock.builder(&clock).tenant("org_other").build().unwrap().verify(&t).await.unwrap_err();
    assert_eq!(e, VerifyError::Tenant { expected: vec!["org_other".into()], found: Some(ORG.into()) });
    assert!(e.to_string().starts_with("tenant check failed"));
    v.verify_for_tenant(&t, ORG).await.unwrap();
    assert_eq!(v.verify_for_tenant(&t, "org_other").await.unwrap_err().check(), "tenant");
    let mut c = access_claims(&mock.base);
    c.as_object_mut().unwrap().remove("org_id");
    let e = v.verify_for_tenant(&key.sign("at+jwt", &c), ORG).await.unwrap_err();
    assert_eq!(e, VerifyError::Tenant { expected: vec![ORG.into()], found: None });
}

// ---------------------------------------------------------------- the JWKS cache

#[tokio::test]
async fn rotation_refreshes_once_and_unknown_kids_at_most_once_a_minute() {
    let (mock, k1, clock, v) = setup(Alg::ES256).await;
    v.verify(&k1.sign("at+jwt", &access_claims(&mock.base))).await.unwrap();
    assert_eq!((mock.jwks_hits(), mock.state.discovery_hits.load(Ordering::SeqCst)), (1, 1));
    // Cached: no fetch for the next tokens.
    for _ in 0..5 {
        v.verify(&k1.sign("at+jwt", &access_claims(&mock.base))).await.unwrap();
    }
    assert_eq!(mock.jwks_hits(), 1);
    // The issuer rotates: a token with the new kid, 61 s later, triggers one refresh.
    let k2 = TestKey::new(Alg::ES256, "k2");
    mock.set_keys(&[&k2, &k1]);
    clock.advance(61);
    v.verify(&k2.sign("at+jwt", &access_claims(&mock.base))).await.unwrap();
    assert_eq!(mock.jwks_hits(), 2);
    // Made-up kids within the minute: refused without asking the issuer.
    let fake = TestKey::new(Alg::ES256, "k-made-up");
    for _ in 0..20 {
        let e = v.verify(&fake.sign("at+jwt", &access_claims(&mock.base))).await.unwrap_err();
        assert_eq!(e, VerifyError::UnknownKey { kid: Some("k-made-up".into()) });
    }
    assert_eq!(mock.jwks_hits(), 2);
    // A key the issuer published within that minute is found after it.
    let k3 = TestKey::new(Alg::ES256, "k3");
    mock.set_keys(&[&k3, &k2, &k1]);
    clock.advance(30);
    assert_eq!(v.verify(&k3.sign("at+jwt", &access_claims(&mock.base))).await.unwrap_err().check(), "kid");
    assert_eq!(mock.jwks_hits(), 2);
    clock.advance(30);
    v.verify(&k3.sign("at+jwt", &access_claims(&mock.base))).await.unwrap();
    assert_eq!(mock.jwks_hits(), 3);
    // A retired key gone from the JWKS stops verifying after the next refresh.
    mock.set_keys(&[&k3, &k2]);
    clock.advance(301);
    let e = v.verify(&k1.sign("at+jwt", &access_claims(&mock.base))).await.unwrap_err();
    assert_eq!(e.check(), "kid");
    assert_eq!(mock.jwks_hits(), 4);
    // Discovery was done once.
    assert_eq!(mock.state.discovery_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn cache_lifetime_follows_cache_control_within_bounds() {
    let (mock, key, clock, v) = setup(Alg::EdDSA).await;
    *mock.state.cache_control.lock().unwrap() = "max-age=120".into();
    let t = key.sign("at+jwt", &access_claims(&mock.base));
    v.verify(&t).await.unwrap();
    clock.advance(119);
    v.verify(&t).await.unwrap();
    assert_eq!(mock.jwks_hits(), 1);
    clock.advance(1);
    v.verify(&t).await.unwrap();
    assert_eq!(mock.jwks_hits(), 2);
    // no-store: the least lifetime (30 s), not a fetch per token.
    *mock.state.cache_control.lock().unwrap() = "no-store".into();
    clock.advance(120);
    v.verify(&t).await.unwrap();
    v.verify(&t).await.unwrap();
    assert_eq!(mock.jwks_hits(), 3);
    clock.advance(30);
    v.verify(&t).await.unwrap();
    assert_eq!(mock.jwks_hits(), 4);
}

#[tokio::test]
async fn fetch_failures_say_so_and_stale_keys_keep_working() {
    let key = TestKey::new(Alg::ES256, "k1");
    let mock = Mock::start(&[&key]).await;
    let clock = ManualClock::new(NOW);
    let v = mock.builder(&clock).build().unwrap();
    let t = key.sign("at+jwt", &access_claims(&mock.base));
    *mock.state.status.lock().unwrap() = 500;
    let e = v.verify(&t).await.unwrap_err();
    assert!(matches!(&e, VerifyError::JwksFetch(m) if m.contains("HTTP 500")), "{e}");
    assert!(!e.is_token_error());
    // Retries wait a few seconds.
    v.verify(&t).await.unwrap_err();
    assert_eq!(mock.jwks_hits(), 1);
    clock.advance(5);
    *mock.state.status.lock().unwrap() = 200;
    v.verify(&t).await.unwrap();
    assert_eq!(mock.jwks_hits(), 2);
    // Expired cache and a failing issuer: the keys we have still verify.
    *mock.state.status.lock().unwrap() = 503;
    clock.advance(301);
    v.verify(&t).await.unwrap();
    assert_eq!(mock.jwks_hits(), 3);
    v.verify(&t).await.unwrap();
    assert_eq!(mock.jwks_hits(), 3);
    // Not forever: a day past their lifetime, they stop verifying.
    clock.advance(86400);
    let e = v.verify(&t).await.unwrap_err();
    assert!(matches!(&e, VerifyError::JwksFetch(m) if m.contains("HTTP 503")), "{e}");
    assert_eq!(mock.jwks_hits(), 4);
}

#[tokio::test]
async fn oversized_jwks_and_a_discovery_document_of_another_issuer_are_refused() {
    let key = TestKey::new(Alg::ES256, "k1");
    let mock = Mock::start(&[&key]).await;
    let clock = ManualClock::new(NOW);
    let t = key.sign("at+jwt", &access_claims(&mock.base));
    *mock.state.pad.lock().unwrap() = 300 * 1024;
    let e = mock.builder(&clock).build().unwrap().verify(&t).await.unwrap_err();
    assert!(matches!(&e, VerifyError::JwksFetch(m) if m.contains("larger than")), "{e}");
    *mock.state.pad.lock().unwrap() = 0;
    *mock.state.issuer.lock().unwrap() = Some("https://evil.example".into());
    let e = mock.builder(&clock).build().unwrap().verify(&t).await.unwrap_err();
    assert!(matches!(&e, VerifyError::JwksFetch(m) if m.contains("evil.example")), "{e}");
    // An explicit jwks_uri skips discovery.
    let v = mock.builder(&clock).jwks_uri(format!("{}/jwks", mock.base)).build().unwrap();
    v.verify(&t).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_share_one_fetch() {
    let (mock, key, _clock, v) = setup(Alg::ES256).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *mock.state.gate.lock().unwrap() = Some(gate.clone());
    let t = key.sign("at+jwt", &access_claims(&mock.base));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (v, t) = (v.clone(), t.clone());
            tokio::spawn(async move { v.verify(&t).await })
        })
        .collect();
    // The first fetch has reached the issuer; let the others pile up behind it, then release.
    mock.state.received.notified().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.add_permits(1000);
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // Whether a task waited for the fetch or came after it, it did not fetch again.
    assert_eq!(mock.jwks_hits(), 1);
}

// ---------------------------------------------------------------- configuration, extractors

#[test]
fn builder_refuses_unsafe_configurations() {
    let ok = || Verifier::builder("https://auth.example.com").audience(AUD);
    ok().build().unwrap();
    assert!(Verifier::builder("https://auth.example.com").build().unwrap_err().0.contains("audience"));
    assert!(ok().leeway(Duration::from_secs(301)).build().unwrap_err().0.contains("leeway"));
    ok().leeway(MAX_LEEWAY).build().unwrap();
    assert!(ok().algorithms(&[]).build().is_err());
    assert!(Verifier::builder("http://auth.example.com").audience(AUD).build().unwrap_err().0.contains("https"));
    Verifier::builder("http://auth.example.com").audience(AUD).allow_insecure_http(true).build().unwrap();
    Verifier::builder("http://127.0.0.1:8080").audience(AUD).build().unwrap();
    Verifier::builder("http://localhost:8080").audience(AUD).build().unwrap();
    assert!(Verifier::builder("not a url").audience(AUD).build().is_err());
    assert!(ok().jwks_uri("ftp://x/jwks").build().is_err());
    let v = ok().tenant(ORG).build().unwrap();
    assert!(format!("{v:?}").contains(ORG));
}

#[test]
fn bearer_header_parsing_and_rfc6750_answers() {
    assert_eq!(bearer_token(Some("Bearer abc.def-_~+/=")).unwrap(), "abc.def-_~+/=");
    assert_eq!(bearer_token(Some("bearer  abc")).unwrap(), "abc");
    assert!(matches!(bearer_token(None), Err(BearerError::Missing)));
    assert!(matches!(bearer_token(Some("Basic dXNlcjpwdw==")), Err(BearerError::Missing)));
    assert!(matches!(bearer_token(Some("Bearer")), Err(BearerError::BadHeader)));
    assert!(matches!(bearer_token(Some("Bearer a b")), Err(BearerError::BadHeader)));
    assert!(matches!(bearer_token(Some("Bearer a\"b")), Err(BearerError::BadHeader)));
    assert_eq!(BearerError::Missing.www_authenticate().unwrap(), "Bearer");
    let e = BearerError::Verify(VerifyError::Issuer { expected: "a\"b\\c".into(), found: Some("é".into()) });
    assert_eq!(e.status(), 401);
    let h = e.www_authenticate().unwrap();
    assert_eq!(
        h,
        r#"Bearer error="invalid_token", error_description="issuer check failed: expected `a'b/c`, found `?`""#
    );
    assert!(h.chars().all(|c| (' '..='~').contains(&c)));
    let down = BearerError::Verify(VerifyError::JwksFetch("down".into()));
    assert_eq!((down.status(), down.www_authenticate()), (503, None));
    assert_eq!(BearerError::NoVerifier.status(), 500);
}

#[actix_web::test]
async fn actix_extractor_answers_401_with_the_failed_check() {
    use actix_web::{test, web, App, HttpResponse};
    let key = TestKey::new(Alg::ES256, "k1");
    let mock = Mock::start(&[&key]).await;
    let v = mock.builder(&ManualClock::new(NOW)).build().unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(v))
            .route("/me", web::get().to(|t: VerifiedToken| async move { HttpResponse::Ok().body(t.sub.clone()) })),
    )
    .await;
    let good = key.sign("at+jwt", &access_claims(&mock.base));
    let r = test::call_service(
        &app,
        test::TestRequest::get().uri("/me").insert_header(("Authorization", format!("Bearer {good}"))).to_request(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(test::read_body(r).await, "usr_1");
    let r = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
    let id = key.sign("JWT", &access_claims(&mock.base));
    let r = test::call_service(
        &app,
        test::TestRequest::get().uri("/me").insert_header(("Authorization", format!("Bearer {id}"))).to_request(),
    )
    .await;
    assert_eq!(r.status(), 401);
    let h = r.headers().get("www-authenticate").unwrap().to_str().unwrap().to_string();
    assert!(h.starts_with(r#"Bearer error="invalid_token", error_description="type check failed"#), "{h}");
    let body: Value = serde_json::from_slice(&test::read_body(r).await).unwrap();
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn axum_extractor_answers_401_with_the_failed_check() {
    use ::axum::{routing::get, Router};
    let key = TestKey::new(Alg::EdDSA, "k1");
    let mock = Mock::start(&[&key]).await;
    let v = mock.builder(&ManualClock::new(NOW)).build().unwrap();
    let app = Router::new().route("/me", get(|t: VerifiedToken| async move { t.0.sub })).with_state(v);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/me", listener.local_addr().unwrap());
    tokio::spawn(async move { ::axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let good = key.sign("at+jwt", &access_claims(&mock.base));
    let r = http.get(&url).bearer_auth(&good).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "usr_1");
    let r = http.get(&url).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers().get("www-authenticate").unwrap().to_str().unwrap()), (401, "Bearer"));
    let mut c = access_claims(&mock.base);
    c["aud"] = json!("cli_other");
    let r = http.get(&url).bearer_auth(key.sign("at+jwt", &c)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let h = r.headers().get("www-authenticate").unwrap().to_str().unwrap();
    assert!(h.contains(r#"error_description="audience check failed"#), "{h}");
}
