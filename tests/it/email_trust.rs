//! Email trust end to end over HTTP, on SQLite and PostgreSQL: every path that can set a user's
//! email (SSO just in time, SSO refresh, SCIM create/adopt, SCIM PUT, SCIM PATCH in Okta's and
//! Entra's shapes, linking SCIM-first users at their first login) never makes a token say
//! `email_verified: true` for an address fedgate does not trust: only an address an IdP vouched
//! for, in a domain of the tenant, is verified. Also: externalId linking is scoped to a connection.
use crate::both;
use crate::common::*;
use crate::scim::{Scim, USER};
use fedgate::store::entities::{event, identity, user};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

const CEO: &str = "ceo@victim.example";

/// A confidential client, and what a login through it gave.
struct Signed {
    claims: Value,
    userinfo: Value,
    refresh_token: String,
}

/// A complete dev login of `email` in `slug` (through `conn` when given): the ID token's claims,
/// userinfo's answer and the refresh token.
async fn sign_in(app: &TestApp, cid: &str, secret: &str, slug: &str, email: &str, conn: Option<&str>) -> Signed {
    let mut extra = vec![("organization", slug), ("login_hint", email)];
    if let Some(c) = conn {
        extra.push(("connection", c));
    }
    let code = code_for(app, &browser(), cid, &extra).await;
    let (s, tok) = exchange(app, cid, Some(secret), &code).await;
    assert_eq!(s, 200, "{tok}");
    signed(app, cid, &tok).await
}

async fn signed(app: &TestApp, cid: &str, tok: &Value) -> Signed {
    let claims = verify_jwt(app, tok["id_token"].as_str().unwrap(), cid).await;
    let r = app.http.get(app.url("/oauth2/userinfo")).bearer_auth(tok["access_token"].as_str().unwrap()).send().await;
    let userinfo: Value = r.unwrap().json().await.unwrap();
    Signed { claims, userinfo, refresh_token: tok["refresh_token"].as_str().unwrap().to_string() }
}

async fn refreshed(app: &TestApp, cid: &str, secret: &str, rt: &str) -> Signed {
    let (s, tok) = refresh(app, cid, Some(secret), rt).await;
    assert_eq!(s, 200, "{tok}");
    signed(app, cid, &tok).await
}

impl Signed {
    /// Neither the ID token nor userinfo calls `email` verified.
    fn never_verifies(&self, email: &str) {
        for (what, v) in [("id token", &self.claims), ("userinfo", &self.userinfo)] {
            assert!(!(v["email"] == email && v["email_verified"] == true), "{what} calls {email} verified: {v}");
        }
    }
    /// The ID token and userinfo both say exactly this email and verification.
    fn says(&self, email: &str, verified: bool) {
        for (what, v) in [("id token", &self.claims), ("userinfo", &self.userinfo)] {
            assert_eq!(
                (v["email"].as_str(), v["email_verified"].as_bool()),
                (Some(email), Some(verified)),
                "{what}: {v}"
            );
        }
    }
    fn sub(&self) -> String {
        self.claims["sub"].as_str().unwrap().to_string()
    }
}

async fn set_settings(app: &TestApp, slug: &str, settings: Value) {
    let (s, t) = app.admin(Method::PATCH, &format!("/tenants/{slug}"), Some(json!({ "settings": settings }))).await;
    assert_eq!(s, 200, "{t}");
}

async fn user_row(app: &TestApp, id: &str) -> user::Model {
    user::Entity::find_by_id(id.to_string()).one(&app.state.db).await.unwrap().unwrap()
}

/// The data of the newest `user.*` event of a user.
async fn last_user_event(app: &TestApp, id: &str) -> Value {
    let rows = event::Entity::find().order_by_desc(event::Column::Seq).all(&app.state.db).await.unwrap();
    rows.into_iter()
        .filter(|e| e.event_type.starts_with("user."))
        .map(|e| serde_json::from_str::<Value>(&e.data).unwrap())
        .find(|d| d["user_id"] == id)
        .unwrap()
}

