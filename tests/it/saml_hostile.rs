//! Hostile input at the SAML ACS (the security review): answers that name someone else's
//! pending login, a full verification pool, and references that would make xmlsec load
//! something. Each test reproduces an attack and shows that it no longer works.
use crate::both;
use crate::common::*;
use crate::saml::{page_code, post_acs, response, saml_tenant, start, IDP};
use crate::saml_corpus::saml_idp::{post_form_fields, FixtureIdp, ResponseParams, Sign};
use fedgate::clock::Clock;
use serde_json::json;

/// Someone who learns a pending login id posts garbage and a forged answer for it: each is
/// refused and traced, and the person's own answer still completes the login.
async fn refused_answers_do_not_end_the_login(app: &TestApp) {
    let conn = saml_tenant(app, "victim", "victim.test", json!({})).await;
    let (client, secret) = app.client("confidential", "ES256").await;
    let victim = browser();
    let login = start(app, &victim, &client, &conn).await;
    let attacker = browser();
    let untrusted = FixtureIdp::untrusted(IDP).unwrap();
    let mut p = ResponseParams::new(
        IDP,
        &conn.sp_entity_id,
        &conn.acs_url,
        Some(&login),
        "u-666",
        "eve@victim.test",
        app.clock.now(),
    );
    p.sign = Sign::Response;
    let forged = post_form_fields(&untrusted.response(&p).unwrap());
    for bad in [forged.as_str(), "PHNhbWxwOlJlc3BvbnNlLz4="] {
        let r = post_acs(&attacker, &conn, bad, &login).await;
        assert_eq!(r.status().as_u16(), 400);
    }
    let (_, tr) = app.get(&format!("/logins/{login}")).await;
    assert_eq!(tr["error"]["code"], "saml_signature_invalid", "the attempt is on the trace: {tr}");
    // The person's answer still works.
    let r = post_acs(&victim, &conn, &response(&conn, Some(&login), app.clock.now(), |_| {}), &login).await;
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let r = victim.get(location(&r)).send().await.unwrap();
    let back = location(&r);
    assert!(back.starts_with(REDIRECT), "{back} {}", r.text().await.unwrap());
    let (s, tok) = exchange(app, &client, secret.as_deref(), &query_of(&back)["code"]).await;
    assert_eq!(s, 200, "{tok}");
    let (_, tr) = app.get(&format!("/logins/{login}")).await;
    assert_eq!(tr["status"], "completed", "{tr}");
}

/// A validly signed answer for another person, posted for the victim's login id from another
/// browser (an IdP that accepts unsigned AuthnRequests will answer any request id), can neither
/// finish the victim's login in the attacker's browser nor take the victim's place: each answer
/// is kept under a handle only the browser that posted it receives.
async fn an_answer_completes_only_in_the_browser_that_posted_it(app: &TestApp) {
    let conn = saml_tenant(app, "swap", "swap.test", json!({})).await;
    let (client, secret) = app.client("confidential", "ES256").await;
    let victim = browser();
    let login = start(app, &victim, &client, &conn).await;
    let attacker = browser();
    let eve = response(&conn, Some(&login), app.clock.now(), |p| {
        p.name_id = Some("u-666".into());
        p.attributes = vec![("email".into(), vec!["eve@swap.test".into()])];
    });
    let r = post_acs(&attacker, &conn, &eve, &login).await;
    assert_eq!(r.status().as_u16(), 303);
    let eve_resume = location(&r);
    // Not in the attacker's browser (no binding cookie)...
    let r = attacker.get(&eve_resume).send().await.unwrap();
    assert_eq!(page_code(&r.text().await.unwrap()), "login_binding_mismatch");
    // ...and the victim's own answer still signs the victim in as the victim.
    let r = post_acs(&victim, &conn, &response(&conn, Some(&login), app.clock.now(), |_| {}), &login).await;
    assert_eq!(r.status().as_u16(), 303);
    let r = victim.get(location(&r)).send().await.unwrap();
    let back = location(&r);
    let (s, tok) = exchange(app, &client, secret.as_deref(), &query_of(&back)["code"]).await;
    assert_eq!(s, 200, "{tok}");
    let claims = verify_jwt(app, tok["id_token"].as_str().unwrap(), &client).await;
    assert_eq!(claims["email"], "alice@swap.test", "{claims}");
    // Without its handle, the resume URL finishes nothing.
    let other = browser();
    let login2 = start(app, &other, &client, &conn).await;
    let r = post_acs(&other, &conn, &response(&conn, Some(&login2), app.clock.now(), |_| {}), &login2).await;
    assert_eq!(r.status().as_u16(), 303);
    let r = other.get(app.url(&format!("/sso/saml/resume?login={login2}&h=fgh_guess"))).send().await.unwrap();
    assert_eq!(page_code(&r.text().await.unwrap()), "login_not_asserted");
}

