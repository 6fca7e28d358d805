//! Removes rows whose life is over: pending logins, codes, sessions, grants and their refresh
//! tokens, revoked-token markers.
//!
//! Every prune deletes in bounded batches (`DELETE ... WHERE key IN (SELECT key ... LIMIT n)`,
//! at most [`MAX_BATCHES`] per table and run), so a large backlog never holds long locks or one
//! huge transaction: the next run (a minute later) goes on where this one stopped.
use crate::store::entities::{
    auth_code, grant, login, refresh_token, revoked_token, saml_assertion, scim_page_hint, session,
};
use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

/// Keep finished logins this long (seconds) for support.
const LOGIN_RETENTION: i64 = 7 * 86400;
/// Rows per delete statement.
pub const BATCH: u64 = 1000;
/// Rows per delete statement of the wide tables (login traces, about 1 kB of JSON and seven
/// indexes a row; the SCIM request log) on SQLite. SQLite has one writer: a 1,000-row batch of
/// traces held the write lock up to 1 s at 1M rows on a loaded machine, and every other write
/// (logins, SCIM) waited that long. PostgreSQL keeps [`BATCH`] (row locks only, 46 ms at most).
pub const WIDE_BATCH_SQLITE: u64 = 200;
/// Statements per table and run (so at most `batch * MAX_BATCHES` rows per table a run).
pub const MAX_BATCHES: u64 = 50;

/// The batch size of a wide table on `db`'s backend: [`WIDE_BATCH_SQLITE`] on SQLite,
/// [`BATCH`] on PostgreSQL.
pub fn wide_batch(db: &impl ConnectionTrait) -> u64 {
    match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => WIDE_BATCH_SQLITE,
        _ => BATCH,
    }
}

/// Deletes the rows matching `cond`, [`BATCH`] at a time, at most [`MAX_BATCHES`] times.
pub async fn delete_batched<E, C>(db: &C, key: E::Column, cond: impl IntoCondition) -> Result<u64, sea_orm::DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    delete_batched_sized::<E, C>(db, key, cond, BATCH).await
}

/// Deletes the rows matching `cond`, `batch` at a time, at most [`MAX_BATCHES`] times.
pub async fn delete_batched_sized<E, C>(
    db: &C,
    key: E::Column,
    cond: impl IntoCondition,
    batch: u64,
) -> Result<u64, sea_orm::DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    delete_batched_by::<E, C>(db, &[key], cond.into_condition(), batch, |keys| match keys {
        [one] => Expr::col(*one),
        many => Expr::tuple(many.iter().map(|c| Expr::col(*c))),
    })
    .await
}

async fn delete_batched_by<E, C>(
    db: &C,
    keys: &[E::Column],
    cond: sea_orm::Condition,
    batch: u64,
    lhs: impl Fn(&[E::Column]) -> Expr,
) -> Result<u64, sea_orm::DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let batch = std::cmp::max(batch, 1);
    let mut n = 0;
    for _ in 0..MAX_BATCHES {
        let sub: SelectStatement = Query::select()
            .columns(keys.iter().copied())
            .from(E::default())
            .cond_where(cond.clone())
            .limit(batch)
            .to_owned();
        let done = E::delete_many().filter(lhs(keys).in_subquery(sub)).exec(db).await?.rows_affected;
        n += done;
        if done < batch {
            return Ok(n);
        }
    }
    tracing::info!(
        table = E::default().table_name(),
        rows = n,
        "row limit of this clean-up run reached; the next run goes on"
    );
    Ok(n)
}

pub async fn expired(db: &impl ConnectionTrait, now: i64) -> Result<u64, sea_orm::DbErr> {
    let mut n = 0;
    n += delete_batched::<login::Entity, _>(db, login::Column::Id, login::Column::ExpiresAt.lt(now - LOGIN_RETENTION))
        .await?;
    // Logins that never reached a connection have no trace and nothing to support: they go as
    // soon as they expire (an anonymous flood of authorization requests leaves nothing behind).
    n += delete_batched::<login::Entity, _>(
        db,
        login::Column::Id,
        login::Column::ConnectionId.is_null().and(login::Column::ExpiresAt.lt(now)),
    )
    .await?;
    n += delete_batched::<auth_code::Entity, _>(
        db,
        auth_code::Column::CodeHash,
        auth_code::Column::ExpiresAt.lt(now - 3600),
    )
    .await?;
    n += delete_batched_by::<saml_assertion::Entity, _>(
        db,
        &[saml_assertion::Column::ConnectionId, saml_assertion::Column::AssertionId],
        saml_assertion::Column::ExpiresAt.lt(now).into_condition(),
        BATCH,
        |keys| Expr::tuple(keys.iter().map(|c| Expr::col(*c))),
    )
    .await?;
    n += delete_batched::<session::Entity, _>(db, session::Column::Id, session::Column::ExpiresAt.lt(now)).await?;
    n += delete_batched::<refresh_token::Entity, _>(
        db,
        refresh_token::Column::TokenHash,
        refresh_token::Column::ExpiresAt.lt(now),
    )
    .await?;
    let dead = Query::select()
        .column(grant::Column::Id)
        .from(grant::Entity)
        .and_where(grant::Column::ExpiresAt.lt(now))
        .to_owned();
    let orphans = delete_batched::<refresh_token::Entity, _>(
        db,
        refresh_token::Column::TokenHash,
        refresh_token::Column::GrantId.in_subquery(dead),
    )
    .await?;
    n += orphans;
    // Grants go once their refresh tokens are gone (else the next run finishes the tokens first).
    if orphans < BATCH * MAX_BATCHES {
        n += delete_batched::<grant::Entity, _>(db, grant::Column::Id, grant::Column::ExpiresAt.lt(now)).await?;
    }
    n += delete_batched::<revoked_token::Entity, _>(
        db,
        revoked_token::Column::Jti,
        revoked_token::Column::ExpiresAt.lt(now),
    )
    .await?;
    n += delete_batched::<scim_page_hint::Entity, _>(
        db,
        scim_page_hint::Column::Id,
        scim_page_hint::Column::ExpiresAt.lt(now),
    )
    .await?;
    if n > 0 {
        tracing::debug!(rows = n, "expired rows removed");
    }
    Ok(n)
}

/// Removes support rows older than their retention: finished deliveries (never a pending one)
/// and delivery attempts older than `deliveries_before`, SCIM request log entries older than
/// `scim_requests_before`. Batched like every prune (the SCIM request log in
/// [`wide_batch`]es).
pub async fn retention(
    db: &impl ConnectionTrait,
    deliveries_before: i64,
    scim_requests_before: i64,
) -> Result<u64, sea_orm::DbErr> {
    use crate::store::entities::{delivery, delivery_attempt, scim_request};
    let mut n = delete_batched::<delivery_attempt::Entity, _>(
        db,
        delivery_attempt::Column::Seq,
        delivery_attempt::Column::At.lt(deliveries_before),
    )
    .await?;
    n += delete_batched::<delivery::Entity, _>(
        db,
        delivery::Column::Id,
        delivery::Column::FinishedAt.is_not_null().and(delivery::Column::FinishedAt.lt(deliveries_before)),
    )
    .await?;
    n += delete_batched_sized::<scim_request::Entity, _>(
        db,
        scim_request::Column::Id,
        scim_request::Column::CreatedAt.lt(scim_requests_before),
        wide_batch(db),
    )
    .await?;
    Ok(n)
}