/// The reported attack, exactly: a person signs in through tenant A's connection as
/// alice@a.example; tenant A's SCIM client then POSTs a User with that userName and the email
/// ceo@victim.example. SCIM adopts the SSO user and replaces its profile email, but no token ever
/// calls ceo@victim.example verified: the login, the refresh of the old grant and userinfo all
/// keep to the address the IdP vouched for.
async fn scim_adoption_cannot_verify_a_foreign_address(app: &TestApp) {
    let s = Scim::setup(app, "tenant-a", "a.example").await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let sec = secret.as_deref().unwrap();
    let before = sign_in(app, &cid, sec, "tenant-a", "alice@a.example", None).await;
    before.says("alice@a.example", true);
    let (st, u) = s
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "alice@a.example",
                   "emails": [{"value": CEO, "primary": true}], "active": true}),
        )
        .await;
    assert_eq!(st, 201, "{u}");
    assert_eq!(u["id"], before.sub().as_str(), "SCIM adopted the SSO user");
    assert_eq!(u["emails"][0]["value"], CEO, "SCIM's email stays profile data");
    let row = user_row(app, &before.sub()).await;
    assert_eq!((row.email.as_deref(), row.email_verified), (Some(CEO), false));
    let ev = last_user_event(app, &before.sub()).await;
    assert_eq!((ev["email"].as_str(), ev["email_verified"].as_bool()), (Some(CEO), Some(false)), "{ev}");
    // The next login, the refresh of the grant from before, userinfo: never ceo@ verified.
    let after = sign_in(app, &cid, sec, "tenant-a", "alice@a.example", None).await;
    assert_eq!(after.sub(), before.sub());
    after.never_verifies(CEO);
    after.says("alice@a.example", true);
    let r = refreshed(app, &cid, sec, &before.refresh_token).await;
    r.never_verifies(CEO);
    r.says("alice@a.example", true);
}

/// SCIM first, SSO second: the first login links to the provisioned user by the verified email;
/// the token carries the address the IdP vouched for, not SCIM's. A person whose IdP does not
/// vouch a trusted address gets SCIM's email in tokens, always unverified.
async fn scim_first_then_sso(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let sec = secret.as_deref().unwrap();
    let bob = s.user("bob@acme.test", json!({"emails": [{"value": CEO, "type": "work", "primary": true}]})).await;
    let t = sign_in(app, &cid, sec, "acme", "bob@acme.test", None).await;
    assert_eq!(t.sub(), bob, "linked by userName");
    t.never_verifies(CEO);
    t.says("bob@acme.test", true);
    // A soft-deleted user restored by a POST with its externalId (SCIM's third write path).
    let rae = s.user("rae@acme.test", json!({"externalId": "ext-rae"})).await;
    assert_eq!(sign_in(app, &cid, sec, "acme", "rae@acme.test", None).await.sub(), rae);
    assert_eq!(s.delete(&format!("/Users/{rae}")).await, 204);
    let (st, u) = s
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "rae@acme.test", "externalId": "ext-rae",
                   "emails": [{"value": CEO, "primary": true}]}),
        )
        .await;
    assert_eq!((st, u["id"].as_str()), (201, Some(rae.as_str())), "{u}");
    assert!(!user_row(app, &rae).await.email_verified);
    let t = sign_in(app, &cid, sec, "acme", "rae@acme.test", None).await;
    t.never_verifies(CEO);
    t.says("rae@acme.test", true);
    // An address outside the tenant's domains, let in by allow_email_outside_domains: the dev
    // IdP vouches for it, fedgate does not. It neither links by email (the SCIM user whose
    // userName it is keeps its own identity) nor is verified in tokens.
    set_settings(app, "acme", json!({"allow_email_outside_domains": true})).await;
    let victim = s.user(CEO, json!({})).await;
    let t = sign_in(app, &cid, sec, "acme", CEO, None).await;
    assert_ne!(t.sub(), victim, "an untrusted address must not take over the provisioned user");
    t.says(CEO, false);
    // Linked by externalId through an IdP that vouches for nothing fedgate trusts: SCIM's email
    // is in the token, unverified.
    set_settings(app, "acme", json!({"allow_email_outside_domains": true, "scim_link": "external_id"})).await;
    let zed = s
        .user("zed", json!({"externalId": "dev|zed@elsewhere.example", "emails": [{"value": CEO, "primary": true}]}))
        .await;
    let t = sign_in(app, &cid, sec, "acme", "zed@elsewhere.example", None).await;
    assert_eq!(t.sub(), zed, "linked by externalId");
    t.says(CEO, false);
}

