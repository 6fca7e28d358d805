//! Queries on `signing_keys`. Rotation runs these inside one transaction under the
//! `signing_keys` lock (see `keys::ring`).
use super::entities::signing_key::{self, Model};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// Published in the JWKS, signs nothing yet.
pub const NEXT: &str = "next";
/// Signs (one per algorithm).
pub const ACTIVE: &str = "active";
/// Signs no more; published until `expires_at`.
pub const RETIRED: &str = "retired";

/// Every key row.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    signing_key::Entity::find().all(db).await
}

pub async fn insert(db: &impl ConnectionTrait, m: Model) -> Result<(), DbErr> {
    signing_key::ActiveModel::from(m).insert(db).await?;
    Ok(())
}

/// Deletes the keys whose publication ended at or before `now`; returns how many.
pub async fn delete_expired(db: &impl ConnectionTrait, now: i64) -> Result<u64, DbErr> {
    Ok(signing_key::Entity::delete_many().filter(signing_key::Column::ExpiresAt.lte(now)).exec(db).await?.rows_affected)
}

/// Makes a `next` key the active one.
pub async fn activate(db: &impl ConnectionTrait, key: Model, now: i64) -> Result<(), DbErr> {
    let mut m: signing_key::ActiveModel = key.into();
    m.state = Set(ACTIVE.into());
    m.activated_at = Set(Some(now));
    m.update(db).await?;
    Ok(())
}

/// Retires an active key: it signs no more and stays published until `expires_at`.
pub async fn retire(db: &impl ConnectionTrait, key: Model, now: i64, expires_at: i64) -> Result<(), DbErr> {
    let mut m: signing_key::ActiveModel = key.into();
    m.state = Set(RETIRED.into());
    m.retired_at = Set(Some(now));
    m.expires_at = Set(Some(expires_at));
    m.update(db).await?;
    Ok(())
}
