//! Queries on grants (`grants`: what one code exchange issued, the family of its refresh
//! tokens) and on revoked access tokens (`revoked_tokens`, by `jti`).
use super::entities::{grant, revoked_token};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<grant::Model>, DbErr> {
    grant::Entity::find_by_id(id.to_string()).one(db).await
}

pub async fn insert(db: &impl ConnectionTrait, g: &grant::Model) -> Result<(), DbErr> {
    grant::Entity::insert(grant::ActiveModel::from(g.clone())).exec_without_returning(db).await?;
    Ok(())
}

/// Inserts a grant and, when `refresh_hash` is given, its first refresh token (created `now`,
/// expiring with the grant). On PostgreSQL that is ONE statement, a data-modifying CTE (one
/// round trip, on every code exchange); SQLite has no DML in a CTE, so there it is two.
pub async fn insert_with_refresh(
    db: &impl ConnectionTrait,
    g: &grant::Model,
    refresh_hash: Option<&str>,
    now: i64,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    match (backend, refresh_hash) {
        (sea_orm::DbBackend::Postgres, Some(hash)) => {
            db.execute_raw(with_refresh_statement(g, hash, now)).await?;
        }
        _ => {
            insert(db, g).await?;
            if let Some(hash) = refresh_hash {
                super::refresh_tokens::insert(db, hash, &g.id, now, g.expires_at).await?;
            }
        }
    }
    Ok(())
}

