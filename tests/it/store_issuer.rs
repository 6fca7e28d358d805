//! Store conformance for the issuer's tables (run on SQLite and PostgreSQL): single-use codes,
//! refresh token rotation and family revocation, revoked access tokens, sessions and the
//! subject join, identity link uniqueness, tenant scoping of user lookups, signing key rotation.
use crate::both;
use crate::common::*;
use fedgate::store::entities::{grant, identity, signing_key, user};
use fedgate::store::{codes, grants, identities, refresh_tokens, sessions, signing_keys, users};

fn new_user(id: &str, tenant_id: &str, scim: bool) -> user::Model {
    user::Model {
        id: id.into(),
        tenant_id: tenant_id.into(),
        user_name: Some(format!("{id}@example.test")),
        email: Some(format!("{id}@example.test")),
        email_verified: false,
        name: None,
        given_name: None,
        family_name: None,
        active: true,
        external_id: Some(format!("ext-{id}")),
        attributes: "{}".into(),
        created_at: 1,
        updated_at: 1,
        deleted_at: None,
        user_name_lower: Some(format!("{id}@example.test")),
        email_lower: Some(format!("{id}@example.test")),
        scim: scim.then(|| "{}".to_string()),
        version: 0,
    }
}

fn new_identity(id: &str, tenant_id: &str, connection_id: &str, subject: &str, user_id: &str) -> identity::Model {
    identity::Model {
        id: id.into(),
        tenant_id: tenant_id.into(),
        connection_id: connection_id.into(),
        subject: subject.into(),
        user_id: user_id.into(),
        attributes: "{}".into(),
        groups: "[]".into(),
        created_at: 1,
        last_login_at: 1,
        verified_email: None,
        verified_email_domain: None,
    }
}

fn new_grant(id: &str, user_id: &str, session_id: &str, now: i64) -> grant::Model {
    grant::Model {
        id: id.into(),
        client_id: "cli_x".into(),
        user_id: user_id.into(),
        tenant_id: "org_x".into(),
        session_id: session_id.into(),
        scope: "openid".into(),
        auth_time: now,
        created_at: now,
        expires_at: now + 3600,
        revoked_at: None,
        revoked_reason: None,
    }
}

fn new_session(id: &str, user_id: &str, tenant_id: &str, connection_id: &str, now: i64) -> sessions::NewSession {
    sessions::NewSession {
        id: id.into(),
        cookie_hash: format!("hash-{id}"),
        user_id: user_id.into(),
        tenant_id: tenant_id.into(),
        connection_id: connection_id.into(),
        auth_time: now,
        amr: vec!["pwd".into()],
        acr: "urn:fedgate:acr:basic".into(),
        created_at: now,
        expires_at: now + 3600,
    }
}

/// A code of user `usr_1` for client `cli_x`, issued at `now`, valid 60 s.
fn new_code(hash: &str, login_id: &str, session_id: &str, now: i64) -> codes::NewCode {
    codes::NewCode {
        code_hash: hash.into(),
        login_id: login_id.into(),
        client_id: "cli_x".into(),
        redirect_uri: "https://app/cb".into(),
        user_id: "usr_1".into(),
        session_id: session_id.into(),
        scope: "openid".into(),
        nonce: None,
        code_challenge: None,
        auth_time: now,
        created_at: now,
        expires_at: now + 60,
    }
}

async fn codes_are_single_use(app: &TestApp) {
    let db = &app.state.db;
    let now = 1_000;
    codes::insert(db, new_code("h1", "lgn", "ses_1", now)).await.unwrap();
    let first = codes::claim(db, "h1", now + 1, "grt_1").await.unwrap().expect("first claim wins");
    assert_eq!(first.used_at, Some(now + 1));
    assert_eq!(first.grant_id.as_deref(), Some("grt_1"));
    assert!(codes::claim(db, "h1", now + 2, "grt_2").await.unwrap().is_none(), "a code is claimed once");
    let stored = codes::get(db, "h1").await.unwrap().unwrap();
    assert_eq!(stored.grant_id.as_deref(), Some("grt_1"), "a failed claim changes nothing");
    assert!(codes::claim(db, "unknown", now, "grt_3").await.unwrap().is_none());
    assert!(codes::get(db, "unknown").await.unwrap().is_none());
}

