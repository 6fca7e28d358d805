//! Hot reads stepped on the calling thread (SQLite only).
//!
//! sqlx runs each SQLite connection on a worker thread of its own and hands every statement to it
//! over a channel: two thread switches per statement, more with rows. The profiles of a SCIM GET
//! and a code exchange put a quarter to a half of the server's CPU in the kernel's scheduler for
//! those hand-offs, which is more than the statements themselves cost (docs/performance.md).
//! The reads that run on every request (the SCIM token with its tenant, a SCIM user with its
//! groups, a client, a token's subject; on the login path a connection, a login, a login with
//! its connection and tenant, an organization with its connections) therefore run here
//! instead: on a `rusqlite` connection of their own, opened on the same file, stepped on the
//! thread that serves the request. The statement text is the same as on the
//! sqlx path and the rows decode into the same sea-orm models (each column set on the
//! entity's active model by sea-orm, typed by the entity's column types), so the two paths cannot read a row differently.
//!
//! Why this is safe:
//! - **Consistency.** The database is in WAL mode: a read starts from the last commit. Every
//!   write fedgate acknowledges has committed before its answer, so a read that follows it (a
//!   revoked token, a deleted user) sees it. Reads inside a transaction never come here
//!   ([`ReadConn`] is implemented for the pool only): they must see the transaction's own writes.
//! - **Blocking.** WAL readers do not wait for the writer; these are key lookups of tens of
//!   microseconds, shorter than a thread switch. Scans (filters, pages) stay on the pool.
//! - **Read only.** Each connection has `PRAGMA query_only`; writes still have one connection
//!   and one writer.
//! - **Bounded.** At most [`IDLE_PER_FILE`] idle connections per database file, and
//!   [`MAX_FILES`] files (tests open many databases in one process).
//!
//! `FEDGATE_SQLITE_INLINE_READS=0` turns it off (everything goes through sqlx), so a before and
//! an after can be measured with one binary.
use super::entities::{scim_token, tenant, user};
use sea_orm::sea_query::{ColumnType, Value};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, IdenStatic, Iterable, Statement, TryIntoModel,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Idle reader connections kept per database file (one per busy worker thread is enough: a read
/// never yields while it holds one).
const IDLE_PER_FILE: usize = 4;
/// Database files with readers at once; the least recently opened is dropped past this.
const MAX_FILES: usize = 32;

/// Reader connections of one SQLite file.
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    /// Statements read here (tests check that the hot reads take this path).
    reads: AtomicU64,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.path).finish_non_exhaustive()
    }
}

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("FEDGATE_SQLITE_INLINE_READS").map(|v| v != "0").unwrap_or(true))
}

fn registry() -> &'static Mutex<Vec<Arc<Readers>>> {
    static R: OnceLock<Mutex<Vec<Arc<Readers>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Vec::new()))
}

/// The readers of the pool's SQLite file; `None` for PostgreSQL, an in-memory database, or when
/// turned off.
fn readers_of(db: &DatabaseConnection) -> Option<Arc<Readers>> {
    if db.get_database_backend() != DbBackend::Sqlite || !enabled() {
        return None;
    }
    let pool = db.get_sqlite_connection_pool();
    // A closed pool (shutdown, or a test's simulated outage) reads nothing here either: the
    // request takes the pool's path and gets its error.
    if pool.is_closed() {
        return None;
    }
    let opts = pool.connect_options();
    let path = opts.get_filename();
    if !super::on_disk(path) {
        return None;
    }
    let mut reg = registry().lock().ok()?;
    if let Some(r) = reg.iter().find(|r| r.path == path) {
        return Some(r.clone());
    }
    let r = Arc::new(Readers { path: path.to_path_buf(), idle: Mutex::new(Vec::new()), reads: AtomicU64::new(0) });
    if reg.len() >= MAX_FILES {
        reg.remove(0);
    }
    reg.push(r.clone());
    Some(r)
}

/// Statements the pool's database has read inline so far; `None` when it reads none inline
/// (PostgreSQL, in-memory, turned off).
pub fn inline_reads(db: &DatabaseConnection) -> Option<u64> {
    readers_of(db).map(|r| r.reads.load(Ordering::Relaxed))
}

pub(super) fn open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let c = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.pragma_update(None, "query_only", true)?;
    super::qpsg::rusqlite(&c)?;
    c.set_prepared_statement_cache_capacity(32);
    Ok(c)
}

fn db_err(e: rusqlite::Error) -> DbErr {
    DbErr::Custom(format!("sqlite (inline read): {e}"))
}

