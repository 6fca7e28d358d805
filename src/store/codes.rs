//! Queries on authorization codes (`auth_codes`): stored as hashes, single use.
use super::entities::auth_code;
use super::sessions::SubjectFound;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// A code to store (its hash only).
#[derive(Debug, Clone)]
pub struct NewCode {
    pub code_hash: String,
    pub login_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub session_id: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewCode) -> Result<(), DbErr> {
    active(n).insert(db).await?;
    Ok(())
}

/// The row [`insert`] writes.
pub(super) fn active(n: NewCode) -> auth_code::ActiveModel {
    auth_code::ActiveModel {
        code_hash: Set(n.code_hash),
        login_id: Set(n.login_id),
        client_id: Set(n.client_id),
        redirect_uri: Set(n.redirect_uri),
        user_id: Set(n.user_id),
        session_id: Set(n.session_id),
        scope: Set(n.scope),
        nonce: Set(n.nonce),
        code_challenge: Set(n.code_challenge),
        auth_time: Set(n.auth_time),
        created_at: Set(n.created_at),
        expires_at: Set(n.expires_at),
        used_at: Set(None),
        grant_id: Set(None),
    }
}

/// Marks the unused code `code_hash` used at `now` by grant `grant_id` and returns it; `None`
/// when it is unknown or already used (one statement: a code is exchanged at most once).
pub async fn claim(
    db: &impl ConnectionTrait,
    code_hash: &str,
    now: i64,
    grant_id: &str,
) -> Result<Option<auth_code::Model>, DbErr> {
    let claimed = claim_query(code_hash, now, grant_id).exec_with_returning(db).await?;
    Ok(claimed.into_iter().next())
}

/// [`claim`]'s `UPDATE`: the code, only while unused.
fn claim_query(code_hash: &str, now: i64, grant_id: &str) -> sea_orm::UpdateMany<auth_code::Entity> {
    auth_code::Entity::update_many()
        .col_expr(auth_code::Column::UsedAt, now.into())
        .col_expr(auth_code::Column::GrantId, grant_id.into())
        .filter(auth_code::Column::CodeHash.eq(code_hash))
        .filter(auth_code::Column::UsedAt.is_null())
}

/// [`claim`] and the subject the code was issued for ([`super::sessions::subject`], its session
/// required, with the claim configuration of `client_id`). On PostgreSQL that is ONE statement:
/// the claim's `UPDATE … RETURNING` in a data-modifying CTE, and the subject read `LATERAL` from
/// its row (one round trip less on every code exchange). SQLite has no DML in a CTE: there it is
/// the two statements. `None`: nothing was claimed (unknown or used code); `Some((code, None))`:
/// claimed, but its user or session is gone.
pub async fn claim_with_subject(
    db: &impl super::inline::ReadConn,
    code_hash: &str,
    now: i64,
    grant_id: &str,
    client_id: &str,
) -> Result<Option<(auth_code::Model, Option<SubjectFound>)>, DbErr> {
    use super::sessions::{self, SessionJoin};
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        let Some(code) = claim(db, code_hash, now, grant_id).await? else { return Ok(None) };
        let subject = sessions::subject(db, &code.user_id, &code.session_id, client_id, SessionJoin::Required).await?;
        return Ok(Some((code, subject)));
    }
    let Some(row) = db.query_one_raw(claim_with_subject_statement(code_hash, now, grant_id, client_id)).await? else {
        return Ok(None);
    };
    use sea_orm::FromQueryResult;
    let code = auth_code::Model::from_query_result(&row, CLAIMED)?;
    let found = row.try_get::<Option<String>>("", "u_id")?.is_some();
    let subject = if found { Some(sessions::subject_of_row(&row)?) } else { None };
    Ok(Some((code, subject)))
}

/// The prefix of the claimed code's columns in [`claim_with_subject`]'s row.
const CLAIMED: &str = "claimed_";

/// [`claim_with_subject`]'s PostgreSQL statement: sea-orm's own `UPDATE … RETURNING` of
/// [`claim`] in a CTE, the subject query joined `LATERAL` with the claimed row's user and session.
fn claim_with_subject_statement(code_hash: &str, now: i64, grant_id: &str, client_id: &str) -> sea_orm::Statement {
    use super::sessions::{subject_sql, SessionJoin};
    use sea_orm::{IdenStatic, Iterable, QueryTrait};
    let backend = sea_orm::DbBackend::Postgres;
    let mut update = claim_query(code_hash, now, grant_id).into_query();
    update.returning_all();
    let built = backend.build(&update);
    let sql = built.sql;
    let mut values = built.values.map(|v| v.0).unwrap_or_default();
    let client = format!("${}", values.len() + 1);
    values.push(client_id.into());
    let claimed_cols = auth_code::Column::iter()
        .map(|c| format!("claimed.\"{0}\" AS {CLAIMED}{0}", c.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let (user, session) = (auth_code::Column::UserId.as_str(), auth_code::Column::SessionId.as_str());
    let subject = subject_sql(
        backend,
        &format!("claimed.\"{user}\""),
        &format!("claimed.\"{session}\""),
        &client,
        SessionJoin::Required,
    );
    let sql = format!(
        "WITH claimed AS ({sql}) SELECT {claimed_cols}, sub.* FROM claimed LEFT JOIN LATERAL ({subject}) sub ON TRUE"
    );
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

pub async fn get(db: &impl ConnectionTrait, code_hash: &str) -> Result<Option<auth_code::Model>, DbErr> {
    auth_code::Entity::find_by_id(code_hash.to_string()).one(db).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_and_subject_in_one_postgres_statement() {
        let st = claim_with_subject_statement("hash", 7, "gr_1", "cli_1");
        let values = st.values.as_ref().map(|v| v.0.clone()).unwrap_or_default();
        // The claim's own values (used_at, grant_id, code_hash), then the client.
        assert_eq!(values, vec![7i64.into(), "gr_1".into(), "hash".into(), "cli_1".into()]);
        assert!(st.sql.starts_with("WITH claimed AS (UPDATE \"auth_codes\" SET "), "{}", st.sql);
        assert!(st.sql.contains(" RETURNING "), "{}", st.sql);
        assert!(st.sql.contains("LEFT JOIN LATERAL ("), "{}", st.sql);
        // The subject is the claimed row's user and session, the client the last parameter.
        assert!(st.sql.contains("WHERE u.id = claimed.\"user_id\""), "{}", st.sql);
        assert!(st.sql.contains("s.id = claimed.\"session_id\""), "{}", st.sql);
        assert!(st.sql.contains("ccc.owner_id = $4"), "{}", st.sql);
        assert!(!st.sql.contains("$5"), "{}", st.sql);
    }
}
