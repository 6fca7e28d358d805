//! Runs the list queries of [`super::scim_sql::ListSql`]: the count, then one page of rows.
//!
//! **Deep pages.** Provisioning clients page through a whole tenant in id order with
//! `startIndex` (Okta's and Entra ID's imports: `startIndex=1, 101, 201, ...`). With `OFFSET`,
//! page *k* walks every earlier index entry, so reading a million users costs a quadratic number
//! of index reads. When a page in id order is served and more rows follow, a **paging hint** is
//! written: the query's signature, the next page's start index and the last id served. A request
//! for that start index then seeks `id > last` on the `(tenant_id, id)` index: the same cost at
//! row 1,000,000 as at row 1. The hint is an optimisation only: without one (expired, another
//! query, a jump) the page is read with `OFFSET`. Hints live ten minutes and are in the
//! database, so a client whose pages land on different instances gets the same plan.
use super::entities::scim_page_hint;
use super::scim_sql::{Dialect, ListSql, Param};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryResult, Set, Statement};

/// How long a paging hint is kept (seconds).
pub const HINT_TTL: i64 = 600;

/// A row of a SCIM list: its id (where the next page in id order starts after), its key
/// (`userName`, `displayName`, lower-cased: where the next page sorted by it starts after), and
/// how a page's rows decode (read inline on SQLite, or from the pool's rows).
pub trait ListRow: Sized {
    fn row_id(&self) -> &str;
    fn row_key(&self) -> Option<&str>;
    /// The rows of `stmt`, read by the inline readers (SQLite).
    fn read_inline(r: &super::inline::Readers, stmt: &Statement) -> Result<Vec<Self>, DbErr>;
    /// One row read through the pool.
    fn from_row(row: &QueryResult) -> Result<Self, DbErr>;
}

impl ListRow for super::entities::user::Model {
    fn row_id(&self) -> &str {
        &self.id
    }
    fn row_key(&self) -> Option<&str> {
        self.user_name_lower.as_deref()
    }
    fn read_inline(r: &super::inline::Readers, stmt: &Statement) -> Result<Vec<Self>, DbErr> {
        super::inline::models::<super::entities::user::Entity>(r, stmt)
    }
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        Self::from_query_result(row, "")
    }
}

impl ListRow for super::entities::scim_group::Model {
    fn row_id(&self) -> &str {
        &self.id
    }
    fn row_key(&self) -> Option<&str> {
        Some(&self.display_name_lower)
    }
    fn read_inline(r: &super::inline::Readers, stmt: &Statement) -> Result<Vec<Self>, DbErr> {
        super::inline::models::<super::entities::scim_group::Entity>(r, stmt)
    }
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        Self::from_query_result(row, "")
    }
}

/// The dialect of a connection.
pub fn dialect(db: &impl ConnectionTrait) -> Dialect {
    match db.get_database_backend() {
        DbBackend::Postgres => Dialect::Postgres,
        _ => Dialect::Sqlite,
    }
}

/// The bound values of a [`ListSql`] statement, as sea-orm values.
pub fn values(params: Vec<Param>) -> Vec<sea_orm::Value> {
    params
        .into_iter()
        .map(|p| match p {
            Param::Text(s) => s.into(),
            Param::Int(i) => i.into(),
            Param::Float(f) => f.into(),
            Param::Bool(b) => b.into(),
        })
        .collect()
}

/// The id of the hint for the page of `signature` starting at `start`.
fn hint_id(signature: &str, start: i64) -> String {
    crate::keys::secrets::sha256_hex(&format!("{signature}\u{0}{start}"))
}

/// The count of a list query (its column `n`).
async fn read_count(
    db: &impl ConnectionTrait,
    inline: Option<&super::inline::Readers>,
    backend: DbBackend,
    sql: String,
    params: Vec<Param>,
) -> Result<i64, DbErr> {
    let stmt = Statement::from_sql_and_values(backend, sql, values(params));
    Ok(match inline {
        Some(r) => super::inline::count(r, &stmt)?,
        None => db.query_one_raw(stmt).await?.and_then(|r| r.try_get::<i64>("", "n").ok()).unwrap_or(0),
    })
}

/// The number of rows a list query matches (its count statement alone).
pub async fn count(db: &impl super::inline::ReadConn, q: &ListSql) -> Result<i64, DbErr> {
    let (sql, params) = q.count_query();
    read_count(db, db.inline().as_deref(), db.get_database_backend(), sql, params).await
}

