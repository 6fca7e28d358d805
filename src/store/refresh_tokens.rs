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

pub async fn get(db: &impl ConnectionTrait, token_hash: &str) -> Result<Option<Model>, DbErr> {
    refresh_token::Entity::find_by_id(token_hash.to_string()).one(db).await
}

/// Deletes every refresh token of a grant.
pub async fn delete_of_grant(db: &impl ConnectionTrait, grant_id: &str) -> Result<(), DbErr> {
    refresh_token::Entity::delete_many().filter(refresh_token::Column::GrantId.eq(grant_id)).exec(db).await?;
    Ok(())
}
