//! The `domain_claims` table (the setup portal's DNS-verified domains).
use super::entities::domain_claim::{self, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

/// A claim to insert.
#[derive(Debug, Clone)]
pub struct NewClaim {
    pub id: String,
    pub tenant_id: String,
    pub domain: String,
    pub challenge: String,
    pub created_by: String,
    pub now: i64,
    pub next_check_at: Option<i64>,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewClaim) -> Result<Model, DbErr> {
    domain_claim::ActiveModel {
        id: Set(n.id),
        tenant_id: Set(n.tenant_id),
        domain: Set(n.domain),
        challenge: Set(n.challenge),
        created_by: Set(n.created_by),
        created_at: Set(n.now),
        checks: Set(0),
        last_checked_at: Set(None),
        last_result: Set(None),
        next_check_at: Set(n.next_check_at),
        verified_at: Set(None),
    }
    .insert(db)
    .await
}

/// A claim of this tenant (another tenant's is not found).
pub async fn get(db: &impl ConnectionTrait, tenant_id: &str, id: &str) -> Result<Option<Model>, DbErr> {
    Ok(domain_claim::Entity::find_by_id(id.to_string()).one(db).await?.filter(|c| c.tenant_id == tenant_id))
}

/// The tenant's claim on `domain`.
pub async fn of_tenant_domain(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    domain: &str,
) -> Result<Option<Model>, DbErr> {
    domain_claim::Entity::find()
        .filter(domain_claim::Column::TenantId.eq(tenant_id))
        .filter(domain_claim::Column::Domain.eq(domain))
        .one(db)
        .await
}

/// The tenant's claims, by domain.
pub async fn of_tenant(db: &impl ConnectionTrait, tenant_id: &str) -> Result<Vec<Model>, DbErr> {
    domain_claim::Entity::find()
        .filter(domain_claim::Column::TenantId.eq(tenant_id))
        .order_by_asc(domain_claim::Column::Domain)
        .limit(200)
        .all(db)
        .await
}

/// Claims whose background check is due (oldest due first).
pub async fn due(db: &impl ConnectionTrait, now: i64, limit: u64) -> Result<Vec<Model>, DbErr> {
    domain_claim::Entity::find()
        .filter(domain_claim::Column::NextCheckAt.lte(now))
        .filter(domain_claim::Column::VerifiedAt.is_null())
        .order_by_asc(domain_claim::Column::NextCheckAt)
        .limit(limit)
        .all(db)
        .await
}

/// Records a check's result (and the verification when `verified_at` is set).
pub async fn record_check(
    db: &impl ConnectionTrait,
    row: Model,
    now: i64,
    result_json: String,
    next_check_at: Option<i64>,
    verified_at: Option<i64>,
) -> Result<Model, DbErr> {
    let checks = row.checks.saturating_add(1);
    let mut m: domain_claim::ActiveModel = row.into();
    m.checks = Set(checks);
    m.last_checked_at = Set(Some(now));
    m.last_result = Set(Some(result_json));
    m.next_check_at = Set(next_check_at);
    if verified_at.is_some() {
        m.verified_at = Set(verified_at);
    }
    m.update(db).await
}

/// Removes a pending claim of the tenant. `false`: none, or verified already.
pub async fn delete_pending(db: &impl ConnectionTrait, tenant_id: &str, id: &str) -> Result<bool, DbErr> {
    let r = domain_claim::Entity::delete_many()
        .filter(domain_claim::Column::Id.eq(id))
        .filter(domain_claim::Column::TenantId.eq(tenant_id))
        .filter(domain_claim::Column::VerifiedAt.is_null())
        .exec(db)
        .await?;
    Ok(r.rows_affected > 0)
}

/// Every claim of a tenant (tenant deletion).
pub async fn delete_of_tenant(db: &impl ConnectionTrait, tenant_id: &str) -> Result<u64, DbErr> {
    Ok(domain_claim::Entity::delete_many()
        .filter(domain_claim::Column::TenantId.eq(tenant_id))
        .exec(db)
        .await?
        .rows_affected)
}
