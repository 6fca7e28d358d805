//! Queries on refresh tokens (`refresh_tokens`): stored as hashes, rotated on every use. A
//! token is claimed (marked used) exactly once; a second claim finds nothing, and the caller
//! treats it as reuse.
use super::entities::refresh_token::{self, Model};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

pub async fn insert(
    db: &impl ConnectionTrait,
    token_hash: &str,
    grant_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), DbErr> {
    let row = refresh_token::ActiveModel {
        token_hash: Set(token_hash.to_string()),
        grant_id: Set(grant_id.to_string()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
    };
    refresh_token::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// Marks the unused token `token_hash` used at `now` and returns it; `None` when it is unknown
/// or already used (one statement, so two concurrent claims cannot both win).
pub async fn claim(db: &impl ConnectionTrait, token_hash: &str, now: i64) -> Result<Option<Model>, DbErr> {
    let claimed = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, now.into())
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec_with_returning(db)
        .await?;
    Ok(claimed.into_iter().next())
}

/// A refresh token [`rotate`] rotated: the token (now used), its grant, and the subject.
pub struct Rotated {
    pub token: Model,
    pub grant: super::entities::grant::Model,
    pub subject: super::sessions::SubjectFound,
}

/// A whole refresh in ONE statement on PostgreSQL (its own transaction, no `BEGIN` or
/// `COMMIT`): the token is claimed only if it is unused and unexpired, its grant is live
/// (not revoked, not expired) and the client's, and the grant's user is active and undeleted
/// with its session still there; then the next token (`next_hash`, expiring with the grant) is
/// inserted, and the row comes back with the grant and the subject (claim configuration of
/// `client_id`).
///
/// `None` when any of that does not hold, and always on SQLite (no DML in a CTE): nothing was
/// written, and the caller takes the transactional path, which says why (reuse of a rotated
/// token revokes its family). Two refreshes with one token at once: the second `UPDATE` waits
/// for the first, then finds the token used, and claims nothing.
pub async fn rotate(
    db: &super::Db,
    token_hash: &str,
    client_id: &str,
    next_hash: &str,
    now: i64,
) -> Result<Option<Rotated>, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(None);
    }
    let Some(row) = db.query_one_raw(rotate_statement(token_hash, client_id, next_hash, now)).await? else {
        return Ok(None);
    };
    use sea_orm::FromQueryResult;
    Ok(Some(Rotated {
        token: Model::from_query_result(&row, "rotated_")?,
        grant: super::entities::grant::Model::from_query_result(&row, "grant_")?,
        subject: super::sessions::subject_of_row(&row)?,
    }))
}

/// [`rotate`]'s statement (PostgreSQL).
fn rotate_statement(token_hash: &str, client_id: &str, next_hash: &str, now: i64) -> sea_orm::Statement {
    use super::entities::grant;
    use super::sessions::{subject_sql, SessionJoin};
    use sea_orm::{EntityName, IdenStatic, Iterable};
    let backend = sea_orm::DbBackend::Postgres;
    let tokens = refresh_token::Entity.table_name();
    let grants = grant::Entity.table_name();
    let subject = subject_sql(backend, "cand.\"user_id\"", "cand.\"session_id\"", "$2", SessionJoin::Required);
    let token_cols = refresh_token::Column::iter()
        .map(|c| format!("claimed.\"{0}\" AS rotated_{0}", c.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let grant_cols =
        grant::Column::iter().map(|c| format!("cand.\"{0}\" AS grant_{0}", c.as_str())).collect::<Vec<_>>().join(", ");
    // The checks are made on the candidate, then the UPDATE's own condition takes the token only
    // while still unused, on the row it locks.
    let sql = format!(
        "WITH cand AS (SELECT gr.* FROM \"{tokens}\" rt JOIN \"{grants}\" gr ON gr.\"id\" = rt.\"grant_id\" \
           WHERE rt.\"token_hash\" = $1 AND rt.\"used_at\" IS NULL AND rt.\"expires_at\" > $3 \
           AND gr.\"client_id\" = $2 AND gr.\"revoked_at\" IS NULL AND gr.\"expires_at\" > $3), \
         sub AS (SELECT sub.* FROM cand CROSS JOIN LATERAL ({subject}) sub \
           WHERE sub.u_active AND sub.u_deleted_at IS NULL LIMIT 1), \
         claimed AS (UPDATE \"{tokens}\" SET \"used_at\" = $3 \
           WHERE \"token_hash\" = $1 AND \"used_at\" IS NULL AND \"expires_at\" > $3 \
           AND EXISTS (SELECT 1 FROM sub) RETURNING *), \
         r AS (INSERT INTO \"{tokens}\" (\"token_hash\", \"grant_id\", \"created_at\", \"expires_at\") \
           SELECT $4, claimed.\"grant_id\", $3, cand.\"expires_at\" FROM claimed JOIN cand ON cand.\"id\" = claimed.\"grant_id\") \
         SELECT {token_cols}, {grant_cols}, sub.* FROM claimed JOIN cand ON cand.\"id\" = claimed.\"grant_id\" CROSS JOIN sub"
    );
    sea_orm::Statement::from_sql_and_values(
        backend,
        sql,
        [token_hash.into(), client_id.into(), now.into(), next_hash.into()],
    )
}

pub async fn get(db: &impl ConnectionTrait, token_hash: &str) -> Result<Option<Model>, DbErr> {
    refresh_token::Entity::find_by_id(token_hash.to_string()).one(db).await
}

/// Deletes every refresh token of a grant.
pub async fn delete_of_grant(db: &impl ConnectionTrait, grant_id: &str) -> Result<(), DbErr> {
    refresh_token::Entity::delete_many().filter(refresh_token::Column::GrantId.eq(grant_id)).exec(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_is_one_postgres_statement_with_every_check() {
        let st = rotate_statement("old", "cli_1", "new", 7);
        let values = st.values.as_ref().map(|v| v.0.clone()).unwrap_or_default();
        assert_eq!(values, vec!["old".into(), "cli_1".into(), 7i64.into(), "new".into()]);
        let sql = &st.sql;
        for check in [
            "rt.\"used_at\" IS NULL",
            "rt.\"expires_at\" > $3",
            "gr.\"client_id\" = $2",
            "gr.\"revoked_at\" IS NULL",
            "gr.\"expires_at\" > $3",
            "WHERE sub.u_active AND sub.u_deleted_at IS NULL LIMIT 1",
            "WHERE \"token_hash\" = $1 AND \"used_at\" IS NULL AND \"expires_at\" > $3 AND EXISTS (SELECT 1 FROM sub) RETURNING *",
            "JOIN sessions s ON s.id = cand.\"session_id\"",
            "SELECT $4, claimed.\"grant_id\", $3, cand.\"expires_at\"",
        ] {
            assert!(sql.contains(check), "{check}: {sql}");
        }
        assert!(!sql.contains("$5"), "{sql}");
    }
}