async fn refresh_rotation_and_family_revoke(app: &TestApp) {
    let db = &app.state.db;
    let now = 5_000;
    grants::insert(db, &new_grant("grt_a", "usr_1", "ses_1", now)).await.unwrap();
    grants::insert(db, &new_grant("grt_b", "usr_1", "ses_1", now)).await.unwrap();
    refresh_tokens::insert(db, "rt1", "grt_a", now, now + 3600).await.unwrap();
    refresh_tokens::insert(db, "other", "grt_b", now, now + 3600).await.unwrap();
    let claimed = refresh_tokens::claim(db, "rt1", now + 1).await.unwrap().expect("first use");
    assert_eq!((claimed.grant_id.as_str(), claimed.used_at), ("grt_a", Some(now + 1)));
    assert!(refresh_tokens::claim(db, "rt1", now + 2).await.unwrap().is_none(), "rotated token is spent");
    assert_eq!(refresh_tokens::get(db, "rt1").await.unwrap().unwrap().used_at, Some(now + 1));
    // Rotation: the successor of the spent token.
    refresh_tokens::insert(db, "rt2", "grt_a", now + 1, now + 3600).await.unwrap();
    // Reuse of rt1 revokes the family: the grant, and every token in it (rt1 and rt2).
    grants::revoke(db, "grt_a", "refresh_token_reuse", now + 3).await.unwrap();
    let g = grants::get(db, "grt_a").await.unwrap().unwrap();
    assert_eq!((g.revoked_at, g.revoked_reason.as_deref()), (Some(now + 3), Some("refresh_token_reuse")));
    assert!(refresh_tokens::get(db, "rt1").await.unwrap().is_none());
    assert!(refresh_tokens::get(db, "rt2").await.unwrap().is_none());
    assert!(refresh_tokens::claim(db, "rt2", now + 4).await.unwrap().is_none());
    // A second revocation keeps the first reason and time.
    grants::revoke(db, "grt_a", "logout", now + 9).await.unwrap();
    let g = grants::get(db, "grt_a").await.unwrap().unwrap();
    assert_eq!((g.revoked_at, g.revoked_reason.as_deref()), (Some(now + 3), Some("refresh_token_reuse")));
    // Other families are untouched.
    assert!(grants::get(db, "grt_b").await.unwrap().unwrap().revoked_at.is_none());
    assert!(refresh_tokens::get(db, "other").await.unwrap().is_some());
    // Revoked by set: a user's live grants (a deactivation), then every grant of a session.
    grants::insert(db, &new_grant("grt_c", "usr_1", "ses_2", now)).await.unwrap();
    grants::insert(db, &new_grant("grt_d", "usr_2", "ses_1", now)).await.unwrap();
    refresh_tokens::insert(db, "rt_c", "grt_c", now, now + 3600).await.unwrap();
    refresh_tokens::insert(db, "rt_d", "grt_d", now, now + 3600).await.unwrap();
    let revoked = |id: &'static str| async move {
        let g = grants::get(db, id).await.unwrap().unwrap();
        (g.revoked_at, g.revoked_reason)
    };
    grants::revoke_all(db, grants::Of::LiveOfUser("usr_1"), "user_deactivated", now + 10).await.unwrap();
    assert_eq!(revoked("grt_a").await, (Some(now + 3), Some("refresh_token_reuse".into())), "revoked before");
    assert_eq!(revoked("grt_b").await, (Some(now + 10), Some("user_deactivated".into())));
    assert_eq!(revoked("grt_c").await, (Some(now + 10), Some("user_deactivated".into())));
    assert!(refresh_tokens::get(db, "other").await.unwrap().is_none());
    assert!(refresh_tokens::get(db, "rt_c").await.unwrap().is_none());
    assert_eq!(revoked("grt_d").await, (None, None), "another user's grant");
    assert!(refresh_tokens::get(db, "rt_d").await.unwrap().is_some());
    grants::revoke_all(db, grants::Of::Sessions(&[]), "logout", now + 11).await.unwrap();
    assert_eq!(revoked("grt_d").await, (None, None));
    grants::revoke_all(db, grants::Of::Sessions(&["ses_1".into()]), "logout", now + 11).await.unwrap();
    assert_eq!(revoked("grt_d").await, (Some(now + 11), Some("logout".into())));
    assert!(refresh_tokens::get(db, "rt_d").await.unwrap().is_none());
    assert_eq!(revoked("grt_b").await, (Some(now + 10), Some("user_deactivated".into())), "kept");
    assert_eq!(revoked("grt_c").await, (Some(now + 10), Some("user_deactivated".into())), "another session");
}

async fn access_token_revocation_is_idempotent(app: &TestApp) {
    let db = &app.state.db;
    assert!(!grants::access_token_revoked(db, "grt_a.1").await.unwrap());
    grants::revoke_access_token(db, "grt_a.1", 100).await.unwrap();
    grants::revoke_access_token(db, "grt_a.1", 100).await.unwrap();
    assert!(grants::access_token_revoked(db, "grt_a.1").await.unwrap());
    assert!(!grants::access_token_revoked(db, "grt_a.2").await.unwrap());
}

async fn sessions_and_subject(app: &TestApp) {
    let (t, c) = app.tenant("acme", "acme.test", &[]).await;
    let (tid, cid) = (t["id"].as_str().unwrap(), c["id"].as_str().unwrap());
    let db = &app.state.db;
    let now = app.state.clock.now();
    users::insert(db, new_user("usr_1", tid, false)).await.unwrap();
    users::insert(db, new_user("usr_2", tid, false)).await.unwrap();
    let mut idn = new_identity("idn_1", tid, cid, "sub-1", "usr_1");
    idn.groups = "[\"eng\"]".into();
    idn.verified_email = Some("usr_1@acme.test".into());
    idn.verified_email_domain = Some("acme.test".into());
    identities::insert(db, idn).await.unwrap();
    sessions::insert(db, new_session("ses_1", "usr_1", tid, cid, now)).await.unwrap();
    sessions::insert(db, new_session("ses_2", "usr_1", tid, cid, now)).await.unwrap();
    sessions::insert(db, new_session("ses_3", "usr_2", tid, cid, now)).await.unwrap();

    use fedgate::store::sessions::SessionJoin::{Optional, Required};
    let subject = |u: &'static str, s: &'static str, join| sessions::subject(db, u, s, "cli_none", join);
    let row = subject("usr_1", "ses_1", Required).await.unwrap().and_then(|f| f.with_session()).expect("subject");
    assert_eq!((row.user.id.as_str(), row.session.id.as_str(), row.tenant.id.as_str()), ("usr_1", "ses_1", tid));
    assert_eq!(row.connection_type.as_deref(), Some("dev"));
    assert_eq!(row.groups.as_deref(), Some("[\"eng\"]"));
    assert_eq!(row.vouched_email.as_deref(), Some("usr_1@acme.test"));
    assert_eq!(row.vouched_domain.map(|d| d.tenant_id), Some(tid.to_string()));
    assert!(row.scim_groups.is_empty());
    assert_eq!((row.claims.tenant_rules, row.claims.tenant_hook, row.claims.client_rules), (None, None, None));
    assert!(subject("usr_2", "ses_1", Required).await.unwrap().is_none(), "session of another user");
    let row = subject("usr_2", "ses_3", Required).await.unwrap().and_then(|f| f.with_session()).expect("no identity");
    assert_eq!((row.groups, row.vouched_email, row.vouched_domain), (None, None, None));
    // Userinfo's form: the user without the session (another user's, or gone), nothing from it.
    let found = subject("usr_2", "ses_1", Optional).await.unwrap().expect("user without its session");
    assert!(found.session.is_none() && found.connection_type.is_none() && found.vouched_email.is_none());
    assert!(subject("usr_none", "ses_1", Optional).await.unwrap().is_none(), "no such user");
    // The tenant's and the client's claim configuration come with it.
    use fedgate::store::claim_configs::{self, Changes};
    let rules = |r: &str| Changes { rules: Some(Some(r.into())), token_hook: None };
    claim_configs::put(db, tid, rules("{\"t\":1}"), now).await.unwrap();
    claim_configs::put(db, "cli_none", rules("{\"c\":1}"), now).await.unwrap();
    claim_configs::put(db, "cli_other", rules("{\"o\":1}"), now).await.unwrap();
    let row = subject("usr_1", "ses_1", Required).await.unwrap().and_then(|f| f.with_session()).expect("subject");
    assert_eq!(
        (row.claims.tenant_rules.as_deref(), row.claims.client_rules.as_deref()),
        (Some("{\"t\":1}"), Some("{\"c\":1}"))
    );

    assert_eq!(sessions::unrevoked_of_user(db, "usr_1").await.unwrap().len(), 2);
    sessions::revoke(db, &["ses_1".into()], now).await.unwrap();
    let live: Vec<String> = sessions::unrevoked_of_user(db, "usr_1").await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(live, vec!["ses_2".to_string()]);
    assert!(sessions::unrevoked(db, "ses_1").await.unwrap().is_empty());
    assert!(sessions::live_by_cookie(db, "hash-ses_1", now).await.unwrap().is_none(), "revoked");
    assert!(sessions::live_by_cookie(db, "hash-ses_2", now).await.unwrap().is_some());
    assert!(sessions::live_by_cookie(db, "hash-ses_2", now + 3600).await.unwrap().is_none(), "expired");
    // A second revocation keeps the first time.
    sessions::revoke(db, &["ses_1".into()], now + 50).await.unwrap();
    assert_eq!(sessions::get(db, "ses_1").await.unwrap().unwrap().revoked_at, Some(now));
}

