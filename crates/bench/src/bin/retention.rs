//! Retention at scale (docs/performance.md, "Retention at 10M rows"): fills the tables that grow
//! (login traces, events, SCIM request log, deliveries and their attempts, audit log) with N rows
//! straight in SQL (`generate_series` on PostgreSQL, a recursive CTE on SQLite), then runs
//! fedgate's own prune functions (the ones the `cleanup` job runs, in bounded batches) until the
//! expired part is gone, while a small writer keeps emitting events. Prints per table: rows
//! pruned, time, rows/s, batches and the longest single batch (= the longest a prune holds its
//! locks), the writer's latency during each prune (and idle, before), the size on disk per
//! million rows, and the latency at that size of an events API keyset page (all tenants and one
//! tenant), a tenant's login-trace page and the console's connection health. The older half of
//! the expired traces is pruned in batches of 1,000 first, the rest with the job's own batch
//! size, so the two show side by side under the same load.
//!
//! A benchmark, not a test: `make retention-bench` (scripts/retention-bench.sh).
use clap::Parser;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
struct Args {
    /// `sqlite://...` or `postgres://...` (an empty database: it is migrated and filled).
    #[arg(long)]
    database_url: String,
    /// Rows of login traces and of events.
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    /// Rows of the SCIM request log, deliveries, delivery attempts and audit log (default: rows / 10).
    #[arg(long)]
    other_rows: Option<u64>,
    /// Share of the rows older than the retention (pruned): the oldest ones.
    #[arg(long, default_value_t = 0.2)]
    expired: f64,
    /// Milliseconds between two events of the concurrent writer.
    #[arg(long, default_value_t = 20)]
    writer_interval_ms: u64,
}

/// Rows per fill statement (each its own transaction).
const FILL_CHUNK: u64 = 250_000;
/// The span of time the rows cover (30 days, the default retention of traces and events).
const SPAN_SECS: i64 = 30 * 86400;

const STEPS: &str = r#"[{"step":"authorize","at_ms":0,"ms":1,"detail":{"client_id":"cli_0123456789abcdef"}},{"step":"routed_to_connection","at_ms":2,"ms":0,"detail":{"connection_id":"conn_0123456789abcdef","type":"oidc","name":"Okta"}},{"step":"upstream_redirect","at_ms":3,"ms":1,"detail":{}},{"step":"callback_received","at_ms":5100,"ms":0,"detail":{"params":["state","code","iss"]}},{"step":"token_exchanged","at_ms":5160,"ms":58,"detail":{"status":200}},{"step":"id_token_verified","at_ms":5161,"ms":1,"detail":{"alg":"RS256"}},{"step":"code_issued","at_ms":5170,"ms":0,"detail":{"client_id":"cli_0123456789abcdef"}}]"#;
const EVENT_DATA: &str = r#"{"login_id":"lgn_0123456789abcdef0123456789abcdef","tenant_id":"org_0123456789abcdef","connection_id":"conn_0123456789abcdef","user_id":"usr_0123456789abcdef","client_id":"cli_0123456789abcdef"}"#;
const PAYLOAD: &str = r#"{"type":"login.succeeded","timestamp":"2026-12-01T12:00:00Z","data":{"login_id":"lgn_0123456789abcdef0123456789abcdef","tenant_id":"org_0123456789abcdef","connection_id":"conn_0123456789abcdef","user_id":"usr_0123456789abcdef"}}"#;

struct Fill<'a> {
    backend: DbBackend,
    table: &'a str,
    columns: &'a str,
    /// The SELECT list over `x` (1..=n) and `t` (the row's time in seconds).
    select: String,
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn pad15(backend: DbBackend, e: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("lpad(({e})::text, 15, '0')"),
        _ => format!("printf('%015d', {e})"),
    }
}

async fn exec(db: &fedgate::store::Db, sql: String) -> Result<u64, sea_orm::DbErr> {
    Ok(db.execute_raw(Statement::from_string(db.get_database_backend(), sql)).await?.rows_affected())
}

