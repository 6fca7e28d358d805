//! SCIM bearer tokens (read by the SCIM surface, created, listed and revoked by the admin API) and
//! the SCIM request log (batched writes, admin reads).
use super::entities::{scim_request, scim_token, tenant};
use super::page::{self, Order, Page, PageRequest};
use super::scim_sql::{ListSql, Param};
use super::scim_user_view::UserWithGroups;
use fedgate_scim::ResourceKind;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// The live (unrevoked) token with this SHA-256 hash together with its tenant, provided the
/// tenant is the one named by `tenant_key` (its id, or its slug lower-cased), in ONE query: this
/// runs on every SCIM request, and every statement is a round trip (a thread hop on SQLite).
/// Nothing is cached, so a revoked token stops working on the next request on every instance.
pub async fn authenticate(
    db: &impl super::inline::ReadConn,
    token_hash: &str,
    tenant_key: &str,
) -> Result<Option<(scim_token::Model, tenant::Model)>, DbErr> {
    use sea_orm::FromQueryResult;
    let stmt = auth_statement(db, token_hash, tenant_key, None);
    if let Some(r) = db.inline() {
        return super::inline::token_with_tenant(&r, &stmt);
    }
    let Some(row) = db.query_one_raw(stmt).await? else {
        return Ok(None);
    };
    Ok(Some((scim_token::Model::from_query_result(&row, "k_")?, tenant::Model::from_query_result(&row, "t_")?)))
}

/// A token, its tenant, and what the request asked for when the token is good.
pub type Authenticated<T> = (scim_token::Model, tenant::Model, T);

/// [`authenticate`] and the live SCIM user `user_id` of that tenant with its groups, in the same
/// ONE statement (`GET /Users/{id}`, the commonest SCIM request: one round trip on PostgreSQL
/// where the token and the user were two). `None`: no such live token for that tenant (the
/// user is not looked at); `Some((.., None))`: authenticated, and the tenant has no such live
/// SCIM user. The user is joined on the token's tenant, so a token never reads another
/// tenant's user.
pub async fn authenticate_with_user(
    db: &impl super::inline::ReadConn,
    token_hash: &str,
    tenant_key: &str,
    user_id: &str,
) -> Result<Option<Authenticated<Option<UserWithGroups>>>, DbErr> {
    let stmt = auth_statement(db, token_hash, tenant_key, Some(user_id));
    if let Some(r) = db.inline() {
        return Ok(super::inline::token_with_tenant_and_users(&r, &stmt, "u_")?.into_iter().next());
    }
    let Some(row) = db.query_one_raw(stmt).await? else {
        return Ok(None);
    };
    token_row(&row, "u_").map(Some)
}

/// A row of a token statement that `LEFT JOIN`s users (their columns named
/// `{user_prefix}{column}`, their groups `member_of`), read through the pool (the inline reader
/// has its own, [`super::inline::token_with_tenant_and_users`]).
fn token_row(row: &sea_orm::QueryResult, user_prefix: &str) -> Result<Authenticated<Option<UserWithGroups>>, DbErr> {
    use sea_orm::FromQueryResult;
    // A LEFT JOIN that found no user leaves its columns NULL.
    let user = match row.try_get::<Option<String>>(user_prefix, "id")? {
        Some(_) => Some(UserWithGroups::from_prefixed(row, user_prefix)?),
        None => None,
    };
    Ok((scim_token::Model::from_query_result(row, "k_")?, tenant::Model::from_query_result(row, "t_")?, user))
}

/// The tenant of the token inside [`authenticate_with_users`]'s statement (its `auth` part).
const TOKEN_TENANT: &str = "(SELECT t_id FROM auth)";

/// A list of the users of the tenant named by `tenant_key` as seen by the token `token_hash`,
/// to be filtered and then read by [`authenticate_with_users`]: the token's values are its first
/// parameters, and its tenant is the token's (so the list can only ever reach that tenant).
pub fn users_of_token(dialect: super::scim_sql::Dialect, token_hash: &str, tenant_key: &str) -> ListSql {
    let leading = [Param::from(token_hash), Param::from(tenant_key), Param::from(tenant_key.to_ascii_lowercase())];
    ListSql::in_statement(ResourceKind::User, dialect, leading, TOKEN_TENANT)
}