impl Readers {
    /// Runs `f` on an idle reader connection (opening one if none is idle).
    fn with<R>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<R, DbErr>) -> Result<R, DbErr> {
        let taken = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match taken {
            Some(c) => c,
            None => open(&self.path).map_err(db_err)?,
        };
        super::STATEMENTS.fetch_add(1, Ordering::Relaxed);
        self.reads.fetch_add(1, Ordering::Relaxed);
        let out = f(&conn);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_PER_FILE {
                idle.push(conn);
            }
        }
        out
    }

    /// `f` of every row of `stmt` (a statement built for SQLite).
    fn query_all<R>(
        &self,
        stmt: &Statement,
        mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<R, DbErr>,
    ) -> Result<Vec<R>, DbErr> {
        let params = match &stmt.values {
            Some(v) => v.0.iter().map(sql_value).collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        self.with(|c| {
            let mut st = c.prepare_cached(&stmt.sql).map_err(db_err)?;
            let mut rows = st.query(rusqlite::params_from_iter(params.iter())).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(db_err)? {
                out.push(f(row)?);
            }
            Ok(out)
        })
    }
}

/// A bound value as SQLite gets it from sqlx (booleans are 0 and 1).
fn sql_value(v: &Value) -> Result<rusqlite::types::Value, DbErr> {
    use rusqlite::types::Value as S;
    Ok(match v {
        Value::Bool(b) => b.map_or(S::Null, |b| S::Integer(i64::from(b))),
        Value::TinyInt(i) => i.map_or(S::Null, |i| S::Integer(i64::from(i))),
        Value::SmallInt(i) => i.map_or(S::Null, |i| S::Integer(i64::from(i))),
        Value::Int(i) => i.map_or(S::Null, |i| S::Integer(i64::from(i))),
        Value::BigInt(i) => i.map_or(S::Null, S::Integer),
        Value::TinyUnsigned(i) => i.map_or(S::Null, |i| S::Integer(i64::from(i))),
        Value::SmallUnsigned(i) => i.map_or(S::Null, |i| S::Integer(i64::from(i))),
        Value::Unsigned(i) => i.map_or(S::Null, |i| S::Integer(i64::from(i))),
        // `LIMIT`s.
        Value::BigUnsigned(Some(i)) => S::Integer(
            i64::try_from(*i).map_err(|_| DbErr::Type(format!("sqlite (inline read): {i} is out of range")))?,
        ),
        Value::BigUnsigned(None) => S::Null,
        Value::Float(f) => f.map_or(S::Null, |f| S::Real(f64::from(f))),
        Value::Double(f) => f.map_or(S::Null, S::Real),
        Value::String(s) => s.as_ref().map_or(S::Null, |s| S::Text(s.clone())),
        Value::Char(c) => c.map_or(S::Null, |c| S::Text(c.to_string())),
        Value::Bytes(b) => b.as_ref().map_or(S::Null, |b| S::Blob(b.clone())),
        other => return Err(DbErr::Type(format!("sqlite (inline read): cannot bind {other:?}"))),
    })
}

/// The number in column `n` of the first row of `stmt` (a count), 0 without a row.
pub(super) fn count(r: &Readers, stmt: &Statement) -> Result<i64, DbErr> {
    Ok(r.query_all(stmt, |row| row.get::<_, i64>("n").map_err(db_err))?.into_iter().next().unwrap_or(0))
}

/// The models of entity `E` that `stmt` selects (`SELECT *`-shaped rows).
pub(super) fn models<E>(r: &Readers, stmt: &Statement) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + TryIntoModel<E::Model>,
{
    r.query_all(stmt, |row| model::<E>(row, ""))
}

/// The first row of `q` (an entity query): inline when `db` may read inline, else on the pool.
/// The statement is the one sea-orm's `one()` runs (`LIMIT 1`).
pub(super) async fn one<E>(db: &impl ReadConn, q: sea_orm::Select<E>) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + TryIntoModel<E::Model>,
    E::Model: Send + Sync,
{
    use sea_orm::QuerySelect;
    match db.inline() {
        Some(r) => {
            let stmt = sea_orm::QueryTrait::build(&q.limit(1), DbBackend::Sqlite);
            Ok(models::<E>(&r, &stmt)?.into_iter().next())
        }
        None => q.one(db).await,
    }
}

/// Every row of `q` (an entity query): inline when `db` may read inline, else on the pool.
pub(super) async fn all<E>(db: &impl ReadConn, q: sea_orm::Select<E>) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + TryIntoModel<E::Model>,
    E::Model: Send + Sync,
{
    match db.inline() {
        Some(r) => models::<E>(&r, &sea_orm::QueryTrait::build(&q, DbBackend::Sqlite)),
        None => q.all(db).await,
    }
}

