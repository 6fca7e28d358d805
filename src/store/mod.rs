//! Storage: sea-orm entities and connection set-up. SQLite (default, WAL) and PostgreSQL.
pub mod admin_keys;
pub mod audit;
pub mod audited;
pub mod backup;
pub mod checkpoint;
pub mod claim_configs;
pub mod cleanup;
pub mod clients;
pub mod codes;
pub mod conn;
pub mod connections;
pub mod deliveries;
pub mod delivery_stats;
pub mod domain_claims;
pub mod entities;
pub mod events;
pub mod grants;
pub mod identities;
pub mod inline;
pub mod jobs;
pub mod logins;
pub mod operators;
pub mod page;
pub mod qpsg;
pub mod refresh_tokens;
pub mod replay;
pub mod scim_activity;
pub mod scim_groups;
pub mod scim_list;
pub mod scim_sql;
pub mod scim_tokens;
pub mod scim_user_view;
pub mod scim_users;
pub mod sessions;
pub mod setup_links;
pub mod signing_keys;
pub mod tenants;
pub mod traces;
pub mod ui_sessions;
pub mod users;
pub mod webhooks;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqlErr,
    Statement, TransactionOptions, TransactionTrait,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use sea_orm::DatabaseConnection as Db;

/// SQL statements this process has executed (every pool connection and transaction), for
/// `/metrics` and the benchmarks' statements-per-request figures. `BEGIN`/`COMMIT` are not
/// statements here; they are counted in [`TRANSACTIONS`].
pub static STATEMENTS: AtomicU64 = AtomicU64::new(0);
/// Transactions this process has begun (each adds a `BEGIN` and a `COMMIT`/`ROLLBACK`).
pub static TRANSACTIONS: AtomicU64 = AtomicU64::new(0);

/// Requests that found no free pool connection within `database.acquire_timeout` (counted where
/// a surface turns the database error into its answer, see [`note_error`]).
pub static ACQUIRE_TIMEOUTS: AtomicU64 = AtomicU64::new(0);

/// Counts a pool acquire timeout (the surfaces call this for every database error they answer).
pub fn note_error(e: &DbErr) {
    if matches!(e, DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout)) {
        ACQUIRE_TIMEOUTS.fetch_add(1, Ordering::Relaxed);
    }
}

/// The pool's state at this moment: (open connections, idle connections, maximum size).
pub fn pool_stats(db: &Db) -> (u32, u32, u32) {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size(), p.num_idle() as u32, p.options().get_max_connections())
        }
        DbBackend::Sqlite => {
            let p = db.get_sqlite_connection_pool();
            (p.size(), p.num_idle() as u32, p.options().get_max_connections())
        }
        _ => (0, 0, 0),
    }
}

