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
    active(n).insert(db).await
}

/// The row [`insert`] writes.
pub(super) fn active(n: NewSession) -> session::ActiveModel {
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

/// A session with everything tokens say about its person: see [`subject`]. `S` is the session:
/// present (the default), or `Option` while [`subject`] may not have found it ([`SubjectFound`]).
pub struct SubjectRow<S = session::Model> {
    pub user: user::Model,
    pub session: S,
    pub tenant: tenant::Model,
    /// The session's connection type (`None`: the connection is gone).
    pub connection_type: Option<String>,
    /// The groups of the identity through the session's connection (a JSON list), if any.
    pub groups: Option<String>,
    /// The address the session's connection vouched for at its last login, if any.
    pub vouched_email: Option<String>,
    /// The `tenant_domains` row of that address's domain, if there is one.
    pub vouched_domain: Option<tenant_domain::Model>,
    /// The display names of the user's SCIM groups, sorted (byte order).
    pub scim_groups: Vec<String>,
    /// The claim configuration of the tenant and of the client asked for (`claim_configs`).
    pub claims: ClaimRows,
}

/// The `claim_configs` columns an issuance reads: the tenant's rules and hook, the client's rules.
#[derive(Debug, Clone, Default)]
pub struct ClaimRows {
    pub tenant_rules: Option<String>,
    pub tenant_hook: Option<String>,
    pub client_rules: Option<String>,
}

/// Whether [`subject`] requires the session row (token grants) or tolerates its absence
/// (userinfo on a token whose session has since been cleaned up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionJoin {
    Required,
    Optional,
}

/// Loads user, session, tenant, connection type, the identity's groups and vouched email, the
/// user's SCIM groups and the claim configuration of the tenant and of client `client_id`, in
/// ONE query: every statement is a round trip to the database (a thread hop on SQLite), and this
/// runs on every code exchange, refresh and userinfo call. `None` unless user `user_id` exists
/// (and, with [`SessionJoin::Required`], session `session_id` belongs to it).
pub async fn subject(
    db: &impl super::inline::ReadConn,
    user_id: &str,
    session_id: &str,
    client_id: &str,
    join: SessionJoin,
) -> Result<Option<SubjectFound>, DbErr> {
    let backend = db.get_database_backend();
    // Numbered on SQLite: the parameters appear out of order in the text.
    let (p1, p2, p3) = match backend {
        sea_orm::DbBackend::Postgres => ("$1", "$2", "$3"),
        _ => ("?1", "?2", "?3"),
    };
    let sql = subject_sql(backend, p1, p2, p3, join);
    let stmt =
        sea_orm::Statement::from_sql_and_values(backend, sql, [user_id.into(), session_id.into(), client_id.into()]);
    if let Some(r) = db.inline() {
        return super::inline::subject(&r, &stmt);
    }
    let Some(row) = db.query_one_raw(stmt).await? else { return Ok(None) };
    Ok(Some(subject_of_row(&row)?))
}

/// [`subject`]'s query, with the user, the session and the client named by these SQL
/// expressions (parameters, or columns of an enclosing statement: [`super::codes::claim_with_subject`]).
pub(super) fn subject_sql(
    backend: sea_orm::DbBackend,
    user: &str,
    session: &str,
    client: &str,
    join: SessionJoin,
) -> String {
    use super::prefixed_cols as cols;
    let groups = match backend {
        sea_orm::DbBackend::Postgres => {
            "(SELECT json_agg(g.display_name)::text FROM scim_group_members m \
             JOIN scim_groups g ON g.id = m.group_id WHERE m.user_id = u.id)"
        }
        _ => {
            "(SELECT json_group_array(g.display_name) FROM scim_group_members m \
             JOIN scim_groups g ON g.id = m.group_id WHERE m.user_id = u.id)"
        }
    };
    let session_join = match join {
        SessionJoin::Required => "JOIN",
        SessionJoin::Optional => "LEFT JOIN",
    };
    format!(
        "SELECT {}, {}, {}, {}, c.conn_type AS c_conn_type, i.groups AS i_groups, i.verified_email AS i_verified_email, \
         {groups} AS scim_groups, cct.rules AS cct_rules, cct.token_hook AS cct_hook, ccc.rules AS ccc_rules \
         FROM users u JOIN tenants t ON t.id = u.tenant_id \
         {session_join} sessions s ON s.id = {session} AND s.user_id = u.id \
         LEFT JOIN connections c ON c.id = s.connection_id \
         LEFT JOIN identities i ON i.user_id = u.id AND i.connection_id = s.connection_id \
         LEFT JOIN tenant_domains d ON d.domain = i.verified_email_domain \
         LEFT JOIN claim_configs cct ON cct.owner_id = t.id \
         LEFT JOIN claim_configs ccc ON ccc.owner_id = {client} \
         WHERE u.id = {user}",
        cols::<user::Column>("u"),
        cols::<session::Column>("s"),
        cols::<tenant::Column>("t"),
        cols::<tenant_domain::Column>("d"),
    )
}

/// A row of [`subject_sql`] (on the pool's path; `store::inline` decodes its own).
pub(super) fn subject_of_row(row: &sea_orm::QueryResult) -> Result<SubjectFound, DbErr> {
    use sea_orm::FromQueryResult;
    let scim_groups = group_names(row.try_get::<Option<String>>("", "scim_groups")?);
    Ok(SubjectFound {
        user: user::Model::from_query_result(row, "u_")?,
        session: session::Model::from_query_result_optional(row, "s_")?,
        tenant: tenant::Model::from_query_result(row, "t_")?,
        connection_type: row.try_get("", "c_conn_type")?,
        groups: row.try_get("", "i_groups")?,
        vouched_email: row.try_get("", "i_verified_email")?,
        vouched_domain: tenant_domain::Model::from_query_result_optional(row, "d_")?,
        scim_groups,
        claims: ClaimRows {
            tenant_rules: row.try_get("", "cct_rules")?,
            tenant_hook: row.try_get("", "cct_hook")?,
            client_rules: row.try_get("", "ccc_rules")?,
        },
    })
}

/// The SCIM group names of [`subject`]'s JSON list, sorted by bytes (both databases alike).
pub(super) fn group_names(json: Option<String>) -> Vec<String> {
    let mut names: Vec<String> = json
        .and_then(|j| serde_json::from_str::<Vec<Option<String>>>(&j).ok())
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    names.sort();
    names
}

/// What [`subject`] found: a [`SubjectRow`] whose session may be missing
/// ([`SessionJoin::Optional`]).
pub type SubjectFound = SubjectRow<Option<session::Model>>;

impl SubjectFound {
    /// The row with its session, if it has one.
    pub fn with_session(self) -> Option<SubjectRow> {
        let session = self.session?;
        Some(SubjectRow {
            user: self.user,
            session,
            tenant: self.tenant,
            connection_type: self.connection_type,
            groups: self.groups,
            vouched_email: self.vouched_email,
            vouched_domain: self.vouched_domain,
            scim_groups: self.scim_groups,
            claims: self.claims,
        })
    }
}
