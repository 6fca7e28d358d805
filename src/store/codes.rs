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

/// What a code exchange asks of the code it redeems, checked in the statement that redeems it
/// ([`redeem`]).
#[derive(Debug, Clone, Copy)]
pub struct Redeem<'a> {
    pub code_hash: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    /// The S256 challenge of the verifier sent (`None`: no verifier was sent, so the code must
    /// have no challenge).
    pub challenge: Option<&'a str>,
    pub now: i64,
    /// The grant to open: its id and when it (and its refresh token) expires.
    pub grant_id: &'a str,
    pub grant_expires_at: i64,
    /// The hash of the grant's first refresh token, when the client gets one.
    pub refresh_hash: Option<&'a str>,
}

/// A code [`redeem`] redeemed: the code (now used), the grant it opened, and its subject.
pub struct Redeemed {
    pub code: auth_code::Model,
    pub grant: super::entities::grant::Model,
    pub subject: SubjectFound,
}

/// A whole code exchange in ONE statement on PostgreSQL (no `BEGIN`, no `COMMIT`: a single
/// statement is its own transaction): the code is claimed only if it is unused, issued to
/// this client for this redirect_uri, unexpired, its PKCE challenge is the verifier's (or it
/// has none and none was sent), and its user is active and its session live; then the grant
/// and its first refresh token are inserted from the claimed row, and the row comes back with
/// the subject ([`super::sessions::subject`]'s query, the claim configuration of the client).
///
/// `None` when any of that does not hold, and always on SQLite (no DML in a CTE): nothing was
/// written, and the caller takes the transactional path ([`claim_with_subject`]), which says
/// why (a replayed code, another client's, an expired one, a failed PKCE check) and acts on it
/// (a replay revokes the first exchange's grant). Two exchanges of one code at once: the
/// second `UPDATE` waits for the first, then finds the code used, and claims nothing.
pub async fn redeem(db: &super::Db, r: &Redeem<'_>) -> Result<Option<Redeemed>, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(None);
    }
    let Some(row) = db.query_one_raw(redeem_statement(r)).await? else { return Ok(None) };
    use sea_orm::FromQueryResult;
    Ok(Some(Redeemed {
        code: auth_code::Model::from_query_result(&row, CLAIMED)?,
        grant: super::entities::grant::Model::from_query_result(&row, GRANTED)?,
        subject: super::sessions::subject_of_row(&row)?,
    }))
}

/// The prefix of the opened grant's columns in [`redeem`]'s row.
const GRANTED: &str = "granted_";