/// (statements, transactions) executed so far by this process.
pub fn db_counters() -> (u64, u64) {
    (STATEMENTS.load(Ordering::Relaxed), TRANSACTIONS.load(Ordering::Relaxed))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[source] DbErr),
    /// The database cannot be reached (down, restarting, refusing connections, the pool timed
    /// out): the request may succeed later. Surfaces answer 503 with `Retry-After`.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] DbErr),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        note_error(&e);
        if is_unavailable(&e) {
            crate::util::note_db_unavailable();
            StoreError::Unavailable(e)
        } else {
            StoreError::Db(e)
        }
    }
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Whether `e` says the database cannot be reached right now (as opposed to a bad query or
/// bad data): no connection from the pool in time, the connection refused, reset or closed,
/// TLS or protocol failure on connect, or the server shutting down, starting up or out of
/// connections (SQLSTATE classes 08 and 57P, 53300). Such errors answer 503 with
/// `Retry-After`, never an opaque 500 (docs/operations.md#when-postgresql-restarts).
pub fn is_unavailable(e: &DbErr) -> bool {
    match e {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(r) | DbErr::Exec(r) | DbErr::Query(r) => match r {
            sea_orm::RuntimeErr::SqlxError(s) => sqlx_unavailable(s),
            _ => false,
        },
        _ => false,
    }
}

fn sqlx_unavailable(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match e {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => true,
        E::Database(d) => d.code().is_some_and(|c| unavailable_sqlstate(&c)),
        _ => false,
    }
}

/// SQLSTATEs of a server that is unreachable for now: connection exceptions (class 08),
/// `admin_shutdown`, `crash_shutdown`, `cannot_connect_now` (57P01-57P03) and
/// `too_many_connections` (53300).
fn unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// Whether an error, or anything in its `source()` chain, is a [`DbErr`] or [`StoreError`]
/// saying the database is unreachable (see [`is_unavailable`]).
pub fn chain_is_unavailable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<DbErr>().is_some_and(is_unavailable)
            || err.downcast_ref::<StoreError>().is_some_and(StoreError::is_unavailable)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Prepared statements kept per connection (sqlx's default is 100; fedgate has more distinct
/// statements than that, and a statement evicted is parsed and planned again).
const STATEMENT_CACHE: usize = 512;

/// Connects and returns the pool. SQLite gets exactly one connection: it has a single writer
/// anyway, and one connection means writers queue in order instead of sleeping in SQLite's busy
/// handler (measured: p99 of the token endpoint 180 ms with 16 connections, 21 ms with one, and
/// 30% more throughput). Code therefore never uses the pool while it holds a transaction.
pub async fn connect(url: &str, max_connections: u32, acquire_timeout: u64) -> Result<Db, DbErr> {
    let sqlite = url.starts_with("sqlite:");
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(if sqlite { 1 } else { max_connections.max(1) })
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(acquire_timeout))
        .sqlx_logging(false);
    if sqlite {
        // sqlx pings a connection each time it leaves the pool (by default): for SQLite that is
        // one more hop to the connection's worker thread per statement, and a file connection
        // cannot have gone away.
        opts.test_before_acquire(false);
        // Plans that do not depend on bound values, so a statement is prepared once (store::qpsg).
        opts.map_sqlx_sqlite_pool_opts(|p| p.after_connect(|conn, _| Box::pin(qpsg::sqlx(conn))));
        // WAL with synchronous=NORMAL: a commit is in the WAL (written, not fsynced) before it
        // returns, so it survives the process being killed (kill -9, a crash); the WAL is fsynced
        // at each checkpoint, which SQLite runs every 1,000 pages of WAL and store::checkpoint at
        // least every second. On power loss or an OS crash the transactions committed since the
        // last checkpoint may roll back; the database stays consistent (docs/performance.md).
        // (sea-orm keeps one such closure: a second call would replace this one.)
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sqlx_sqlite_journal_wal())
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .statement_cache_capacity(STATEMENT_CACHE)
        });
    } else {
        // A ping before each statement is a round trip of its own: ping only a connection that
        // sat idle long enough for a proxy or the server to have dropped it.
        opts.test_before_acquire_if_idle_for(Duration::from_secs(30));
        opts.map_sqlx_postgres_opts(|o| o.statement_cache_capacity(STATEMENT_CACHE));
    }
    let mut db = Database::connect(opts).await?;
    db.set_metric_callback(|_| {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
    });
    if sqlite {
        let options = db.get_sqlite_connection_pool().connect_options();
        if on_disk(options.get_filename()) {
            checkpoint::start(options.get_filename());
        }
    }
    Ok(db)
}

/// Whether a SQLite pool's filename is a file of its own that a second connection can open (not
/// an in-memory or URI-named database).
pub(crate) fn on_disk(filename: &std::path::Path) -> bool {
    let name = filename.to_string_lossy();
    !(name.is_empty() || name.starts_with(':') || name.starts_with("file:"))
}

fn sqlx_sqlite_journal_wal() -> sea_orm::sqlx::sqlite::SqliteJournalMode {
    sea_orm::sqlx::sqlite::SqliteJournalMode::Wal
}

/// The PostgreSQL advisory lock key migrations run under (any constant shared by every
/// fedgate instance of one database; "fedgate\0m" as a number).
const MIGRATION_LOCK_KEY: i64 = 0x6665_6467_6174_656d;