/// [`super::connections::tenant_with_enabled`]'s statement, inline: each row's tenant and
/// (`LEFT JOIN`ed) connection.
pub(super) fn tenant_with_connections(
    r: &Readers,
    stmt: &Statement,
) -> Result<Vec<(tenant::Model, Option<super::entities::connection::Model>)>, DbErr> {
    use super::entities::connection;
    r.query_all(stmt, |row| Ok((model::<tenant::Entity>(row, "t_")?, optional_model::<connection::Entity>(row, "c_")?)))
}

/// [`super::logins::get_routed`]'s statement, inline.
pub(super) fn routed(r: &Readers, stmt: &Statement) -> Result<Option<super::logins::Routed>, DbErr> {
    use super::entities::{connection, login};
    let rows = r.query_all(stmt, |row| {
        super::logins::routed_of(
            model::<login::Entity>(row, "l_")?,
            optional_model::<connection::Entity>(row, "c_")?,
            optional_model::<tenant::Entity>(row, "t_")?,
            row.get::<_, Option<String>>("routed_domains").map_err(db_err)?,
        )
    })?;
    Ok(rows.into_iter().next())
}

/// [`super::grants::access_token_owner`]'s statement, inline.
pub(super) fn access_token_owner(
    r: &Readers,
    stmt: &Statement,
) -> Result<Option<(bool, super::entities::grant::Model, user::Model)>, DbErr> {
    let rows = r.query_all(stmt, |row| {
        let revoked: bool = row.get("jti_revoked").map_err(db_err)?;
        Ok((revoked, model::<super::entities::grant::Entity>(row, "g_")?, model::<user::Entity>(row, "u_")?))
    })?;
    Ok(rows.into_iter().next())
}

/// [`super::sessions::subject`]'s statement, inline.
pub(super) fn subject(r: &Readers, stmt: &Statement) -> Result<Option<super::sessions::SubjectFound>, DbErr> {
    use super::entities::{session, tenant_domain};
    use super::sessions::{group_names, ClaimRows, SubjectFound};
    let text = |row: &rusqlite::Row<'_>, c: &str| row.get::<_, Option<String>>(c).map_err(db_err);
    let rows = r.query_all(stmt, |row| {
        Ok(SubjectFound {
            user: model::<user::Entity>(row, "u_")?,
            session: optional_model::<session::Entity>(row, "s_")?,
            tenant: model::<tenant::Entity>(row, "t_")?,
            connection_type: text(row, "c_conn_type")?,
            groups: text(row, "i_groups")?,
            vouched_email: text(row, "i_verified_email")?,
            vouched_domain: optional_model::<tenant_domain::Entity>(row, "d_")?,
            scim_groups: group_names(text(row, "scim_groups")?),
            claims: ClaimRows {
                tenant_rules: text(row, "cct_rules")?,
                tenant_hook: text(row, "cct_hook")?,
                client_rules: text(row, "ccc_rules")?,
            },
        })
    })?;
    Ok(rows.into_iter().next())
}

/// The model of entity `E` from the row's columns named `{prefix}{column}`, built by sea-orm
/// itself (each value set on an active model, then `try_into_model`), each value of the variant
/// its column type gives.
fn model<E>(row: &rusqlite::Row<'_>, prefix: &str) -> Result<E::Model, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + TryIntoModel<E::Model>,
{
    let mut am = <E::ActiveModel as ActiveModelTrait>::default();
    let stmt = row.as_ref();
    for c in E::Column::iter() {
        let name = format!("{prefix}{}", c.as_str());
        let i = stmt.column_index(&name).map_err(db_err)?;
        let v = value(&name, c.def().get_column_type(), row.get_ref(i).map_err(db_err)?)?;
        am.try_set(c, v)?;
    }
    am.try_into_model()
}

/// [`model`] of a `LEFT JOIN`ed entity: `None` when every one of its columns is NULL (no row
/// joined).
fn optional_model<E>(row: &rusqlite::Row<'_>, prefix: &str) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + TryIntoModel<E::Model>,
{
    let stmt = row.as_ref();
    for c in E::Column::iter() {
        let i = stmt.column_index(&format!("{prefix}{}", c.as_str())).map_err(db_err)?;
        if row.get_ref(i).map_err(db_err)? != rusqlite::types::ValueRef::Null {
            return model::<E>(row, prefix).map(Some);
        }
    }
    Ok(None)
}

/// One SQLite value as the `Value` variant sea-orm expects for a column of type `ty`.
fn value(name: &str, ty: &ColumnType, v: rusqlite::types::ValueRef<'_>) -> Result<Value, DbErr> {
    use rusqlite::types::ValueRef as V;
    let bad = || DbErr::Type(format!("sqlite (inline read): column {name} ({ty:?}): unexpected {:?}", v.data_type()));
    Ok(match (ty, v) {
        (ColumnType::Boolean, V::Null) => Value::Bool(None),
        (ColumnType::Boolean, V::Integer(i)) => Value::Bool(Some(i != 0)),
        (ColumnType::Integer, V::Null) => Value::Int(None),
        (ColumnType::Integer, V::Integer(i)) => Value::Int(Some(i32::try_from(i).map_err(|_| bad())?)),
        (ColumnType::BigInteger, V::Null) => Value::BigInt(None),
        (ColumnType::BigInteger, V::Integer(i)) => Value::BigInt(Some(i)),
        (ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_), V::Null) => Value::String(None),
        (ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_), V::Text(b)) => {
            Value::String(Some(String::from_utf8(b.to_vec()).map_err(|_| bad())?))
        }
        _ => return Err(bad()),
    })
}

