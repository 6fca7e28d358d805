//! Reads of the SCIM request log for the setup portal's live provisioning check: the requests
//! after a cursor, and the milestones reached so far.
use super::entities::{scim_request, scim_token};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

/// The tenant's requests with an id after `after` (ids sort by time), oldest first, at most
/// `limit`. Without a cursor: the newest `limit`, oldest first.
pub async fn after(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<scim_request::Model>, DbErr> {
    let q = scim_request::Entity::find().filter(scim_request::Column::TenantId.eq(tenant_id));
    match after {
        Some(a) => {
            q.filter(scim_request::Column::Id.gt(a)).order_by_asc(scim_request::Column::Id).limit(limit).all(db).await
        }
        None => {
            let mut rows = q.order_by_desc(scim_request::Column::Id).limit(limit).all(db).await?;
            rows.reverse();
            Ok(rows)
        }
    }
}

/// The first request of the tenant's log matching `method`, a path containing `path_part` and a
/// status in `statuses` (None: any).
async fn first(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    method: Option<&str>,
    path_part: Option<&str>,
    statuses: Option<(i32, i32)>,
) -> Result<Option<scim_request::Model>, DbErr> {
    let mut q = scim_request::Entity::find().filter(scim_request::Column::TenantId.eq(tenant_id));
    if let Some(m) = method {
        q = q.filter(scim_request::Column::Method.eq(m));
    }
    if let Some(p) = path_part {
        q = q.filter(scim_request::Column::Path.contains(p));
    }
    if let Some((lo, hi)) = statuses {
        q = q.filter(scim_request::Column::Status.between(lo, hi));
    }
    q.order_by_asc(scim_request::Column::Id).one(db).await
}

/// When each milestone was first reached (unix seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Milestones {
    pub first_request: Option<i64>,
    /// A successful read (what every IdP's "test connection" does).
    pub test_passed: Option<i64>,
    pub first_user: Option<i64>,
    pub first_group: Option<i64>,
}

pub async fn milestones(db: &impl ConnectionTrait, tenant_id: &str) -> Result<Milestones, DbErr> {
    let at = |r: Option<scim_request::Model>| r.map(|r| r.created_at);
    Ok(Milestones {
        first_request: at(first(db, tenant_id, None, None, None).await?),
        test_passed: at(first(db, tenant_id, Some("GET"), None, Some((200, 299))).await?),
        first_user: at(first(db, tenant_id, Some("POST"), Some("/Users"), Some((201, 201))).await?),
        first_group: at(first(db, tenant_id, Some("POST"), Some("/Groups"), Some((201, 201))).await?),
    })
}

/// The tenant's live (not revoked) tokens, newest first.
pub async fn live_tokens(db: &impl ConnectionTrait, tenant_id: &str) -> Result<Vec<scim_token::Model>, DbErr> {
    scim_token::Entity::find()
        .filter(scim_token::Column::TenantId.eq(tenant_id))
        .filter(scim_token::Column::RevokedAt.is_null())
        .order_by_desc(scim_token::Column::Id)
        .limit(100)
        .all(db)
        .await
}

/// How many requests the tenant's log holds.
pub async fn count(db: &impl ConnectionTrait, tenant_id: &str) -> Result<u64, DbErr> {
    scim_request::Entity::find().filter(scim_request::Column::TenantId.eq(tenant_id)).count(db).await
}