/// SCIM PUT and PATCH (Okta's path-less replace, Entra's filtered path) change the profile email
/// of a linked user; tokens stay with the IdP's vouched address, refreshes included.
async fn scim_put_and_patch(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let sec = secret.as_deref().unwrap();
    let id = s.user("pat@acme.test", json!({})).await;
    let first = sign_in(app, &cid, sec, "acme", "pat@acme.test", None).await;
    assert_eq!(first.sub(), id);
    first.says("pat@acme.test", true);
    let mut rt = first.refresh_token.clone();
    let put = json!({"schemas": [USER], "userName": "pat@acme.test", "active": true,
                     "emails": [{"value": CEO, "type": "work", "primary": true}]});
    let okta = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "value": {"emails": [{"value": "okta-ceo@victim.example", "type": "work", "primary": true}]}}]});
    let entra = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "entra-ceo@victim.example"}]});
    for (method, body, email) in [
        (Method::PUT, put, CEO),
        (Method::PATCH, okta, "okta-ceo@victim.example"),
        (Method::PATCH, entra, "entra-ceo@victim.example"),
    ] {
        let (st, u) = s.req(method.clone(), &format!("/Users/{id}"), Some(body)).await;
        assert_eq!(st, 200, "{method}: {u}");
        assert_eq!(u["emails"][0]["value"], email, "{method}: {u}");
        let row = user_row(app, &id).await;
        assert_eq!((row.email.as_deref(), row.email_verified), (Some(email), false), "{method}");
        let ev = last_user_event(app, &id).await;
        assert_eq!((ev["email"].as_str(), ev["email_verified"].as_bool()), (Some(email), Some(false)), "{ev}");
        let r = refreshed(app, &cid, sec, &rt).await;
        r.never_verifies(email);
        r.says("pat@acme.test", true);
        rt = r.refresh_token.clone();
        let t = sign_in(app, &cid, sec, "acme", "pat@acme.test", None).await;
        t.never_verifies(email);
        t.says("pat@acme.test", true);
    }
}

/// An IdP asserting (and vouching for) an address outside the tenant's domains, let in by
/// allow_email_outside_domains: just-in-time user and later logins both say email_verified
/// false; the login trace says why. The user row and its event agree.
async fn outside_domains_are_never_verified(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    set_settings(app, "acme", json!({"allow_email_outside_domains": true})).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let sec = secret.as_deref().unwrap();
    let t = sign_in(app, &cid, sec, "acme", "mallory@gmail.example", None).await;
    t.says("mallory@gmail.example", false);
    let row = user_row(app, &t.sub()).await;
    assert!(!row.email_verified);
    assert_eq!(last_user_event(app, &t.sub()).await["email_verified"], false);
    let again = sign_in(app, &cid, sec, "acme", "mallory@gmail.example", None).await;
    assert_eq!(again.sub(), t.sub());
    again.says("mallory@gmail.example", false);
    let (_, traces) = app.get("/tenants/acme/logins").await;
    assert!(traces["data"][0].to_string().contains("email_untrusted"), "{traces}");
    // In-domain addresses are verified as before.
    sign_in(app, &cid, sec, "acme", "ann@acme.test", None).await.says("ann@acme.test", true);
}

