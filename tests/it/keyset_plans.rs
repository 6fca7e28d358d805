//! Query plans of the keyset pages that grow with the data (docs/performance.md, "Retention at
//! 10M rows"): the events API (with and without a tenant, after a cursor in the middle), the
//! console's trace search and connection health, and the audit view. The store functions run
//! on a connection that records their statements; each statement is then EXPLAINed, and must be
//! an index seek: on SQLite no `SCAN` of the table and no sort; on PostgreSQL no `Seq Scan`, and
//! the keyset inside an `Index Cond` (not a `Filter` over every later row).
use crate::common::{Backend, TestApp};
use fedgate::store::audit::AuditFilter;
use fedgate::store::page::PageRequest;
use fedgate::store::traces::TraceFilter;
use fedgate::store::{audit, events, traces, Db};
use sea_orm::{ConnectionTrait, Statement};
use std::sync::{Arc, Mutex};

const EVENTS: i64 = 20_000;
const TRACES: i64 = 20_000;
const AUDIT: i64 = 5_000;

async fn exec(db: &Db, sql: String) {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
}

/// `INSERT INTO table (columns) SELECT select FROM 1..=n AS x`.
async fn fill(app: &TestApp, table: &str, columns: &str, select: &str, n: i64) {
    let sql = match app.backend {
        Backend::Postgres => {
            format!(
                "INSERT INTO {table} ({columns}) SELECT {select} FROM generate_series(1::bigint, {n}::bigint) AS g(x)"
            )
        }
        Backend::Sqlite => format!(
            "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {n}) \
             INSERT INTO {table} ({columns}) SELECT {select} FROM g"
        ),
    };
    exec(&app.state.db, sql).await;
}

/// The transaction id below which events are visible on PostgreSQL (0 on SQLite, whose events
/// all carry 0).
async fn visible_below(app: &TestApp) -> i64 {
    if app.backend == Backend::Sqlite {
        return 1;
    }
    let row = app
        .state
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS x".to_string(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "x").unwrap()
}

/// Events from 50 tenants in commit order (on PostgreSQL spread over the finished transaction
/// ids, several events a transaction), login traces over 100 connections and 50 tenants, audit
/// entries over 50 tenants.
async fn seed(app: &TestApp) -> i64 {
    let xmin = visible_below(app).await;
    let tx = match app.backend {
        Backend::Postgres => format!("1 + (x * {}) / {EVENTS}", (xmin - 2).max(1)),
        Backend::Sqlite => "0".into(),
    };
    fill(
        app,
        "events",
        "id, tx_id, tenant_id, event_type, occurred_at, data",
        &format!("'evt_plan' || x, {tx}, 'org_plan' || (x % 50), 'login.succeeded', 1700000000 + x, '{{}}'"),
        EVENTS,
    )
    .await;
    let sort_key = match app.backend {
        Backend::Postgres => "lpad(x::text, 15, '0') || 'lgn_plan' || x",
        Backend::Sqlite => "printf('%015d', x) || 'lgn_plan' || x",
    };
    fill(
        app,
        "login_traces",
        "id, sort_key, tenant_id, connection_id, client_id, status, error_code, cause, fix, steps, created_at, updated_at, email",
        &format!(
            "'lgn_plan' || x, {sort_key}, 'org_plan' || (x % 50), 'conn_plan' || (x % 100), 'cli_plan', \
             CASE WHEN x % 97 = 0 THEN 'failed' ELSE 'completed' END, NULL, NULL, NULL, '[]', 1700000000 + x, \
             1700000000 + x, 'user' || (x % 1000) || '@example.com'"
        ),
        TRACES,
    )
    .await;
    fill(
        app,
        "audit_log",
        "at, actor, action, target_type, target_id, tenant_id, ip, request_id, details",
        "1700000000 + x, \
         CASE WHEN x % 500 = 7 THEN 'operator:rare@ops.test' ELSE 'admin_key:adk_plan' || (x % 20) END, \
         CASE WHEN x % 500 = 0 THEN 'admin_key.revoke' WHEN x % 500 = 1 THEN 'admin_key.create' \
              WHEN x % 100 = 2 THEN 'tenant.update' WHEN x % 100 = 3 THEN 'tenant.delete' \
              WHEN x % 2 = 0 THEN 'connection.update' ELSE 'connection.create' END, \
         'connection', 'conn_plan' || (x % 100), 'org_plan' || (x % 50), '10.0.0.1', 'req' || x, '{}'",
        AUDIT,
    )
    .await;
    if app.backend == Backend::Postgres {
        // What autovacuum does after a fill; SQLite is never analyzed by fedgate, so its plans
        // here are the ones a production file gets.
        exec(&app.state.db, "ANALYZE".into()).await;
    }
    xmin
}