/// With every verification worker busy and the queue full, the ACS answers 503 with
/// Retry-After at once (never a stalled async worker), and other tenants still sign in.
async fn a_full_pool_answers_503_and_others_sign_in(app: &TestApp) {
    let conn = saml_tenant(app, "busy", "busy.test", json!({})).await;
    app.tenant("calm", "calm.test", &[]).await;
    let (client, secret) = app.client("confidential", "ES256").await;
    let b = browser();
    let login = start(app, &b, &client, &conn).await;
    let held = app.state.saml_pool.hold(app.state.saml_pool.workers());
    let r = post_acs(&b, &conn, &response(&conn, Some(&login), app.clock.now(), |_| {}), &login).await;
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
    assert_eq!(page_code(&r.text().await.unwrap()), "saml_busy");
    // Another tenant's login goes through meanwhile.
    let other = browser();
    let code = code_for(app, &other, &client, &[("organization", "calm")]).await;
    let (s, tok) = exchange(app, &client, secret.as_deref(), &code).await;
    assert_eq!(s, 200, "{tok}");
    // Once a worker is free, the same answer is accepted: the busy answer changed nothing.
    drop(held);
    let r = post_acs(&b, &conn, &response(&conn, Some(&login), app.clock.now(), |_| {}), &login).await;
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
}

/// The review's CPU exhaustion: an anonymous 2 KB POST whose Reference is an XPointer cost
/// 4.95 s of CPU. It is now refused before xmlsec sees it, like every other reference that is
/// not the ID of the signed element.
async fn hostile_references_are_refused_over_http(app: &TestApp) {
    let conn = saml_tenant(app, "xp", "xp.test", json!({})).await;
    let (client, _) = app.client("confidential", "ES256").await;
    let b = browser();
    for uri in [
        "#xpointer(//node()[count(//node()[count(//node()) &gt; 0]) &gt; 0])",
        "http://127.0.0.1:9/x",
        "file:///dev/zero",
    ] {
        let login = start(app, &b, &client, &conn).await;
        let idp = FixtureIdp::test(IDP).unwrap();
        let mut p = ResponseParams::new(
            IDP,
            &conn.sp_entity_id,
            &conn.acs_url,
            Some(&login),
            "u-1",
            "a@xp.test",
            app.clock.now(),
        );
        p.sign = Sign::Response;
        let xml = idp.response(&p).unwrap();
        let xml = xml.replacen(&format!("URI=\"#{}\"", p.response_id), &format!("URI=\"{uri}\""), 1);
        let r = post_acs(&b, &conn, &post_form_fields(&xml), &login).await;
        assert_eq!(r.status().as_u16(), 400);
        assert_eq!(page_code(&r.text().await.unwrap()), "saml_signature_wrapping", "{uri}");
    }
}

both!(
    refused_answers_do_not_end_the_login,
    an_answer_completes_only_in_the_browser_that_posted_it,
    hostile_references_are_refused_over_http
);

/// One verification worker and no queue, so that holding the worker makes the pool full.
mod full_pool {
    use crate::common::{Backend, TestApp};
    async fn run(backend: Backend) {
        let app = TestApp::spawn_with(backend, |c| {
            c.allow_private_network = true;
            c.saml.verify_workers = 1;
            c.saml.verify_queue = 0;
        })
        .await;
        super::a_full_pool_answers_503_and_others_sign_in(&app).await;
        app.stop().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await
    }
}