async fn scalar(db: &fedgate::store::Db, sql: &str) -> Result<i64, sea_orm::DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_string()))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom(format!("no row: {sql}")))?;
    row.try_get_by_index::<i64>(0)
}

/// Inserts `n` rows whose times run from `base` (oldest, x = 1) to `base + SPAN_SECS`.
async fn fill(db: &fedgate::store::Db, f: &Fill<'_>, n: u64, base: i64) -> Result<f64, sea_orm::DbErr> {
    let started = Instant::now();
    let mut from = 1;
    while from <= n {
        let to = (from + FILL_CHUNK - 1).min(n);
        let t = format!("({base} + (x * {SPAN_SECS}) / {n})");
        let select = f.select.replace("{t}", &t);
        let sql = match f.backend {
            DbBackend::Postgres => format!(
                "INSERT INTO {} ({}) SELECT {select} FROM generate_series({from}::bigint, {to}::bigint) AS g(x)",
                f.table, f.columns
            ),
            _ => format!(
                "WITH RECURSIVE g(x) AS (SELECT {from} UNION ALL SELECT x + 1 FROM g WHERE x < {to}) \
                 INSERT INTO {} ({}) SELECT {select} FROM g",
                f.table, f.columns
            ),
        };
        exec(db, sql).await?;
        from = to + 1;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Bytes the database takes (PostgreSQL: the tables and their indexes; SQLite: the file's pages).
async fn size(db: &fedgate::store::Db, table: &str) -> Result<i64, sea_orm::DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => scalar(db, &format!("SELECT pg_total_relation_size('{table}')::bigint")).await,
        _ => {
            let pages = scalar(db, "PRAGMA page_count").await?;
            let free = scalar(db, "PRAGMA freelist_count").await?;
            let page = scalar(db, "PRAGMA page_size").await?;
            Ok((pages - free) * page)
        }
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[derive(Default)]
struct Deletes {
    /// Milliseconds of each DELETE statement.
    ms: Vec<f64>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let other = a.other_rows.unwrap_or(a.rows / 10);
    let mut db = fedgate::store::connect(&a.database_url, 4, 60).await?;
    fedgate::store::migrate(&db).await?;
    let backend = db.get_database_backend();
    let kind = if backend == DbBackend::Postgres { "postgres" } else { "sqlite" };
    let now = unix_now();
    let base = now - SPAN_SECS;
    let cutoff = base + (SPAN_SECS as f64 * a.expired) as i64;
    let tx_id = if backend == DbBackend::Postgres { "1" } else { "0" };
    let tenant = "'org_bench' || (x % 50)";
    let fills = [
        (
            Fill {
                backend,
                table: "login_traces",
                columns: "id, sort_key, tenant_id, connection_id, client_id, status, error_code, cause, fix, steps, created_at, updated_at, email",
                select: format!(
                    "'lgn_bench' || x, {} || 'lgn_bench' || x, {tenant}, 'conn_bench' || (x % 100), 'cli_0123456789abcdef', \
                     'completed', NULL, NULL, NULL, '{STEPS}', {{t}}, {{t}}, 'user' || (x % 100000) || '@example.com'",
                    pad15(backend, "{t} * 1000")
                ),
            },
            a.rows,
        ),
        (
            Fill {
                backend,
                table: "events",
                columns: "id, tx_id, tenant_id, event_type, occurred_at, data",
                select: format!("'evt_bench' || x, {tx_id}, {tenant}, 'login.succeeded', {{t}}, '{EVENT_DATA}'"),
            },
            a.rows,
        ),
        (
            Fill {
                backend,
                table: "scim_requests",
                columns: "id, tenant_id, method, path, status, duration_us, error_code, created_at",
                select: format!("'scr_bench' || x, {tenant}, 'PATCH', '/scim/v2/Users/usr_bench' || x, 200, 1500, NULL, {{t}}"),
            },
            other,
        ),
        (
            Fill {
                backend,
                table: "deliveries",
                columns: "id, kind, target_id, event_id, event_seq, ordering_key, payload, status, attempts, next_attempt_at, \
                          lease_owner, lease_until, last_status, last_error, last_latency_ms, created_at, finished_at",
                select: format!(
                    "'dlv_bench' || x, 'webhook', 'whe_bench' || (x % 5), 'evt_bench' || x, x, {tenant}, '{PAYLOAD}', 'succeeded', 1, \
                     {{t}}, NULL, NULL, 200, NULL, 25, {{t}}, {{t}} + 1"
                ),
            },
            other,
        ),
        (
            Fill {
                backend,
                table: "delivery_attempts",
                columns: "delivery_id, target_id, at, status, latency_ms, error",
                select: "'dlv_bench' || x, 'whe_bench' || (x % 5), {t}, 200, 25, NULL".to_string(),
            },
            other,
        ),
        (
            Fill {
                backend,
                table: "audit_log",
                columns: "at, actor, action, target_type, target_id, tenant_id, ip, request_id, details",
                select: format!(
                    "{{t}}, CASE WHEN x % 1000 = 7 THEN 'operator:ops@vendor.example' ELSE 'admin_key:adk_0123456789abcdef' END, \
                     CASE WHEN x % 1000 = 3 THEN 'tenant.delete' WHEN x % 100 = 2 THEN 'tenant.update' ELSE 'connection.update' END, \
                     'connection', 'conn_bench' || (x % 100), {tenant}, \
                     '10.0.0.1', 'req' || x, '{{\"changed\":[\"name\",\"enabled\"]}}'"
                ),
            },
            other,
        ),
    ];
    println!(
        "# {kind}: {} rows of traces and events, {other} of the others; {:.0}% expired",
        a.rows,
        a.expired * 100.0
    );
    let mut bytes = Vec::new();
    for (f, n) in &fills {
        let before = size(&db, f.table).await?;
        let secs = fill(&db, f, *n, base).await?;
        let after = size(&db, f.table).await?;
        let table_bytes = if backend == DbBackend::Postgres { after } else { after - before };
        bytes.push((f.table, table_bytes));
        println!(
            "{{\"db\":\"{kind}\",\"fill\":\"{}\",\"rows\":{n},\"secs\":{secs:.1},\"rows_per_s\":{:.0},\"bytes\":{table_bytes},\"bytes_per_million\":{:.0}}}",
            f.table,
            *n as f64 / secs,
            table_bytes as f64 * 1e6 / *n as f64
        );
    }
    if backend == DbBackend::Postgres {
        exec(&db, "ANALYZE".into()).await?;
    }
    let per_million = |t: &str, n: u64| {
        bytes.iter().find(|(x, _)| *x == t).map(|(_, b)| *b as f64 * 1e6 / n as f64 / 1e6).unwrap_or(0.0)
    };
    // A login writes a trace and a login.succeeded event (plus, per subscribed endpoint, a
    // delivery and an attempt).
    println!(
        "{{\"db\":\"{kind}\",\"mb_per_million_logins\":{:.0},\"with_one_webhook\":{:.0}}}",
        per_million("login_traces", a.rows) + per_million("events", a.rows),
        per_million("login_traces", a.rows)
            + per_million("events", a.rows)
            + per_million("deliveries", other)
            + per_million("delivery_attempts", other)
    );

    // Reads at this size: an events API page (keyset, in the middle of the table) and the
    // newest page of a tenant's login traces.
    let mut ev = Vec::new();
    let mut evt = Vec::new();
    let mut tr = Vec::new();
    let mut health = Vec::new();
    let (mut by_conn, mut by_actor, mut by_action, mut by_family) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..200u64 {
        let after = (if backend == DbBackend::Postgres { 1 } else { 0 }, (a.rows / 2 + i * 997) as i64);
        let t = Instant::now();
        let page = fedgate::store::events::list(&db, Some(after), &[], None, 100).await?;
        ev.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page.len(), 100);
        let tenant = format!("org_bench{}", i % 50);
        let t = Instant::now();
        let page = fedgate::store::events::list(&db, Some(after), &[], Some(&tenant), 100).await?;
        evt.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page.len(), 100);
        let t = Instant::now();
        let f = fedgate::store::traces::TraceFilter { tenant_id: Some(tenant), ..Default::default() };
        let p = fedgate::store::traces::search(&db, &f, fedgate::store::page::PageRequest { cursor: None, limit: 50 })
            .await?;
        tr.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(!p.rows.is_empty());
        // The console's connection health: the latest failed login of a connection that never
        // failed (the worst case: nothing to find).
        let t = Instant::now();
        let conn = format!("conn_bench{}", i % 100);
        fedgate::store::traces::latest_of_connection(&db, &conn, "failed").await?;
        health.push(t.elapsed().as_secs_f64() * 1000.0);
        // The console's trace search by connection alone, and its audit view by a rare actor
        // (0.1 % of the log), an action (1 %) and a family of actions (`tenant.`), newest first.
        let t = Instant::now();
        let f = fedgate::store::traces::TraceFilter { connection_id: Some(conn), ..Default::default() };
        let p = fedgate::store::traces::search(&db, &f, fedgate::store::page::PageRequest { cursor: None, limit: 50 })
            .await?;
        by_conn.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(p.rows.len(), 50);
        use fedgate::store::audit::{search, AuditFilter};
        for (v, f) in [
            (&mut by_actor, AuditFilter { actor: Some("operator:ops@vendor.example".into()), ..Default::default() }),
            (&mut by_action, AuditFilter { action: Some("tenant.update".into()), ..Default::default() }),
            (&mut by_family, AuditFilter { action: Some("tenant.".into()), ..Default::default() }),
        ] {
            let t = Instant::now();
            let rows = search(&db, &f, None, 51).await?;
            v.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(rows.len(), 51);
        }
    }
    for (name, v) in [
        ("events_page_100", ev),
        ("events_tenant_page_100", evt),
        ("tenant_traces_page_50", tr),
        ("connection_health", health),
        ("connection_traces_page_50", by_conn),
        ("audit_by_actor_51", by_actor),
        ("audit_by_action_51", by_action),
        ("audit_by_family_51", by_family),
    ] {
        println!(
            "{{\"db\":\"{kind}\",\"read\":\"{name}\",\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
            pct(&mut v.clone(), 0.5),
            pct(&mut v.clone(), 0.99)
        );
    }

    // The prune, with every DELETE timed (sea-orm's metric callback), while a writer emits an
    // event every `writer_interval_ms`.
    let deletes = Arc::new(Mutex::new(Deletes::default()));
    let d = deletes.clone();
    db.set_metric_callback(move |info| {
        if info.statement.sql.trim_start().starts_with("DELETE") {
            if let Ok(mut d) = d.lock() {
                d.ms.push(info.elapsed.as_secs_f64() * 1000.0);
            }
        }
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // (when the insert started, its latency in ms), for the writer's latency per prune phase.
    let samples: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let db = db.clone();
        let stop = stop.clone();
        let samples = samples.clone();
        let every = Duration::from_millis(a.writer_interval_ms);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                let t = Instant::now();
                let e = fedgate::store::events::NewEvent {
                    tenant_id: Some("org_bench1".into()),
                    event_type: "login.succeeded".into(),
                    data: serde_json::json!({"bench": true}),
                };
                let tx = match fedgate::store::write_tx(&db).await {
                    Ok(tx) => tx,
                    Err(_) => continue,
                };
                if fedgate::store::events::emit(&tx, &fedgate::clock::SystemRng, unix_now(), e).await.is_ok()
                    && tx.commit().await.is_ok()
                {
                    if let Ok(mut s) = samples.lock() {
                        s.push((t, t.elapsed().as_secs_f64() * 1000.0));
                    }
                }
            }
        })
    };
    let writer_between = |from: Instant, to: Instant| -> Vec<f64> {
        samples
            .lock()
            .map(|s| s.iter().filter(|(t, _)| *t >= from && *t < to).map(|(_, ms)| *ms).collect())
            .unwrap_or_default()
    };
    // The writer's latency with no prune running, first.
    let idle_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = writer_between(idle_from, Instant::now());
    println!(
        "{{\"db\":\"{kind}\",\"writer_idle_events\":{},\"writer_p50_ms\":{:.2},\"writer_p99_ms\":{:.2},\"writer_max_ms\":{:.1}}}",
        idle.len(),
        pct(&mut idle.clone(), 0.5),
        pct(&mut idle.clone(), 0.99),
        idle.iter().cloned().fold(0.0, f64::max),
    );
    let mut total_rows = 0;
    let total = Instant::now();
    type Prune = fn(
        &fedgate::store::Db,
        i64,
    )
        -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, sea_orm::DbErr>> + Send + '_>>;
    // The older half of the expired traces first in batches of 1,000 (what every table used
    // before the wide-table batch size), then the rest with the prune the job runs: the two
    // batch sizes side by side, under the same load.
    let half = base + (cutoff - base) / 2;
    let prunes: [(&str, Prune, u64, i64); 5] = [
        (
            "login_traces_batch_1000",
            |db, c| {
                Box::pin(fedgate::store::cleanup::delete_batched_sized::<
                    fedgate::store::entities::login_trace::Entity,
                    _,
                >(
                    db,
                    fedgate::store::entities::login_trace::Column::Id,
                    sea_orm::ColumnTrait::lt(&fedgate::store::entities::login_trace::Column::CreatedAt, c),
                    1000,
                ))
            },
            a.rows,
            half,
        ),
        ("login_traces", |db, c| Box::pin(fedgate::store::traces::expire(db, c)), a.rows, cutoff),
        ("events", |db, c| Box::pin(fedgate::store::events::prune(db, c)), a.rows, cutoff),
        ("audit_log", |db, c| Box::pin(fedgate::store::audit::prune(db, c)), other, cutoff),
        (
            "deliveries+attempts+scim_requests",
            |db, c| Box::pin(fedgate::store::cleanup::retention(db, c, c)),
            other * 3,
            cutoff,
        ),
    ];
    for (name, prune, n, until) in prunes {
        if let Ok(mut d) = deletes.lock() {
            d.ms.clear();
        }
        let t = Instant::now();
        let mut rows = 0;
        let mut runs = 0;
        let mut first_run = 0.0;
        loop {
            let r = Instant::now();
            let done = prune(&db, until).await?;
            if runs == 0 {
                first_run = r.elapsed().as_secs_f64();
            }
            runs += 1;
            rows += done;
            if done == 0 {
                break;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        total_rows += rows;
        let ms = deletes.lock().map(|d| d.ms.clone()).unwrap_or_default();
        let batches = ms.len();
        let w = writer_between(t, Instant::now());
        println!(
            "{{\"db\":\"{kind}\",\"prune\":\"{name}\",\"table_rows\":{n},\"rows\":{rows},\"secs\":{secs:.1},\"rows_per_s\":{:.0},\"job_runs\":{},\"one_job_run_s\":{first_run:.2},\"batches\":{batches},\"batch_p50_ms\":{:.1},\"batch_p99_ms\":{:.1},\"batch_max_ms\":{:.1},\"writer_events\":{},\"writer_p50_ms\":{:.2},\"writer_p99_ms\":{:.2},\"writer_max_ms\":{:.1}}}",
            rows as f64 / secs.max(1e-9),
            runs - 1,
            pct(&mut ms.clone(), 0.5),
            pct(&mut ms.clone(), 0.99),
            ms.iter().cloned().fold(0.0, f64::max),
            w.len(),
            pct(&mut w.clone(), 0.5),
            pct(&mut w.clone(), 0.99),
            w.iter().cloned().fold(0.0, f64::max),
        );
    }
    let prune_secs = total.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await?;
    let mut lat = writer_between(total, Instant::now());
    let max = lat.iter().cloned().fold(0.0, f64::max);
    println!(
        "{{\"db\":\"{kind}\",\"prune_total_rows\":{total_rows},\"prune_total_s\":{prune_secs:.1},\"rows_per_s\":{:.0},\"writer_events\":{},\"writer_p50_ms\":{:.2},\"writer_p99_ms\":{:.2},\"writer_max_ms\":{max:.1}}}",
        total_rows as f64 / prune_secs,
        lat.len(),
        pct(&mut lat.clone(), 0.5),
        pct(&mut lat, 0.99),
    );
    Ok(())
}