/// [`redeem`]'s statement (PostgreSQL).
fn redeem_statement(r: &Redeem<'_>) -> sea_orm::Statement {
    use super::entities::{grant, refresh_token};
    use super::sessions::{subject_sql, SessionJoin};
    use sea_orm::sea_query::Value;
    use sea_orm::{EntityName, IdenStatic, Iterable};
    let backend = sea_orm::DbBackend::Postgres;
    let mut values: Vec<Value> = Vec::new();
    let mut p = super::pg_bind(&mut values);
    let (hash, client, now, redirect) =
        (p(r.code_hash.into()), p(r.client_id.into()), p(r.now.into()), p(r.redirect_uri.into()));
    let pkce = match r.challenge {
        Some(ch) => format!("\"code_challenge\" = {}", p(ch.into())),
        None => "\"code_challenge\" IS NULL".to_string(),
    };
    let (grant_id, expires) = (p(r.grant_id.into()), p(r.grant_expires_at.into()));
    let refresh = r.refresh_hash.map(|h| p(h.into()));
    let codes = auth_code::Entity.table_name();
    let subject = subject_sql(backend, "cand.\"user_id\"", "cand.\"session_id\"", &client, SessionJoin::Required);
    let cols = |alias: &str, prefix: &str, names: Vec<&'static str>| {
        names.iter().map(|c| format!("{alias}.\"{c}\" AS {prefix}{c}")).collect::<Vec<_>>().join(", ")
    };
    let code_cols = cols("claimed", CLAIMED, auth_code::Column::iter().map(|c| c.as_str()).collect());
    let grant_cols = cols("g", GRANTED, grant::Column::iter().map(|c| c.as_str()).collect());
    let grant_insert_cols = [
        grant::Column::Id,
        grant::Column::ClientId,
        grant::Column::UserId,
        grant::Column::TenantId,
        grant::Column::SessionId,
        grant::Column::Scope,
        grant::Column::AuthTime,
        grant::Column::CreatedAt,
        grant::Column::ExpiresAt,
    ]
    .map(|c| format!("\"{}\"", c.as_str()))
    .join(", ");
    let refresh_cte = match refresh {
        Some(h) => format!(
            ", r AS (INSERT INTO \"{}\" (\"token_hash\", \"grant_id\", \"created_at\", \"expires_at\") \
             SELECT {h}, g.\"id\", {now}, {expires} FROM g)",
            refresh_token::Entity.table_name()
        ),
        None => String::new(),
    };
    // The checks are made on the candidate row, then again by the UPDATE's own condition on
    // the row it locks (a concurrent exchange may have used it meanwhile). The subject is one
    // row (LIMIT 1, as the transactional path's `query_one`), so one grant at most.
    let sql = format!(
        "WITH cand AS (SELECT \"user_id\", \"session_id\" FROM \"{codes}\" \
           WHERE \"code_hash\" = {hash} AND \"used_at\" IS NULL AND \"client_id\" = {client} \
           AND \"expires_at\" > {now} AND \"redirect_uri\" = {redirect} AND {pkce}), \
         sub AS (SELECT sub.* FROM cand CROSS JOIN LATERAL ({subject}) sub \
           WHERE sub.u_active AND sub.u_deleted_at IS NULL AND sub.s_revoked_at IS NULL LIMIT 1), \
         claimed AS (UPDATE \"{codes}\" SET \"used_at\" = {now}, \"grant_id\" = {grant_id} \
           WHERE \"code_hash\" = {hash} AND \"used_at\" IS NULL AND \"client_id\" = {client} \
           AND \"expires_at\" > {now} AND \"redirect_uri\" = {redirect} AND {pkce} \
           AND EXISTS (SELECT 1 FROM sub) RETURNING *), \
         g AS (INSERT INTO \"{grants}\" ({grant_insert_cols}) \
           SELECT {grant_id}, claimed.\"client_id\", claimed.\"user_id\", sub.t_id, claimed.\"session_id\", \
           claimed.\"scope\", claimed.\"auth_time\", {now}, {expires} FROM claimed CROSS JOIN sub RETURNING *)\
         {refresh_cte} \
         SELECT {code_cols}, {grant_cols}, sub.* FROM claimed CROSS JOIN g CROSS JOIN sub",
        grants = grant::Entity.table_name(),
    );
    drop(p);
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

    fn ask(challenge: Option<&'static str>, refresh: Option<&'static str>) -> Redeem<'static> {
        Redeem {
            code_hash: "hash",
            client_id: "cli_1",
            redirect_uri: "https://app/cb",
            challenge,
            now: 7,
            grant_id: "gr_1",
            grant_expires_at: 99,
            refresh_hash: refresh,
        }
    }

    #[test]
    fn a_redemption_is_one_postgres_statement_with_every_check() {
        let st = redeem_statement(&ask(Some("chal"), Some("rhash")));
        let values = st.values.as_ref().map(|v| v.0.clone()).unwrap_or_default();
        assert_eq!(
            values,
            vec![
                "hash".into(),
                "cli_1".into(),
                7i64.into(),
                "https://app/cb".into(),
                "chal".into(),
                "gr_1".into(),
                99i64.into(),
                "rhash".into()
            ]
        );
        let sql = &st.sql;
        assert!(sql.starts_with("WITH cand AS (SELECT "), "{sql}");
        // The code's checks, on the candidate and again in the UPDATE (twice each).
        for check in [
            "\"used_at\" IS NULL",
            "\"client_id\" = $2",
            "\"expires_at\" > $3",
            "\"redirect_uri\" = $4",
            "\"code_challenge\" = $5",
        ] {
            assert_eq!(sql.matches(check).count(), 2, "{check}: {sql}");
        }
        // The subject's: an active, undeleted user with a live session (required join).
        assert!(sql.contains("WHERE sub.u_active AND sub.u_deleted_at IS NULL AND sub.s_revoked_at IS NULL LIMIT 1"));
        assert!(sql.contains("JOIN sessions s ON s.id = cand.\"session_id\""), "{sql}");
        assert!(sql.contains("AND EXISTS (SELECT 1 FROM sub) RETURNING *"), "{sql}");
        assert!(sql.contains("INSERT INTO \"refresh_tokens\""), "{sql}");
        assert!(!sql.contains("$9"), "{sql}");
    }

    #[test]
    fn a_redemption_without_verifier_needs_a_code_without_challenge() {
        let st = redeem_statement(&ask(None, None));
        assert_eq!(st.sql.matches("\"code_challenge\" IS NULL").count(), 2, "{}", st.sql);
        assert!(!st.sql.contains("refresh_tokens"), "{}", st.sql);
        // hash, client, now, redirect, grant id, expiry.
        assert_eq!(st.values.as_ref().map(|v| v.0.len()), Some(6));
    }
}