async fn revoking_a_users_sessions_ends_their_grants(app: &TestApp) {
    let (t, c) = app.tenant("acme", "acme.test", &[]).await;
    let (tid, cid) = (t["id"].as_str().unwrap(), c["id"].as_str().unwrap());
    let db = &app.state.db;
    let now = app.state.clock.now();
    sessions::insert(db, new_session("ses_1", "usr_1", tid, cid, now)).await.unwrap();
    sessions::insert(db, new_session("ses_2", "usr_1", tid, cid, now)).await.unwrap();
    sessions::insert(db, new_session("ses_old", "usr_1", tid, cid, now)).await.unwrap();
    sessions::insert(db, new_session("ses_9", "usr_9", tid, cid, now)).await.unwrap();
    sessions::revoke(db, &["ses_old".into()], now).await.unwrap();
    grants::insert(db, &new_grant("grt_1", "usr_1", "ses_1", now)).await.unwrap();
    grants::insert(db, &new_grant("grt_2", "usr_1", "ses_2", now)).await.unwrap();
    refresh_tokens::insert(db, "rt_2", "grt_2", now, now + 3600).await.unwrap();
    grants::insert(db, &new_grant("grt_offline", "usr_1", "ses_old", now)).await.unwrap();
    grants::insert(db, &new_grant("grt_9", "usr_9", "ses_9", now)).await.unwrap();
    refresh_tokens::insert(db, "rt_offline", "grt_offline", now, now + 3600).await.unwrap();
    let tx = fedgate::store::write_tx(db).await.unwrap();
    let n = fedgate::directory::sessions::revoke_user_sessions(&tx, &*app.state.rng, "usr_1", "user_deactivated", now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(n, 2, "only the live sessions end");
    for g in ["grt_1", "grt_2", "grt_offline"] {
        let g = grants::get(db, g).await.unwrap().unwrap();
        assert_eq!(g.revoked_reason.as_deref(), Some("user_deactivated"), "{}", g.id);
    }
    assert!(refresh_tokens::get(db, "rt_offline").await.unwrap().is_none());
    assert!(refresh_tokens::get(db, "rt_2").await.unwrap().is_none());
    // One `session.revoked` per ended session, with the session's own data.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let ended = fedgate::store::entities::event::Entity::find()
        .filter(fedgate::store::entities::event::Column::EventType.eq("session.revoked"))
        .order_by_asc(fedgate::store::entities::event::Column::Seq)
        .all(db)
        .await
        .unwrap();
    let mut ids: Vec<String> = ended
        .iter()
        .map(|e| {
            let d: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(
                (e.tenant_id.as_deref(), d["user_id"].as_str(), d["reason"].as_str()),
                (Some(tid), Some("usr_1"), Some("user_deactivated"))
            );
            d["session_id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["ses_1", "ses_2"]);
    assert!(grants::get(db, "grt_9").await.unwrap().unwrap().revoked_at.is_none(), "other users untouched");
    assert!(sessions::unrevoked(db, "ses_9").await.unwrap().len() == 1);
    let tx = fedgate::store::write_tx(db).await.unwrap();
    let n = fedgate::directory::sessions::end_session(&tx, &*app.state.rng, "ses_1", "logout", now).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(n, 0, "an ended session ends once");
}

async fn identity_links_are_unique(app: &TestApp) {
    let db = &app.state.db;
    identities::insert(db, new_identity("idn_1", "org_a", "conn_1", "sub", "usr_1")).await.unwrap();
    let dup = identities::insert(db, new_identity("idn_2", "org_a", "conn_1", "sub", "usr_2")).await;
    assert!(dup.as_ref().is_err_and(fedgate::store::is_unique_violation), "{dup:?}");
    // The same subject at another connection is another person.
    identities::insert(db, new_identity("idn_3", "org_a", "conn_2", "sub", "usr_3")).await.unwrap();
    // The user an identity of subject "sub" at `conn` links to.
    async fn linked_user(db: &fedgate::store::Db, conn: &str) -> Option<String> {
        identities::by_subject_with_user(db, conn, "sub").await.unwrap().map(|(i, _)| i.user_id)
    }
    assert_eq!(linked_user(db, "conn_1").await.as_deref(), Some("usr_1"));
    assert_eq!(linked_user(db, "conn_2").await.as_deref(), Some("usr_3"));
    assert!(linked_user(db, "conn_3").await.is_none());
    assert_eq!(identities::of_user_at(db, "usr_3", "conn_2").await.unwrap().unwrap().id, "idn_3");
    assert!(identities::of_user_at(db, "usr_3", "conn_1").await.unwrap().is_none());
    let rec = identities::LoginRecord {
        groups: "[\"a\"]".into(),
        attributes: None,
        verified_email: Some("x@a.test".into()),
        verified_email_domain: Some("a.test".into()),
        last_login_at: 77,
    };
    let idn = identities::by_subject_with_user(db, "conn_1", "sub").await.unwrap().map(|(i, _)| i).unwrap();
    let updated = identities::record_login(db, idn, rec).await.unwrap();
    assert_eq!((updated.groups.as_str(), updated.attributes.as_str(), updated.last_login_at), ("[\"a\"]", "{}", 77));
    identities::delete(db, "idn_1").await.unwrap();
    assert!(identities::by_subject_with_user(db, "conn_1", "sub").await.unwrap().map(|(i, _)| i).is_none());
    // Once the link is gone, the pair may link again.
    identities::insert(db, new_identity("idn_4", "org_a", "conn_1", "sub", "usr_4")).await.unwrap();
}

async fn user_lookups_are_tenant_scoped(app: &TestApp) {
    let db = &app.state.db;
    users::insert(db, new_user("usr_a", "org_a", true)).await.unwrap();
    users::insert(db, new_user("usr_b", "org_b", true)).await.unwrap();
    users::insert(db, new_user("usr_sso", "org_a", false)).await.unwrap();
    let mut gone = new_user("usr_gone", "org_a", true);
    gone.deleted_at = Some(5);
    gone.external_id = Some("ext-gone".into());
    users::insert(db, gone).await.unwrap();
    let find_ext = |t: &'static str, e: &'static str| async move {
        users::provisioned_by_external_id(db, t, e).await.unwrap().map(|u| u.id)
    };
    assert_eq!(find_ext("org_a", "ext-usr_a").await.as_deref(), Some("usr_a"));
    assert_eq!(find_ext("org_a", "ext-usr_b").await, None, "never across tenants");
    assert_eq!(find_ext("org_b", "ext-usr_b").await.as_deref(), Some("usr_b"));
    assert_eq!(find_ext("org_a", "ext-usr_sso").await, None, "SSO-created users are not provisioned");
    assert_eq!(find_ext("org_a", "ext-gone").await.as_deref(), Some("usr_gone"), "soft-deleted found");
    let by_name = users::live_provisioned_by_user_name(db, "org_a", "usr_a@example.test").await.unwrap();
    assert_eq!(by_name.map(|u| u.id).as_deref(), Some("usr_a"));
    assert!(users::live_provisioned_by_user_name(db, "org_b", "usr_a@example.test").await.unwrap().is_none());
    assert!(users::live_provisioned_by_user_name(db, "org_a", "usr_gone@example.test").await.unwrap().is_none());
    let by_email = users::provisioned_by_email(db, "org_a", "usr_gone@example.test").await.unwrap();
    assert_eq!(by_email.map(|u| u.id).as_deref(), Some("usr_gone"));
    assert!(users::provisioned_by_email(db, "org_b", "usr_a@example.test").await.unwrap().is_none());
    assert!(users::is_live(db, "usr_a").await.unwrap());
    assert!(!users::is_live(db, "usr_gone").await.unwrap());
    assert!(!users::is_live(db, "usr_none").await.unwrap());
    let p = users::UpstreamProfile { email: Some(("New@Example.test".into(), true)), ..Default::default() };
    let u = users::update_profile(db, users::get(db, "usr_sso").await.unwrap().unwrap(), p, 9).await.unwrap();
    assert_eq!(
        (u.email.as_deref(), u.email_lower.as_deref(), u.email_verified, u.name, u.updated_at),
        (Some("New@Example.test"), Some("new@example.test"), true, None, 9)
    );
    // An identity with its user in one query; a dangling link comes back without one.
    identities::insert(db, new_identity("idn_sso", "org_a", "conn_s", "sub-sso", "usr_sso")).await.unwrap();
    identities::insert(db, new_identity("idn_dangling", "org_a", "conn_s", "sub-gone", "usr_missing")).await.unwrap();
    let (idn, u) = identities::by_subject_with_user(db, "conn_s", "sub-sso").await.unwrap().expect("linked");
    assert_eq!((idn.id.as_str(), u.map(|u| u.email)), ("idn_sso", Some(Some("New@Example.test".to_string()))));
    let (idn, u) = identities::by_subject_with_user(db, "conn_s", "sub-gone").await.unwrap().expect("dangling");
    assert_eq!((idn.id.as_str(), u), ("idn_dangling", None));
    assert!(identities::by_subject_with_user(db, "conn_x", "sub-sso").await.unwrap().is_none());
}

fn key(kid: &str, state: &str, created_at: i64, expires_at: Option<i64>) -> signing_key::Model {
    signing_key::Model {
        kid: kid.into(),
        alg: "ES256".into(),
        state: state.into(),
        private_enc: "x".into(),
        public_jwk: "{}".into(),
        created_at,
        activated_at: (state == "active").then_some(created_at),
        retired_at: None,
        expires_at,
    }
}

async fn signing_key_rows_and_rotation_order(app: &TestApp) {
    let db = &app.state.db;
    // The ring as started: one active and one next key per algorithm.
    let before = signing_keys::all(db).await.unwrap();
    let es: Vec<_> = before.iter().filter(|k| k.alg == "ES256").collect();
    let active = es.iter().find(|k| k.state == "active").unwrap().kid.clone();
    let next = es.iter().find(|k| k.state == "next").unwrap().kid.clone();
    // A forced rotation activates the published next key (never a new one), retires the old
    // active key with an expiry, and publishes a new next key.
    let report = app.state.keys.rotate(true).await.unwrap();
    assert!(report.activated.contains(&next), "{report:?}");
    assert!(report.retired.contains(&active), "{report:?}");
    let after = signing_keys::all(db).await.unwrap();
    let state_of = |kid: &str| after.iter().find(|k| k.kid == kid).unwrap().clone();
    assert_eq!(state_of(&next).state, "active");
    let old = state_of(&active);
    assert_eq!(old.state, "retired");
    assert!(old.retired_at.is_some() && old.expires_at > old.retired_at);
    let new_next: Vec<_> = after.iter().filter(|k| k.alg == "ES256" && k.state == "next").collect();
    assert_eq!(new_next.len(), 1);
    assert!(new_next[0].kid != active && new_next[0].kid != next);
    // Row-level contracts: expired keys are deleted, others stay.
    signing_keys::insert(db, key("k-exp", "retired", 1, Some(10))).await.unwrap();
    signing_keys::insert(db, key("k-later", "retired", 1, Some(1_000_000_000_000))).await.unwrap();
    assert_eq!(signing_keys::delete_expired(db, 10).await.unwrap(), 1);
    let kids: Vec<String> = signing_keys::all(db).await.unwrap().into_iter().map(|k| k.kid).collect();
    assert!(!kids.contains(&"k-exp".to_string()) && kids.contains(&"k-later".to_string()));
    signing_keys::insert(db, key("k-n", "next", 5, None)).await.unwrap();
    signing_keys::activate(db, key("k-n", "next", 5, None), 20).await.unwrap();
    signing_keys::retire(db, key("k-later", "active", 1, None), 30, 40).await.unwrap();
    let all = signing_keys::all(db).await.unwrap();
    let n = all.iter().find(|k| k.kid == "k-n").unwrap();
    assert_eq!((n.state.as_str(), n.activated_at), ("active", Some(20)));
    let r = all.iter().find(|k| k.kid == "k-later").unwrap();
    assert_eq!((r.state.as_str(), r.retired_at, r.expires_at), ("retired", Some(30), Some(40)));
}

/// A login that brings the stored profile again writes nothing (updated_at stays); a changed
/// value, the address's trust included, is written.
async fn unchanged_profile_is_not_rewritten(app: &TestApp) {
    let db = &app.state.db;
    users::insert(db, new_user("usr_p", "org_p", false)).await.unwrap();
    let stored = || async { users::get(db, "usr_p").await.unwrap().expect("user") };
    let same = users::UpstreamProfile {
        email: Some(("usr_p@example.test".into(), false)),
        name: None,
        given_name: None,
        family_name: None,
    };
    let u = users::update_profile(db, stored().await, same.clone(), 50).await.unwrap();
    assert_eq!((u.updated_at, stored().await.updated_at), (1, 1), "nothing new: no write");
    let named = users::UpstreamProfile { name: Some("Pat".into()), ..same.clone() };
    let u = users::update_profile(db, stored().await, named.clone(), 60).await.unwrap();
    assert_eq!((u.name.as_deref(), stored().await.updated_at), (Some("Pat"), 60));
    // The same name again: unchanged; now vouched for: written.
    users::update_profile(db, stored().await, named.clone(), 70).await.unwrap();
    assert_eq!(stored().await.updated_at, 60);
    let vouched = users::UpstreamProfile { email: Some(("usr_p@example.test".into(), true)), ..named };
    users::update_profile(db, stored().await, vouched, 80).await.unwrap();
    let u = stored().await;
    assert_eq!((u.email_verified, u.updated_at), (true, 80));
    // Another address (case counts for the stored address).
    let moved = users::UpstreamProfile { email: Some(("Usr_P@Example.test".into(), true)), ..same };
    users::update_profile(db, u, moved, 90).await.unwrap();
    let u = stored().await;
    assert_eq!(
        (u.email.as_deref(), u.email_lower.as_deref(), u.updated_at),
        (Some("Usr_P@Example.test"), Some("usr_p@example.test"), 90)
    );
}

/// A login finishes once: the session, the code and the completion are one statement on
/// PostgreSQL, and when the login was already finished nothing of the second attempt is kept
/// once its transaction is dropped.
/// Inserts a pending login `id` (no tenant, no connection yet).
async fn pending_login(db: &fedgate::store::Db, id: &fedgate::ids::LoginId, now: i64) {
    use fedgate::store::logins;
    let login = logins::NewLogin {
        id: id.clone(),
        client_id: "cli_1".into(),
        redirect_uri: "https://app.test/cb".into(),
        scope: "openid".into(),
        state: None,
        nonce: None,
        code_challenge: None,
        prompt: None,
        max_age: None,
        acr_values: None,
        login_hint: None,
        tenant_id: None,
        connection_id: None,
        binding_hash: "b".into(),
        created_at: now,
        expires_at: now + 600,
    };
    logins::insert(db, login).await.unwrap();
}

async fn a_login_completes_once_with_its_session_and_code(app: &TestApp) {
    use fedgate::ids::LoginId;
    use fedgate::store::logins;
    use sea_orm::{EntityTrait, PaginatorTrait};
    let db = &app.state.db;
    let now = 1_000;
    let id = LoginId::new(&fedgate::clock::SystemRng);
    pending_login(db, &id, now).await;
    let session = |sid: &str| sessions::NewSession {
        id: sid.into(),
        cookie_hash: format!("cookie-{sid}"),
        user_id: "usr_1".into(),
        tenant_id: "org_1".into(),
        connection_id: "conn_1".into(),
        auth_time: now,
        amr: vec![],
        acr: "urn:fedgate:acr:basic".into(),
        created_at: now,
        expires_at: now + 3600,
    };
    let code = |hash: &str, sid: &str| new_code(hash, id.as_str(), sid, now);
    // The login's trace, appended with the completion (in its statement on PostgreSQL).
    let row = logins::get(db, &id).await.unwrap().unwrap();
    fedgate::store::traces::insert(db, fedgate::traces::routed_row(&row, None, None, &[], now * 1000)).await.unwrap();
    let step = |name: &str| fedgate::traces::Step {
        step: name.into(),
        at_ms: now * 1000,
        duration_ms: 0,
        detail: serde_json::Value::Null,
    };
    let append = |name: &str| {
        let completed = fedgate::traces::Outcome::Completed;
        fedgate::traces::append_of(&row, Some("org_1"), Some("conn_1"), &[step(name)], &completed, now * 1000)
    };
    let rng = &*app.state.rng;
    let succeeded = |n: &str| fedgate::store::events::NewEvent {
        tenant_id: Some("org_1".into()),
        event_type: "login.succeeded".into(),
        data: serde_json::json!({ "n": n }),
    };
    let completing = |sid: &str, hash: &str, name: &str| logins::Completing {
        session: session(sid),
        code: Some(code(hash, sid)),
        trace: append(name),
        event: Some(succeeded(name)),
    };
    // A webhook endpoint of the tenant that wants the event, and one that does not.
    use fedgate::store::entities::{delivery, event};
    let endpoint = |id: &str, types: &str| fedgate::store::webhooks::NewWebhook {
        id: id.into(),
        url: "https://hooks.test/x".into(),
        secret_enc: "x".into(),
        event_types: types.into(),
        tenant_id: Some("org_1".into()),
        now,
    };
    fedgate::store::webhooks::insert(db, endpoint("whk_login", "[\"login.*\"]")).await.unwrap();
    fedgate::store::webhooks::insert(db, endpoint("whk_users", "[\"user.created\"]")).await.unwrap();
    let tx = fedgate::store::write_tx(db).await.unwrap();
    let done = logins::complete_with_session(&tx, rng, &id, now, completing("ses_a", "ca", "a")).await.unwrap();
    assert!(done.done && done.traced, "{done:?}");
    let event_id = done.event.expect("the event is written with the completion");
    tx.commit().await.unwrap();
    let events = event::Entity::find().all(db).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].id.as_str(), events[0].event_type.as_str()), (event_id.as_str(), "login.succeeded"));
    assert_eq!(events[0].tenant_id.as_deref(), Some("org_1"));
    assert_eq!(events[0].occurred_at, now);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&events[0].data).unwrap(), serde_json::json!({"n": "a"}));
    let deliveries = delivery::Entity::find().all(db).await.unwrap();
    assert_eq!(deliveries.len(), 1, "only the endpoint that wants logins");
    assert_eq!(deliveries[0].target_id, "whk_login");
    assert_eq!((deliveries[0].event_id.as_deref(), deliveries[0].event_seq), (Some(event_id.as_str()), events[0].seq));
    let tx = fedgate::store::write_tx(db).await.unwrap();
    let again = logins::complete_with_session(&tx, rng, &id, now, completing("ses_b", "cb", "b"));
    assert_eq!(
        again.await.unwrap(),
        logins::Completion { done: false, traced: false, event: None },
        "a finished login does not finish again, nor appends to its trace, nor emits"
    );
    drop(tx);
    assert_eq!(event::Entity::find().count(db).await.unwrap(), 1);
    assert_eq!(delivery::Entity::find().count(db).await.unwrap(), 1);
    let trace = fedgate::store::traces::get(db, id.as_str()).await.unwrap().unwrap();
    assert!(trace.steps.contains("\"a\""), "{}", trace.steps);
    assert!(!trace.steps.contains("\"b\""), "{}", trace.steps);
    assert_eq!(trace.status, "completed");
    use fedgate::store::entities::{auth_code, session as session_e};
    assert_eq!(session_e::Entity::find().count(db).await.unwrap(), 1);
    assert!(session_e::Entity::find_by_id("ses_a".to_string()).one(db).await.unwrap().is_some());
    assert_eq!(auth_code::Entity::find().count(db).await.unwrap(), 1);
    assert!(auth_code::Entity::find_by_id("ca".to_string()).one(db).await.unwrap().is_some());
    let login = logins::get(db, &id).await.unwrap().unwrap();
    assert_eq!(login.completed_at, Some(now));
}