/// Tenant domains are checked when a token is issued: once a domain is removed from the tenant
/// (or, later, loses its verification), refreshes stop calling its addresses verified; and an
/// address at a domain that moved to another tenant is not verified for the first tenant.
async fn domain_removal_ends_verification(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let sec = secret.as_deref().unwrap();
    let t = sign_in(app, &cid, sec, "acme", "ann@acme.test", None).await;
    t.says("ann@acme.test", true);
    let (s, v) = app.admin(Method::PATCH, "/tenants/acme", Some(json!({"domains": ["acme.example"]}))).await;
    assert_eq!(s, 200, "{v}");
    let r = refreshed(app, &cid, sec, &t.refresh_token).await;
    r.says("ann@acme.test", false);
    // The domain now belongs to another tenant: still not verified for acme's user.
    let (s, v) = app.post("/tenants", json!({"name": "Other", "slug": "other", "domains": ["acme.test"]})).await;
    assert_eq!(s, 201, "{v}");
    let r = refreshed(app, &cid, sec, &r.refresh_token).await;
    r.says("ann@acme.test", false);
}

/// externalId links only the subjects of the connection the tenant names (or its only one):
/// the same subject string from another connection of the tenant neither links a login to the
/// provisioned user nor lets a SCIM create adopt that connection's SSO user.
async fn external_id_links_within_one_connection(app: &TestApp) {
    let (_, c) = app.tenant("acme", "acme.test", &[]).await;
    let s = Scim::token_for(app, "acme").await;
    let c1 = c["id"].as_str().unwrap().to_string();
    let (st, c) = app
        .post("/tenants/acme/connections", json!({"type": "dev", "name": "Second IdP", "default_email": "x@acme.test"}))
        .await;
    assert_eq!(st, 201, "{c}");
    let c2 = c["id"].as_str().unwrap().to_string();
    let (cid, secret) = app.client("confidential", "ES256").await;
    let sec = secret.as_deref().unwrap();
    set_settings(app, "acme", json!({"scim_link": "external_id"})).await;
    // Two connections, none named: externalId links nowhere (the subject is ambiguous).
    let kim = s.user("kim", json!({"externalId": "dev|kim@acme.test"})).await;
    let t = sign_in(app, &cid, sec, "acme", "kim@acme.test", Some(&c2)).await;
    assert_ne!(t.sub(), kim, "a subject of a second connection must not link");
    // The tenant names connection 1: its subjects link, connection 2's never do.
    set_settings(app, "acme", json!({"scim_link": "external_id", "scim_link_connection": c1})).await;
    let lee = s.user("lee", json!({"externalId": "dev|lee@acme.test"})).await;
    let t2 = sign_in(app, &cid, sec, "acme", "lee@acme.test", Some(&c2)).await;
    assert_ne!(t2.sub(), lee, "connection 2's subject does not link");
    let t1 = sign_in(app, &cid, sec, "acme", "lee@acme.test", Some(&c1)).await;
    assert_eq!(t1.sub(), lee, "connection 1's subject links");
    // SCIM adoption by externalId: only an SSO user of connection 1.
    let via2 = sign_in(app, &cid, sec, "acme", "max@acme.test", Some(&c2)).await.sub();
    let max = s.user("max", json!({"externalId": "dev|max@acme.test"})).await;
    assert_ne!(max, via2, "SCIM must not adopt the SSO user of another connection");
    let via1 = sign_in(app, &cid, sec, "acme", "ned@acme.test", Some(&c1)).await.sub();
    let ned = s.user("ned", json!({"externalId": "dev|ned@acme.test"})).await;
    assert_eq!(ned, via1, "SCIM adopts the SSO user of the named connection");
    // scim_link_scope tenant (an explicit choice): any connection's subject links.
    set_settings(app, "acme", json!({"scim_link": "external_id", "scim_link_scope": "tenant"})).await;
    let joy = s.user("joy", json!({"externalId": "dev|joy@acme.test"})).await;
    assert_eq!(sign_in(app, &cid, sec, "acme", "joy@acme.test", Some(&c2)).await.sub(), joy);
    // The same subject at two connections naming two people: no adoption (ambiguous).
    let a = sign_in(app, &cid, sec, "acme", "amy@acme.test", Some(&c1)).await.sub();
    let b = sign_in(app, &cid, sec, "acme", "amy@acme.test", Some(&c2)).await.sub();
    assert_ne!(a, b);
    let amy = s.user("amy", json!({"externalId": "dev|amy@acme.test"})).await;
    assert!(amy != a && amy != b, "an ambiguous subject adopts nobody");
}

