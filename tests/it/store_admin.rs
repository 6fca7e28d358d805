//! The store's conformance suite for the admin tables: the same contracts on SQLite and
//! PostgreSQL (insert/get, keyset pages and their order, tenant scoping, the audited write's
//! all-or-nothing commit, the outbox fan-out).
use crate::common::TestApp;
use fedgate::clock::{Clock, Rng, SystemRng};
use fedgate::store::audit::NewAudit;
use fedgate::store::entities::{audit_entry, event, scim_request, tenant};
use fedgate::store::events::NewEvent;
use fedgate::store::page::{Page, PageRequest};
use fedgate::store::{audited, connections, deliveries, scim_tokens, tenants, webhooks, Db};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

/// The same bytes every time: two events written with it get the same id.
struct FixedRng;
impl Rng for FixedRng {
    fn fill(&self, buf: &mut [u8]) {
        buf.fill(7);
    }
}

fn new_tenant(app: &TestApp, slug: &str) -> tenants::NewTenant {
    let now_ms = app.clock.now_ms();
    tenants::NewTenant {
        id: fedgate::ids::TenantId::new(now_ms, &SystemRng).to_string(),
        slug: slug.into(),
        name: format!("Tenant {slug}"),
        settings: "{}".into(),
        now: now_ms / 1000,
    }
}

fn audit(action: &str, target: &str) -> NewAudit {
    NewAudit {
        at: 1_700_000_000,
        actor: "conformance".into(),
        ip: "127.0.0.1".into(),
        action: action.into(),
        target_type: "tenant".into(),
        target_id: Some(target.into()),
        tenant_id: Some(target.into()),
        details: json!({"k": 1}),
    }
}

fn new_connection(app: &TestApp, tenant_id: &str, name: &str) -> connections::NewConnection {
    let now_ms = app.clock.now_ms();
    connections::NewConnection {
        id: fedgate::ids::ConnectionId::new(now_ms, &SystemRng).to_string(),
        tenant_id: tenant_id.into(),
        conn_type: "dev".into(),
        name: name.into(),
        enabled: true,
        config: "{}".into(),
        secrets_enc: None,
        now: now_ms / 1000,
    }
}

/// Reads every page of a listing.
async fn all_pages<R, F, Fut>(limit: u64, mut page: F) -> Vec<Page<R>>
where
    F: FnMut(Option<String>, u64) -> Fut,
    Fut: std::future::Future<Output = Page<R>>,
{
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let p = page(cursor.clone(), limit).await;
        cursor = p.next_cursor.clone();
        out.push(p);
        if cursor.is_none() || out.len() > 50 {
            return out;
        }
    }
}

async fn tenants_insert_get_and_unique_slug(app: &TestApp) {
    let db = &app.state.db;
    let t = tenants::insert(db, new_tenant(app, "conf-a")).await.unwrap();
    assert_eq!(tenants::get(db, &t.id).await.unwrap().as_ref(), Some(&t));
    assert_eq!(tenants::by_slug(db, "conf-a").await.unwrap().as_ref(), Some(&t));
    assert_eq!(tenants::get(db, "org_none").await.unwrap(), None);
    let e = tenants::insert(db, new_tenant(app, "conf-a")).await.unwrap_err();
    assert!(fedgate::store::is_unique_violation(&e), "{e}");

    // Domains: unique across tenants, listed by domain.
    let other = tenants::insert(db, new_tenant(app, "conf-b")).await.unwrap();
    tenants::insert_domain(db, &t.id, "zeta.example", 1).await.unwrap();
    tenants::insert_domain(db, &t.id, "alpha.example", 1).await.unwrap();
    let e = tenants::insert_domain(db, &other.id, "alpha.example", 1).await.unwrap_err();
    assert!(fedgate::store::is_unique_violation(&e));
    let ds: Vec<String> = tenants::domains_of(db, &t.id).await.unwrap().into_iter().map(|d| d.domain).collect();
    assert_eq!(ds, ["alpha.example", "zeta.example"]);
    assert_eq!(tenants::domain(db, "zeta.example").await.unwrap().unwrap().tenant_id, t.id);
    assert!(tenants::domains_of(db, &other.id).await.unwrap().is_empty());

    // Update changes only what it is given.
    let changes = tenants::TenantChanges { name: Some("Renamed".into()), ..Default::default() };
    let u = tenants::update(db, t.clone(), changes, 99).await.unwrap();
    assert_eq!((u.name.as_str(), u.slug.as_str(), u.updated_at, u.created_at), ("Renamed", "conf-a", 99, t.created_at));

    // Deleting a tenant takes its domains and connections, and nothing of another tenant.
    let c = connections::insert(db, new_connection(app, &t.id, "c")).await.unwrap();
    let keep = connections::insert(db, new_connection(app, &other.id, "keep")).await.unwrap();
    tenants::delete_cascade(db, &t.id).await.unwrap();
    assert_eq!(tenants::get(db, &t.id).await.unwrap(), None);
    assert!(tenants::domains_of(db, &t.id).await.unwrap().is_empty());
    assert_eq!(connections::get_of_tenant(db, &t.id, &c.id).await.unwrap(), None);
    assert_eq!(connections::get_of_tenant(db, &other.id, &keep.id).await.unwrap(), Some(keep));
}

