//! Running several instances as one: scheduled jobs run once across instances (leases), an
//! edit is never overwritten by a job that read the row before it, migrations under a lock,
//! one `serve` per SQLite file, and retention of the support tables.
use crate::common::TestApp;
use fedgate::clock::Clock;
use fedgate::store::entities::{delivery, delivery_attempt, scim_request};
use sea_orm::{ActiveModelTrait, EntityTrait, NotSet, PaginatorTrait, Set};
use serde_json::json;

crate::both!(
    jobs_run_once_across_instances,
    a_job_never_overwrites_an_edit,
    retention_prunes_support_tables,
    a_restored_backup_signs_in,
    a_database_of_a_newer_release_is_used_as_it_is
);

async fn jobs_run_once_across_instances(app: &TestApp) {
    let other = app.second_instance().await;
    other.clock.set_ms(app.clock.now_ms());
    let first = app.state.maintenance().await.unwrap();
    assert_eq!(first, fedgate::app::JOBS.to_vec(), "the first instance takes every job");
    let second = other.state.maintenance().await.unwrap();
    assert!(second.is_empty(), "the second instance runs nothing while the leases last: {second:?}");
    // The holder renews its own lease at its next round.
    app.clock.advance_secs(30);
    // (The test clock moves by a millisecond at every reading, and leases are kept in whole
    // seconds: the round's start and end bound when each lease was renewed.)
    let round_start = app.clock.now_ms();
    assert_eq!(app.state.maintenance().await.unwrap().len(), 3);
    let round_end = app.clock.now_ms();
    // The holder stops (dies). Before its leases run out the other instance takes nothing ...
    other.clock.set_ms(round_start);
    other.clock.advance_secs(fedgate::app::JOB_LEASE_SECS - 2);
    assert!(other.state.maintenance().await.unwrap().is_empty());
    // ... and once they have, it takes the jobs over.
    other.clock.set_ms(round_end);
    other.clock.advance_secs(fedgate::app::JOB_LEASE_SECS);
    assert_eq!(other.state.maintenance().await.unwrap(), fedgate::app::JOBS.to_vec());
    other.stop().await;
}

async fn a_job_never_overwrites_an_edit(app: &TestApp) {
    let (_, conn) = app.tenant("acme", "acme.test", &[]).await;
    let id = conn["id"].as_str().unwrap();
    // A job reads the row ...
    let stale = fedgate::store::connections::get(&app.state.db, id).await.unwrap().unwrap();
    // ... an admin edits it meanwhile ...
    let (s, edited) = app
        .admin(reqwest::Method::PATCH, &format!("/tenants/acme/connections/{id}"), Some(json!({"name": "Renamed"})))
        .await;
    assert_eq!(s, 200, "{edited}");
    // ... and the job's write, made from what it read, is refused: the edit stands.
    let r = fedgate::store::connections::set_config(&app.state.db, &stale, "{\"type\":\"dev\"}".into(), None)
        .await
        .unwrap();
    assert!(r.is_none(), "a write from a stale read must not land");
    let now = fedgate::store::connections::get(&app.state.db, id).await.unwrap().unwrap();
    assert_eq!(now.name, "Renamed");
    assert_ne!(now.config, "{\"type\":\"dev\"}");
    // From a fresh read it lands (and bumps the version when it says it changed the config).
    let fresh = now.clone();
    let written = fedgate::store::connections::set_config(&app.state.db, &fresh, fresh.config.clone(), Some(1))
        .await
        .unwrap()
        .expect("a write from the current version lands");
    assert_eq!(written.version, fresh.version + 1);
}