/// The statements (values inlined) that `f` runs on the store.
async fn statements<F, Fut>(app: &TestApp, f: F) -> Vec<String>
where
    F: FnOnce(Db) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut db = app.state.db.clone();
    let s = seen.clone();
    db.set_metric_callback(move |info| s.lock().unwrap().push(info.statement.to_string()));
    f(db).await;
    let out = seen.lock().unwrap().clone();
    assert!(!out.is_empty(), "no statement recorded");
    out
}

async fn plan(app: &TestApp, sql: &str) -> String {
    let (explain, backend) = match app.backend {
        Backend::Postgres => ("EXPLAIN", sea_orm::DbBackend::Postgres),
        Backend::Sqlite => ("EXPLAIN QUERY PLAN", sea_orm::DbBackend::Sqlite),
    };
    let rows = app.state.db.query_all_raw(Statement::from_string(backend, format!("{explain} {sql}"))).await.unwrap();
    let lines: Vec<String> = rows
        .iter()
        .map(|r| match app.backend {
            Backend::Postgres => r.try_get::<String>("", "QUERY PLAN").unwrap(),
            Backend::Sqlite => r.try_get::<String>("", "detail").unwrap(),
        })
        .collect();
    lines.join("\n")
}

/// Every statement of `what` is an index seek on `table`, with `keyset` (a PostgreSQL plan
/// fragment) inside an index condition when given, and on SQLite the search on `sqlite_key`
/// (e.g. `connection_id=?`) when given.
async fn assert_seeks(
    app: &TestApp,
    what: &str,
    table: &str,
    stmts: &[String],
    keyset: Option<&str>,
    sqlite_key: Option<&str>,
) {
    for sql in stmts {
        let p = plan(app, sql).await;
        let ctx = format!("{what}: {sql}\n{p}");
        match app.backend {
            Backend::Sqlite => {
                assert!(p.contains(&format!("SEARCH {table} USING")), "not an index search: {ctx}");
                assert!(!p.contains(&format!("SCAN {table}")), "table scan: {ctx}");
                assert!(!p.contains("TEMP B-TREE"), "sorts the rows: {ctx}");
                if let Some(k) = sqlite_key {
                    assert!(p.contains(k), "does not search on {k}: {ctx}");
                }
            }
            Backend::Postgres => {
                assert!(!p.contains("Seq Scan"), "table scan: {ctx}");
                assert!(p.contains("Index Cond"), "no index condition: {ctx}");
                if let Some(k) = keyset {
                    let in_index = p.lines().any(|l| l.contains("Index Cond") && l.contains(k));
                    assert!(in_index, "the keyset {k} is not an index condition: {ctx}");
                }
            }
        }
    }
}

async fn events_pages_are_index_seeks(app: &TestApp) {
    let xmin = seed(app).await;
    // A cursor in the middle of the table.
    let mid_tx = match app.backend {
        Backend::Postgres => 1 + (EVENTS / 2 * (xmin - 2).max(1)) / EVENTS,
        Backend::Sqlite => 0,
    };
    let after = Some((mid_tx, EVENTS / 2));
    let keyset = Some("ROW(tx_id, seq) > ROW(");
    let s = statements(app, |db| async move {
        let rows = events::list(&db, after, &[], None, 100).await.unwrap();
        assert_eq!(rows.len(), 100);
    })
    .await;
    assert_seeks(app, "events page", "events", &s, keyset, Some(">?")).await;
    let s = statements(app, |db| async move {
        let rows = events::list(&db, after, &[], Some("org_plan7"), 100).await.unwrap();
        assert_eq!(rows.len(), 100);
        assert!(rows.iter().all(|r| r.tenant_id.as_deref() == Some("org_plan7")));
    })
    .await;
    assert_seeks(app, "a tenant's events page", "events", &s, keyset, Some("tenant_id=? AND tx_id=? AND seq>?")).await;
    let s = statements(app, |db| async move {
        events::list(&db, None, &[], Some("org_plan7"), 50).await.unwrap();
    })
    .await;
    assert_seeks(app, "a tenant's first events page", "events", &s, None, Some("tenant_id=?")).await;

    // The pages, read one after the other with the split keyset, are the table in commit order.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = events::list(&app.state.db, cursor, &[], Some("org_plan3"), 37).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some((last.tx_id, last.seq));
        seen.extend(page.iter().map(|e| (e.tx_id, e.seq)));
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "pages out of order or repeated");
    assert_eq!(seen.len() as i64, EVENTS / 50);
}