/// Even called directly (past every check of fedgate's), xmlsec can load nothing once the
/// libraries are hardened: a Reference to an HTTP listener never connects, and one to a file
/// that never ends (/dev/zero) fails at once instead of reading forever.
#[test]
fn hardened_xmlsec_loads_nothing() {
    use samael::crypto::{CertificateDer, Crypto, CryptoProvider, ReduceMode};
    fedgate::upstream::saml::xml::harden_libraries();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let idp = FixtureIdp::test(IDP).unwrap();
    let mut p = ResponseParams::new(
        IDP,
        "https://sp.test",
        "https://sp.test/acs",
        Some("lgn_x"),
        "u-1",
        "a@b.test",
        1_767_225_600,
    );
    p.sign = Sign::Response;
    let xml = idp.response(&p).unwrap();
    let certs = [CertificateDer::from(idp.cert_der().to_vec())];
    for uri in [format!("http://127.0.0.1:{port}/x"), "file:///dev/zero".to_string()] {
        let doc = xml.replacen(&format!("URI=\"#{}\"", p.response_id), &format!("URI=\"{uri}\""), 1);
        let certs = certs.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = Crypto::reduce_xml_to_signed_with_allowed_algorithms(&doc, &certs, ReduceMode::PreDigest, None);
            let _ = tx.send(r.is_err());
        });
        let failed = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("xmlsec must not hang on {uri}");
        assert!(failed, "{uri} must not verify");
    }
    assert!(listener.accept().is_err(), "xmlsec connected to the listener");
}

/// `require_aes_gcm`: AES-CBC is refused outright (its ciphertext is not authenticated), GCM
/// works; and a failure to decrypt unauthenticated ciphertext takes at least the configured
/// floor, whatever failed inside.
async fn gcm_only_connections_refuse_cbc(app: &TestApp) {
    use crate::saml_corpus::saml_idp::{DataAlg, Encrypt};
    let conn = saml_tenant(app, "gcm", "gcm.test", json!({"require_aes_gcm": true})).await;
    let (client, _) = app.client("confidential", "ES256").await;
    let b = browser();
    for (alg, ok) in [(DataAlg::Aes256Cbc, false), (DataAlg::Aes256Gcm, true)] {
        let login = start(app, &b, &client, &conn).await;
        let cert = conn.sp_cert.clone();
        let enc = response(&conn, Some(&login), app.clock.now(), |p| {
            p.sign = Sign::Assertion;
            p.encrypt = Some(Encrypt { data_alg: alg, ..Encrypt::to(&cert) });
        });
        let r = post_acs(&b, &conn, &enc, &login).await;
        if ok {
            assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
        } else {
            assert_eq!(page_code(&r.text().await.unwrap()), "saml_decryption_failed");
            let (_, tr) = app.get(&format!("/logins/{login}")).await;
            assert!(tr["error"]["cause"].as_str().unwrap().contains("AES-GCM only"), "{tr}");
        }
    }
    // Altered ciphertext: refused no faster than the floor.
    let login = start(app, &b, &client, &conn).await;
    let cert = conn.sp_cert.clone();
    let enc = response(&conn, Some(&login), app.clock.now(), |p| {
        p.sign = Sign::Assertion;
        p.encrypt = Some(Encrypt { data_alg: DataAlg::Aes256Gcm, ..Encrypt::to(&cert) });
    });
    use base64::Engine;
    let mut xml = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&enc).unwrap()).unwrap();
    let at = xml.match_indices("<xenc:CipherValue>").nth(1).unwrap().0 + "<xenc:CipherValue>".len();
    xml.replace_range(at..at + 4, if &xml[at..at + 4] == "AAAA" { "BBBB" } else { "AAAA" });
    let started = std::time::Instant::now();
    let r = post_acs(&b, &conn, &post_form_fields(&xml), &login).await;
    assert_eq!(page_code(&r.text().await.unwrap()), "saml_decryption_failed");
    assert!(started.elapsed() >= std::time::Duration::from_millis(app.state.config.saml.decryption_failure_floor_ms));
}

both!(gcm_only_connections_refuse_cbc);