/// Applies every pending migration. On PostgreSQL under a session advisory lock held on one
/// pooled connection while the migrations run: instances starting together (a rolling deploy)
/// queue, the first migrates, the others find nothing left to do. SQLite serializes writers
/// itself (and `serve` refuses a second process on one file, see `app::ServeLock`).
///
/// A database migrated by a newer release (migrations this binary does not know, all of its own
/// applied) is used as it is, with a warning: migrations are additive for one release, so
/// release N−1 keeps working while N rolls out, and can be rolled back to (docs/operations.md#upgrades).
pub async fn migrate(db: &Db) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return migrate_unlocked(db).await;
    }
    // The lock lives on its own connection (not one taken from the pool, which may have a
    // single connection that the migrations need).
    let options = db.get_postgres_connection_pool().connect_options();
    let sqlx_err = |e: sea_orm::sqlx::Error| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into()));
    let mut lock_conn =
        <sea_orm::sqlx::PgConnection as sea_orm::sqlx::Connection>::connect_with(&options).await.map_err(sqlx_err)?;
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut lock_conn)
        .await
        .map_err(sqlx_err)?;
    let r = migrate_unlocked(db).await;
    // Closing the connection releases the lock (also when the unlock itself fails).
    let _ =
        sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK_KEY).execute(&mut lock_conn).await;
    let _ = sea_orm::sqlx::Connection::close(lock_conn).await;
    r
}

/// The migration table sea-orm-migration keeps (its default name).
const MIGRATION_TABLE: &str = "seaql_migrations";

async fn migrate_unlocked(db: &Db) -> Result<(), DbErr> {
    use migration::MigratorTrait;
    let known: std::collections::BTreeSet<String> =
        migration::Migrator::migrations().iter().map(|m| m.name().to_string()).collect();
    let applied = applied_migrations(db).await?;
    let newer: Vec<&String> = applied.iter().filter(|v| !known.contains(*v)).collect();
    if newer.is_empty() {
        return migration::Migrator::up(db, None).await;
    }
    // sea-orm-migration refuses a database with migrations it has no file for; a newer release
    // applied them, and the additive rule says this release runs on that schema.
    let pending: Vec<&String> = known.iter().filter(|k| !applied.contains(*k)).collect();
    if pending.is_empty() {
        tracing::warn!(
            newer = ?newer,
            "the database has migrations of a newer fedgate release: running on it unchanged (migrations are additive for one release)"
        );
        return Ok(());
    }
    Err(DbErr::Custom(format!(
        "the database has migrations of a newer fedgate release ({}) but lacks some of this release's ({}): \
         run `fedgate migrate` with the newest release first",
        newer.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        pending.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    )))
}

/// The versions recorded in the migration table (none on a new database).
async fn applied_migrations(db: &Db) -> Result<std::collections::BTreeSet<String>, DbErr> {
    let backend = db.get_database_backend();
    let exists = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
            [MIGRATION_TABLE.into()],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            [MIGRATION_TABLE.into()],
        ),
    };
    if db.query_one_raw(exists).await?.is_none() {
        return Ok(Default::default());
    }
    let rows =
        db.query_all_raw(Statement::from_string(backend, format!("SELECT version FROM {MIGRATION_TABLE}"))).await?;
    rows.iter().map(|r| r.try_get::<String>("", "version")).collect()
}

/// Begins a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so two writers queue instead of failing on lock upgrade.
pub async fn write_tx(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    TRANSACTIONS.fetch_add(1, Ordering::Relaxed);
    if db.get_database_backend() == DbBackend::Sqlite {
        db.begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
    } else {
        db.begin().await
    }
}

/// `a.col AS a_col, …` for every column of an entity: the select list of a hand-written join
/// whose rows are read back with `FromQueryResult::from_query_result(&row, "a_")`.
pub(crate) fn prefixed_cols<C: sea_orm::ColumnTrait + sea_orm::Iterable>(alias: &str) -> String {
    C::iter().map(|c| format!("{alias}.{0} AS {alias}_{0}", c.as_str())).collect::<Vec<_>>().join(", ")
}

/// The placeholder of each value a PostgreSQL statement being built binds: the value is pushed
/// to `values` and is `$n`, its position there (after any values already in it).
pub(crate) fn pg_bind(values: &mut Vec<sea_orm::Value>) -> impl FnMut(sea_orm::Value) -> String + '_ {
    move |v| {
        values.push(v);
        format!("${}", values.len())
    }
}