/// [`authenticate`] and the first `count` users of a key lookup ([`users_of_token`], filtered
/// and with their groups: `userName eq "…"`, which Okta and Entra ID send before each create)
/// in ONE statement, where the token and the page were two. `None`: no such live token for that
/// tenant (no user is looked at); `Some((.., users))`: authenticated, and the page's users in id
/// order.
pub async fn authenticate_with_users(
    db: &impl super::inline::ReadConn,
    q: ListSql,
    count: i64,
) -> Result<Option<Authenticated<Vec<UserWithGroups>>>, DbErr> {
    let stmt = users_statement(db.get_database_backend(), q, count)?;
    let rows = match db.inline() {
        Some(r) => super::inline::token_with_tenant_and_users(&r, &stmt, "")?,
        None => db.query_all_raw(stmt).await?.iter().map(|row| token_row(row, "")).collect::<Result<_, _>>()?,
    };
    let mut rows = rows.into_iter();
    let Some((k, t, first)) = rows.next() else { return Ok(None) };
    Ok(Some((k, t, first.into_iter().chain(rows.filter_map(|(_, _, u)| u)).collect())))
}

/// The statement of [`authenticate_with_users`]: the token with its tenant (`auth`), and the
/// first page of `q` `LEFT JOIN`ed to it (one row with no user when the page is empty; no row
/// when the token is not good). Public for the plan tests.
pub fn users_statement(backend: sea_orm::DbBackend, q: ListSql, count: i64) -> Result<sea_orm::Statement, DbErr> {
    if q.tenant_sql() != Some(TOKEN_TENANT) || !q.in_id_order() {
        return Err(DbErr::Custom("a token's users statement needs a list of users_of_token, in id order".into()));
    }
    let (page, params) = q.page_query(1, count, 0);
    let sql = format!(
        "{} SELECT auth.*, p.* FROM auth LEFT JOIN ({page}) p ON 1 = 1 ORDER BY p.id",
        auth_sql(backend, Shape::Cte)
    );
    Ok(sea_orm::Statement::from_sql_and_values(backend, sql, super::scim_list::values(params)))
}

/// The statement of [`authenticate`], with the user `user_id` (and its groups) `LEFT JOIN`ed
/// on the token's tenant when given.
fn auth_statement(
    db: &impl ConnectionTrait,
    token_hash: &str,
    tenant_key: &str,
    user_id: Option<&str>,
) -> sea_orm::Statement {
    let backend = db.get_database_backend();
    let mut values: Vec<sea_orm::Value> =
        vec![token_hash.into(), tenant_key.into(), tenant_key.to_ascii_lowercase().into()];
    values.extend(user_id.map(Into::into));
    let shape = if user_id.is_some() { Shape::WithUser } else { Shape::Token };
    sea_orm::Statement::from_sql_and_values(backend, auth_sql(backend, shape), values)
}

/// What a token statement reads besides the token and its tenant.
#[derive(Clone, Copy)]
enum Shape {
    /// Nothing.
    Token,
    /// A user by id, `LEFT JOIN`ed on the token's tenant (its columns prefixed `u_`).
    WithUser,
    /// Nothing, as the `WITH auth AS (…)` that [`users_statement`] joins a page to.
    Cte,
}

