//! Queries on fedgate's own browser sessions (`sessions`).
use super::entities::session::{self, Model};
use super::entities::{tenant, tenant_domain, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub cookie_hash: String,
    pub user_id: String,
    pub tenant_id: String,
    pub connection_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewSession) -> Result<Model, DbErr> {
    session::ActiveModel {
        id: Set(n.id),
        cookie_hash: Set(n.cookie_hash),
        user_id: Set(n.user_id),
        tenant_id: Set(n.tenant_id),
        connection_id: Set(n.connection_id),
        auth_time: Set(n.auth_time),
        amr: Set(crate::util::to_json_list(&n.amr)),
        acr: Set(Some(n.acr)),
        created_at: Set(n.created_at),
        expires_at: Set(n.expires_at),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
}

/// The session whose cookie hashes to `cookie_hash`, if it is live at `now`.
pub async fn live_by_cookie(db: &impl ConnectionTrait, cookie_hash: &str, now: i64) -> Result<Option<Model>, DbErr> {
    Ok(session::Entity::find()
        .filter(session::Column::CookieHash.eq(cookie_hash))
        .one(db)
        .await?
        .filter(|s| s.revoked_at.is_none() && s.expires_at > now))
}

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    session::Entity::find_by_id(id.to_string()).one(db).await
}

/// The session `id` if it is not revoked (none or one).
pub async fn unrevoked(db: &impl ConnectionTrait, id: &str) -> Result<Vec<Model>, DbErr> {
    session::Entity::find()
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::RevokedAt.is_null())
        .all(db)
        .await
}

/// A user's sessions that are not revoked.
pub async fn unrevoked_of_user(db: &impl ConnectionTrait, user_id: &str) -> Result<Vec<Model>, DbErr> {
    session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .all(db)
        .await
}

/// Marks these sessions revoked at `now` (those not revoked already).
pub async fn revoke(db: &impl ConnectionTrait, ids: &[String], now: i64) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, now.into())
        .filter(session::Column::Id.is_in(ids.to_vec()))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// A session with everything tokens say about its person: see [`subject`].
pub struct SubjectRow {
    pub user: user::Model,
    pub session: session::Model,
    pub tenant: tenant::Model,
    /// The session's connection type (`None`: the connection is gone).
    pub connection_type: Option<String>,
    /// The groups of the identity through the session's connection (a JSON list), if any.
    pub groups: Option<String>,
    /// The address the session's connection vouched for at its last login, if any.
    pub vouched_email: Option<String>,
    /// The `tenant_domains` row of that address's domain, if there is one.
    pub vouched_domain: Option<tenant_domain::Model>,
}

/// Loads user, session, tenant, connection type and the identity's groups and vouched email in
/// ONE query: every statement is a round trip to the database (a thread hop on SQLite), and this
/// runs on every code exchange and refresh. `None` unless session `session_id` belongs to user
/// `user_id`.
pub async fn subject(db: &impl ConnectionTrait, user_id: &str, session_id: &str) -> Result<Option<SubjectRow>, DbErr> {
    use sea_orm::FromQueryResult;
    fn cols<C: sea_orm::ColumnTrait + sea_orm::Iterable>(alias: &str) -> String {
        C::iter().map(|c| format!("{alias}.{0} AS {alias}_{0}", c.as_str())).collect::<Vec<_>>().join(", ")
    }
    let backend = db.get_database_backend();
    let (p1, p2) = match backend {
        sea_orm::DbBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    let sql = format!(
        "SELECT {}, {}, {}, {}, c.conn_type AS c_conn_type, i.groups AS i_groups, i.verified_email AS i_verified_email \
         FROM sessions s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = u.tenant_id \
         LEFT JOIN connections c ON c.id = s.connection_id \
         LEFT JOIN identities i ON i.user_id = u.id AND i.connection_id = s.connection_id \
         LEFT JOIN tenant_domains d ON d.domain = i.verified_email_domain \
         WHERE s.id = {p1} AND u.id = {p2}",
        cols::<user::Column>("u"),
        cols::<session::Column>("s"),
        cols::<tenant::Column>("t"),
        cols::<tenant_domain::Column>("d"),
    );
    let stmt = sea_orm::Statement::from_sql_and_values(backend, sql, [session_id.into(), user_id.into()]);
    let Some(row) = db.query_one_raw(stmt).await? else { return Ok(None) };
    Ok(Some(SubjectRow {
        user: user::Model::from_query_result(&row, "u_")?,
        session: session::Model::from_query_result(&row, "s_")?,
        tenant: tenant::Model::from_query_result(&row, "t_")?,
        connection_type: row.try_get("", "c_conn_type")?,
        groups: row.try_get("", "i_groups")?,
        vouched_email: row.try_get("", "i_verified_email")?,
        vouched_domain: tenant_domain::Model::from_query_result_optional(&row, "d_")?,
    }))
}