/// A handle the hot reads accept: the pool (which may read inline) or a transaction (which never
/// does: its reads must see its own writes).
pub trait ReadConn: ConnectionTrait {
    /// The inline readers, when this handle may use them.
    fn inline(&self) -> Option<Arc<Readers>> {
        None
    }
}

impl ReadConn for DatabaseConnection {
    fn inline(&self) -> Option<Arc<Readers>> {
        readers_of(self)
    }
}

impl ReadConn for DatabaseTransaction {}

/// [`super::scim_tokens::authenticate`]'s statement, inline.
pub(super) fn token_with_tenant(
    r: &Readers,
    stmt: &Statement,
) -> Result<Option<(scim_token::Model, tenant::Model)>, DbErr> {
    let rows =
        r.query_all(stmt, |row| Ok((model::<scim_token::Entity>(row, "k_")?, model::<tenant::Entity>(row, "t_")?)))?;
    Ok(rows.into_iter().next())
}

/// The rows of a token statement that `LEFT JOIN`s users (their columns named
/// `{user_prefix}{column}`, their groups `member_of`): [`super::scim_tokens::authenticate_with_user`]'s
/// and [`super::scim_tokens::authenticate_with_users`]'s, inline.
pub(super) fn token_with_tenant_and_users(
    r: &Readers,
    stmt: &Statement,
    user_prefix: &str,
) -> Result<Vec<super::scim_tokens::Authenticated<Option<super::scim_user_view::UserWithGroups>>>, DbErr> {
    r.query_all(stmt, |row| {
        let user = optional_model::<user::Entity>(row, user_prefix)?;
        let groups: Option<String> = row.get("member_of").map_err(db_err)?;
        Ok((
            model::<scim_token::Entity>(row, "k_")?,
            model::<tenant::Entity>(row, "t_")?,
            user.map(|u| super::scim_user_view::UserWithGroups::new(u, groups)),
        ))
    })
}

/// The users of a statement that selects `u.*` and a `member_of` column
/// ([`super::scim_user_view`]), inline.
pub(super) fn users_with_groups(
    r: &Readers,
    stmt: &Statement,
) -> Result<Vec<super::scim_user_view::UserWithGroups>, DbErr> {
    r.query_all(stmt, |row| {
        let groups: Option<String> = row.get("member_of").map_err(db_err)?;
        Ok(super::scim_user_view::UserWithGroups::new(model::<user::Entity>(row, "")?, groups))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::ValueRef as V;

    #[test]
    fn values_take_the_variant_of_their_column() -> Result<(), DbErr> {
        let text = ColumnType::Text;
        let big = ColumnType::BigInteger;
        assert_eq!(value("id", &text, V::Text(b"usr_1"))?, Value::String(Some("usr_1".into())));
        assert_eq!(value("created_at", &big, V::Integer(7))?, Value::BigInt(Some(7)));
        assert_eq!(value("deleted_at", &big, V::Null)?, Value::BigInt(None));
        assert_eq!(value("active", &ColumnType::Boolean, V::Integer(1))?, Value::Bool(Some(true)));
        assert!(value("id", &text, V::Integer(1)).is_err(), "text column read as a number");
        assert!(value("created_at", &big, V::Text(b"1")).is_err(), "number column read as text");
        assert!(value("n", &ColumnType::Integer, V::Integer(1 << 40)).is_err(), "i32 overflow");
        Ok(())
    }
}