/// The number of matching rows, and the rows of the page (`count` rows from the 1-based
/// `start`; no query for the rows when `count` is 0). `now` (unix seconds) dates paging hints.
pub async fn run<R: ListRow>(
    db: &impl super::inline::ReadConn,
    q: ListSql,
    tenant_id: &str,
    start: i64,
    count: i64,
    now: i64,
) -> Result<(i64, Vec<R>), DbErr> {
    let backend = db.get_database_backend();
    // On SQLite the count and the page are read on this thread (store::inline); the paging hint
    // (a write) goes through the pool.
    let inline = db.inline();
    let read_page = |sql: String, params: Vec<Param>| {
        let stmt = Statement::from_sql_and_values(backend, sql, values(params));
        let inline = inline.clone();
        async move {
            match inline {
                Some(r) => R::read_inline(&r, &stmt),
                None => db.query_all_raw(stmt).await?.iter().map(R::from_row).collect(),
            }
        }
    };
    // A key lookup's first page (`userName eq "…"`, which Okta and Entra ID send before each
    // create) is read first: when it holds fewer rows than asked for, it holds every match and
    // the count is its length, one statement fewer. The plan of a key lookup does not depend on
    // the count.
    if q.is_key_lookup() && start == 1 && count > 0 {
        let (count_sql, count_params) = q.count_query();
        let (page_sql, page_params) = q.page_query(start, count, 0);
        let rows = read_page(page_sql, page_params).await?;
        if (rows.len() as i64) < count {
            return Ok((rows.len() as i64, rows));
        }
        let total = read_count(db, inline.as_deref(), backend, count_sql, count_params).await?;
        return Ok((total, rows));
    }
    let (count_sql, count_params) = q.count_query();
    let total = read_count(db, inline.as_deref(), backend, count_sql, count_params).await?;
    if count <= 0 {
        return Ok((total, Vec::new()));
    }
    let signature = q.continues().then(|| q.signature());
    let sorted = q.sorted_by_key();
    let after = match &signature {
        Some(sig) if start > 1 => scim_page_hint::Entity::find_by_id(hint_id(sig, start))
            .one(db)
            .await?
            .filter(|h| h.expires_at > now && h.tenant_id == tenant_id)
            .map(|h| h.last_id),
        _ => None,
    };
    // Past the end, unless a hint continues a walk: rows deleted since its first page lowered
    // the total, and the rows after the hint's last one are still owed to the client.
    if after.is_none() && start > total {
        return Ok((total, Vec::new()));
    }
    let walking = after.is_some();
    let (page_sql, page_params) = match after.and_then(|last| q.clone().after_query(&last, count, total)) {
        Some(seek) => seek,
        None => q.page_query(start, count, total),
    };
    let rows: Vec<R> = read_page(page_sql, page_params).await?;
    // A hint for the next page, when there is one.
    let next = start.saturating_add(rows.len() as i64);
    let last = rows.last().and_then(|r| super::scim_sql::continue_after(sorted, r.row_id(), r.row_key()));
    if let (Some(sig), Some(last)) = (&signature, last) {
        // A full page has a successor unless it ended at `total`; on a walk (this page came
        // from a hint) deletions since the walk began lowered `total` below the positions the
        // client counts, so a full page always leaves a hint (harmless at the very end).
        if rows.len() as i64 == count && (next <= total || walking) {
            let hint = scim_page_hint::ActiveModel {
                id: Set(hint_id(sig, next)),
                tenant_id: Set(tenant_id.to_string()),
                last_id: Set(last),
                expires_at: Set(now + HINT_TTL),
            };
            scim_page_hint::Entity::insert(hint)
                .on_conflict(
                    OnConflict::column(scim_page_hint::Column::Id)
                        .update_columns([scim_page_hint::Column::LastId, scim_page_hint::Column::ExpiresAt])
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await?;
        }
    }
    Ok((total, rows))
}

/// The database's plan for a list's count and its first page (of `total` matches), one line
/// per plan step: `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on PostgreSQL. For the plan tests
/// (tests/it/scim_growth.rs), which check that filters use their indexes.
/// On PostgreSQL sequential scans are disabled for the plan (`SET LOCAL`, in a transaction
/// rolled back): a test's few rows would otherwise always be read that way.
pub async fn explain(db: &super::Db, q: ListSql, count: i64, total: i64) -> Result<String, DbErr> {
    use sea_orm::TransactionTrait;
    let backend = db.get_database_backend();
    let tx = db.begin().await?;
    if backend == DbBackend::Postgres {
        tx.execute_unprepared("SET LOCAL enable_seqscan = off").await?;
    }
    let db = &tx;
    let prefix = if backend == DbBackend::Postgres { "EXPLAIN " } else { "EXPLAIN QUERY PLAN " };
    let (count_sql, count_params) = q.count_query();
    let (page_sql, page_params) = q.page_query(1, count, total);
    let mut out = String::new();
    for (sql, params) in [(count_sql, count_params), (page_sql, page_params)] {
        let rows =
            db.query_all_raw(Statement::from_sql_and_values(backend, format!("{prefix}{sql}"), values(params))).await?;
        for r in rows {
            let line = if backend == DbBackend::Postgres {
                r.try_get::<String>("", "QUERY PLAN").unwrap_or_default()
            } else {
                r.try_get::<String>("", "detail").unwrap_or_default()
            };
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str("--\n");
    }
    tx.rollback().await?;
    Ok(out)
}