/// The SAML ACS keeps an accepted answer with `keep_answer` (one statement on PostgreSQL, up to
/// three on SQLite): a used key changes nothing, a stale connector state writes no answer but
/// uses the key, and a finished login takes none.
async fn an_acs_answer_is_kept_once(app: &TestApp) {
    use fedgate::ids::LoginId;
    use fedgate::store::logins::{self, AnswerKept};
    let db = &app.state.db;
    let now = 1_000;
    let id = LoginId::new(&fedgate::clock::SystemRng);
    pending_login(db, &id, now).await;
    let state = || async { logins::get(db, &id).await.unwrap().unwrap().connector_state };
    let keep = |key: &'static str, expected: Option<&'static str>, new: &'static str| {
        let id = id.clone();
        async move {
            logins::keep_answer(db, "conn_1", Some((key, now + 300)), now, &id, expected, new, None).await.unwrap()
        }
    };
    let untraced = AnswerKept::Kept { traced: false };
    // From no state (NULL) to the first answer.
    assert_eq!(keep("_a1", None, "s1").await, untraced);
    assert_eq!(state().await.as_deref(), Some("s1"));
    // The same assertion again: refused, nothing written.
    assert_eq!(keep("_a1", Some("s1"), "s2").await, AnswerKept::Replayed);
    assert_eq!(state().await.as_deref(), Some("s1"));
    // The same key under another connection is another key.
    assert_eq!(
        logins::keep_answer(db, "conn_2", Some(("_a1", now + 300)), now, &id, Some("s1"), "s2", None).await.unwrap(),
        untraced
    );
    // A fresh assertion, but the login changed since it was read (a concurrent answer): the
    // login is not written, and the assertion is used all the same.
    assert_eq!(keep("_a2", Some("s1"), "s3").await, AnswerKept::Raced);
    assert_eq!(state().await.as_deref(), Some("s2"));
    assert_eq!(keep("_a2", Some("s2"), "s3").await, AnswerKept::Replayed);
    // With the trace's append (in the same statement on PostgreSQL): only when the login took
    // the answer.
    let login = logins::get(db, &id).await.unwrap().unwrap();
    let trace_row = fedgate::traces::routed_row(&login, None, Some("conn_1"), &[], now * 1000);
    fedgate::store::traces::insert(db, trace_row).await.unwrap();
    let step = |name: &str| fedgate::traces::Step {
        step: name.into(),
        at_ms: now * 1000,
        duration_ms: 0,
        detail: serde_json::Value::Null,
    };
    let steps_of = || async { fedgate::store::traces::get(db, id.as_str()).await.unwrap().unwrap().steps };
    let append = |name: &str| fedgate::traces::pending_append(&login, Some("conn_1"), &[step(name)], now * 1000);
    let raced =
        logins::keep_answer(db, "conn_1", Some(("_a3", now + 300)), now, &id, Some("s1"), "s4", append("lost")).await;
    assert_eq!(raced.unwrap(), AnswerKept::Raced);
    let kept = logins::keep_answer(db, "conn_1", Some(("_a4", now + 300)), now, &id, Some("s2"), "s4", append("kept"));
    assert_eq!(kept.await.unwrap(), AnswerKept::Kept { traced: true });
    let steps = steps_of().await;
    assert!(!steps.contains("\"lost\""), "{steps}");
    assert!(steps.contains("\"kept\""), "{steps}");
    // A finished login takes no answer.
    assert!(logins::complete(db, &id, now).await.unwrap());
    assert_eq!(keep("_a5", None, "s5").await, AnswerKept::Raced);
    assert_eq!(state().await, None);
}