async fn pages_cover_every_row_once_in_order(app: &TestApp) {
    let db = &app.state.db;
    let mut ids: Vec<String> = tenants::page(db, PageRequest { cursor: None, limit: 200 })
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|t| t.id)
        .collect();
    for i in 0..7 {
        ids.push(tenants::insert(db, new_tenant(app, &format!("page-{i}"))).await.unwrap().id);
    }
    ids.sort();
    for limit in [1u64, 2, 3, 7, 8, 200] {
        let pages = all_pages(limit, |cursor, limit| async move {
            tenants::page(db, PageRequest { cursor: cursor.as_deref(), limit }).await.unwrap()
        })
        .await;
        let seen: Vec<String> = pages.iter().flat_map(|p| p.rows.iter().map(|r| r.id.clone())).collect();
        assert_eq!(seen, ids, "limit {limit}: every row once, oldest first");
        assert!(pages.iter().all(|p| p.rows.len() as u64 <= limit));
        let last = pages.last().unwrap();
        assert_eq!(last.next_cursor, None, "the last page has no cursor");
        for p in &pages[..pages.len() - 1] {
            assert_eq!(p.next_cursor.as_deref(), p.rows.last().map(|r| r.id.as_str()), "cursor = last key");
        }
    }
    // An exact fit: no empty page after a full one.
    let n = ids.len() as u64;
    let p = tenants::page(db, PageRequest { cursor: None, limit: n }).await.unwrap();
    assert_eq!((p.rows.len() as u64, p.next_cursor), (n, None));

    // Newest first: the SCIM request log, per tenant.
    let t = tenants::by_slug(db, "page-0").await.unwrap().unwrap();
    let other = tenants::by_slug(db, "page-1").await.unwrap().unwrap();
    let row = |i: i64, tenant: &tenant::Model| scim_request::Model {
        id: format!("req_{i:04}"),
        tenant_id: tenant.id.clone(),
        method: "GET".into(),
        path: "/Users".into(),
        status: 200,
        duration_us: 10,
        error_code: None,
        created_at: i,
    };
    let mut rows: Vec<scim_request::Model> = (0..5).map(|i| row(i, &t)).collect();
    rows.push(row(99, &other));
    scim_tokens::insert_requests(db, rows).await.unwrap();
    let pages =
        all_pages(2, |cursor, limit| {
            let tid = t.id.clone();
            async move {
                scim_tokens::page_requests(db, &tid, PageRequest { cursor: cursor.as_deref(), limit }).await.unwrap()
            }
        })
        .await;
    let seen: Vec<String> = pages.iter().flat_map(|p| p.rows.iter().map(|r| r.id.clone())).collect();
    assert_eq!(seen, ["req_0004", "req_0003", "req_0002", "req_0001", "req_0000"], "newest first, this tenant only");
}