async fn console_lists_are_index_seeks(app: &TestApp) {
    seed(app).await;
    let s = statements(app, |db| async move {
        let f = TraceFilter { tenant_id: Some("org_plan7".into()), ..Default::default() };
        let first = traces::search(&db, &f, PageRequest { cursor: None, limit: 50 }).await.unwrap();
        let next = first.next_cursor.clone().unwrap();
        traces::search(&db, &f, PageRequest { cursor: Some(&next), limit: 50 }).await.unwrap();
        traces::page_of_tenant(&db, "org_plan7", None, PageRequest { cursor: Some(&next), limit: 50 }).await.unwrap();
    })
    .await;
    assert_seeks(app, "a tenant's traces", "login_traces", &s, Some("tenant_id"), Some("tenant_id=?")).await;
    let s = statements(app, |db| async move {
        for status in ["completed", "failed"] {
            let t = traces::latest_of_connection(&db, "conn_plan7", status).await.unwrap();
            assert!(t.is_some(), "{status}");
        }
    })
    .await;
    assert_seeks(
        app,
        "a connection's health",
        "login_traces",
        &s,
        Some("connection_id"),
        Some("connection_id=? AND status=?"),
    )
    .await;
    let s = statements(app, |db| async move {
        let f = AuditFilter { tenant_id: Some("org_plan7".into()), ..Default::default() };
        let rows = audit::search(&db, &f, Some(AUDIT / 2), 51).await.unwrap();
        assert_eq!(rows.len() as i64, AUDIT / 2 / 50);
        audit::list_after(&db, AUDIT / 2, 100).await.unwrap();
    })
    .await;
    assert_seeks(app, "the audit log by tenant", "audit_log", &s, None, None).await;

    // A connection's traces of every status, newest first (the trace search by connection alone).
    let s = statements(app, |db| async move {
        let f = TraceFilter { connection_id: Some("conn_plan7".into()), ..Default::default() };
        let first = traces::search(&db, &f, PageRequest { cursor: None, limit: 50 }).await.unwrap();
        assert_eq!(first.rows.len(), 50);
        assert!(first.rows.iter().all(|t| t.connection_id.as_deref() == Some("conn_plan7")));
        let next = first.next_cursor.clone().unwrap();
        traces::search(&db, &f, PageRequest { cursor: Some(&next), limit: 50 }).await.unwrap();
    })
    .await;
    assert_seeks(app, "a connection's traces", "login_traces", &s, Some("connection_id"), Some("connection_id=?"))
        .await;

    // The audit log by actor, by action and by a family of actions, each checked against the
    // whole log filtered here. Rare values must be index seeks; for a common one (half the log)
    // PostgreSQL rightly walks the primary key backwards and stops after a page, so only its
    // rows are checked.
    let all = audit::search(&app.state.db, &AuditFilter::default(), None, AUDIT as u64 + 1).await.unwrap();
    assert_eq!(all.len() as i64, AUDIT);
    let cases: [(AuditFilter, &str, Option<&str>, bool); 6] = [
        (
            AuditFilter { actor: Some("operator:rare@ops.test".into()), ..Default::default() },
            "actor",
            Some("actor=?"),
            true,
        ),
        (AuditFilter { action: Some("tenant.update".into()), ..Default::default() }, "action", Some("action=?"), true),
        (AuditFilter { action: Some("tenant.".into()), ..Default::default() }, "a family", Some("action"), true),
        (
            AuditFilter { action: Some("admin_key.".into()), ..Default::default() },
            "a rare family",
            Some("action"),
            true,
        ),
        (
            AuditFilter {
                tenant_id: Some("org_plan0".into()),
                action: Some("admin_key.".into()),
                ..Default::default()
            },
            "a tenant and a family",
            None,
            true,
        ),
        (AuditFilter { action: Some("connection.".into()), ..Default::default() }, "a common family", None, false),
    ];
    for (f, what, key, check_plan) in cases {
        for before in [None, Some(AUDIT / 2)] {
            let want: Vec<i64> = all
                .iter()
                .filter(|r| before.is_none_or(|b| r.seq < b))
                .filter(|r| f.tenant_id.is_none() || r.tenant_id == f.tenant_id)
                .filter(|r| f.actor.as_ref().is_none_or(|a| &r.actor == a))
                .filter(|r| match f.action.as_deref() {
                    Some(a) if a.ends_with('.') => r.action.starts_with(a),
                    Some(a) => r.action == a,
                    None => true,
                })
                .take(51)
                .map(|r| r.seq)
                .collect();
            assert!(!want.is_empty(), "{what}: the seed has none");
            let f2 = f.clone();
            let s = statements(app, |db| async move {
                let got: Vec<i64> = audit::search(&db, &f2, before, 51).await.unwrap().iter().map(|r| r.seq).collect();
                assert_eq!(got, want, "{what}, before {before:?}");
            })
            .await;
            if check_plan {
                assert_seeks(app, &format!("the audit log by {what}"), "audit_log", &s, None, key).await;
            }
        }
    }
}

crate::both!(events_pages_are_index_seeks, console_lists_are_index_seeks);
