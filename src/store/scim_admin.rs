//! SCIM tokens and the SCIM request log as the admin API manages and reads them.
use super::entities::{scim_request, scim_token};
use super::page::{self, Order, Page, PageRequest};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

pub async fn insert_token(
    db: &impl ConnectionTrait,
    id: &str,
    tenant_id: &str,
    name: &str,
    token_hash: &str,
    now: i64,
) -> Result<scim_token::Model, DbErr> {
    scim_token::ActiveModel {
        id: Set(id.to_string()),
        tenant_id: Set(tenant_id.to_string()),
        name: Set(name.to_string()),
        token_hash: Set(token_hash.to_string()),
        created_at: Set(now),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
}

/// A tenant's tokens, oldest first.
pub async fn page_tokens(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    req: PageRequest<'_>,
) -> Result<Page<scim_token::Model>, DbErr> {
    let q = scim_token::Entity::find().filter(scim_token::Column::TenantId.eq(tenant_id));
    page::fetch(db, q, scim_token::Column::Id, Order::Asc, req, |r| r.id.clone()).await
}

/// Whether the tenant has this token (revoked or not).
pub async fn token_exists(db: &impl ConnectionTrait, tenant_id: &str, id: &str) -> Result<bool, DbErr> {
    Ok(scim_token::Entity::find_by_id(id.to_string())
        .filter(scim_token::Column::TenantId.eq(tenant_id))
        .one(db)
        .await?
        .is_some())
}

/// Revokes a token of the tenant. `false`: no such token, or revoked already.
pub async fn revoke_token(db: &impl ConnectionTrait, tenant_id: &str, id: &str, now: i64) -> Result<bool, DbErr> {
    let r = scim_token::Entity::update_many()
        .col_expr(scim_token::Column::RevokedAt, now.into())
        .filter(scim_token::Column::Id.eq(id))
        .filter(scim_token::Column::TenantId.eq(tenant_id))
        .filter(scim_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(r.rows_affected > 0)
}

/// A tenant's SCIM request log, newest first.
pub async fn page_requests(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    req: PageRequest<'_>,
) -> Result<Page<scim_request::Model>, DbErr> {
    let q = scim_request::Entity::find().filter(scim_request::Column::TenantId.eq(tenant_id));
    page::fetch(db, q, scim_request::Column::Id, Order::Desc, req, |r| r.id.clone()).await
}