/// [`insert_with_refresh`]'s PostgreSQL statement: the grant's own `INSERT` (as sea-orm builds
/// it) in a CTE, and the refresh token inserted from its `RETURNING` row.
fn with_refresh_statement(g: &grant::Model, hash: &str, now: i64) -> sea_orm::Statement {
    use super::entities::refresh_token::{self, Column as R};
    use sea_orm::{EntityName, IdenStatic, QueryTrait};
    let backend = sea_orm::DbBackend::Postgres;
    let grant = grant::Entity::insert(grant::ActiveModel::from(g.clone())).build(backend);
    let mut values = grant.values.map(|v| v.0).unwrap_or_default();
    let n = values.len();
    let cols = [R::TokenHash, R::GrantId, R::CreatedAt, R::ExpiresAt].map(|c| format!("\"{}\"", c.as_str()));
    let (id, table) = (grant::Column::Id.as_str(), refresh_token::Entity.table_name());
    let sql = format!(
        "WITH g AS ({} RETURNING \"{id}\") INSERT INTO \"{table}\" ({}) SELECT ${}, g.\"{id}\", ${}, ${} FROM g",
        grant.sql,
        cols.join(", "),
        n + 1,
        n + 2,
        n + 3,
    );
    values.extend([hash.into(), now.into(), g.expires_at.into()]);
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// Revokes a grant (if still live) and deletes every refresh token in it (the token family).
pub async fn revoke(db: &impl ConnectionTrait, grant_id: &str, reason: &str, now: i64) -> Result<(), DbErr> {
    grant::Entity::update_many()
        .col_expr(grant::Column::RevokedAt, now.into())
        .col_expr(grant::Column::RevokedReason, reason.into())
        .filter(grant::Column::Id.eq(grant_id))
        .filter(grant::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    super::refresh_tokens::delete_of_grant(db, grant_id).await
}

/// The grants [`revoke_all`] revokes.
#[derive(Debug, Clone, Copy)]
pub enum Of<'a> {
    /// A user's live grants (deactivation, deletion, an admin's request).
    LiveOfUser(&'a str),
    /// Every grant made under one of these sessions (the sessions end).
    Sessions(&'a [String]),
}

/// [`revoke`] of every grant `of` names, in at most two statements whatever their number
/// ([`revoke`] for each cost two apiece: a user signed in on five devices, ten).
/// - A user's live grants: revoked with `reason` by one `UPDATE … RETURNING id`, then the
///   refresh tokens of those it revoked deleted (none revoked, as for a user who never signed
///   in: one statement).
/// - The grants of sessions: their refresh tokens deleted (those of grants revoked before too,
///   as [`revoke`] did), then the live ones revoked with `reason`.
pub async fn revoke_all(db: &impl ConnectionTrait, of: Of<'_>, reason: &str, now: i64) -> Result<(), DbErr> {
    use super::entities::refresh_token;
    use sea_orm::{Condition, IdenStatic, QuerySelect, QueryTrait};
    let backend = db.get_database_backend();
    let revoke = |named: Condition| {
        grant::Entity::update_many()
            .col_expr(grant::Column::RevokedAt, now.into())
            .col_expr(grant::Column::RevokedReason, reason.into())
            .filter(named)
            .filter(grant::Column::RevokedAt.is_null())
    };
    match of {
        Of::LiveOfUser(user_id) => {
            let mut update = revoke(Condition::all().add(grant::Column::UserId.eq(user_id))).into_query();
            update.returning_col(grant::Column::Id);
            let revoked: Vec<String> = db
                .query_all_raw(backend.build(&update))
                .await?
                .iter()
                .map(|r| r.try_get::<String>("", grant::Column::Id.as_str()))
                .collect::<Result<_, _>>()?;
            if !revoked.is_empty() {
                refresh_token::Entity::delete_many()
                    .filter(refresh_token::Column::GrantId.is_in(revoked))
                    .exec(db)
                    .await?;
            }
        }
        Of::Sessions([]) => {}
        Of::Sessions(ids) => {
            let named = Condition::all().add(grant::Column::SessionId.is_in(ids.to_vec()));
            let grants = grant::Entity::find().select_only().column(grant::Column::Id).filter(named.clone());
            refresh_token::Entity::delete_many()
                .filter(refresh_token::Column::GrantId.in_subquery(grants.into_query()))
                .exec(db)
                .await?;
            revoke(named).exec(db).await?;
        }
    }
    Ok(())
}

/// Records an access token's `jti` as revoked until `expires_at`. Revoking it twice is fine.
pub async fn revoke_access_token(db: &impl ConnectionTrait, jti: &str, expires_at: i64) -> Result<(), DbErr> {
    let row = revoked_token::ActiveModel { jti: Set(jti.to_string()), expires_at: Set(expires_at) };
    match revoked_token::Entity::insert(row).exec_without_returning(db).await {
        Ok(_) => Ok(()),
        Err(e) if super::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn access_token_revoked(db: &impl ConnectionTrait, jti: &str) -> Result<bool, DbErr> {
    Ok(revoked_token::Entity::find_by_id(jti.to_string()).one(db).await?.is_some())
}

/// What a user's access token speaks for, in ONE query (this runs on every userinfo call and
/// every introspection): whether its `jti` is on the deny list, its grant and the grant's user.
/// `None` when the grant or its user is gone.
pub async fn access_token_owner(
    db: &impl super::inline::ReadConn,
    jti: &str,
    grant_id: &str,
) -> Result<Option<(bool, grant::Model, super::entities::user::Model)>, DbErr> {
    use super::entities::user;
    use super::prefixed_cols as cols;
    use sea_orm::FromQueryResult;
    let backend = db.get_database_backend();
    let (p1, p2) = match backend {
        sea_orm::DbBackend::Postgres => ("$1", "$2"),
        _ => ("?1", "?2"),
    };
    let sql = format!(
        "SELECT {}, {}, EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = {p1}) AS jti_revoked \
         FROM grants g JOIN users u ON u.id = g.user_id WHERE g.id = {p2}",
        cols::<grant::Column>("g"),
        cols::<user::Column>("u"),
    );
    let stmt = sea_orm::Statement::from_sql_and_values(backend, sql, [jti.into(), grant_id.into()]);
    if let Some(r) = db.inline() {
        return super::inline::access_token_owner(&r, &stmt);
    }
    let Some(row) = db.query_one_raw(stmt).await? else { return Ok(None) };
    let revoked: bool = row.try_get("", "jti_revoked")?;
    Ok(Some((revoked, grant::Model::from_query_result(&row, "g_")?, user::Model::from_query_result(&row, "u_")?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_and_refresh_token_in_one_postgres_statement() {
        let g = grant::Model {
            id: "gr_1".into(),
            client_id: "cli_1".into(),
            user_id: "usr_1".into(),
            tenant_id: "org_1".into(),
            session_id: "ses_1".into(),
            scope: "openid".into(),
            auth_time: 1,
            created_at: 2,
            expires_at: 3,
            revoked_at: None,
            revoked_reason: None,
        };
        let st = with_refresh_statement(&g, "hash", 2);
        let n = st.values.as_ref().map_or(0, |v| v.0.len());
        assert!(st.sql.starts_with("WITH g AS (INSERT INTO \"grants\" "), "{}", st.sql);
        assert!(
            st.sql.ends_with(&format!(
                " RETURNING \"id\") INSERT INTO \"refresh_tokens\" (\"token_hash\", \"grant_id\", \"created_at\", \
                 \"expires_at\") SELECT ${}, g.\"id\", ${}, ${n} FROM g",
                n - 2,
                n - 1
            )),
            "{}",
            st.sql
        );
        crate::store::placeholders_match(&st);
    }
}