async fn reads_and_writes_are_tenant_scoped(app: &TestApp) {
    let db = &app.state.db;
    let a = tenants::insert(db, new_tenant(app, "scope-a")).await.unwrap();
    let b = tenants::insert(db, new_tenant(app, "scope-b")).await.unwrap();
    let ca1 = connections::insert(db, new_connection(app, &a.id, "a1")).await.unwrap();
    let ca2 = connections::insert(db, new_connection(app, &a.id, "a2")).await.unwrap();
    let cb = connections::insert(db, new_connection(app, &b.id, "b")).await.unwrap();
    assert_eq!(connections::get_of_tenant(db, &a.id, &cb.id).await.unwrap(), None);
    assert_eq!(connections::get_of_tenant(db, &b.id, &cb.id).await.unwrap().as_ref(), Some(&cb));
    let page = connections::page_of_tenant(db, &a.id, PageRequest { cursor: None, limit: 10 }).await.unwrap();
    assert_eq!(page.rows, vec![ca1.clone(), ca2.clone()]);
    assert_eq!(connections::ids_of_tenant(db, &a.id, 1).await.unwrap(), vec![ca1.id.clone()]);

    // Connection updates bump the version only when asked.
    let ch = connections::ConnectionChanges { enabled: Some(false), bump_version: true, ..Default::default() };
    let u = connections::update(db, ca1.clone(), ch, 5).await.unwrap();
    assert_eq!((u.enabled, u.version, u.name.as_str(), u.updated_at), (false, 2, "a1", 5));

    // SCIM tokens: another tenant can neither list nor revoke them.
    let tok = scim_tokens::insert_token(db, "stk_1", &a.id, "okta", "hash-1", 10).await.unwrap();
    assert!(!scim_tokens::revoke_token(db, &b.id, &tok.id, 11).await.unwrap());
    assert!(!scim_tokens::token_exists(db, &b.id, &tok.id).await.unwrap());
    let listed = scim_tokens::page_tokens(db, &b.id, PageRequest { cursor: None, limit: 10 }).await.unwrap();
    assert!(listed.rows.is_empty());
    assert!(scim_tokens::revoke_token(db, &a.id, &tok.id, 11).await.unwrap());
    assert!(!scim_tokens::revoke_token(db, &a.id, &tok.id, 12).await.unwrap(), "revoked once");
    assert!(scim_tokens::token_exists(db, &a.id, &tok.id).await.unwrap());
}

async fn count_audit(db: &Db) -> u64 {
    audit_entry::Entity::find().count(db).await.unwrap()
}

async fn count_events(db: &Db) -> u64 {
    event::Entity::find().count(db).await.unwrap()
}

async fn audited_write_is_all_or_nothing(app: &TestApp) {
    let db = &app.state.db;
    let (audits, events) = (count_audit(db).await, count_events(db).await);

    // Committed: the row, its audit entry and its event.
    let w = audited::begin(db).await.unwrap();
    let t = tenants::insert(&*w, new_tenant(app, "atomic-ok")).await.unwrap();
    let event = NewEvent { tenant_id: Some(t.id.clone()), event_type: "connection.activated".into(), data: json!({}) };
    let id = w.commit(&FixedRng, audit("tenant.create", &t.id), Some(event.clone())).await.unwrap();
    assert!(id.is_some_and(|i| i.starts_with("evt_")));
    assert!(tenants::get(db, &t.id).await.unwrap().is_some());
    assert_eq!(count_audit(db).await, audits + 1);
    assert_eq!(count_events(db).await, events + 1);
    let entry = fedgate::store::audit::list_after(db, 0, 1000).await.unwrap().pop().unwrap();
    assert_eq!((entry.action.as_str(), entry.target_id.as_deref()), ("tenant.create", Some(t.id.as_str())));

    // The event insert fails (the fixed RNG repeats the event id): neither the row nor the
    // audit entry exists afterwards.
    let w = audited::begin(db).await.unwrap();
    let t2 = tenants::insert(&*w, new_tenant(app, "atomic-fail")).await.unwrap();
    tenants::insert_domain(&*w, &t2.id, "atomic.example", 1).await.unwrap();
    let err = w.commit(&FixedRng, audit("tenant.create", &t2.id), Some(event.clone())).await;
    assert!(err.is_err(), "a repeated event id must fail");
    assert_eq!(tenants::get(db, &t2.id).await.unwrap(), None, "the row is rolled back");
    assert_eq!(tenants::domain(db, "atomic.example").await.unwrap(), None);
    assert_eq!(count_audit(db).await, audits + 1, "the audit entry is rolled back");
    assert_eq!(count_events(db).await, events + 1);

    // Dropped without commit: nothing stays.
    {
        let w = audited::begin(db).await.unwrap();
        tenants::insert(&*w, new_tenant(app, "atomic-drop")).await.unwrap();
    }
    assert_eq!(tenants::by_slug(db, "atomic-drop").await.unwrap(), None);

    // Without an event: row and audit entry.
    let w = audited::begin(db).await.unwrap();
    let t3 = tenants::insert(&*w, new_tenant(app, "atomic-noevent")).await.unwrap();
    assert_eq!(w.commit(&SystemRng, audit("tenant.create", &t3.id), None).await.unwrap(), None);
    assert!(tenants::get(db, &t3.id).await.unwrap().is_some());
    assert_eq!(count_audit(db).await, audits + 2);
    assert_eq!(count_events(db).await, events + 1);
}

