//! Queries on `connections`: the login path, the admin API, the tenant settings, the demo.
use super::entities::connection::{self, ConnectionState, Model};
use super::page::{self, Order, Page, PageRequest};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

/// A connection by id. Every ACS post and every login that names or resumes a connection reads
/// it: inline on SQLite.
pub async fn get(db: &impl super::inline::ReadConn, id: &str) -> Result<Option<Model>, DbErr> {
    super::inline::one(db, connection::Entity::find_by_id(id.to_string())).await
}

/// How [`tenant_with_enabled`] names the tenant.
#[derive(Debug, Clone, Copy)]
pub enum TenantKey<'a> {
    Id(&'a str),
    /// Lowercase.
    Slug(&'a str),
}

/// A tenant with its enabled connections ([`enabled_of_tenant`]: active, in id order) in ONE
/// query: the authorization endpoint routes a login naming its organization with both, and
/// every statement is a round trip (two thread hops on SQLite). `None`: no such tenant.
pub async fn tenant_with_enabled(
    db: &impl super::inline::ReadConn,
    key: TenantKey<'_>,
) -> Result<Option<(super::entities::tenant::Model, Vec<Model>)>, DbErr> {
    use super::entities::tenant;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Query};
    use sea_orm::{FromQueryResult, IdenStatic, Iterable};
    let (t, c) = (Alias::new("t"), Alias::new("c"));
    let mut q = Query::select();
    for col in tenant::Column::iter() {
        q.expr_as(Expr::col((t.clone(), col)), Alias::new(format!("t_{}", col.as_str())));
    }
    for col in connection::Column::iter() {
        q.expr_as(Expr::col((c.clone(), col)), Alias::new(format!("c_{}", col.as_str())));
    }
    let (column, key) = match key {
        TenantKey::Id(id) => (tenant::Column::Id, id),
        TenantKey::Slug(slug) => (tenant::Column::Slug, slug),
    };
    // The connection's conditions are in the join: a tenant without one is still found.
    q.from_as(tenant::Entity, t.clone())
        .join_as(
            JoinType::LeftJoin,
            connection::Entity,
            c.clone(),
            Condition::all()
                .add(Expr::col((c.clone(), connection::Column::TenantId)).equals((t.clone(), tenant::Column::Id)))
                .add(routes_logins(c.clone())),
        )
        .and_where(Expr::col((t, column)).eq(key))
        .order_by((c, connection::Column::Id), sea_orm::Order::Asc);
    // Inline on SQLite (every login naming its organization reads it).
    let rows = match db.inline() {
        Some(r) => super::inline::tenant_with_connections(&r, &sea_orm::DbBackend::Sqlite.build(&q))?,
        None => {
            let mut decoded = Vec::new();
            for row in db.query_all_raw(db.get_database_backend().build(&q)).await? {
                decoded.push((
                    tenant::Model::from_query_result(&row, "t_")?,
                    Model::from_query_result_optional(&row, "c_")?,
                ));
            }
            decoded
        }
    };
    let mut rows = rows.into_iter();
    let Some((tenant, first)) = rows.next() else { return Ok(None) };
    let conns = first.into_iter().chain(rows.filter_map(|(_, c)| c)).collect();
    Ok(Some((tenant, conns)))
}

/// The connections of `table` (the table or its alias) that routes logins to: enabled and
/// active. The one rule [`enabled_of_tenant`] and [`tenant_with_enabled`] share.
fn routes_logins(table: impl sea_orm::sea_query::IntoIden + Clone) -> Condition {
    use sea_orm::sea_query::{Expr, ExprTrait};
    Condition::all()
        .add(Expr::col((table.clone(), connection::Column::Enabled)).eq(true))
        .add(Expr::col((table, connection::Column::State)).eq(ConnectionState::Active))
}

/// The enabled connections of a tenant, in id (creation) order.
pub async fn enabled_of_tenant(db: &impl super::inline::ReadConn, tenant_id: &str) -> Result<Vec<Model>, DbErr> {
    let q = connection::Entity::find()
        .filter(connection::Column::TenantId.eq(tenant_id))
        .filter(routes_logins(connection::Entity))
        .order_by_asc(connection::Column::Id);
    super::inline::all(db, q).await
}

/// Stores a connection's config, only if the row is still at the version `row` was read at
/// (optimistic concurrency: a background job never overwrites an admin's change made while it
/// worked). With `changed_at`, the version goes up (cached connectors of the old version are
/// reopened) and `updated_at` is set. `None`: someone else changed the row first; nothing was
/// written.
pub async fn set_config(
    db: &impl ConnectionTrait,
    row: &Model,
    config: String,
    changed_at: Option<i64>,
) -> Result<Option<Model>, DbErr> {
    use sea_orm::sea_query::Expr;
    let mut q = connection::Entity::update_many().col_expr(connection::Column::Config, Expr::value(config.clone()));
    let mut next = row.clone();
    next.config = config;
    if let Some(now) = changed_at {
        q = q
            .col_expr(connection::Column::Version, Expr::value(row.version + 1))
            .col_expr(connection::Column::UpdatedAt, Expr::value(now));
        next.version = row.version + 1;
        next.updated_at = now;
    }
    let done = q
        .filter(connection::Column::Id.eq(row.id.as_str()))
        .filter(connection::Column::Version.eq(row.version))
        .exec(db)
        .await?
        .rows_affected;
    Ok((done == 1).then_some(next))
}

/// A connection of this tenant (another tenant's is not found).
pub async fn get_of_tenant(db: &impl ConnectionTrait, tenant_id: &str, id: &str) -> Result<Option<Model>, DbErr> {
    Ok(connection::Entity::find_by_id(id.to_string()).one(db).await?.filter(|c| c.tenant_id == tenant_id))
}