/// The admin API checks `scim_link_connection`: a connection of the tenant, with scope
/// `connection` only.
async fn scim_link_connection_is_validated(app: &TestApp) {
    let (_, c) = app.tenant("acme", "acme.test", &[]).await;
    let (_, other) = app.tenant("globex", "globex.test", &[]).await;
    let own = c["id"].as_str().unwrap();
    for (settings, ok) in [
        (json!({"scim_link_connection": own}), true),
        (json!({"scim_link_connection": other["id"]}), false),
        (json!({"scim_link_connection": "conn_nope"}), false),
        (json!({"scim_link_connection": own, "scim_link_scope": "tenant"}), false),
        (json!({"scim_link_scope": "tenant"}), true),
    ] {
        let (s, v) = app.admin(Method::PATCH, "/tenants/acme", Some(json!({ "settings": settings }))).await;
        if ok {
            assert_eq!(s, 200, "{settings}: {v}");
            assert_eq!(
                v["settings"]["scim_link_scope"],
                settings.get("scim_link_scope").unwrap_or(&json!("connection")).clone()
            );
        } else {
            assert_eq!((s, v["error"].as_str()), (400, Some("invalid_scim_link_connection")), "{settings}: {v}");
            assert_eq!(v["field"], "settings.scim_link_connection");
        }
    }
    let (s, v) =
        app.post("/tenants", json!({"name": "New", "slug": "new", "settings": {"scim_link_connection": own}})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_scim_link_connection")), "{v}");
}

/// The migration brings rows written before it in line: SCIM users lose `email_verified`, SSO
/// users keep it only in a tenant domain, and a single identity gets the address as its
/// `verified_email` (so existing sessions stay verified).
async fn migration_fixes_existing_rows(app: &TestApp) {
    use migration::MigratorTrait;
    use sea_orm::{ConnectionTrait, Statement};
    let s = Scim::setup(app, "acme", "acme.test").await;
    set_settings(app, "acme", json!({"allow_email_outside_domains": true})).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let sec = secret.as_deref().unwrap();
    let ann = sign_in(app, &cid, sec, "acme", "ann@acme.test", None).await;
    let out = sign_in(app, &cid, sec, "acme", "out@other.example", None).await.sub();
    let scim = s.user("sue@acme.test", json!({})).await;
    let db = &app.state.db;
    // Undo this migration (and any later one), then run them again.
    let names: Vec<String> = migration::Migrator::migrations().iter().map(|m| m.name().to_string()).collect();
    let at = names.iter().position(|n| n == "m20261127_000001_email_trust").unwrap();
    migration::Migrator::down(db, Some((names.len() - at) as u32)).await.unwrap();
    // As the code before wrote them: SSO users' flag as the IdP said, an adopted SCIM user's kept.
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "UPDATE users SET email_verified = $1 WHERE id IN ($2, $3, $4)",
        _ => "UPDATE users SET email_verified = ? WHERE id IN (?, ?, ?)",
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [true.into(), ann.sub().into(), out.clone().into(), scim.clone().into()],
    ))
    .await
    .unwrap();
    migration::Migrator::up(db, None).await.unwrap();
    assert!(user_row(app, &ann.sub()).await.email_verified);
    assert!(!user_row(app, &out).await.email_verified, "outside the tenant's domains");
    assert!(!user_row(app, &scim).await.email_verified, "SCIM never verifies");
    let idn = identity::Entity::find().filter(identity::Column::UserId.eq(ann.sub())).one(db).await.unwrap().unwrap();
    assert_eq!(idn.verified_email.as_deref(), Some("ann@acme.test"));
    assert_eq!(idn.verified_email_domain.as_deref(), Some("acme.test"));
    refreshed(app, &cid, sec, &ann.refresh_token).await.says("ann@acme.test", true);
}

both!(
    scim_adoption_cannot_verify_a_foreign_address,
    scim_first_then_sso,
    scim_put_and_patch,
    outside_domains_are_never_verified,
    domain_removal_ends_verification,
    external_id_links_within_one_connection,
    scim_link_connection_is_validated,
    migration_fixes_existing_rows,
);