async fn events_fan_out_to_subscribed_endpoints(app: &TestApp) {
    let db = &app.state.db;
    let a = tenants::insert(db, new_tenant(app, "fan-a")).await.unwrap();
    let b = tenants::insert(db, new_tenant(app, "fan-b")).await.unwrap();
    let hook = |id: &str, tenant: Option<&str>, types: &[&str]| webhooks::NewWebhook {
        id: id.into(),
        url: "https://example.com/hook".into(),
        secret_enc: "x".into(),
        event_types: serde_json::to_string(types).unwrap(),
        tenant_id: tenant.map(str::to_string),
        now: 1,
    };
    webhooks::insert(db, hook("whk_all", None, &[])).await.unwrap();
    webhooks::insert(db, hook("whk_a_users", Some(&a.id), &["user.*"])).await.unwrap();
    webhooks::insert(db, hook("whk_b", Some(&b.id), &[])).await.unwrap();
    let off = webhooks::insert(db, hook("whk_off", None, &[])).await.unwrap();
    let ch = webhooks::WebhookChanges { enabled: Some(false), ..Default::default() };
    let off = webhooks::update(db, off, ch, 2).await.unwrap();
    assert!(!off.enabled);

    let emit = |tenant: &str, ty: &str| NewEvent {
        tenant_id: Some(tenant.into()),
        event_type: ty.into(),
        data: json!({"x": 1}),
    };
    fedgate::store::events::emit(db, &SystemRng, 100, emit(&a.id, "user.created")).await.unwrap();
    fedgate::store::events::emit(db, &SystemRng, 101, emit(&a.id, "group.created")).await.unwrap();
    let count = |target: &'static str| async move {
        deliveries::page_for_target(db, target, PageRequest { cursor: None, limit: 100 }).await.unwrap().rows.len()
    };
    assert_eq!(count("whk_all").await, 2, "every tenant's events");
    assert_eq!(count("whk_a_users").await, 1, "only user.* of tenant a");
    assert_eq!(count("whk_b").await, 0, "another tenant's endpoint");
    assert_eq!(count("whk_off").await, 0, "disabled endpoints get nothing");

    // The events API order: commit order, resumable, filtered by tenant and type. (On
    // PostgreSQL an event shows once every older transaction of the cluster has ended: wait.)
    let mut all = Vec::new();
    // Up to 60 s: how long another test's transaction stays open is not this test's.
    for _ in 0..600 {
        all = fedgate::store::events::list(db, None, &[], Some(&a.id), 100).await.unwrap();
        if all.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let types: Vec<&str> = all.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["user.created", "group.created"]);
    let after = all.first().map(|e| (e.tx_id, e.seq));
    let rest = fedgate::store::events::list(db, after, &[], Some(&a.id), 100).await.unwrap();
    assert_eq!(rest.len(), 1);
    let only = fedgate::store::events::list(db, None, &["group.created".into()], None, 100).await.unwrap();
    assert_eq!(only.len(), 1);

    // Deleting an endpoint drops its pending deliveries.
    webhooks::delete(db, "whk_all").await.unwrap();
    assert_eq!(webhooks::get(db, "whk_all").await.unwrap(), None);
    assert_eq!(count("whk_all").await, 0);
}