/// The ids of a tenant's first `limit` connections, in id (creation) order.
pub async fn ids_of_tenant(db: &impl ConnectionTrait, tenant_id: &str, limit: u64) -> Result<Vec<String>, DbErr> {
    connection::Entity::find()
        .select_only()
        .column(connection::Column::Id)
        .filter(connection::Column::TenantId.eq(tenant_id))
        .order_by_asc(connection::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
}

/// A tenant's connections, oldest first.
pub async fn page_of_tenant(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    req: PageRequest<'_>,
) -> Result<Page<Model>, DbErr> {
    let q = connection::Entity::find().filter(connection::Column::TenantId.eq(tenant_id));
    page::fetch(db, q, connection::Column::Id, Order::Asc, req, |r| r.id.clone()).await
}

/// A connection to create (version 1).
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub id: String,
    pub tenant_id: String,
    pub conn_type: String,
    pub name: String,
    pub enabled: bool,
    /// JSON.
    pub config: String,
    pub secrets_enc: Option<String>,
    pub now: i64,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewConnection) -> Result<Model, DbErr> {
    insert_in_state(db, n, ConnectionState::Active).await
}

/// Inserts a connection in `state` (the setup portal makes drafts, disabled until activated).
pub async fn insert_in_state(
    db: &impl ConnectionTrait,
    n: NewConnection,
    state: ConnectionState,
) -> Result<Model, DbErr> {
    connection::ActiveModel {
        id: Set(n.id),
        tenant_id: Set(n.tenant_id),
        conn_type: Set(n.conn_type),
        name: Set(n.name),
        enabled: Set(n.enabled),
        config: Set(n.config),
        secrets_enc: Set(n.secrets_enc),
        version: Set(1),
        created_at: Set(n.now),
        updated_at: Set(n.now),
        state: Set(state),
        tested_version: Set(None),
    }
    .insert(db)
    .await
}

/// What an update changes (absent: unchanged).
#[derive(Debug, Clone, Default)]
pub struct ConnectionChanges {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub config: Option<String>,
    pub secrets_enc: Option<Option<String>>,
    /// Bump the version (connectors cached for the old one are reopened).
    pub bump_version: bool,
}

pub async fn update(db: &impl ConnectionTrait, row: Model, c: ConnectionChanges, now: i64) -> Result<Model, DbErr> {
    let version = row.version;
    let mut m: connection::ActiveModel = row.into();
    if let Some(n) = c.name {
        m.name = Set(n);
    }
    if let Some(e) = c.enabled {
        m.enabled = Set(e);
    }
    if let Some(cfg) = c.config {
        m.config = Set(cfg);
    }
    if let Some(s) = c.secrets_enc {
        m.secrets_enc = Set(s);
    }
    if c.bump_version {
        m.version = Set(version + 1);
    }
    m.updated_at = Set(now);
    m.update(db).await
}

pub async fn delete(db: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    connection::Entity::delete_by_id(id.to_string()).exec(db).await?;
    Ok(())
}

/// The first connection of this type (and name), of one tenant or of any.
pub async fn find_by_type(
    db: &impl ConnectionTrait,
    tenant_id: Option<&str>,
    conn_type: &str,
    name: Option<&str>,
) -> Result<Option<Model>, DbErr> {
    let mut q = connection::Entity::find().filter(connection::Column::ConnType.eq(conn_type));
    if let Some(t) = tenant_id {
        q = q.filter(connection::Column::TenantId.eq(t));
    }
    if let Some(n) = name {
        q = q.filter(connection::Column::Name.eq(n));
    }
    q.one(db).await
}

/// Every connection of this type.
pub async fn all_of_type(db: &impl ConnectionTrait, conn_type: &str) -> Result<Vec<Model>, DbErr> {
    connection::Entity::find().filter(connection::Column::ConnType.eq(conn_type)).all(db).await
}

/// Sets a connection's state and enabled flag (activation, re-locking after an edit).
pub async fn set_state(
    db: &impl ConnectionTrait,
    row: Model,
    state: ConnectionState,
    enabled: bool,
    now: i64,
) -> Result<Model, DbErr> {
    let mut m: connection::ActiveModel = row.into();
    m.state = Set(state);
    m.enabled = Set(enabled);
    m.updated_at = Set(now);
    m.update(db).await
}

/// Records that `version` of a connection passed a test sign-in (unless it changed since).
pub async fn set_tested(db: &impl ConnectionTrait, id: &str, version: i64) -> Result<u64, DbErr> {
    Ok(connection::Entity::update_many()
        .col_expr(connection::Column::TestedVersion, sea_orm::sea_query::Expr::value(Some(version)))
        .filter(connection::Column::Id.eq(id))
        .filter(connection::Column::Version.eq(version))
        .exec(db)
        .await?
        .rows_affected)
}

/// A tenant's draft connections, newest first.
pub async fn drafts_of_tenant(db: &impl ConnectionTrait, tenant_id: &str) -> Result<Vec<Model>, DbErr> {
    connection::Entity::find()
        .filter(connection::Column::TenantId.eq(tenant_id))
        .filter(connection::Column::State.eq(ConnectionState::Draft))
        .order_by_desc(connection::Column::Id)
        .all(db)
        .await
}

/// A tenant's connections, oldest first (at most `limit`).
pub async fn all_of_tenant(db: &impl ConnectionTrait, tenant_id: &str, limit: u64) -> Result<Vec<Model>, DbErr> {
    connection::Entity::find()
        .filter(connection::Column::TenantId.eq(tenant_id))
        .order_by_asc(connection::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
