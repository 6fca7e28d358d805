//! Removes rows whose life is over: pending logins, codes, sessions, grants and their refresh
//! tokens, revoked-token markers.
use crate::store::entities::{auth_code, grant, login, refresh_token, revoked_token, saml_assertion, session};
use crate::store::Db;
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// Keep finished logins this long (seconds) for support.
const LOGIN_RETENTION: i64 = 7 * 86400;

pub async fn expired(db: &Db, now: i64) -> Result<u64, sea_orm::DbErr> {
    let mut n = 0;
    n += login::Entity::delete_many()
        .filter(login::Column::ExpiresAt.lt(now - LOGIN_RETENTION))
        .exec(db)
        .await?
        .rows_affected;
    n += auth_code::Entity::delete_many()
        .filter(auth_code::Column::ExpiresAt.lt(now - 3600))
        .exec(db)
        .await?
        .rows_affected;
    n += saml_assertion::Entity::delete_many()
        .filter(saml_assertion::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?
        .rows_affected;
    n += session::Entity::delete_many().filter(session::Column::ExpiresAt.lt(now)).exec(db).await?.rows_affected;
    n += refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?
        .rows_affected;
    let dead = Query::select()
        .column(grant::Column::Id)
        .from(grant::Entity)
        .and_where(grant::Column::ExpiresAt.lt(now))
        .to_owned();
    n += refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::GrantId.in_subquery(dead))
        .exec(db)
        .await?
        .rows_affected;
    n += grant::Entity::delete_many().filter(grant::Column::ExpiresAt.lt(now)).exec(db).await?.rows_affected;
    n += revoked_token::Entity::delete_many()
        .filter(revoked_token::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?
        .rows_affected;
    if n > 0 {
        tracing::debug!(rows = n, "expired rows removed");
    }
    Ok(n)
}
