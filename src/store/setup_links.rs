//! Queries on `setup_links` (setup portal links: admin API, landing page, redemption).
use super::entities::setup_link::{self, Model};
use super::page::{self, Order, Page, PageRequest};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// A link to create.
#[derive(Debug, Clone)]
pub struct NewSetupLink {
    pub id: String,
    pub tenant_id: String,
    pub token_hash: String,
    pub intents: String,
    pub created_by: String,
    pub expires_at: i64,
    pub now: i64,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewSetupLink) -> Result<Model, DbErr> {
    setup_link::ActiveModel {
        id: Set(n.id),
        tenant_id: Set(n.tenant_id),
        token_hash: Set(n.token_hash),
        intents: Set(n.intents),
        created_by: Set(n.created_by),
        expires_at: Set(n.expires_at),
        revoked_at: Set(None),
        created_at: Set(n.now),
        last_used_at: Set(None),
        uses: Set(0),
    }
    .insert(db)
    .await
}

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    setup_link::Entity::find_by_id(id.to_string()).one(db).await
}

/// The link whose token hashes to `token_hash` (expired and revoked ones too).
pub async fn find_by_hash(db: &impl ConnectionTrait, token_hash: &str) -> Result<Option<Model>, DbErr> {
    setup_link::Entity::find().filter(setup_link::Column::TokenHash.eq(token_hash)).one(db).await
}

/// A tenant's links, newest first.
pub async fn page_of_tenant(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    req: PageRequest<'_>,
) -> Result<Page<Model>, DbErr> {
    let q = setup_link::Entity::find().filter(setup_link::Column::TenantId.eq(tenant_id));
    page::fetch(db, q, setup_link::Column::Id, Order::Desc, req, |r| r.id.clone()).await
}

/// Revokes a live link; false when it was already revoked.
pub async fn revoke(db: &impl ConnectionTrait, id: &str, now: i64) -> Result<bool, DbErr> {
    Ok(setup_link::Entity::update_many()
        .col_expr(setup_link::Column::RevokedAt, Expr::value(Some(now)))
        .filter(setup_link::Column::Id.eq(id))
        .filter(setup_link::Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Records a redemption (use count and time).
pub async fn record_use(db: &impl ConnectionTrait, id: &str, now: i64) -> Result<(), DbErr> {
    setup_link::Entity::update_many()
        .col_expr(setup_link::Column::Uses, Expr::col(setup_link::Column::Uses).add(1))
        .col_expr(setup_link::Column::LastUsedAt, Expr::value(Some(now)))
        .filter(setup_link::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