/// [`codes::redeem`]: the whole exchange in one statement on PostgreSQL, only when every check
/// holds; any failed check writes nothing (the code stays usable for the transactional path to
/// judge). Always `None` on SQLite. Two redemptions of one code at once: one wins.
/// A tenant with an active user `usr_1` (session `ses_1`) and a deactivated `usr_off` (session
/// `ses_off`): the tenant's and its connection's ids, and the time.
async fn active_and_deactivated(app: &TestApp) -> (String, String, i64) {
    let (t, c) = app.tenant("acme", "acme.test", &[]).await;
    let (tid, cid) = (t["id"].as_str().unwrap().to_string(), c["id"].as_str().unwrap().to_string());
    let db = &app.state.db;
    let now = app.state.clock.now();
    users::insert(db, new_user("usr_1", &tid, false)).await.unwrap();
    let mut gone = new_user("usr_off", &tid, false);
    gone.active = false;
    users::insert(db, gone).await.unwrap();
    sessions::insert(db, new_session("ses_1", "usr_1", &tid, &cid, now)).await.unwrap();
    sessions::insert(db, new_session("ses_off", "usr_off", &tid, &cid, now)).await.unwrap();
    (tid, cid, now)
}

async fn a_code_is_redeemed_in_one_statement(app: &TestApp) {
    let (tid, cid, now) = active_and_deactivated(app).await;
    let (tid, cid) = (tid.as_str(), cid.as_str());
    let db = &app.state.db;
    sessions::insert(db, new_session("ses_rev", "usr_1", tid, cid, now)).await.unwrap();
    sessions::revoke(db, &["ses_rev".into()], now).await.unwrap();
    let mut code = new_code("h_ok", "lgn", "ses_1", now);
    code.code_challenge = Some("chal".into());
    codes::insert(db, code).await.unwrap();
    codes::insert(db, new_code("h_plain", "lgn", "ses_1", now)).await.unwrap();
    codes::insert(db, new_code("h_rev", "lgn", "ses_rev", now)).await.unwrap();
    let mut off = new_code("h_off", "lgn", "ses_off", now);
    off.user_id = "usr_off".into();
    codes::insert(db, off).await.unwrap();
    let ask = |hash: &'static str, grant: &'static str| codes::Redeem {
        code_hash: hash,
        client_id: "cli_x",
        redirect_uri: "https://app/cb",
        challenge: Some("chal"),
        now: now + 1,
        grant_id: grant,
        grant_expires_at: now + 3600,
        refresh_hash: Some("rt_hash"),
    };
    let unused = |hash: &'static str| async move { codes::get(db, hash).await.unwrap().unwrap().used_at.is_none() };
    let pg = fedgate::store::writes_in_one_statement(db);
    // Each failed check: nothing redeemed, nothing written.
    let refused = [
        codes::Redeem { client_id: "cli_other", ..ask("h_ok", "grt_f1") },
        codes::Redeem { redirect_uri: "https://app/cb2", ..ask("h_ok", "grt_f2") },
        codes::Redeem { challenge: Some("other"), ..ask("h_ok", "grt_f3") },
        codes::Redeem { challenge: None, ..ask("h_ok", "grt_f4") },
        codes::Redeem { now: now + 60, ..ask("h_ok", "grt_f5") },
        ask("h_plain", "grt_f6"),
        codes::Redeem { challenge: None, ..ask("h_rev", "grt_f7") },
        codes::Redeem { challenge: None, ..ask("h_off", "grt_f8") },
        ask("h_unknown", "grt_f9"),
    ];
    for (i, r) in refused.iter().enumerate() {
        assert!(codes::redeem(db, r).await.unwrap().is_none(), "refused case {i}");
        assert!(grants::get(db, r.grant_id).await.unwrap().is_none(), "case {i} opened no grant");
    }
    for h in ["h_ok", "h_plain", "h_rev", "h_off"] {
        assert!(unused(h).await, "{h} stays unused");
    }
    assert!(refresh_tokens::get(db, "rt_hash").await.unwrap().is_none());
    let done = codes::redeem(db, &ask("h_ok", "grt_1")).await.unwrap();
    if !pg {
        assert!(done.is_none(), "SQLite redeems nothing in one statement");
        assert!(unused("h_ok").await);
        return;
    }
    let done = done.expect("every check holds");
    assert_eq!((done.code.used_at, done.code.grant_id.as_deref()), (Some(now + 1), Some("grt_1")));
    let g = grants::get(db, "grt_1").await.unwrap().expect("the grant is stored");
    assert_eq!(g, done.grant);
    assert_eq!(
        (g.client_id.as_str(), g.user_id.as_str(), g.tenant_id.as_str(), g.session_id.as_str()),
        ("cli_x", "usr_1", tid, "ses_1")
    );
    assert_eq!((g.scope.as_str(), g.auth_time, g.created_at, g.expires_at), ("openid", now, now + 1, now + 3600));
    let rt = refresh_tokens::get(db, "rt_hash").await.unwrap().expect("its first refresh token");
    assert_eq!((rt.grant_id.as_str(), rt.created_at, rt.expires_at, rt.used_at), ("grt_1", now + 1, now + 3600, None));
    let subject = done.subject.with_session().expect("with its session");
    assert_eq!(
        (subject.user.id.as_str(), subject.session.id.as_str(), subject.tenant.id.as_str()),
        ("usr_1", "ses_1", tid)
    );
    // Used: a second redemption finds nothing and writes nothing.
    assert!(codes::redeem(db, &ask("h_ok", "grt_2")).await.unwrap().is_none());
    assert!(grants::get(db, "grt_2").await.unwrap().is_none());
    // No refresh token asked: none stored.
    let plain = codes::Redeem { challenge: None, refresh_hash: None, ..ask("h_plain", "grt_3") };
    assert!(codes::redeem(db, &plain).await.unwrap().is_some());
    assert!(grants::get(db, "grt_3").await.unwrap().is_some());
    // Two at once: one wins, one grant.
    let mut c2 = new_code("h_race", "lgn", "ses_1", now);
    c2.code_challenge = Some("chal".into());
    codes::insert(db, c2).await.unwrap();
    let (ra, rb) = (
        codes::Redeem { refresh_hash: Some("rt_a"), ..ask("h_race", "grt_a") },
        codes::Redeem { refresh_hash: Some("rt_b"), ..ask("h_race", "grt_b") },
    );
    let (a, b) = tokio::join!(codes::redeem(db, &ra), codes::redeem(db, &rb));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() != b.is_some(), "exactly one redemption wins");
    let won = if a.is_some() { "grt_a" } else { "grt_b" };
    let lost = if a.is_some() { "grt_b" } else { "grt_a" };
    assert_eq!(codes::get(db, "h_race").await.unwrap().unwrap().grant_id.as_deref(), Some(won));
    assert!(grants::get(db, lost).await.unwrap().is_none());
}

