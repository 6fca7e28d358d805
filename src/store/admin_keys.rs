//! The `admin_keys` table (admin API keys, stored as SHA-256 hashes).
use super::entities::admin_key::{self, Model};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// The key with this hash, revoked or not.
pub async fn find_by_hash(db: &impl ConnectionTrait, token_hash: &str) -> Result<Option<Model>, DbErr> {
    admin_key::Entity::find().filter(admin_key::Column::TokenHash.eq(token_hash)).one(db).await
}

/// Records a key's use.
pub async fn touch(db: &impl ConnectionTrait, key: Model, now: i64) -> Result<(), DbErr> {
    let mut m: admin_key::ActiveModel = key.into();
    m.last_used_at = Set(Some(now));
    m.update(db).await?;
    Ok(())
}

pub async fn insert(
    db: &impl ConnectionTrait,
    id: &str,
    name: &str,
    token_hash: &str,
    now: i64,
) -> Result<Model, DbErr> {
    admin_key::ActiveModel {
        id: Set(id.to_string()),
        name: Set(name.to_string()),
        token_hash: Set(token_hash.to_string()),
        created_at: Set(now),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
}