/// The SQL of a token statement, built once per backend and shape (it names every column of
/// three tables, and runs on every SCIM request). Its parameters: the token's hash, the tenant
/// key, the key lower-cased (and the user's id).
fn auth_sql(backend: sea_orm::DbBackend, shape: Shape) -> &'static str {
    use super::prefixed_cols as cols;
    use std::sync::OnceLock;
    static SQL: [OnceLock<String>; 6] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let pg = backend == sea_orm::DbBackend::Postgres;
    SQL[usize::from(pg) * 3 + shape as usize].get_or_init(|| {
        let (p1, p2, p3, p4) = if pg { ("$1", "$2", "$3", "$4") } else { ("?1", "?2", "?3", "?4") };
        let dialect = if pg { super::scim_sql::Dialect::Postgres } else { super::scim_sql::Dialect::Sqlite };
        let (user_cols, user_join) = match shape {
            Shape::WithUser => (
                format!(
                    ", {}, {} AS member_of",
                    cols::<super::entities::user::Column>("u"),
                    super::scim_sql::member_of_sql(dialect, "u")
                ),
                format!(
                    " LEFT JOIN users u ON u.tenant_id = t.id AND u.id = {p4} AND {}",
                    super::scim_sql::live_user_sql("u")
                ),
            ),
            Shape::Token | Shape::Cte => (String::new(), String::new()),
        };
        let select = format!(
            "SELECT {}, {}{user_cols} FROM scim_tokens k JOIN tenants t ON t.id = k.tenant_id{user_join} \
             WHERE k.token_hash = {p1} AND k.revoked_at IS NULL AND (t.id = {p2} OR t.slug = {p3})",
            cols::<scim_token::Column>("k"),
            cols::<tenant::Column>("t"),
        );
        match shape {
            Shape::Cte => format!("WITH auth AS ({select})"),
            Shape::Token | Shape::WithUser => select,
        }
    })
}

/// Records a token's use.
pub async fn touch(db: &impl ConnectionTrait, token: scim_token::Model, now: i64) -> Result<(), DbErr> {
    let mut m: scim_token::ActiveModel = token.into();
    m.last_used_at = Set(Some(now));
    m.update(db).await?;
    Ok(())
}

/// Inserts request-log rows, 500 per statement.
pub async fn insert_requests(db: &impl ConnectionTrait, rows: Vec<scim_request::Model>) -> Result<(), DbErr> {
    for chunk in rows.chunks(500) {
        let models = chunk.iter().cloned().map(|r| scim_request::ActiveModel {
            id: Set(r.id),
            tenant_id: Set(r.tenant_id),
            method: Set(r.method),
            path: Set(r.path),
            status: Set(r.status),
            duration_us: Set(r.duration_us),
            error_code: Set(r.error_code),
            created_at: Set(r.created_at),
        });
        scim_request::Entity::insert_many(models).exec_without_returning(db).await?;
    }
    Ok(())
}

pub async fn insert_token(
    db: &impl ConnectionTrait,
    id: &str,
    tenant_id: &str,
    name: &str,
    token_hash: &str,
    now: i64,
) -> Result<scim_token::Model, DbErr> {
    scim_token::ActiveModel {
        id: Set(id.to_string()),
        tenant_id: Set(tenant_id.to_string()),
        name: Set(name.to_string()),
        token_hash: Set(token_hash.to_string()),
        created_at: Set(now),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
}

/// A tenant's tokens, oldest first.
pub async fn page_tokens(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    req: PageRequest<'_>,
) -> Result<Page<scim_token::Model>, DbErr> {
    let q = scim_token::Entity::find().filter(scim_token::Column::TenantId.eq(tenant_id));
    page::fetch(db, q, scim_token::Column::Id, Order::Asc, req, |r| r.id.clone()).await
}

/// Whether the tenant has this token (revoked or not).
pub async fn token_exists(db: &impl ConnectionTrait, tenant_id: &str, id: &str) -> Result<bool, DbErr> {
    Ok(scim_token::Entity::find_by_id(id.to_string())
        .filter(scim_token::Column::TenantId.eq(tenant_id))
        .one(db)
        .await?
        .is_some())
}

/// Revokes a token of the tenant. `false`: no such token, or revoked already.
pub async fn revoke_token(db: &impl ConnectionTrait, tenant_id: &str, id: &str, now: i64) -> Result<bool, DbErr> {
    let r = scim_token::Entity::update_many()
        .col_expr(scim_token::Column::RevokedAt, now.into())
        .filter(scim_token::Column::Id.eq(id))
        .filter(scim_token::Column::TenantId.eq(tenant_id))
        .filter(scim_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(r.rows_affected > 0)
}

/// A tenant's SCIM request log, newest first.
pub async fn page_requests(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    req: PageRequest<'_>,
) -> Result<Page<scim_request::Model>, DbErr> {
    let q = scim_request::Entity::find().filter(scim_request::Column::TenantId.eq(tenant_id));
    page::fetch(db, q, scim_request::Column::Id, Order::Desc, req, |r| r.id.clone()).await
}