/// Unit tests of built PostgreSQL statements: every value is bound by its placeholder, and no
/// placeholder is past the values.
#[cfg(test)]
pub(crate) fn placeholders_match(st: &sea_orm::Statement) {
    let n = st.values.as_ref().map_or(0, |v| v.0.len());
    for i in 1..=n {
        assert!(st.sql.contains(&format!("${i}")), "${i} missing: {}", st.sql);
    }
    assert!(!st.sql.contains(&format!("${}", n + 1)), "{}", st.sql);
}

/// Renumbers the PostgreSQL placeholders (`$1`, `$2`, …) of a statement sea-query built by
/// `by`, so that it can follow another statement's values in one combined statement (a
/// data-modifying CTE). Quoted text (`'…'`, `"…"`) is left alone.
pub(crate) fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '$') if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let mut n = 0usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + d as usize;
                    chars.next();
                }
                out.push('$');
                out.push_str(&(n + by).to_string());
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// Whether this database runs several writes in one statement (PostgreSQL's data-modifying
/// CTEs: [`codes::redeem`], [`refresh_tokens::rotate`]); SQLite has no DML in a CTE.
pub fn writes_in_one_statement(db: &Db) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Serializes a critical section across every instance: updates a row in `locks` inside the
/// caller's transaction (a row lock on PostgreSQL; SQLite's write lock is already held).
pub async fn take_lock(tx: &DatabaseTransaction, name: &str, holder: &str, now: i64) -> Result<(), DbErr> {
    let backend = tx.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO locks (name, holder, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, updated_at = EXCLUDED.updated_at"
        }
        _ => {
            "INSERT INTO locks (name, holder, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, updated_at = excluded.updated_at"
        }
    };
    tx.execute_raw(sea_orm::Statement::from_sql_and_values(backend, sql, [name.into(), holder.into(), now.into()]))
        .await?;
    Ok(())
}

#[cfg(test)]
mod placeholder_tests {
    #[test]
    fn placeholders_shift_outside_quotes() {
        let sql = r#"INSERT INTO "t$1" ("a", "b") VALUES ($1, $12) WHERE x = '$3' AND y = $2"#;
        assert_eq!(
            super::shift_placeholders(sql, 10),
            r#"INSERT INTO "t$1" ("a", "b") VALUES ($11, $22) WHERE x = '$3' AND y = $12"#
        );
        assert_eq!(super::shift_placeholders("SELECT $1", 0), "SELECT $1");
    }
}

#[cfg(test)]
mod unavailable_tests {
    use super::*;
    use std::sync::Arc;

    fn sqlx(e: sea_orm::sqlx::Error) -> DbErr {
        DbErr::Query(sea_orm::RuntimeErr::SqlxError(Arc::new(e)))
    }

    #[test]
    fn connection_failures_are_unavailable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_unavailable(&sqlx(sea_orm::sqlx::Error::Io(refused))));
        assert!(is_unavailable(&sqlx(sea_orm::sqlx::Error::PoolTimedOut)));
        assert!(is_unavailable(&sqlx(sea_orm::sqlx::Error::PoolClosed)));
        assert!(is_unavailable(&DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout)));
        assert!(is_unavailable(&DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::ConnectionClosed)));
        for code in ["08006", "08001", "57P01", "57P02", "57P03", "53300"] {
            assert!(unavailable_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn other_errors_are_not() {
        assert!(!is_unavailable(&sqlx(sea_orm::sqlx::Error::RowNotFound)));
        assert!(!is_unavailable(&DbErr::Custom("x".into())));
        assert!(!is_unavailable(&DbErr::RecordNotFound("x".into())));
        for code in ["23505", "42P01", "40001", "57014"] {
            assert!(!unavailable_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn store_errors_classify_and_chain() {
        let e: StoreError = sqlx(sea_orm::sqlx::Error::PoolTimedOut).into();
        assert!(e.is_unavailable());
        assert!(chain_is_unavailable(&e));
        let e: StoreError = DbErr::Custom("bad".into()).into();
        assert!(!e.is_unavailable());
        assert!(!chain_is_unavailable(&e));
    }
}