/// A SCIM create's lookup, insert and event ([`scim_users::insert_unless_existing`]: one
/// statement on PostgreSQL): a new user is inserted with its event and the deliveries of the
/// endpoints that want it; a soft-deleted user with the externalId or an SSO user with a verified
/// email is found instead, and nothing is written; a taken userName fails as a unique violation
/// and leaves nothing behind.
async fn a_scim_create_inserts_unless_a_user_exists(app: &TestApp) {
    use fedgate::store::entities::{delivery, user, webhook_endpoint};
    use fedgate::store::scim_users::{self, Existing, Inserted};
    use sea_orm::{ActiveModelTrait, ColumnTrait, QueryFilter, Set};
    let (t, _) = app.tenant("acme", "acme.test", &[]).await;
    let tid = t["id"].as_str().unwrap().to_string();
    let db = &app.state.db;
    let rng = SystemRng;
    let now = 1_700_000_000;
    for (id, types) in [("whk_users", "[\"user.*\"]"), ("whk_groups", "[\"group.created\"]")] {
        let w = webhooks::NewWebhook {
            id: id.into(),
            url: "https://hooks.test/x".into(),
            secret_enc: "x".into(),
            event_types: types.into(),
            tenant_id: Some(tid.clone()),
            now,
        };
        webhooks::insert(db, w).await.unwrap();
    }
    let row_of = |id: &str, user_name: &str, ext: &str| {
        let doc = fedgate_scim::resource::normalize_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name, "externalId": ext, "emails": [{"value": user_name, "primary": true}],
        }))
        .unwrap();
        let cols = fedgate_scim::resource::user_columns(&doc);
        scim_users::new_user(id.into(), &tid, &doc, &cols, now).unwrap()
    };
    let event = |u: &user::Model| NewEvent {
        tenant_id: Some(tid.clone()),
        event_type: "user.created".into(),
        data: fedgate::directory::user_event(u, "scim"),
    };
    let create = |u: user::Model| {
        let e = event(&u);
        async move {
            let tx = fedgate::store::write_tx(db).await.unwrap();
            let emails = vec![u.user_name.clone().unwrap().to_lowercase()];
            let r = scim_users::insert_unless_existing(&tx, &rng, &u, &emails, e, now, scim_users::Alone::No).await;
            if r.is_ok() {
                tx.commit().await.unwrap();
            }
            r
        }
    };
    // New: inserted, with its event and one delivery (the endpoint that wants users).
    let new = row_of("usr_new", "new@acme.test", "x-new");
    match create(new.clone()).await.unwrap() {
        Inserted::Inserted(u) => assert_eq!(u, new),
        _ => panic!("nothing to find"),
    }
    assert_eq!(user::Entity::find_by_id("usr_new".to_string()).one(db).await.unwrap(), Some(new.clone()));
    let user_events = || event::Entity::find().filter(event::Column::EventType.eq("user.created"));
    let events = user_events().all(db).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].event_type.as_str(), events[0].occurred_at), ("user.created", now));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&events[0].data).unwrap()["user_id"], "usr_new");
    let sent = delivery::Entity::find().all(db).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].target_id.as_str(), sent[0].event_seq), ("whk_users", events[0].seq));
    // A soft-deleted SCIM user with the externalId: found, nothing written.
    user::ActiveModel { id: Set("usr_new".into()), deleted_at: Set(Some(now)), ..Default::default() }
        .update(db)
        .await
        .unwrap();
    match create(row_of("usr_again", "again@acme.test", "x-new")).await.unwrap() {
        Inserted::Found(Existing::Deleted(u)) => assert_eq!(u.id, "usr_new"),
        _ => panic!("the deleted user is found"),
    }
    // An SSO user (not SCIM-managed) with a verified email: found.
    let mut sso = row_of("usr_sso", "sso@acme.test", "x-sso");
    (sso.scim, sso.external_id, sso.email_verified) = (None, None, true);
    user::ActiveModel::from(sso).insert(db).await.unwrap();
    match create(row_of("usr_other", "sso@acme.test", "x-other")).await.unwrap() {
        Inserted::Found(Existing::Sso(u)) => assert_eq!(u.id, "usr_sso"),
        _ => panic!("the SSO user is found"),
    }
    // A userName taken by a live SCIM user: a unique violation, nothing written.
    match create(row_of("usr_live", "live@acme.test", "x-live")).await.unwrap() {
        Inserted::Inserted(_) => {}
        _ => panic!("nothing to find"),
    }
    let err = create(row_of("usr_dup", "live@acme.test", "x-dup")).await.err().expect("the userName is taken");
    assert!(fedgate::store::is_unique_violation(&err), "{err}");
    assert!(user::Entity::find_by_id("usr_dup".to_string()).one(db).await.unwrap().is_none());
    let ids: Vec<String> = user::Entity::find()
        .filter(user::Column::TenantId.eq(tid.as_str()))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(user_events().count(db).await.unwrap(), 2, "the new user's and the live one's");
    assert_eq!(delivery::Entity::find().count(db).await.unwrap(), 2);
    // Outside a transaction (PostgreSQL): written with the deliveries of the endpoints the
    // tenant's last event went to, while those are the tenant's endpoints; on SQLite never.
    let alone = |id: &str| {
        let u = row_of(id, &format!("{id}@acme.test"), &format!("x-{id}"));
        let emails = vec![format!("{id}@acme.test")];
        let e = event(&u);
        async move { scim_users::insert_unless_existing(db, &rng, &u, &emails, e, now, scim_users::Alone::Yes).await }
    };
    let deliveries_of = |id: &'static str| async move {
        let e = user_events().filter(event::Column::Data.contains(id)).one(db).await.unwrap().expect("its event");
        let d = delivery::Entity::find().filter(delivery::Column::EventId.eq(e.id.as_str())).all(db).await.unwrap();
        (e, d)
    };
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        assert!(matches!(alone("usr_lone").await.unwrap(), Inserted::NotAlone));
        assert!(user::Entity::find_by_id("usr_lone".to_string()).one(db).await.unwrap().is_none());
        assert_eq!(user_events().count(db).await.unwrap(), 2);
        return;
    }
    assert!(matches!(alone("usr_lone").await.unwrap(), Inserted::Inserted(_)));
    let (e, sent) = deliveries_of("usr_lone").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let live = delivery::Entity::find().filter(delivery::Column::TargetId.eq("whk_users")).one(db).await.unwrap();
    let live = live.expect("the transactional create's delivery");
    let d = &sent[0];
    assert_eq!(
        (d.kind.as_str(), d.target_id.as_str(), d.event_seq, d.ordering_key.as_str(), d.status.as_str()),
        ("webhook", "whk_users", e.seq, tid.as_str(), "pending")
    );
    assert_eq!((d.attempts, d.next_attempt_at, d.created_at), (0, now, now));
    assert_eq!((d.lease_owner.as_ref(), d.lease_until, d.finished_at), (None, None, None));
    let body: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
    let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!((body["type"].as_str(), &body["data"]), (Some("user.created"), &data));
    let live_body: serde_json::Value = serde_json::from_str(&live.payload).unwrap();
    assert_eq!(body["timestamp"], live_body["timestamp"], "the same payload as a transaction's");
    // An endpoint changed (here as if on another instance): not alone, nothing written; the
    // transactional create learns the endpoints, and the next one is alone again with both.
    webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::EventTypes, sea_orm::sea_query::Expr::value("[\"*\"]"))
        .filter(webhook_endpoint::Column::Id.eq("whk_groups"))
        .exec(db)
        .await
        .unwrap();
    assert!(matches!(alone("usr_stale").await.unwrap(), Inserted::NotAlone));
    assert!(user::Entity::find_by_id("usr_stale".to_string()).one(db).await.unwrap().is_none());
    assert!(matches!(create(row_of("usr_tx", "tx@acme.test", "x-tx")).await.unwrap(), Inserted::Inserted(_)));
    assert!(matches!(alone("usr_both").await.unwrap(), Inserted::Inserted(_)));
    let (_, sent) = deliveries_of("usr_both").await;
    let mut targets: Vec<&str> = sent.iter().map(|d| d.target_id.as_str()).collect();
    targets.sort();
    assert_eq!(targets, ["whk_groups", "whk_users"]);
    // Disabled: expected two, there are none; then learnt.
    webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Enabled, sea_orm::sea_query::Expr::value(false))
        .filter(webhook_endpoint::Column::TenantId.eq(tid.as_str()))
        .exec(db)
        .await
        .unwrap();
    assert!(matches!(alone("usr_off").await.unwrap(), Inserted::NotAlone));
    assert!(matches!(create(row_of("usr_tx2", "tx2@acme.test", "x-tx2")).await.unwrap(), Inserted::Inserted(_)));
    assert!(matches!(alone("usr_quiet").await.unwrap(), Inserted::Inserted(_)));
    assert!(deliveries_of("usr_quiet").await.1.is_empty());
    assert_eq!(user_events().count(db).await.unwrap(), 7, "each user inserted has its one event");
}

crate::both!(
    tenants_insert_get_and_unique_slug,
    a_scim_create_inserts_unless_a_user_exists,
    pages_cover_every_row_once_in_order,
    reads_and_writes_are_tenant_scoped,
    audited_write_is_all_or_nothing,
    events_fan_out_to_subscribed_endpoints,
);
