//! SCIM bearer tokens as the SCIM surface reads them (the admin API creates and revokes them),
//! and the SCIM request log's batched writes.
use super::entities::{scim_request, scim_token};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// The token with this SHA-256 hash, revoked or not.
pub async fn find_by_hash(db: &impl ConnectionTrait, token_hash: &str) -> Result<Option<scim_token::Model>, DbErr> {
    scim_token::Entity::find().filter(scim_token::Column::TokenHash.eq(token_hash)).one(db).await
}

/// Records a token's use.
pub async fn touch(db: &impl ConnectionTrait, token: scim_token::Model, now: i64) -> Result<(), DbErr> {
    let mut m: scim_token::ActiveModel = token.into();
    m.last_used_at = Set(Some(now));
    m.update(db).await?;
    Ok(())
}

/// Inserts request-log rows, 500 per statement.
pub async fn insert_requests(db: &impl ConnectionTrait, rows: Vec<scim_request::Model>) -> Result<(), DbErr> {
    for chunk in rows.chunks(500) {
        let models = chunk.iter().cloned().map(|r| scim_request::ActiveModel {
            id: Set(r.id),
            tenant_id: Set(r.tenant_id),
            method: Set(r.method),
            path: Set(r.path),
            status: Set(r.status),
            duration_us: Set(r.duration_us),
            error_code: Set(r.error_code),
            created_at: Set(r.created_at),
        });
        scim_request::Entity::insert_many(models).exec_without_returning(db).await?;
    }
    Ok(())
}