async fn retention_prunes_support_tables(app: &TestApp) {
    let db = &app.state.db;
    let now = app.clock.now();
    let day = 86_400;
    // 2,500 old and 3 recent SCIM log rows; old and recent finished deliveries; a pending old one.
    let old = now - 15 * day;
    for i in 0..2_503 {
        let at = if i < 2_500 { old } else { now };
        scim_request::ActiveModel {
            id: Set(format!("sr_{i:06}")),
            tenant_id: Set("t".into()),
            method: Set("GET".into()),
            path: Set("/Users".into()),
            status: Set(200),
            duration_us: Set(1),
            error_code: Set(None),
            created_at: Set(at),
        }
        .insert(db)
        .await
        .unwrap();
    }
    let d = |id: &str, status: &str, created: i64, finished: Option<i64>| delivery::ActiveModel {
        id: Set(id.into()),
        kind: Set("webhook".into()),
        target_id: Set("wh".into()),
        event_id: Set(None),
        event_seq: Set(1),
        ordering_key: Set("t".into()),
        payload: Set("{}".into()),
        status: Set(status.into()),
        attempts: Set(1),
        next_attempt_at: Set(created),
        lease_owner: Set(None),
        lease_until: Set(None),
        last_status: Set(None),
        last_error: Set(None),
        last_latency_ms: Set(None),
        created_at: Set(created),
        finished_at: Set(finished),
    };
    let long_ago = now - 40 * day;
    d("d_old_ok", delivery::SUCCEEDED, long_ago, Some(long_ago)).insert(db).await.unwrap();
    d("d_old_failed", delivery::FAILED, long_ago, Some(long_ago)).insert(db).await.unwrap();
    d("d_new_ok", delivery::SUCCEEDED, now, Some(now)).insert(db).await.unwrap();
    d("d_old_pending", delivery::PENDING, long_ago, None).insert(db).await.unwrap();
    for (del, at) in [("d_old_ok", long_ago), ("d_new_ok", now)] {
        delivery_attempt::ActiveModel {
            seq: NotSet,
            delivery_id: Set(del.into()),
            target_id: Set("wh".into()),
            at: Set(at),
            status: Set(Some(200)),
            latency_ms: Set(5),
            error: Set(None),
        }
        .insert(db)
        .await
        .unwrap();
    }
    let ran = app.state.maintenance().await.unwrap();
    assert!(ran.contains(&"cleanup"));
    assert_eq!(scim_request::Entity::find().count(db).await.unwrap(), 3, "old SCIM log rows go, in batches");
    let mut left: Vec<String> = delivery::Entity::find().all(db).await.unwrap().into_iter().map(|d| d.id).collect();
    left.sort();
    assert_eq!(left, ["d_new_ok", "d_old_pending"], "finished old deliveries go; a pending one never does");
    assert_eq!(delivery_attempt::Entity::find().count(db).await.unwrap(), 1);
}

/// Instances starting together on one new PostgreSQL database (a rolling deploy): the
/// migrations run once, under the lock, and every instance starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_on_postgres() {
    let url = crate::common::fresh_pg_database().await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let db = fedgate::store::connect(&url, 4, 10).await.unwrap();
            fedgate::store::migrate(&db).await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every instance migrates or finds nothing to do");
    }
    let db = fedgate::store::connect(&url, 1, 10).await.unwrap();
    fedgate::store::migrate(&db).await.unwrap();
}

/// SQLite is one instance by construction: a second `fedgate serve` on the same file stops at
/// once with a clear error.
#[tokio::test]
async fn a_second_serve_on_one_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = fedgate::config::Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
    let held = fedgate::app::ServeLock::take(&config).expect("the first serve takes the lock");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .arg("serve")
        .env("FEDGATE_DATA_DIR", dir.path())
        .env("FEDGATE_LISTEN", "127.0.0.1:0")
        .env("FEDGATE_ISSUER", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running on the SQLite database"), "{err}");
    drop(held);
    // Released with its holder: a new serve could start now.
    let again = fedgate::app::ServeLock::take(&config).expect("the lock is free again");
    drop(again);
    // PostgreSQL needs no lock.
    let pg = fedgate::config::Config { database_url: Some("postgres://x@127.0.0.1/y".into()), ..Default::default() };
    fedgate::app::ServeLock::take(&pg).unwrap();
}