/// [`refresh_tokens::rotate`]: the whole refresh in one statement on PostgreSQL, only when every
/// check holds; a failed check writes nothing. Always `None` on SQLite. Two rotations of one
/// token at once: one wins.
async fn a_refresh_is_rotated_in_one_statement(app: &TestApp) {
    let (tid, _, now) = active_and_deactivated(app).await;
    let tid = tid.as_str();
    let db = &app.state.db;
    let grant = |id: &str, user: &str, session: &str| {
        let mut g = new_grant(id, user, session, now);
        g.tenant_id = tid.into();
        g
    };
    grants::insert(db, &grant("grt_1", "usr_1", "ses_1")).await.unwrap();
    grants::insert(db, &grant("grt_off", "usr_off", "ses_off")).await.unwrap();
    grants::insert(db, &grant("grt_rev", "usr_1", "ses_1")).await.unwrap();
    grants::revoke(db, "grt_rev", "logout", now).await.unwrap();
    let mut short = grant("grt_short", "usr_1", "ses_1");
    short.expires_at = now + 10;
    grants::insert(db, &short).await.unwrap();
    refresh_tokens::insert(db, "rt1", "grt_1", now, now + 3600).await.unwrap();
    refresh_tokens::insert(db, "rt_off", "grt_off", now, now + 3600).await.unwrap();
    refresh_tokens::insert(db, "rt_rev", "grt_rev", now, now + 3600).await.unwrap();
    refresh_tokens::insert(db, "rt_short", "grt_short", now, now + 3600).await.unwrap();
    let pg = fedgate::store::writes_in_one_statement(db);
    let refused = [
        ("rt1", "cli_other", now + 1),
        ("rt1", "cli_x", now + 3600),
        ("rt_off", "cli_x", now + 1),
        ("rt_rev", "cli_x", now + 1),
        ("rt_short", "cli_x", now + 10),
        ("rt_none", "cli_x", now + 1),
    ];
    for (i, (token, client, at)) in refused.into_iter().enumerate() {
        assert!(refresh_tokens::rotate(db, token, client, "next", at).await.unwrap().is_none(), "refused case {i}");
    }
    assert!(refresh_tokens::get(db, "next").await.unwrap().is_none(), "nothing inserted");
    for token in ["rt1", "rt_off", "rt_short"] {
        assert_eq!(refresh_tokens::get(db, token).await.unwrap().unwrap().used_at, None, "{token} unused");
    }
    let done = refresh_tokens::rotate(db, "rt1", "cli_x", "rt2", now + 1).await.unwrap();
    if !pg {
        assert!(done.is_none(), "SQLite rotates nothing in one statement");
        return;
    }
    let done = done.expect("every check holds");
    assert_eq!((done.token.token_hash.as_str(), done.token.used_at), ("rt1", Some(now + 1)));
    assert_eq!(done.grant, grants::get(db, "grt_1").await.unwrap().unwrap());
    let next = refresh_tokens::get(db, "rt2").await.unwrap().expect("the next token");
    assert_eq!(
        (next.grant_id.as_str(), next.created_at, next.expires_at, next.used_at),
        ("grt_1", now + 1, now + 3600, None)
    );
    let subject = done.subject.with_session().expect("with its session");
    assert_eq!((subject.user.id.as_str(), subject.tenant.id.as_str()), ("usr_1", tid));
    // Spent: a second rotation finds nothing (the caller's transactional path sees the reuse).
    assert!(refresh_tokens::rotate(db, "rt1", "cli_x", "rt3", now + 2).await.unwrap().is_none());
    assert!(refresh_tokens::get(db, "rt3").await.unwrap().is_none());
    // Two at once: one wins.
    let (a, b) = tokio::join!(
        refresh_tokens::rotate(db, "rt2", "cli_x", "rt_a", now + 3),
        refresh_tokens::rotate(db, "rt2", "cli_x", "rt_b", now + 3),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() != b.is_some(), "exactly one rotation wins");
    let stored = [refresh_tokens::get(db, "rt_a").await.unwrap(), refresh_tokens::get(db, "rt_b").await.unwrap()];
    assert_eq!(stored.iter().filter(|t| t.is_some()).count(), 1, "one successor");
}

both!(
    a_code_is_redeemed_in_one_statement,
    a_refresh_is_rotated_in_one_statement,
    a_login_completes_once_with_its_session_and_code,
    an_acs_answer_is_kept_once,
    unchanged_profile_is_not_rewritten,
    codes_are_single_use,
    refresh_rotation_and_family_revoke,
    access_token_revocation_is_idempotent,
    sessions_and_subject,
    revoking_a_users_sessions_ends_their_grants,
    identity_links_are_unique,
    user_lookups_are_tenant_scoped,
    signing_key_rows_and_rotation_order,
);
