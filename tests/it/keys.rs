//! Signing keys: publication ahead of use, scheduled and forced rotation, retirement after
//! every token they signed has expired, and encryption at rest.
use crate::both;
use crate::common::*;
use sea_orm::EntityTrait;

fn kids_of(jwks: &serde_json::Value, alg: &str) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn rotation_lifecycle(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let s = secret.unwrap();
    let jwks0 = app.jwks().await;
    assert_eq!(kids_of(&jwks0, "ES256").len(), 2, "active + next published");
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (_, t) = exchange(app, &cid, Some(&s), &code).await;
    let old_kid = jwt_header(t["id_token"].as_str().unwrap())["kid"].as_str().unwrap().to_string();
    let next_kid: String = kids_of(&jwks0, "ES256").into_iter().find(|k| *k != old_kid).unwrap();
    // Nothing changes before the rotation interval.
    app.state.maintenance().await.unwrap();
    assert_eq!(app.state.keys.signer(fedgate::keys::Alg::ES256).unwrap().kid, old_kid);
    // After it, the published next key becomes active; the old one stays published.
    app.clock.advance_secs(30 * 86400 + 1);
    app.state.maintenance().await.unwrap();
    assert_eq!(app.state.keys.signer(fedgate::keys::Alg::ES256).unwrap().kid, next_kid);
    let jwks1 = app.jwks().await;
    let es = kids_of(&jwks1, "ES256");
    assert!(es.contains(&old_kid) && es.contains(&next_kid) && es.len() == 3, "{es:?}");
    // New tokens use the new key and verify; the old tokens' key is still there to verify them.
    let code = code_for(app, &browser(), &cid, &[("organization", "acme")]).await;
    let (_, t2) = exchange(app, &cid, Some(&s), &code).await;
    assert_eq!(jwt_header(t2["id_token"].as_str().unwrap())["kid"], next_kid.as_str());
    verify_jwt(app, t2["access_token"].as_str().unwrap(), &cid).await;
    // Once everything the old key signed has expired, it leaves the JWKS.
    app.clock.advance_secs(3600 + 301);
    app.state.maintenance().await.unwrap();
    let es = kids_of(&app.jwks().await, "ES256");
    assert!(!es.contains(&old_kid), "{es:?}");
    assert_eq!(es.len(), 2);
}

async fn forced_rotation_and_encryption_at_rest(app: &TestApp) {
    let before = app.state.keys.signer(fedgate::keys::Alg::RS256).unwrap().kid.clone();
    let report = app.state.keys.rotate(true).await.unwrap();
    assert_eq!(report.activated.len(), 3);
    let after = app.state.keys.signer(fedgate::keys::Alg::RS256).unwrap().kid.clone();
    assert_ne!(before, after);
    let rows = fedgate::store::entities::signing_key::Entity::find().all(&app.state.db).await.unwrap();
    for r in rows {
        assert!(r.private_enc.starts_with("v1."), "private keys are sealed");
        assert!(!r.private_enc.contains("PRIVATE"));
        assert!(!r.public_jwk.contains("\"d\""));
    }
    // A second instance on the same database (another process behind the load balancer)
    // sees the same active keys.
    let other = fedgate::keys::KeyRing::new(
        app.state.db.clone(),
        app.state.master.clone(),
        std::sync::Arc::new(app.clock.clone()),
        std::sync::Arc::new(fedgate::clock::SystemRng),
        30 * 86400,
        86400,
        3900,
    );
    other.reload().await.unwrap();
    assert_eq!(other.signer(fedgate::keys::Alg::RS256).unwrap().kid, after);
    // Rotating from both "instances" keeps exactly one active key per algorithm.
    let (a, b) = tokio::join!(other.rotate(true), app.state.keys.rotate(true));
    a.unwrap();
    b.unwrap();
    let rows = fedgate::store::entities::signing_key::Entity::find().all(&app.state.db).await.unwrap();
    for alg in ["ES256", "EdDSA", "RS256"] {
        assert_eq!(rows.iter().filter(|r| r.alg == alg && r.state == "active").count(), 1, "{alg}");
    }
}

both!(rotation_lifecycle, forced_rotation_and_encryption_at_rest);