/// Back up (SQLite: `VACUUM INTO` on the live database, as `fedgate backup` does; PostgreSQL:
/// pg_dump / pg_restore), restore into a new database, start an instance on it with the same
/// master key, and sign in with the app registered before the backup.
async fn a_restored_backup_signs_in(app: &TestApp) {
    use crate::common::{code_for, exchange, jwt_header};
    app.tenant("acme", "acme.test", &[]).await;
    let (client, secret) = app.client("confidential", "ES256").await;
    let b = crate::common::browser();
    let code = code_for(app, &b, &client, &[("organization", "acme")]).await;
    let (s, before) = exchange(app, &client, secret.as_deref(), &code).await;
    assert_eq!(s, 200, "{before}");
    let dir = tempfile::tempdir().unwrap();
    let url = match app.backend {
        crate::common::Backend::Sqlite => {
            let file = dir.path().join("backup.db");
            fedgate::store::backup::sqlite_to(&app.state.db, &file.to_string_lossy()).await.unwrap();
            format!("sqlite://{}?mode=rwc", file.display())
        }
        crate::common::Backend::Postgres => {
            let src = app.state.config.database_url.clone().unwrap();
            let dump = dir.path().join("backup.dump");
            let ok = std::process::Command::new("pg_dump").args(["-Fc", "-f"]).arg(&dump).arg(&src).status().unwrap();
            assert!(ok.success(), "pg_dump");
            let target = crate::common::fresh_pg_database().await;
            let ok = std::process::Command::new("pg_restore")
                .args(["--no-owner", "-d", &target])
                .arg(&dump)
                .status()
                .unwrap();
            assert!(ok.success(), "pg_restore");
            target
        }
    };
    let restored = app.instance_on(url).await;
    let b = crate::common::browser();
    let code = code_for(&restored, &b, &client, &[("organization", "acme")]).await;
    let (s, after) = exchange(&restored, &client, secret.as_deref(), &code).await;
    assert_eq!(s, 200, "the restored instance signs in with the app registered before: {after}");
    // Same signing keys (sealed with the master key, restored with the data).
    let kid = jwt_header(after["id_token"].as_str().unwrap())["kid"].clone();
    let old_kid = jwt_header(before["id_token"].as_str().unwrap())["kid"].clone();
    assert_eq!(kid, old_kid);
    restored.stop().await;
}

/// `/metrics` shows each enabled SAML connection's days to certificate expiry (the alert rule
/// FedgateSamlCertificateExpiring in monitoring/prometheus/alerts.yml reads it).
async fn saml_certificate_expiry_is_exported(backend: crate::common::Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.metrics.token = Some(fedgate::config::SecretString("m-token-123".into()));
        c.allow_private_network = true;
    })
    .await;
    let conn = crate::saml::saml_tenant(&app, "acme", "acme.test", json!({})).await;
    let text = app.http.get(app.url("/metrics")).bearer_auth("m-token-123").send().await.unwrap().text().await.unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("fedgate_saml_certificate_expiry_days{") && l.contains(&conn.id))
        .unwrap_or_else(|| panic!("no expiry gauge for {}:\n{text}", conn.id));
    let days: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(days > 0.0, "{line}");
    assert!(text.contains("# TYPE fedgate_saml_certificate_expiry_days gauge"), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_certificate_expiry_is_exported_sqlite() {
    saml_certificate_expiry_is_exported(crate::common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_certificate_expiry_is_exported_postgres() {
    saml_certificate_expiry_is_exported(crate::common::Backend::Postgres).await;
}

/// Release N−1 on a database that release N migrated (a rolling deploy, or a rollback): the
/// migrations it does not know are left alone, it starts and serves. A database that lacks one
/// of its own migrations as well is refused with what to do.
async fn a_database_of_a_newer_release_is_used_as_it_is(app: &TestApp) {
    use sea_orm::ConnectionTrait;
    let db = &app.state.db;
    db.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000001_of_a_newer_release', 0)",
    )
    .await
    .unwrap();
    fedgate::store::migrate(db).await.expect("a newer release's migrations are tolerated");
    // An instance of this release starts on it (AppState::new migrates) and serves; a sign-in
    // works on the database.
    let other = app.second_instance().await;
    other.tenant("newer", "newer.test", &[]).await;
    other.stop().await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let code = crate::common::code_for(app, &crate::common::browser(), &cid, &[("organization", "newer")]).await;
    let (s, t) = crate::common::exchange(app, &cid, secret.as_deref(), &code).await;
    assert_eq!(s, 200, "{t}");
    // Newer migrations and one of ours missing: not a schema this release can trust.
    db.execute_unprepared("DELETE FROM seaql_migrations WHERE version = 'm20261126_000002_upstream_oidc'")
        .await
        .unwrap();
    let err = fedgate::store::migrate(db).await.unwrap_err().to_string();
    assert!(
        err.contains("m29991231_000001_of_a_newer_release") && err.contains("m20261126_000002_upstream_oidc"),
        "{err}"
    );
    assert!(err.contains("fedgate migrate"), "{err}");
}
